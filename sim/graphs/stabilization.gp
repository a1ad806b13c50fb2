# SPDX-License-Identifier: BSD-2-Clause
# Stabilization time against the number of nodes (make graphs).
# Called with: outdir='DIR' ext='png'|'svg' and the terminal already set.
# Columns of stabilization.dat: N, then for each of boot ring, boot full,
# join ring, join full, fail ring, fail full: mean min max unstable-runs.
dat = outdir.'/stabilization.dat'
set logscale x 2
set format x '2^{%L}'
set autoscale xfix
set offsets graph 0.04, graph 0.04, graph 0.22, 0
set xlabel 'nodes N (log scale)'
set key top left box opaque Left reverse samplen 3
set grid xtics ytics lt 0 lw 1 lc rgb '#bbbbbb'
set style data yerrorlines
set bars 1.5
set pointsize 1.2

set output outdir.'/stabilization-ring.'.ext
set title "Time to a correct ring after a membership change\n(every successor and predecessor right; mean of the seeds, bars: min and max)"
set ylabel 'ring_stable_s: virtual seconds to a correct ring' noenhanced
set yrange [0:*]
plot dat using ($1*0.93):2:3:4   title 'bootstrap: N nodes join at once through one node' lw 2 pt 7 lc rgb '#1f77b4', \
     dat using 1:10:11:12        title 'one node joins a stable ring'                     lw 2 pt 5 lc rgb '#2ca02c', \
     dat using ($1*1.07):18:19:20 title 'one node fails in a stable ring'                 lw 2 pt 9 lc rgb '#d62728'

set output outdir.'/stabilization-full.'.ext
set title "Time until successor lists and fingers are right too\n(mean of the seeds, bars: min and max)"
set ylabel 'full_stable_s: virtual seconds to correct lists and fingers' noenhanced
plot dat using ($1*0.93):6:7:8    title 'bootstrap: N nodes join at once through one node' lw 2 pt 7 lc rgb '#1f77b4', \
     dat using 1:14:15:16         title 'one node joins a stable ring'                     lw 2 pt 5 lc rgb '#2ca02c', \
     dat using ($1*1.07):22:23:24 title 'one node fails in a stable ring'                  lw 2 pt 9 lc rgb '#d62728'
