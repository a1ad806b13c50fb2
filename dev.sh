#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# qdb's one entry point for a fresh Debian 12 machine.
#   ./dev.sh demo    install what is missing, build, run a local 3-node hive
#                    (127.0.0.1-3) through qdbsh, then the default simulation
#   ./dev.sh test    install what is missing, build twice (plain, and with
#                    AddressSanitizer+UBSan) and run the whole test suite in both,
#                    then the package stage and a short fuzz stage (10 s a target)
#   ./dev.sh fuzz [SECONDS]  build the libFuzzer targets (fuzz/, clang) in
#                    build/fuzz and run each SECONDS (default 10)
#   ./dev.sh package build the Debian packages, install them on this machine
#                    (CI's is a fresh Debian 12, as root), run the tutorial from
#                    the installed binaries and check qdbd's notify protocol;
#                    with --fresh-root, in a fresh debootstrap root instead
#   ./dev.sh bench   qdb against redis-server on loopback, and a 10,000-node simulation
#   ./dev.sh graphs  stabilization, path-length and failure graphs (NMAX=65536 for all sizes)
#   ./dev.sh deps | build | sim
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

PACKAGES="build-essential autoconf automake libtool pkg-config libglib2.0-dev libssl-dev
  libdb5.3-dev libcunit1-dev libzstd-dev zlib1g-dev libdeflate-dev libedit-dev libmicrohttpd-dev gnuplot-nox
  redis-server valgrind procps python3 python3-pytest libsystemd-dev debhelper dpkg-dev fakeroot
  parallel python3-yaml clang libclang-rt-14-dev openssl"
# Only the test stage needs a browser (tests/status-page.sh skips without it)
# and ss (tests/reset-predecessor.sh resets connections with ss -K).
TEST_PACKAGES="chromium iproute2"

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

# The .debs from the `make dist` tarball (so the tarball is proved complete)
# with debian/ copied in, built once without make check (test has run it);
# installed with apt, which brings their dependencies; then what a newcomer
# does with them.  Nothing here starts systemd: the notify path is checked by
# playing the service manager, as tests/notify.sh does in make check.
package() {
    local sudo="" d=$top/build/deb
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    build_in plain
    make -C build/plain dist >/dev/null
    rm -rf "$d"; mkdir -p "$d"
    tar -C "$d" -xzf build/plain/qdb-*.tar.gz
    local src
    src=$(echo "$d"/qdb-*/)
    cp -a debian "$src"
    echo "== packages: dpkg-buildpackage -us -uc -b (log in build/deb/build.log)"
    (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -us -uc -b) \
        > "$d/build.log" 2>&1 || { tail -40 "$d/build.log"; echo "FAIL: dpkg-buildpackage"; exit 1; }
    local want="qdbd qdbsh qdbsim libqdb0 libqdb-dev python3-qdb" p
    for p in $want; do
        ls "$d/${p}_"*.deb >/dev/null 2>&1 || { echo "FAIL: no $p package"; exit 1; }
    done
    echo "built: $(cd "$d" && ls ./*.deb | tr '\n' ' ')"
    if [ "${1:-}" = --fresh-root ]; then
        package_fresh_root "$d" $want
        return
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --reinstall --no-install-recommends $(for p in $want; do echo "$d/${p}_"*.deb; done) \
        > "$d/install.log" 2>&1 \
        || { cat "$d/install.log"; echo "FAIL: apt-get install of the packages"; exit 1; }
    echo "installed: $(dpkg-query -W -f='${Package} ${Version}, ' $want)"
    (cd "$d" && package_check)
}

