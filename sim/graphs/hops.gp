# SPDX-License-Identifier: BSD-2-Clause
# Lookup path length against the number of nodes (make graphs).
# hops.dat: N hops_mean hops_p1 hops_p99 half_log2_N
dat = outdir.'/hops.dat'
set output outdir.'/hops.'.ext
set title "Lookup path length (random keys from random nodes, stable ring)\nmean of the seeds; bars: 1st and 99th percentiles"
set logscale x 2
set format x '2^{%L}'
set autoscale xfix
set offsets graph 0.04, graph 0.04, graph 0.22, 0
set xlabel 'nodes N (log scale)'
set ylabel 'hops per lookup' noenhanced
set yrange [0:*]
set key top left box opaque Left reverse samplen 3
set grid xtics ytics lt 0 lw 1 lc rgb '#bbbbbb'
set bars 1.5
plot dat using 1:2:3:4 with yerrorlines title 'qdb: mean hops (bars: 1st-99th percentile)' lw 2 pt 7 ps 1.2 lc rgb '#1f77b4', \
     dat using 1:5 with lines title 'Chord: ½ log_2 N' lw 2 dt 2 lc rgb '#000000'
