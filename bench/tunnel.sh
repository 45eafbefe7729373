#!/usr/bin/env bash
# bench/tunnel.sh — tunnel benchmarks, printed as a markdown table. The
# server is the real `porta server` (self-signed, --allow-private); the
# byte source, the delay proxy and the measuring clients (porta's
# tunnel.Dialer) are in bench/tunnelbench.
#   1. single-stream throughput (SIZE bytes, default 1 GiB, SHA-256 checked)
#      through the tunnel over HTTP/2 and HTTP/3, against Debian's stunnel4
#      as one TLS hop on the same path (client -> TLS -> relay -> source),
#      same run, rounds interleaved, best of ROUNDS (default 5); HTTP/2 also
#      with net/http's server (porta server --std-http2) and with net/http's
#      client (DialerConfig.StdHTTP2, porta client --std-http2); and the CPU
#      seconds per GB of the client process (tunnelbench get, the SHA-256 it
#      checks included) and of the server process (porta server, stunnel4);
#   2. time to first byte of a new tunneled connection over a warm tunnel
#      with RTT_MS (default 50) added by a userspace delay proxy, against the
#      same exchange made directly on an open connection (one round trip);
#   3. server memory per idle tunneled connection (IDLE connections,
#      default 1000, under porta's default per-user limit of 1024): RSS
#      growth of a fresh porta server per transport, and Go heap+stacks
#      after GC measured on the same tunnel.Handler in `tunnelbench server`.
# Needs: go, stunnel4 (Debian package stunnel4), python3 (to pick a port).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
ROUNDS=${ROUNDS:-5}
RTT_MS=${RTT_MS:-50}
IDLE=${IDLE:-1000}
USER_TOKEN=bench:bench-token

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
go build -o "$work/porta" ./cmd/porta
tb="$work/tb"

# start NAME CMD...: run CMD in the background, wait for an "addr=" in its
# output or log, and remember its pid in pid_NAME.
start() {
	local name=$1; shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	eval "pid_$name=$!"
	for _ in $(seq 200); do
		grep -q 'addr=' "$work/$name.out" "$work/$name.err" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$name did not start:" >&2; cat "$work/$name.err" >&2; exit 1
}
field() { cat "$work/$1.out" "$work/$1.err" | sed 's/ /\n/g' | sed -n "s|^$2=\"\{0,1\}\([^\"]*\)\"\{0,1\}$|\1|p" | head -1; }
value() { sed "s/ /\n/g" | sed -n "s|^$1=||p"; }

start source "$tb" source
SRC=$(field source addr)
start server "$work/porta" server --listen 127.0.0.1:0 --self-signed --state-dir "$work/state" \
	--user "$USER_TOKEN" --allow-private
SRV=$(field server addr); PIN=$(field server pin)
# The same server with net/http's HTTP/2 server, as --std-http2 runs it.
start server_std "$work/porta" server --listen 127.0.0.1:0 --self-signed --state-dir "$work/state" \
	--user "$USER_TOKEN" --allow-private --std-http2
SRV_STD=$(field server_std addr)
CERT="$work/state/self-signed.crt"; KEY="$work/state/self-signed.key"

# stunnel4 in server mode: TLS in, plain TCP to the source.
ST_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/stunnel.conf" <<CONF
foreground = yes
pid =
debug = 3
[bench]
accept = 127.0.0.1:$ST_PORT
connect = $SRC
cert = $CERT
key = $KEY
CONF
stunnel4 "$work/stunnel.conf" >"$work/stunnel.log" 2>&1 &
pids+=($!)
ST_PID=$!
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $ST_PORT)).close()" 2>/dev/null && break
	sleep 0.05
done

WANT=$("$tb" digest -bytes "$SIZE")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system, clock ticks
declare -A mbs cpu srv
get() { # NAME SERVER-PID TUNNELBENCH-GET-ARGS...: one transfer; MB/s and CPU kept
	local name=$1 spid=$2 out before after; shift 2
	before=$(ticks "$spid")
	out=$("$tb" get -user "$USER_TOKEN" -bytes "$SIZE" -want "$WANT" "$@")
	after=$(ticks "$spid")
	mbs[$name]+="$(echo "$out" | value MB/s) "
	cpu[$name]=$(awk -v a="${cpu[$name]:-0}" -v b="$(echo "$out" | value cpu_s)" 'BEGIN { print a + b }')
	srv[$name]=$(( ${srv[$name]:-0} + after - before ))
}
for _ in $(seq "$ROUNDS"); do
	get h2 "$pid_server" -via h2 -server "$SRV" -pin "$PIN" -target "$SRC"
	get h2stdsrv "$pid_server_std" -via h2 -server "$SRV_STD" -pin "$PIN" -target "$SRC"
	get h2std "$pid_server" -via h2std -server "$SRV" -pin "$PIN" -target "$SRC"
	get h3 "$pid_server" -via h3 -server "$SRV" -pin "$PIN" -target "$SRC"
	get st "$ST_PID" -via tls -server "127.0.0.1:$ST_PORT" -ca "$CERT"
done
best() { echo "$1" | tr ' ' '\n' | sed '/^$/d' | sort -n | tail -1; }
H2=$(best "${mbs[h2]}"); H3=$(best "${mbs[h3]}"); ST=$(best "${mbs[st]}")
H2STD=$(best "${mbs[h2stdsrv]}"); H2CL=$(best "${mbs[h2std]}")
hz=$(getconf CLK_TCK)
# cpugb NAME: CPU seconds per GB moved, the client process and the server's.
cpugb() {
	awk -v c="${cpu[$1]}" -v s="${srv[$1]}" -v hz="$hz" -v gb="$(awk -v n="$ROUNDS" -v b="$SIZE" 'BEGIN { print n * b / 1e9 }')" \
		'BEGIN { printf "%.2f + %.2f s", c / gb, s / hz / gb }'
}

