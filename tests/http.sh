#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/http.sh: qdbd --http, with real HTTP requests (python3's urllib and
# raw sockets) against a real hive of three qdbd on 127.0.0.1-3; node 1
# serves HTTP on 127.0.0.1:$PORT+1.  Exit 0 pass, 77 skip, 1 fail.
#
#   /             HTML with the SVG ring and the inlined node_status, no
#                 external assets
#   /status.json  the node_status object: the same as qdbsh node_status
#   /metrics      Prometheus text format: every sample has HELP and TYPE,
#                 the values agree with node_status
#   errors        404, 405, a request body, an oversized header
#   bounds        connections past the per-client limit are closed; a
#                 half-sent request does not stall the node (the HTTP
#                 server has its own thread)

node_args() { [ "$1" -eq 1 ] && echo "--http=127.0.0.1:$((PORT + 1))"; }
. "${srcdir:-.}/tests/hivelib.sh"
need python3 "python3 is needed for the HTTP client"

hive_start 3
hive_wait_stable 3
A1=127.0.0.1:$PORT
for i in $(seq 20); do echo "put key$i value-$i"; echo "get nokey$i"; done |
    qsh 30 --daemon="$A1" >/dev/null 2>&1
qsh 10 --raw --daemon="$A1" node_status >"$tmp/status" || fail "node_status"

cat >"$tmp/httpcheck.py" <<'EOF'
import json, re, socket, subprocess, sys, time, urllib.error, urllib.request

host, port, qdbsh, node = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
base = "http://%s:%d" % (host, port)
qdbsh_status = json.load(open(sys.argv[5]))

def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)

def get(path, method="GET", data=None, headers={}):
    req = urllib.request.Request(base + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()

# /status.json: the node_status object
code, ctype, body = get("/status.json")
check(code == 200 and ctype == "application/json", "/status.json: %d %s" % (code, ctype))
st = json.loads(body)
check(st["address"] == node and st["id"] == qdbsh_status["id"], "/status.json is another node")
check(st["state"] == "active" and st["stable"], "/status.json: not active and stable")
check(set(st) == set(qdbsh_status), "/status.json and node_status differ in members")
check(st["predecessor"] is not None and len(st["successors"]) == 2, "neighbours missing")
check(st["counters"]["requests"] >= qdbsh_status["counters"]["requests"], "counters went back")

# /: the page, with the SVG and the snapshot inlined, no external assets
code, ctype, page = get("/")
check(code == 200 and ctype.startswith("text/html"), "/: %d %s" % (code, ctype))
check('<svg id="ring"' in page, "no SVG in the page")
m = re.search(r'<script id="initial" type="application/json">(.*?)</script>', page, re.S)
check(m is not None, "no inlined status in the page")
inl = json.loads(m.group(1))
check(inl["address"] == node, "the inlined status is another node's")
check("fetch(\"status.json\"" in page and "setInterval" in page, "the page does not refresh")
check(not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page), "the page loads external assets")
check(get("/index.html")[0] == 200, "/index.html")

# /metrics: Prometheus text format 0.0.4
code, ctype, text = get("/metrics")
check(code == 200 and ctype.startswith("text/plain; version=0.0.4"), "/metrics: %d %s" % (code, ctype))
helps, types, samples = set(), {}, {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        check(kind in ("counter", "gauge"), "metric type " + kind)
        types[name] = kind
    else:
        m = re.fullmatch(r'([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\d+)', line)
        check(m is not None, "not a sample line: " + line)
        check(m.group(1) in types and m.group(1) in helps, "no HELP/TYPE for " + m.group(1))
        samples[m.group(1) + (m.group(2) or "")] = int(m.group(4))
for name in ("qdb_entries", "qdb_bytes", "qdb_wrong_node_total", "qdb_unstable_total",
             "qdb_lookups_total", "qdb_rpc_timeouts_total", "qdb_handover_sent_entries_total",
             "qdb_handover_received_entries_total", "qdb_storage_errors_total",
             "qdb_connections_open", "qdb_connections_total", "qdb_node_stable"):
    check(name in samples, "metric %s missing" % name)
    check(name.endswith("_total") == (types[name] == "counter"), "type of " + name)
check(samples["qdb_node_stable"] == 1, "qdb_node_stable")
st = json.loads(get("/status.json")[2])
check(samples["qdb_entries"] == st["entries"], "qdb_entries != entries")
reqs = {k: v for k, v in samples.items() if k.startswith("qdb_requests_total{")}
check(sum(reqs.values()) == st["counters"]["requests"], "requests by type and result do not add up")
check(any('type="get",result="alias_not_found"' in k for k in reqs), "no get/alias_not_found sample")
check(samples["qdb_connections_open"] >= 2, "qdb_connections_open")

# errors
check(get("/nope")[0] == 404, "/nope is not 404")
check(get("/", method="POST", data=b"x")[0] in (400, 405), "POST is not refused")
check(get("/", method="DELETE")[0] == 405, "DELETE is not 405")
try:
    code = get("/", headers={"X-Big": "a" * 40000})[0]
except Exception:
    code = 0  # the server may just close the connection
check(code != 200, "a 40 KB header was served")

# bounds: past 8 connections from one address, the server closes them
socks = [socket.create_connection((host, port), timeout=5) for _ in range(16)]
closed = 0
for s in socks:
    s.settimeout(1.0)
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed += 1
check(closed >= 8, "only %d of 16 connections from one address were refused" % closed)
for s in socks:
    s.close()
time.sleep(0.2)

# a half-sent request holds an HTTP connection, not the node
slow = socket.create_connection((host, port), timeout=5)
slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
t = time.time()
out = subprocess.run([qdbsh, "--daemon=" + node, "get", "key1"], capture_output=True, timeout=20)
check(out.returncode == 0 and out.stdout == b"value-1", "get while HTTP is stalled: %r" % (out,))
check(time.time() - t < 5, "the node answered slowly while HTTP was stalled")
check(get("/metrics")[0] == 200, "/metrics while another request is half-sent")
slow.close()
print("http: / /status.json /metrics, errors and bounds: ok")
EOF
python3 "$tmp/httpcheck.py" 127.0.0.1 $((PORT + 1)) "$QDBSH" "$A1" "$tmp/status" || fail "HTTP checks"

# off by default: nodes 2 and 3 serve no HTTP
python3 -c 'import socket, sys
try:
    socket.create_connection(("127.0.0.2", int(sys.argv[1])), timeout=2)
except OSError:
    sys.exit(0)
sys.exit(1)' $((PORT + 1)) || fail "node 2 serves HTTP without --http"
echo "PASS ($(elapsed))"
exit 0
