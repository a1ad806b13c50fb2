#!/usr/bin/env bash
# qdb's one entry point for a fresh Debian 12 machine.
#   ./dev.sh demo    install what is missing, build, run a local 3-node hive
#                    (127.0.0.1-3) through qdbsh, then the default simulation
#   ./dev.sh test    install what is missing, build twice (plain, and with
#                    AddressSanitizer+UBSan) and run the whole test suite in both
#   ./dev.sh bench   qdb against redis-server on loopback, and a 10,000-node simulation
#   ./dev.sh graphs  stabilization, path-length and failure graphs (NMAX=65536 for all sizes)
#   ./dev.sh deps | build | sim
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

PACKAGES="build-essential autoconf automake libtool pkg-config libglib2.0-dev libssl-dev
  libdb5.3-dev libcunit1-dev libzstd-dev zlib1g-dev libedit-dev libmicrohttpd-dev gnuplot-nox
  redis-server valgrind procps python3"
# Only the test stage needs a browser (tests/status-page.sh skips without it).
TEST_PACKAGES="chromium"

deps() {
    local missing=()
    for p in $PACKAGES ${1:-}; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [configure options]: an out-of-tree build under build/DIR
build_in() {
    local dir=$1; shift
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null)
    mkdir -p "$top/build/$dir"
    cd "$top/build/$dir"
    [ -f Makefile ] || "$top/configure" -q --enable-werror "$@"
    make -j"$jobs" >/dev/null
    cd "$top"
}

case "${1:-}" in
deps) deps ;;
bench) deps; build_in plain; make -C build/plain bench ;;
graphs) deps; build_in plain; make -C build/plain graphs ${NMAX:+NMAX=$NMAX} ;;
build) deps; build_in plain ;;
sim)
    deps; build_in plain
    ./build/plain/sim/qdbsim scenarios/tutorial.scn
    ./build/plain/sim/qdbsim scenarios/join1000.scn
    ;;
demo)
    deps; build_in plain
    b=$top/build/plain d=$top/build/demo
    rm -rf "$d"; mkdir -p "$d"
    pids=()
    trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
    echo "== a local hive: three qdbd on 127.0.0.1-3:2836 (logs and roots in build/demo)"
    for i in 1 2 3; do
        peer=(); [ $i -gt 1 ] && peer=(--peer=127.0.0.1:2836)
        "$b/transport-real/qdbd" -a 127.0.0.$i:2836 "${peer[@]}" -l "$d/qdbd$i.log" \
            --root="$d/instance$i" &
        pids+=($!)
        sleep 0.3
    done
    # wait (at most 10 s) until the hive answers through node 2
    for _ in $(seq 50); do
        if "$b/client/qdbsh" --daemon=127.0.0.2:2836 get probe 2>&1 | grep -q "not found"; then
            break
        fi
        sleep 0.2
    done
    echo "\$ qdbsh --daemon=127.0.0.2:2836      (put entry thisismyentry / get entry / exit)"
    printf 'put entry thisismyentry\nget entry\nexit\n' | "$b/client/qdbsh" --daemon=127.0.0.2:2836
    echo "\$ qdbsh --daemon=127.0.0.3:2836 get entry"
    "$b/client/qdbsh" --daemon=127.0.0.3:2836 get entry; echo
    kill -TERM "${pids[@]}"; wait; pids=()
    echo "== the default simulation: 1,000 nodes join one by one, then 2,000 lookups"
    "$b/sim/qdbsim" scenarios/join1000.scn --series "$d/join1000.series"
    if command -v gnuplot >/dev/null; then
        gnuplot -e "in='$d/join1000.series'; out='$d/join1000.png'; name='1,000 joins'" sim/series.gp
        echo "graph: build/demo/join1000.png (ring convergence over virtual time)"
    fi
    ;;
test)
    deps "$TEST_PACKAGES"
    build_in plain
    (cd build/plain && make -j"$jobs" check) || { cat build/plain/test-suite.log; exit 1; }
    # -O0 with AddressSanitizer and UBSan: also proves the trace hashes do
    # not depend on optimisation or instrumentation
    build_in sanitize --enable-sanitizers CFLAGS="-O0 -g"
    (cd build/sanitize && make -j"$jobs" check) || { cat build/sanitize/test-suite.log; exit 1; }
    if ! diff build/plain/scenario-hashes.txt build/sanitize/scenario-hashes.txt; then
        echo "FAIL: trace hashes differ between the -O2 build and the -O0 sanitizer build"
        exit 1
    fi
    echo "trace hashes equal in both builds: $(wc -l < build/plain/scenario-hashes.txt) scenarios"
    # valgrind over the CUnit suites and one simulation: no invalid access, no
    # definite leak (Berkeley DB's own noise is suppressed: tests/bdb.supp)
    vg=(valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite
        --suppressions="$top/tests/bdb.supp")
    (cd build/plain
     for t in tests/test_*; do
         [ -x "$t" ] && [ "${t%.*}" = "$t" ] || continue
         case $t in tests/test_libqdb) continue ;; esac # a libtool wrapper; covered by ASan
         "${vg[@]}" "$t" > "$t.valgrind.log" 2>&1 || { echo "valgrind: $t failed"; cat "$t.valgrind.log"; exit 1; }
         echo "valgrind: $t clean"
     done
     "${vg[@]}" sim/qdbsim -q "$top/scenarios/tutorial.scn" > /dev/null || { echo "valgrind: qdbsim failed"; exit 1; }
     echo "valgrind: qdbsim tutorial clean")
    echo "all tests passed in both builds and under valgrind"
    ;;
*) sed -n '2,10p' "$0"; exit 2 ;;
esac
