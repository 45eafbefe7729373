#!/usr/bin/env bash
# bench/ech.sh — the cost of Encrypted Client Hello, printed as a markdown
# table: the time of a full TLS handshake with the real `porta server`
# (--self-signed, --ech-public-name) on loopback, over TCP (TLS 1.3) and
# over QUIC, with and without ECH. The handshakes are bench/echbench's,
# the four kinds interleaved in one run: N of each per round (default
# 200), ROUNDS rounds (default 5); the medians of all, and the median of
# each round's own ratio ECH / plain.
# Needs: go.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200}
ROUNDS=${ROUNDS:-5}

work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/eb" ./bench/echbench
go build -o "$work/porta" ./cmd/porta
LIST=$("$work/porta" ech-config --ech-public-name cdn.bench.test --state-dir "$work/state")
"$work/porta" server --listen 127.0.0.1:0 --self-signed --state-dir "$work/state" \
	--ech-public-name cdn.bench.test --upstream udp://127.0.0.1:9 >"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 200); do
	grep -q 'addr=' "$work/server.err" 2>/dev/null && break
	sleep 0.05
done
SRV=$(sed 's/ /\n/g' "$work/server.err" | sed -n 's/^addr=//p' | head -1)
[ -n "$SRV" ] || { echo "porta server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }

out=$("$work/eb" -server "$SRV" -ech "$LIST" -n "$N" -rounds "$ROUNDS")
value() { echo "$out" | sed 's/ /\n/g' | sed -n "s/^$1=//p"; }
echo "| handshake, loopback, median ms ($((N * ROUNDS)) of each) | plain | ECH | ECH / plain (median of $ROUNDS rounds) |"
echo "|---|---|---|---|"
echo "| TCP, TLS 1.3 | $(value tcp_ms) | $(value tcp_ech_ms) | $(value tcp_ratio)× |"
echo "| QUIC | $(value quic_ms) | $(value quic_ech_ms) | $(value quic_ratio)× |"
