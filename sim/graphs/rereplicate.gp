# SPDX-License-Identifier: BSD-2-Clause
# Time back to K copies after one failure, against data per node (make graphs).
# rereplicate.dat: E  K=2(mean min max never)  K=3(mean min max never)
set key top left box opaque Left reverse samplen 3
set grid xtics ytics lt 0 lw 1 lc rgb '#bbbbbb'
set bars 1.5
set style data yerrorlines
set logscale x

dat = outdir.'/rereplicate.dat'
set output outdir.'/rereplicate.'.ext
set title "Time back to K copies after one node fails with its storage\n16 nodes; mean of the seeds, bars: min and max; oracle checks every 100 ms"
set xlabel 'entries per node (keyspace / 16 nodes; each node holds about K times as many)'
set ylabel 'virtual seconds until every entry has K live copies' noenhanced
set xrange [70:4500]
set yrange [0:*]
plot dat using 1:2:3:4 title 'K = 2' lw 2 pt 5 ps 1.2 lc rgb '#1f77b4', \
     dat using 1:6:7:8 title 'K = 3' lw 2 pt 9 ps 1.2 lc rgb '#2ca02c'
