#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/status-page.sh: the status page of a 3-node hive in a real browser.
# Headless Chromium loads http://127.0.0.1:$PORT+1/ from node 1 (qdbd
# --http); the test checks the DOM it built (the SVG ring with the three
# nodes, the page's own node marked) and the screenshot (not blank: colours,
# the node's blue and the successors' green; tests/png-check.py).  Skips
# (77) with a message when Chromium is absent.  SCREENSHOT=FILE keeps the
# screenshot (doc/status-page.png is made so).  Exit 0 pass, 1 fail.

node_args() { [ "$1" -eq 1 ] && echo "--http=127.0.0.1:$((PORT + 1))"; }
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
if [ -z "$CHROMIUM" ]; then
    echo "SKIP: Chromium is not installed (apt-get install chromium); the status page is not checked in a browser"
    exit 77
fi
. "${srcdir:-.}/tests/hivelib.sh"
need python3 "python3 is needed to read the screenshot"

hive_start 3
hive_wait_stable 3
for i in $(seq 30); do echo "put key$i value-$i"; done | qsh 30 --daemon="127.0.0.1:$PORT" >/dev/null ||
    fail "puts"
URL=http://127.0.0.1:$((PORT + 1))/

# browser MODE...: Chromium, headless, with nothing that reaches outside.
browser() {
    $TIMEOUT 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --hide-scrollbars --user-data-dir="$tmp/chromium" \
        --window-size=1000,720 "$@" "$URL"
}

# A settled node can go back to "settling" for a few rounds when a
# neighbour's STABILIZE hint is resent (ring.c send_hint): the page must show
# what the node says at the moment it is read, so wait for a stable hive and
# read again, at most three times.
for try in 1 2 3; do
    hive_wait_stable 3
    browser --dump-dom >"$tmp/dom.html" 2>"$tmp/chromium.err" || fail "chromium --dump-dom: $(tail -n 5 "$tmp/chromium.err")"
    grep -q "active, stable, " "$tmp/dom.html" && break
    echo "the page says settling (try $try)"
done
nodes=$(grep -o '<circle[^>]*class="node[^"]*"' "$tmp/dom.html" | wc -l)
[ "$nodes" -eq 3 ] || fail "the SVG shows $nodes nodes, not 3"
grep -q "data-address=\"127.0.0.1:$PORT\" class=\"node is-self" "$tmp/dom.html" ||
    fail "the page's own node is not marked"
for i in 2 3; do
    grep -q "data-address=\"127.0.0.$i:$PORT\"" "$tmp/dom.html" || fail "node $i is not drawn"
done
grep -q 'class="arc"' "$tmp/dom.html" || fail "the node's arc is not drawn"
grep -q '<line[^>]*class="succ"' "$tmp/dom.html" || fail "no successor line"
grep -q "active, stable, " "$tmp/dom.html" || fail "the page does not say the node is stable"
echo "DOM: the ring with 3 nodes, the arc and successors ($(elapsed))"

shot=${SCREENSHOT:-$tmp/status-page.png}
rm -f "$shot"
browser --screenshot="$shot" >/dev/null 2>>"$tmp/chromium.err" ||
    fail "chromium --screenshot: $(tail -n 5 "$tmp/chromium.err")"
[ -s "$shot" ] || fail "no screenshot"
python3 "${srcdir:-.}/tests/png-check.py" "$shot" || fail "the screenshot looks blank"
echo "PASS ($(elapsed))"
exit 0
