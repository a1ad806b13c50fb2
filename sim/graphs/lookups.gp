# SPDX-License-Identifier: BSD-2-Clause
# Lookups that fail, time out or answer wrongly, and the dead nodes they
# meet (make graphs).
# lookups-failures.dat: F failed(mean min max) timed_out(...) wrong(...) dead_contacts(...)
# lookups-churn.dat:    rate, same columns
set key top left box opaque Left reverse samplen 3
set grid xtics ytics lt 0 lw 1 lc rgb '#bbbbbb'
set bars 1.5
set style data yerrorlines
set format y '%g%%'

dat = outdir.'/lookups-failures.dat'
set output outdir.'/lookups-failures.'.ext
set title "Lookups right after a fraction of the nodes crashed at once (256 nodes, r = 16)\nmaintenance frozen, 1000 lookups from random live nodes; mean of the seeds, bars: min and max"
set xlabel 'fraction of nodes failed'
set ylabel 'lookups (% of all)' noenhanced
set xrange [-0.02:0.52]
set yrange [0:100]
plot dat using 1:($2*100):($3*100):($4*100) title 'failed (no live successor of the key reached)' lw 2 pt 7 ps 1.2 lc rgb '#d62728', \
     dat using 1:($5*100):($6*100):($7*100) title 'timed out'                                  lw 2 pt 5 ps 1.2 lc rgb '#1f77b4', \
     dat using 1:($8*100):($9*100):($10*100) title 'wrong owner named'                         lw 2 pt 9 ps 1.2 lc rgb '#2ca02c', \
     x*100 with lines title 'fraction of nodes failed (keys lost with them)' lw 1 dt 2 lc rgb '#000000'

set output outdir.'/lookups-dead.'.ext
set title "Dead nodes a lookup meets (timeouts or refusals) after a fraction crashed\n256 nodes, r = 16, maintenance frozen; mean of the seeds, bars: min and max"
set format y '%g'
set ylabel 'dead contacts per lookup'
set yrange [0:*]
plot dat using 1:11:12:13 title 'dead contacts per lookup' lw 2 pt 7 ps 1.2 lc rgb '#9467bd'

dat = outdir.'/lookups-churn.dat'
set output outdir.'/lookups-churn.'.ext
set title "Lookups under churn (256-node world, 192 up, r = 16; 100 s of churn, 2000 lookups)\nmean of the seeds, bars: min and max"
set format y '%g%%'
set ylabel 'lookups (% of all)' noenhanced
set logscale x 10
set xrange [*:*]
set yrange [0:*]
set offsets 0, 0, graph 0.25, 0
set xlabel 'churn rate: joins + departures per second (log scale)'
plot dat using 1:($2*100):($3*100):($4*100) title 'failed' lw 2 pt 7 ps 1.2 lc rgb '#d62728', \
     dat using 1:($5*100):($6*100):($7*100) title 'timed out' lw 2 pt 5 ps 1.2 lc rgb '#1f77b4', \
     dat using 1:($8*100):($9*100):($10*100) title 'wrong owner named' lw 2 pt 9 ps 1.2 lc rgb '#2ca02c'
