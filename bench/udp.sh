#!/usr/bin/env bash
# bench/udp.sh — UDP through the tunnel (SOCKS5 UDP ASSOCIATE on porta
# client, CONNECT-UDP to porta server), end to end with the real binaries,
# all on loopback, printed as a markdown table:
#   1. datagram throughput: -window WINDOW datagrams of DGRAM bytes kept in
#      flight to a loopback UDP echo for UDP_S seconds (bench/udpbench
#      flood), through --socks over --transport h2 (DATAGRAM capsules) and
#      h3 (QUIC DATAGRAM frames), against the same flood sent directly;
#      echoes per second (each one a datagram each way), payload MB/s each
#      way, lost datagrams, and the CPU seconds per million echoes of the
#      client and server processes; best of ROUNDS interleaved rounds;
#   2. first-answer time of a new flow over a warm tunnel with RTT_MS
#      (default 50) between client and server (bench/tunnelbench's delay
#      proxy, TCP and UDP), against a new socket sending directly to the
#      echo through the same delay: one round trip; median of SAMPLES.
# Nothing leaves 127.0.0.1: the server gets a loopback upstream.
# Needs: go.
#
#   bench/udp.sh
#   UDP_S=2 ROUNDS=1 bench/udp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
UDP_S=${UDP_S:-5}
DGRAM=${DGRAM:-1200}
WINDOW=${WINDOW:-64}
RTT_MS=${RTT_MS:-50}
SAMPLES=${SAMPLES:-20}
TOKEN=bench-udp-token

. bench/lib.sh

go build -o "$work/porta" ./cmd/porta
go build -o "$work/ub" ./bench/udpbench
go build -o "$work/cb" ./bench/clientbench
go build -o "$work/tb" ./bench/tunnelbench
go build -o "$work/dnsup" ./bench/dnsupstream
porta=$work/porta ub=$work/ub

port() { "$work/cb" port; }

bg upstream "$work/dnsup" -mode upstream
UPSTREAM=$(waitfor upstream '^listening [0-9.:]+' | cut -d' ' -f2)
bg echo "$ub" echo
ECHO=$(waitfor echo 'addr=[0-9.:]+' | cut -d= -f2)

SRV=127.0.0.1:$(port)
bg server "$porta" server --listen "$SRV" --self-signed --state-dir "$work/state" \
	--user "u:$TOKEN" --allow-private --upstream "udp://$UPSTREAM"
SERVER_PID=$pid
PIN=$(waitfor server 'pin="[^"]+"' | cut -d'"' -f2)
waitfor server 'msg=serving' >/dev/null

ONEWAY="$((RTT_MS / 2))ms"
bg delay_srv "$work/tb" delay -to "$SRV" -delay "$ONEWAY"
DSRV=$(waitfor delay_srv 'addr=[0-9.:]+' | cut -d= -f2)
bg delay_echo "$work/tb" delay -to "$ECHO" -delay "$ONEWAY"
DECHO=$(waitfor delay_echo 'addr=[0-9.:]+' | cut -d= -f2)

client() { # NAME SERVER TRANSPORT: a porta client; sets $socks, $pid.
	socks=127.0.0.1:$(port)
	bg "$1" "$porta" client --server "https://u:$TOKEN@$2" --pin "$PIN" \
		--transport "$3" --dns "127.0.0.1:$(port)" --socks "$socks"
	waitfor "$1" 'msg=serving' >/dev/null
}
client c_h2 "$SRV" h2
SOCKS_H2=$socks PID_H2=$pid
client c_h3 "$SRV" h3
SOCKS_H3=$socks PID_H3=$pid
client c_dh2 "$DSRV" h2
SOCKS_DH2=$socks
client c_dh3 "$DSRV" h3
SOCKS_DH3=$socks

# --- 1. throughput ------------------------------------------------------

field() { sed 's/ /\n/g' | sed -n "s/^$1=//p"; }
declare -A pps mbs lost cpu echoes
run_flood() { # NAME "PIDS" [SOCKS]
	local name=$1 ps=$2 before after out
	before=$(sumticks $ps)
	out=$("$ub" flood -target "$ECHO" -socks "${3:-}" -size "$DGRAM" -window "$WINDOW" -time "${UDP_S}s") ||
		die "flood $name failed"
	after=$(sumticks $ps)
	pps[$name]+="$(echo "$out" | field pps) "
	mbs[$name]+="$(echo "$out" | field mbytes_per_s) "
	lost[$name]+="$(echo "$out" | field lost) "
	echoes[$name]=$(( ${echoes[$name]:-0} + $(echo "$out" | field echoes) ))
	cpu[$name]=$(( ${cpu[$name]:-0} + after - before ))
}
# warm the tunnels
"$ub" first -target "$ECHO" -socks "$SOCKS_H2" -samples 1 >/dev/null || die "no answer over h2"
"$ub" first -target "$ECHO" -socks "$SOCKS_H3" -samples 1 >/dev/null || die "no answer over h3"
for _ in $(seq "$ROUNDS"); do
	run_flood direct "$SERVER_PID"
	run_flood h2 "$PID_H2 $SERVER_PID" "$SOCKS_H2"
	run_flood h3 "$PID_H3 $SERVER_PID" "$SOCKS_H3"
done
hz=$(getconf CLK_TCK)
# CPU seconds of the client and the server per million echoes
cpum() { awk -v t="${cpu[$1]}" -v hz="$hz" -v n="${echoes[$1]}" 'BEGIN{printf "%.1f", t / hz / (n / 1e6)}'; }

# --- 2. first answer with RTT_MS ----------------------------------------

firstms() { "$ub" first -target "$1" -socks "${2:-}" -samples "$SAMPLES" | field median_ms; }
"$ub" first -target "$ECHO" -socks "$SOCKS_DH2" -samples 1 >/dev/null || die "no answer over h2 with delay"
"$ub" first -target "$ECHO" -socks "$SOCKS_DH3" -samples 1 >/dev/null || die "no answer over h3 with delay"
F_DIRECT=$(firstms "$DECHO")
F_H2=$(firstms "$ECHO" "$SOCKS_DH2")
F_H3=$(firstms "$ECHO" "$SOCKS_DH3")

# --- the table ----------------------------------------------------------

echo "UDP through the tunnel, on loopback, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $("$porta" version 2>/dev/null | head -1)"
echo
echo "| benchmark | porta | direct | ratio | target |"
echo "|---|---|---|---|---|"
D=$(echo "${pps[direct]}" | best)
for t in h2 h3; do
	P=$(echo "${pps[$t]}" | best)
	echo "| $t: echoes/s, $DGRAM-byte datagrams, $WINDOW in flight, ${UDP_S} s (best of $ROUNDS: ${pps[$t]}/ direct ${pps[direct]}); MB/s each way; lost per round; CPU s per million echoes, client+server | $P; $(echo "${mbs[$t]}" | best) MB/s; lost ${lost[$t]}; $(cpum "$t") s | $D; $(echo "${mbs[direct]}" | best) MB/s; lost ${lost[direct]}| $(ratio "$P" "$D") | — |"
done
echo "| first answer of a new flow at ${RTT_MS} ms RTT, median of $SAMPLES (h2; h3) | $F_H2; $F_H3 ms | $F_DIRECT ms | $(ratio "$F_H2" "$F_DIRECT"); $(ratio "$F_H3" "$F_DIRECT") | 1 RTT, ≤ 1.1× |"
