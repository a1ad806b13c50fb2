#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# tests/tls-keyupdate.sh: KeyUpdates on a live TLS connection, with OpenSSL's
# record layer on the other side.  One qdbd with a hive key (tests/hivelib.sh:
# 127.0.0.1 on a free port), and tests/tls_keyupdate_probe.py driving
# `openssl s_client` (k: KeyUpdate, K: KeyUpdate asking for ours): requests
# keep being answered under the new keys, and exactly one KeyUpdate comes
# back for each one that asks for it.
# Exit 0 pass, 77 skip (no qdbd, qdbsh, python3 or openssl), 1 fail.  About 10 s.

. "${srcdir:-.}/tests/hivelib.sh"
need python3 "no python3 for the probe"
need openssl "no openssl program for s_client"

KEY=$tmp/hive.key
(umask 077 && "$QDBD" --gen-key >"$KEY") || fail "qdbd --gen-key failed"
node_args() { echo "--hive-key-file=$KEY --transient"; }
hive_start 1
ready() { qsh 2 --key-file="$KEY" --daemon="127.0.0.1:$PORT" get nothing 2>&1 | grep -q "not found"; }
wait_until 10 ready || fail "qdbd did not serve within 10 s"
PYTHONPATH="${srcdir:-.}/tests" $TIMEOUT 60 python3 "${srcdir:-.}/tests/tls_keyupdate_probe.py" \
    "127.0.0.1:$PORT" "$KEY" || fail "the KeyUpdate probe failed"
alive "$pid1" || fail "qdbd died"
echo "PASS ($(elapsed))"