# Time to first byte with RTT_MS between client and server (and between
# client and source for the direct exchange); source and server are close.
ONEWAY="$((RTT_MS / 2))ms"
start delay_srv "$tb" delay -to "$SRV" -delay "$ONEWAY"
start delay_src "$tb" delay -to "$SRC" -delay "$ONEWAY"
DSRV=$(field delay_srv addr); DSRC=$(field delay_src addr)
T_H2=$("$tb" ttfb -user "$USER_TOKEN" -via h2 -server "$DSRV" -pin "$PIN" -target "$SRC" | value new_ms)
start delay_std "$tb" delay -to "$SRV_STD" -delay "$ONEWAY"
T_H2STD=$("$tb" ttfb -user "$USER_TOKEN" -via h2 -server "$(field delay_std addr)" -pin "$PIN" -target "$SRC" | value new_ms)
T_H2CL=$("$tb" ttfb -user "$USER_TOKEN" -via h2std -server "$DSRV" -pin "$PIN" -target "$SRC" | value new_ms)
T_H3=$("$tb" ttfb -user "$USER_TOKEN" -via h3 -server "$DSRV" -pin "$PIN" -target "$SRC" | value new_ms)
T_OPEN=$("$tb" ttfb -via direct -server "$DSRC" | value open_ms)

# Memory: porta server's RSS, then the Handler alone in tunnelbench server.
idle() { "$tb" idle -user "$USER_TOKEN" -target "$SRC" -n "$IDLE" "$@"; }
# A fresh server per transport: Go reuses freed heap, so a second run on the
# same process would show little RSS growth.
rss() { # NAME TRANSPORT [SERVER FLAGS]
	local name=$1 via=$2; shift 2
	start "rss_$name" "$work/porta" server --listen 127.0.0.1:0 --self-signed --state-dir "$work/state" \
		--user "$USER_TOKEN" --allow-private "$@"
	local pid_var="pid_rss_$name"
	idle -via "$via" -server "$(field "rss_$name" addr)" -pin "$PIN" -pid "${!pid_var}" | value rss_KiB
	kill "${!pid_var}"
}
R_H2=$(rss h2 h2)
R_H3=$(rss h3 h3)
R_H2STD=$(rss h2std h2 --std-http2)
# memory NAME TRANSPORT [SERVER FLAGS]: heap+stacks per idle tunnel, in tunnelbench server.
memory() {
	local name=$1 via=$2; shift 2
	start "tb_$name" "$tb" server -dir "$work" -user "$USER_TOKEN" "$@"
	idle -via "$via" -server "$(field "tb_$name" addr)" -pin "$(field "tb_$name" pin)" -stats "$(field "tb_$name" stats)" | value heap+stack_KiB
	local pid_var="pid_tb_$name"
	kill "${!pid_var}"
}
M_H2=$(memory h2 h2)
M_H3=$(memory h3 h3)
M_H2STD=$(memory h2std h2 -std-http2)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
# The median over rounds of each round's own ratio: steadier than best
# against best when other work shares the machine.
round_ratio() {
	paste <(echo "$1" | tr ' ' '\n' | sed '/^$/d') <(echo "$2" | tr ' ' '\n' | sed '/^$/d') |
		awk '{ print $1 / $2 }' | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f×", v[int((NR + 1) / 2)] }'
}
echo "| benchmark | porta h2 | porta h3 | baseline | h2 / baseline | h3 / baseline | target | h2, --std-http2 server | h2, --std-http2 client |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| single stream, $((SIZE >> 20)) MiB, SHA-256 checked, MB/s (best of $ROUNDS; h2: ${mbs[h2]}; h3: ${mbs[h3]}; stunnel4: ${mbs[st]}; h2 --std-http2 server: ${mbs[h2stdsrv]}; client: ${mbs[h2std]}) | $H2 | $H3 | stunnel4: $ST | $(ratio "$H2" "$ST") | $(ratio "$H3" "$ST") | ≥ 1.0× | $H2STD ($(ratio "$H2STD" "$ST")) | $H2CL ($(ratio "$H2CL" "$ST")) |"
echo "| same, median of each round's ratio | | | | $(round_ratio "${mbs[h2]}" "${mbs[st]}") | $(round_ratio "${mbs[h3]}" "${mbs[st]}") | ≥ 1.0× | $(round_ratio "${mbs[h2stdsrv]}" "${mbs[st]}") | $(round_ratio "${mbs[h2std]}" "${mbs[st]}") |"
echo "| same, CPU seconds per GB: client process (SHA-256 included) + server process | $(cpugb h2) | $(cpugb h3) | stunnel4: $(cpugb st) | | | | $(cpugb h2stdsrv) | $(cpugb h2std) |"
echo "| time to first byte of a new connection over a warm tunnel, RTT $RTT_MS ms, median ms | $T_H2 | $T_H3 | direct, one round trip: $T_OPEN | $(ratio "$T_H2" "$T_OPEN") | $(ratio "$T_H3" "$T_OPEN") | ≤ 1.1× | $T_H2STD | $T_H2CL |"
echo "| server memory per idle tunneled connection ($IDLE), KiB: Go heap+stacks after GC (tunnel.Handler) | $M_H2 | $M_H3 | — | | | ≤ 16 KiB | $M_H2STD | — |"
echo "| same, RSS growth of porta server, KiB | $R_H2 | $R_H3 | — | | | | $R_H2STD | — |"
