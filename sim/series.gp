# SPDX-License-Identifier: BSD-2-Clause
# Draws qdbsim --series output: how much of the ring is right over time.
#   gnuplot -e "in='run.series'; out='run.png'; name='1000 joins'" sim/series.gp
if (!exists("name")) name = "qdbsim run"
set terminal pngcairo size 900,520 font ",10"
set output out
set title sprintf("Ring convergence: %s", name)
set xlabel "virtual time (s)"
set ylabel "nodes"
set y2label "share of live nodes right (%)"
set y2range [0:105]
set ytics nomirror
set y2tics
set key right bottom
set grid
plot in using 1:2 with lines lw 2 title "live nodes", \
     in using 1:($2 > 0 ? 100.0 * $3 / $2 : 0) axes x1y2 with lines title "successor right (%)", \
     in using 1:($2 > 0 ? 100.0 * $4 / $2 : 0) axes x1y2 with lines dt 2 title "predecessor right (%)"
