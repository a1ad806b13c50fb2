# SPDX-License-Identifier: BSD-2-Clause
# Entries lost when nodes fail at once, for K = 1..4 copies (make graphs).
# replicas-lost.dat: F  K=1(mean min max)  K=2(...)  K=3(...)  K=4(...)
set key top left box opaque Left reverse samplen 3
set grid xtics ytics lt 0 lw 1 lc rgb '#bbbbbb'
set bars 1.5
set style data yerrorlines
set format y '%g%%'

dat = outdir.'/replicas-lost.dat'
set output outdir.'/replicas-lost.'.ext
set title "Entries lost when a fraction of the nodes fail at once with their storage\n256 nodes, 2,000 entries, K copies each; mean of the seeds, bars: min and max; dashed: F^K"
set xlabel 'fraction of nodes failed at once (F)'
set ylabel 'entries lost (% of all)' noenhanced
set xrange [-0.02:0.52]
set yrange [0:*]
plot dat using 1:($2*100):($3*100):($4*100)    title 'K = 1' lw 2 pt 7 ps 1.2 lc rgb '#d62728', \
     dat using 1:($5*100):($6*100):($7*100)    title 'K = 2' lw 2 pt 5 ps 1.2 lc rgb '#1f77b4', \
     dat using 1:($8*100):($9*100):($10*100)   title 'K = 3' lw 2 pt 9 ps 1.2 lc rgb '#2ca02c', \
     dat using 1:($11*100):($12*100):($13*100) title 'K = 4' lw 2 pt 11 ps 1.2 lc rgb '#9467bd', \
     x*100 with lines notitle lw 1 dt 2 lc rgb '#d62728', \
     x**2*100 with lines notitle lw 1 dt 2 lc rgb '#1f77b4', \
     x**3*100 with lines notitle lw 1 dt 2 lc rgb '#2ca02c', \
     x**4*100 with lines notitle lw 1 dt 2 lc rgb '#9467bd'