# --fresh-root: install the packages in a copy of a minimal Debian 12 root
# (made once with debootstrap, as ../shared/tools/fresh-debian does, and kept
# in ${TMPDIR:-/tmp}/qdb-fresh-base), with apt fetching only their
# dependencies, and run package_check there.  Root only; a few minutes the
# first time, then about 30 s.
package_fresh_root() {
    local d=$1; shift
    local base=${TMPDIR:-/tmp}/qdb-fresh-base run p m
    fresh_run=
    [ "$(id -u)" -eq 0 ] || { echo "FAIL: --fresh-root needs root (chroot, mounts)"; exit 1; }
    if [ ! -f "$base/.ready" ]; then
        command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
        rm -rf "$base"
        echo "== a Debian 12 base root, once (debootstrap, a few minutes)"
        debootstrap --variant=minbase bookworm "$base" > "$d/debootstrap.log" 2>&1 \
            || { tail "$d/debootstrap.log"; echo "FAIL: debootstrap"; exit 1; }
        cp /etc/resolv.conf "$base/etc/resolv.conf" 2>/dev/null || true
        touch "$base/.ready"
    fi
    run=$(mktemp -d "${TMPDIR:-/tmp}/qdb-pkgroot.XXXX")
    fresh_run=$run
    trap fresh_root_cleanup EXIT
    cp -a "$base/." "$run/"
    mkdir -p "$run/build/qdb/build/deb" "$run/build/qdb/tests"
    for p in "$@"; do cp "$d/${p}_"*.deb "$run/build/qdb/build/deb/"; done
    cp -a dev.sh scenarios "$run/build/qdb/"
    cp tests/notify.sh "$run/build/qdb/tests/"
    for m in proc sys dev dev/pts; do mount --bind "/$m" "$run/$m"; done
    echo "== fresh root: apt-get install of the packages (and python3, a compiler for the libqdb-dev check)"
    chroot "$run" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends /build/qdb/build/deb/*.deb \
                 python3-minimal gcc libc6-dev pkg-config' > "$d/fresh-install.log" 2>&1 \
        || { tail -20 "$d/fresh-install.log"; echo "FAIL: install in the fresh root"; exit 1; }
    chroot "$run" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        /build/qdb/dev.sh package-check
}

# never remove the root while anything is still mounted inside it
fresh_root_cleanup() {
    local m
    for m in dev/pts dev sys proc; do umount -l "$fresh_run/$m" 2>/dev/null || true; done
    if grep -q " $fresh_run/" /proc/self/mounts; then
        echo "left $fresh_run in place: still mounted" >&2
    else
        rm -rf "$fresh_run"
    fi
}

# What the installed packages must do; run from build/deb.
package_check() {
    local bad=0 f port pids=()
    fail() { echo "FAIL: $*"; bad=1; }
    getent passwd qdb >/dev/null || fail "no qdb system user"
    for f in /usr/sbin/qdbd /usr/bin/qdbsh /usr/bin/qdbsim /lib/systemd/system/qdbd.service \
             /etc/qdb/qdbd.conf /usr/include/qdb/qdb.h /usr/share/man/man8/qdbd.8.gz \
             /usr/share/qdb/doc/scenarios.md; do
        [ -e "$f" ] || fail "$f is not installed"
    done
    grep -qx 'root = /var/lib/qdb' /etc/qdb/qdbd.conf || fail "qdbd.conf does not set the root"
    /usr/sbin/qdbd --check-config >/dev/null || fail "the installed qdbd.conf is rejected"
    grep -q '^ExecStart=/usr/sbin/qdbd --config=/etc/qdb/qdbd.conf$' /lib/systemd/system/qdbd.service \
        || fail "qdbd.service: ExecStart"
    if command -v systemd-analyze >/dev/null; then
        systemd-analyze verify /lib/systemd/system/qdbd.service || fail "systemd-analyze verify qdbd.service"
    fi
    diff <(cd "$top/scenarios" && ls ./*.scn) <(cd /usr/share/qdb/scenarios && ls ./*.scn) \
        || fail "installed scenarios differ from scenarios/ (scenarios/local.am's list)"
    # libqdb-dev: a program builds against <qdb/qdb.h> with pkg-config
    printf '#include <qdb/qdb.h>\n#include <stdio.h>\nint main(void) { puts(qdb_version()); return qdb_strerror(0) == 0; }\n' > use.c
    cc use.c -o use $(pkg-config --cflags --libs libqdb) && ./use | grep -q '^qdb ' \
        || fail "a program using libqdb-dev does not build or run"
    # python3-qdb: the package imports the installed libqdb (no QDB_LIBRARY)
    (cd /tmp && env -u QDB_LIBRARY /usr/bin/python3 -c 'import qdb; assert qdb.version().startswith("qdb ")') \
        || fail "python3 cannot import the installed qdb package"
    # qdbsim(1)'s examples, from another directory
    (cd /tmp && /usr/bin/qdbsim -q scenarios/tutorial.scn | grep -q '^trace_hash') || fail "qdbsim scenarios/tutorial.scn"
    # the README's tutorial, from the installed binaries (a random port, so a
    # hive already running on 2836 is left alone; below Linux's ephemeral
    # range, 32768-60999, where another job's client socket may hold it)
    port=$(( 20000 + RANDOM % 12000 ))
    rm -rf hive; mkdir hive
    for i in 1 2 3; do
        local peer=(); [ $i -gt 1 ] && peer=(--peer=127.0.0.1:$port)
        /usr/sbin/qdbd -a 127.0.0.$i:$port "${peer[@]}" -l hive/qdbd$i.log --root=hive/instance$i &
        pids+=($!)
        sleep 0.3
    done
    local out="" _
    for _ in $(seq 50); do
        out=$(/usr/bin/qdbsh --daemon=127.0.0.2:$port get probe 2>&1) || true
        echo "$out" | grep -q "not found" && break
        sleep 0.2
    done
    printf 'put entry thisismyentry\nexit\n' | /usr/bin/qdbsh --daemon=127.0.0.2:$port || fail "qdbsh put"
    out=$(/usr/bin/qdbsh --daemon=127.0.0.3:$port get entry) || true
    [ "$out" = thisismyentry ] || fail "qdbsh get entry through node 3 gave '$out'"
    kill -TERM "${pids[@]}"
    for f in "${pids[@]}"; do wait "$f" || fail "an installed qdbd exited $? after SIGTERM"; done
    # systemd's start, as the service manager sees it
    QDBD=/usr/sbin/qdbd QDBSH=/usr/bin/qdbsh sh "$top/tests/notify.sh" || fail "notify protocol"
    [ $bad -eq 0 ] || { for f in hive/*.log; do echo "-- $f"; tail -5 "$f"; done; exit 1; }
    echo "packages: installed, tutorial from /usr/bin and /usr/sbin, notify protocol: ok"
}

# The libFuzzer targets (fuzz/local.am), built with clang in build/fuzz, each
# run for SECONDS from its seeds (tests/fuzz/NAME) and the corpus it grew
# before (build/fuzz/corpus/NAME, kept between runs).  A crash stops the
# stage; its input is build/fuzz/crash-NAME-*, to keep in
# tests/fuzz/NAME/crashes/ with the fix (make check replays it).
FUZZ_TARGETS="frame msg record scenario config qdbsh client conn request tlsrec"
fuzz_stage() {
    local secs=${1:-10} t runs
    [[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "usage: ./dev.sh fuzz [SECONDS]"; exit 2; }
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null)
    mkdir -p build/fuzz
    (cd build/fuzz
     [ -f Makefile ] || "$top/configure" -q --enable-werror --enable-fuzzing CC=clang CFLAGS="-O1 -g"
     make -j"$jobs" $(for t in $FUZZ_TARGETS; do echo "fuzz/fuzz_$t"; done) >/dev/null)
    for t in $FUZZ_TARGETS; do
        mkdir -p "build/fuzz/corpus/$t"
        # config and qdbsh print every refusal on stderr: closed (crash
        # reports still come through)
        local quiet=(); case $t in config|qdbsh) quiet=(-close_fd_mask=2) ;; esac
        if ! "build/fuzz/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
               -print_final_stats=1 -artifact_prefix="build/fuzz/crash-$t-" "${quiet[@]}" \
               "build/fuzz/corpus/$t" "tests/fuzz/$t" > "build/fuzz/$t.log" 2>&1; then
            tail -40 "build/fuzz/$t.log"
            echo "FAIL: fuzz target $t crashed: build/fuzz/crash-$t-* (fix it, keep it in tests/fuzz/$t/crashes/)"
            exit 1
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build/fuzz/$t.log")
        echo "fuzz $t: $runs executions in $secs s, no crash"
    done
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
    # (with no pids left, a bare kill fails, and under set -e would turn a
    # successful demo into exit status 2)
    trap 'if [ ${#pids[@]} -gt 0 ]; then kill "${pids[@]}" 2>/dev/null || true; fi; wait 2>/dev/null || true' EXIT
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
     echo "valgrind: qdbsim tutorial clean"
     # a sweep's forked workers and the merge's reader (a worker's valgrind
     # error would come back as a "crash" verdict)
     rc=0; "${vg[@]}" sim/qdbsim "$top/scenarios/tutorial.scn" --seeds 1..3 -j 2 --json > vg-sweep.jsonl || rc=$?
     { [ $rc -le 1 ] && ! grep -q '"verdict": "crash"' vg-sweep.jsonl &&
       { "${vg[@]}" sim/qdbsim --merge vg-sweep.jsonl > /dev/null || [ $? -eq 1 ]; }; } ||
         { echo "valgrind: qdbsim sweep or merge failed"; cat vg-sweep.jsonl; exit 1; }
     echo "valgrind: qdbsim sweep and merge clean")
    package
    fuzz_stage 10
    echo "all tests passed in both builds, under valgrind, from the packages and under the fuzzers"
    ;;
package) deps; package "${2:-}" ;;
fuzz) deps; fuzz_stage "${2:-10}" ;;
package-check) cd build/deb && package_check ;; # inside the fresh root
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
