#!/usr/bin/env bash
# bench/tunnel.sh — tunnel benchmarks, printed as a markdown table:
#   1. single-stream throughput (SIZE bytes, default 1 GiB, SHA-256 checked)
#      through the tunnel over HTTP/2 and HTTP/3, against Debian's stunnel4
#      as one TLS hop on the same path (client -> TLS -> relay -> source),
#      in the same run; best of ROUNDS (default 3), rounds interleaved;
#   2. time to first byte of a new tunneled connection over a warm tunnel
#      with RTT ms (default 50) added by a userspace delay proxy, against
#      the same exchange made directly: on an open connection (one round
#      trip) and on a new TCP connection (two);
#   3. server memory per idle tunneled connection (IDLE connections,
#      default 2000; Go heap + stacks after GC, and RSS).
# Needs: go, stunnel4 (Debian package stunnel4), python3 (to pick a port).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
ROUNDS=${ROUNDS:-3}
RTT_MS=${RTT_MS:-50}
IDLE=${IDLE:-2000}

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

command -v stunnel4 >/dev/null || { echo "stunnel4 not found: apt-get install stunnel4" >&2; exit 1; }
go build -o "$work/tb" ./bench/tunnelbench
tb="$work/tb"

# start NAME CMD...: run CMD in the background and wait for its "addr=" line.
start() {
	local name=$1; shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q addr= "$work/$name.out" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$name did not start:" >&2; cat "$work/$name.err" >&2; exit 1
}
field() { sed 's/ /\n/g' "$work/$1.out" | sed -n "s/^$2=//p" | head -1; }
value() { sed "s/ /\n/g" | sed -n "s|^$1=||p"; }

start source "$tb" source
SRC=$(field source addr)
start server "$tb" server -dir "$work"
SRV=$(field server addr); PIN=$(field server pin); STATS=$(field server stats)

# stunnel4 in server mode: TLS in, plain TCP to the source.
ST_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/stunnel.conf" <<CONF
foreground = yes
pid =
debug = 3
[bench]
accept = 127.0.0.1:$ST_PORT
connect = $SRC
cert = $work/cert.pem
key = $work/key.pem
CONF
stunnel4 "$work/stunnel.conf" >"$work/stunnel.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $ST_PORT)).close()" 2>/dev/null && break
	sleep 0.05
done

WANT=$("$tb" digest -bytes "$SIZE")
best() { sort -n | tail -1; }
declare -A mbs
for _ in $(seq "$ROUNDS"); do
	mbs[h2]+="$("$tb" get -via h2 -server "$SRV" -pin "$PIN" -target "$SRC" -bytes "$SIZE" -want "$WANT" | value MB/s) "
	mbs[h3]+="$("$tb" get -via h3 -server "$SRV" -pin "$PIN" -target "$SRC" -bytes "$SIZE" -want "$WANT" | value MB/s) "
	mbs[st]+="$("$tb" get -via tls -server "127.0.0.1:$ST_PORT" -ca "$work/cert.pem" -bytes "$SIZE" -want "$WANT" | value MB/s) "
done
H2=$(echo ${mbs[h2]} | tr ' ' '\n' | best)
H3=$(echo ${mbs[h3]} | tr ' ' '\n' | best)
ST=$(echo ${mbs[st]} | tr ' ' '\n' | best)

# Time to first byte with RTT_MS between client and server (and between
# client and source for the direct exchange); source and server are close.
ONEWAY="$((RTT_MS / 2))ms"
start delay_srv "$tb" delay -to "$SRV" -delay "$ONEWAY"
start delay_src "$tb" delay -to "$SRC" -delay "$ONEWAY"
DSRV=$(field delay_srv addr); DSRC=$(field delay_src addr)
T_H2=$("$tb" ttfb -via h2 -server "$DSRV" -pin "$PIN" -target "$SRC" | value new_ms)
T_H3=$("$tb" ttfb -via h3 -server "$DSRV" -pin "$PIN" -target "$SRC" | value new_ms)
DIRECT=$("$tb" ttfb -via direct -server "$DSRC")
T_OPEN=$(echo "$DIRECT" | value open_ms)
T_NEW=$(echo "$DIRECT" | value new_ms)

M_H2=$("$tb" idle -via h2 -server "$SRV" -pin "$PIN" -target "$SRC" -stats "$STATS" -n "$IDLE")
M_H3=$("$tb" idle -via h3 -server "$SRV" -pin "$PIN" -target "$SRC" -stats "$STATS" -n "$IDLE")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
echo "| benchmark | porta h2 | porta h3 | baseline | h2 / baseline | h3 / baseline | target |"
echo "|---|---|---|---|---|---|---|"
echo "| single stream, $((SIZE >> 20)) MiB, SHA-256 checked (MB/s, best of $ROUNDS: ${mbs[h2]}/ ${mbs[h3]}/ ${mbs[st]}) | $H2 | $H3 | stunnel4 $ST | $(ratio "$H2" "$ST") | $(ratio "$H3" "$ST") | ≥ 1.0× |"
echo "| time to first byte, new connection over a warm tunnel, RTT $RTT_MS ms (median ms) | $T_H2 | $T_H3 | direct, open connection $T_OPEN (new TCP connection $T_NEW) | $(ratio "$T_H2" "$T_OPEN") | $(ratio "$T_H3" "$T_OPEN") | ≤ 1.1× |"
echo "| server memory per idle tunneled connection, $IDLE connections (KiB, Go heap+stacks; RSS) | $(echo "$M_H2" | value heap+stack_KiB); RSS $(echo "$M_H2" | value rss_KiB) | $(echo "$M_H3" | value heap+stack_KiB); RSS $(echo "$M_H3" | value rss_KiB) | — | | | ≤ 16 KiB |"
