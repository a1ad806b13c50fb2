# SPDX-License-Identifier: BSD-2-Clause
# Lookups that fail or time out (make graphs).
# lookups-failures.dat: F failed(mean min max) timed_out(mean min max)
# lookups-churn.dat:    rate, same columns
set key top left box opaque Left reverse samplen 3
set grid xtics ytics lt 0 lw 1 lc rgb '#bbbbbb'
set bars 1.5
set style data yerrorlines
set format y '%g%%'

dat = outdir.'/lookups-failures.dat'
set output outdir.'/lookups-failures.'.ext
set title "Lookups right after a fraction of the nodes crashed at once (256 nodes)\n1000 lookups before the ring repairs; mean of the seeds, bars: min and max"
set xlabel 'fraction of nodes failed'
set ylabel 'lookups (% of all)' noenhanced
set xrange [-0.02:0.52]
set yrange [0:100]
plot dat using 1:($2*100):($3*100):($4*100) title 'failed (client gave up: dead nodes on every route tried)' lw 2 pt 7 ps 1.2 lc rgb '#d62728', \
     dat using 1:($5*100):($6*100):($7*100) title 'timed out'                                            lw 2 pt 5 ps 1.2 lc rgb '#1f77b4', \
     x*100 with lines title 'fraction of nodes failed (keys lost with them)' lw 1 dt 2 lc rgb '#000000'

dat = outdir.'/lookups-churn.dat'
set output outdir.'/lookups-churn.'.ext
set title "Lookups under churn (256-node world, 192 up; 100 s of churn, 2000 lookups)\nmean of the seeds, bars: min and max"
set logscale x 10
set xrange [*:*]
set yrange [0:*]
set offsets 0, 0, graph 0.25, 0
set xlabel 'churn rate: joins + departures per second (log scale)'
plot dat using 1:($2*100):($3*100):($4*100) title 'failed' lw 2 pt 7 ps 1.2 lc rgb '#d62728', \
     dat using 1:($5*100):($6*100):($7*100) title 'timed out' lw 2 pt 5 ps 1.2 lc rgb '#1f77b4'
