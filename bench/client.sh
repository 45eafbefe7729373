#!/usr/bin/env bash
# bench/client.sh — porta client benchmarks, end to end with the real
# binary, all on loopback, printed as a markdown table:
#   1. the local resolver's cache-hit queries per second (dnsperf, UDP, a
#      fixed set of 100 names) against Debian's unbound as a plain UDP
#      forwarding resolver with a cache, both forwarding to the same
#      loopback upstream (bench/dnsupstream); best of ROUNDS interleaved
#      rounds, and the CPU time each resolver process spent per query;
#   2. single-stream throughput through --socks (curl --socks5-hostname,
#      SIZE bytes, default 1 GiB, SHA-256 checked) over --transport h2 (on
#      porta's own HTTP/2 client, and with --std-http2 on net/http's) and
#      h3, against a pair of stunnel4 processes on the same path (curl ->
#      stunnel client -> TLS -> stunnel server -> source); best of ROUNDS;
#      and the CPU seconds per GB of the proxy processes;
#   3. time to first byte of a new connection through --socks over a warm
#      tunnel with RTT_MS (default 50) between client and server (the
#      userspace delay proxy of bench/tunnelbench, TCP and UDP, so h2 and
#      h3), against the same HTTP exchange made directly through the same
#      delay on an open connection (one round trip); median of SAMPLES;
#   4. idle client memory: VmRSS of a fresh `porta client` (default
#      --transport) after it has connected, answered a few queries and a
#      proxied request, then sat idle IDLE_S seconds.
# Nothing leaves 127.0.0.1: every server gets a loopback upstream.
# Needs: go, curl, dnsperf, unbound, stunnel4
# (apt-get install -y curl dnsperf unbound stunnel4).
#
#   bench/client.sh
#   SIZE=268435456 ROUNDS=1 bench/client.sh
#   REV=HEAD bench/client.sh     # build porta from a commit, not the working tree
#   ONLY=dns bench/client.sh     # only 1., the DNS cache hits (needs go, dnsperf, unbound, dig)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
ROUNDS=${ROUNDS:-3}
RTT_MS=${RTT_MS:-50}
SAMPLES=${SAMPLES:-20}
DNS_SECONDS=${DNS_SECONDS:-10}
CLIENTS=${CLIENTS:-20}
OUTSTANDING=${OUTSTANDING:-200}
IDLE_S=${IDLE_S:-5}
ONLY=${ONLY:-}
case $ONLY in "" | dns) ;; *) echo "bench/client.sh: ONLY=$ONLY: want dns or nothing" >&2; exit 2 ;; esac
TOKEN=bench-client-token

tools="go curl dnsperf unbound stunnel4 dig sha256sum"
[ "$ONLY" = dns ] && tools="go dnsperf unbound dig"
for tool in $tools; do
	command -v "$tool" >/dev/null || { echo "bench/client.sh: $tool not found (apt-get install -y curl dnsperf unbound stunnel4 bind9-dnsutils)" >&2; exit 1; }
done

. bench/lib.sh

# REV=HEAD (or any commit) builds from that commit instead of the working
# tree, which others may be editing.
src=.
if [ -n "${REV:-}" ]; then
	src=$work/src
	mkdir "$src"
	git archive "$REV" | tar -x -C "$src"
fi
(
	cd "$src"
	go build -o "$work/porta" ./cmd/porta
	go build -o "$work/cb" ./bench/clientbench
	go build -o "$work/dnsup" ./bench/dnsupstream
	go build -o "$work/tb" ./bench/tunnelbench
)
porta=$work/porta cb=$work/cb tb=$work/tb

port() { "$cb" port; }

# --- the servers --------------------------------------------------------

bg upstream "$work/dnsup" -mode upstream
UPSTREAM=$(waitfor upstream '^listening [0-9.:]+' | cut -d' ' -f2)

if [ -z "$ONLY" ]; then
	bg source "$cb" source
	SRC=$(waitfor source 'addr=[0-9.:]+' | cut -d= -f2)
fi

SRV=127.0.0.1:$(port)
bg server "$porta" server --listen "$SRV" --self-signed --state-dir "$work/state" \
	--user "u:$TOKEN" --allow-private --upstream "udp://$UPSTREAM"
SERVER_PID=$pid
PIN=$(waitfor server 'pin="[^"]+"' | cut -d'"' -f2)
waitfor server 'msg=serving' >/dev/null

# client NAME SERVER TRANSPORT [DNS]: a porta client; sets $socks, $dns,
# $pid. TRANSPORT h2std is h2 with --std-http2.
client() {
	socks=127.0.0.1:$(port)
	dns=${4:-}
	local std=()
	[ "$3" = h2std ] && std=(--std-http2)
	bg "$1" "$porta" client --server "https://u:$TOKEN@$2" --pin "$PIN" \
		--transport "${3%std}" "${std[@]}" --dns "$dns" --socks "$socks"
	waitfor "$1" 'msg=serving' >/dev/null
}

client c_h2 "$SRV" h2 "127.0.0.1:$(port)"
SOCKS_H2=$socks DNS=$dns PORTA_DNS_PID=$pid PID_H2=$pid
if [ -z "$ONLY" ]; then
	# The delay proxy between client and server (TCP and UDP), and one in
	# front of the source for the direct exchange.
	ONEWAY="$((RTT_MS / 2))ms"
	bg delay_srv "$tb" delay -to "$SRV" -delay "$ONEWAY"
	DSRV=$(waitfor delay_srv 'addr=[0-9.:]+' | cut -d= -f2)
	bg delay_src "$tb" delay -to "$SRC" -delay "$ONEWAY"
	DSRC=$(waitfor delay_src 'addr=[0-9.:]+' | cut -d= -f2)

	client c_h3 "$SRV" h3
	SOCKS_H3=$socks PID_H3=$pid
	client c_h2std "$SRV" h2std
	SOCKS_H2S=$socks PID_H2S=$pid
	client c_dh2 "$DSRV" h2
	SOCKS_DH2=$socks
	client c_dh2std "$DSRV" h2std
	SOCKS_DH2S=$socks
	client c_dh3 "$DSRV" h3
	SOCKS_DH3=$socks
fi

# unbound: a plain UDP forwarding resolver with a cache, forwarding to the
# same upstream.
UNB_PORT=$(port)
cat >"$work/unbound.conf" <<CONF
server:
	interface: 127.0.0.1@$UNB_PORT
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$work"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	num-threads: $(nproc)
	so-reuseport: yes
	do-ip6: no
	do-tcp: yes
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: "iterator"
	qname-minimisation: no
	prefetch: no
	num-queries-per-thread: 4096
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: ${UPSTREAM%:*}@${UPSTREAM##*:}
CONF
bg unbound unbound -d -c "$work/unbound.conf"
UNBOUND_PID=$pid UNBOUND=127.0.0.1:$UNB_PORT
for _ in $(seq 100); do
	dig +time=1 +tries=1 -p "$UNB_PORT" @127.0.0.1 ready.bench.example A >/dev/null 2>&1 && break
	kill -0 "$UNBOUND_PID" 2>/dev/null || { cat "$work/unbound.log" >&2; die "unbound did not start"; }
	sleep 0.1
done

# --- 1. DNS cache hits --------------------------------------------------

for i in $(seq 100); do echo "hit$i.bench.example A"; done >"$work/names.txt"
declare -A qps cpu queries
dnsperf_run() { # NAME ADDR PID SECONDS
	local before after
	before=$(ticks "$3")
	dnsperf -s "${2%:*}" -p "${2##*:}" -d "$work/names.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l "$4" >"$work/dnsperf.out" 2>&1 ||
		{ cat "$work/dnsperf.out" >&2; die "dnsperf against $1 failed"; }
	after=$(ticks "$3")
	local lost rate n
	lost=$(awk '/Queries lost:/{print $3}' "$work/dnsperf.out")
	rate=$(awk '/Queries per second:/{print int($4)}' "$work/dnsperf.out")
	n=$(awk '/Queries completed:/{print $3}' "$work/dnsperf.out")
	grep -q 'NOERROR' "$work/dnsperf.out" || { cat "$work/dnsperf.out" >&2; die "$1 answered no NOERROR"; }
	[ "$lost" = 0 ] || echo "bench/client.sh: $1: $lost queries lost" >&2
	qps[$1]+="$rate "
	cpu[$1]=$(( ${cpu[$1]:-0} + after - before ))
	queries[$1]=$(( ${queries[$1]:-0} + n ))
}
# warm both caches
for t in porta unbound; do
	addr=$DNS pid=$PORTA_DNS_PID
	[ "$t" = unbound ] && addr=$UNBOUND pid=$UNBOUND_PID
	dnsperf -s "${addr%:*}" -p "${addr##*:}" -d "$work/names.txt" -n 2 >/dev/null 2>&1 || die "warming $t failed"
done
for _ in $(seq "$ROUNDS"); do
	dnsperf_run porta "$DNS" "$PORTA_DNS_PID" "$DNS_SECONDS"
	dnsperf_run unbound "$UNBOUND" "$UNBOUND_PID" "$DNS_SECONDS"
done
Q_PORTA=$(echo "${qps[porta]}" | best)
Q_UNB=$(echo "${qps[unbound]}" | best)
hz=$(getconf CLK_TCK)
us() { awk -v t="${cpu[$1]}" -v hz="$hz" -v n="${queries[$1]}" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}'; }
dns_row() {
	echo "| DNS cache hits, dnsperf UDP -c $CLIENTS -q $OUTSTANDING -l $DNS_SECONDS, 100 names (queries/s, best of $ROUNDS: ${qps[porta]}/ ${qps[unbound]}; CPU µs/query) | $Q_PORTA; $(us porta) µs | unbound $Q_UNB; $(us unbound) µs | $(ratio "$Q_PORTA" "$Q_UNB") | ≥ 1.0× |"
}
header() {
	echo "porta client, end to end on loopback, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $("$porta" version 2>/dev/null | head -1), unbound $(unbound -V | awk 'NR==1{print $2}')"
	echo
	echo "| benchmark | porta | comparison | ratio | target |"
	echo "|---|---|---|---|---|"
}
if [ "$ONLY" = dns ]; then
	header
	dns_row
	exit 0
fi

# --- 2. throughput through --socks --------------------------------------

STS=$(port) STC=$(port)
"$work/dnsup" -mode cert -dir "$work" >/dev/null
cat >"$work/stunnel-server.conf" <<CONF
foreground = yes
pid =
debug = 3
[bench]
accept = 127.0.0.1:$STS
connect = $SRC
cert = $work/cert.pem
key = $work/key.pem
CONF
cat >"$work/stunnel-client.conf" <<CONF
foreground = yes
pid =
debug = 3
[bench]
client = yes
accept = 127.0.0.1:$STC
connect = 127.0.0.1:$STS
CAfile = $work/cert.pem
verifyPeer = yes
CONF
bg stunnel_client stunnel4 "$work/stunnel-client.conf"
ST_PIDS=$pid
bg stunnel_server stunnel4 "$work/stunnel-server.conf"
ST_PIDS+=" $pid"
for _ in $(seq 100); do
	curl -sf -o /dev/null "http://127.0.0.1:$STC/1" && break
	sleep 0.05
done

# SHA-256 of a CHECK-byte transfer per path (sha256sum is slower than the
# paths on a small machine, so the timed transfers below check only the
# byte count that curl received against the Content-Length).
CHECK=$(( SIZE < 67108864 ? SIZE : 67108864 ))
CHECK_WANT=$("$cb" digest -bytes "$CHECK")
check() { # CURL-ARGS... URL-PREFIX
	local sum
	sum=$(curl -sSf "${@:1:$#-1}" "${@: -1}$CHECK" | sha256sum | cut -d' ' -f1)
	[ "$sum" = "$CHECK_WANT" ] || die "SHA-256 mismatch via $* ($sum)"
}
check --socks5-hostname "$SOCKS_H2" "http://$SRC/"
check --socks5-hostname "$SOCKS_H2S" "http://$SRC/"
check --socks5-hostname "$SOCKS_H3" "http://$SRC/"
check "http://127.0.0.1:$STC/"

get() { # CURL-ARGS...: prints MB/s, dies on a short transfer
	local out
	out=$(curl -sSf -o /dev/null -w '%{size_download} %{speed_download}' "$@") || die "curl $* failed"
	[ "${out% *}" = "$SIZE" ] || die "got ${out% *} bytes of $SIZE via $*"
	awk -v b="${out#* }" 'BEGIN{printf "%.0f", b / 1e6}'
}
declare -A mbs cpu_t
run_get() { # NAME "PIDS" CURL-ARGS...: one transfer, MB/s and CPU ticks of PIDS kept
	local name=$1 ps=$2 before after b1 a1; shift 2
	before=$(sumticks $ps) b1=$(ticks "${ps%% *}")
	mbs[$name]+="$(get "$@") "
	after=$(sumticks $ps) a1=$(ticks "${ps%% *}")
	cpu_t[$name]=$(( ${cpu_t[$name]:-0} + after - before ))
	cpu_t[$name.1]=$(( ${cpu_t[$name.1]:-0} + a1 - b1 ))
}
for _ in $(seq "$ROUNDS"); do
	run_get h2 "$PID_H2 $SERVER_PID" --socks5-hostname "$SOCKS_H2" "http://$SRC/$SIZE"
	run_get h2std "$PID_H2S $SERVER_PID" --socks5-hostname "$SOCKS_H2S" "http://$SRC/$SIZE"
	run_get h3 "$PID_H3 $SERVER_PID" --socks5-hostname "$SOCKS_H3" "http://$SRC/$SIZE"
	run_get st "$ST_PIDS" "http://127.0.0.1:$STC/$SIZE"
done
T_H2=$(echo "${mbs[h2]}" | best)
T_H2S=$(echo "${mbs[h2std]}" | best)
T_H3=$(echo "${mbs[h3]}" | best)
T_ST=$(echo "${mbs[st]}" | best)
# the median of each round's ratio (rounds are interleaved, so a busy
# moment on a shared machine hits one round of each path, not a whole path)
rratio() { # A B: median over rounds of mbs[A][i] / mbs[B][i]
	paste <(echo "${mbs[$1]}" | tr ' ' '\n' | grep .) <(echo "${mbs[$2]}" | tr ' ' '\n' | grep .) |
		awk '{print $1 / $2}' | median | awk '{printf "%.2f×", $1}'
}
# CPU seconds per GB moved, both proxy processes together (cpugb NAME.1:
# the client side alone)
cpugb() { awk -v t="${cpu_t[$1]}" -v hz="$hz" -v n="$((ROUNDS * SIZE))" 'BEGIN{printf "%.2f", t / hz / (n / 1e9)}'; }
cpuratio() { awk -v a="${cpu_t[$1]}" -v b="${cpu_t[$2]}" 'BEGIN { printf "%.2f×", a / b }'; } # A B: CPU ticks of A over B

# --- 3. time to first byte with RTT_MS ----------------------------------

ttfb() { # NAME SOCKS: median ms of SAMPLES new connections over the warm tunnel
	local s=$2 all=""
	curl -sSf -o /dev/null --socks5-hostname "$s" "http://$SRC/1" # warm
	for _ in $(seq "$SAMPLES"); do
		all+="$(curl -sSf -o /dev/null -w '%{time_starttransfer}' --socks5-hostname "$s" "http://$SRC/1") "
	done
	echo "$all" | tr ' ' '\n' | grep . | awk '{printf "%.0f ", $1 * 1000}' >"$work/ttfb_$1.txt"
	echo "$all" | median | awk '{printf "%.1f", $1 * 1000}'
}
TT_H2=$(ttfb h2 "$SOCKS_DH2")
TT_H2S=$(ttfb h2std "$SOCKS_DH2S")
TT_H3=$(ttfb h3 "$SOCKS_DH3")
# Directly through the delay: the second request of each curl rides the
# open connection (one round trip); the first pays for the new connection.
open="" new=""
for _ in $(seq "$SAMPLES"); do
	out=$(curl -sSf -o /dev/null -o /dev/null -w '%{time_starttransfer} %{num_connects}\n' "http://$DSRC/1" "http://$DSRC/1")
	new+="$(echo "$out" | awk 'NR==1{print $1}') "
	open+="$(echo "$out" | awk 'NR==2 && $2==0{print $1}') "
done
[ -n "${open// /}" ] || die "curl did not reuse the connection for the direct exchange"
echo "$open" | tr ' ' '\n' | grep . | awk '{printf "%.0f ", $1 * 1000}' >"$work/ttfb_open.txt"
TT_OPEN=$(echo "$open" | median | awk '{printf "%.1f", $1 * 1000}')
TT_NEW=$(echo "$new" | median | awk '{printf "%.1f", $1 * 1000}')

# --- 4. idle client memory ----------------------------------------------

rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; } # KiB
client c_idle "$SRV" auto "127.0.0.1:$(port)"
IDLE_PID=$pid IDLE_DNS=$dns IDLE_SOCKS=$socks
for i in $(seq 10); do
	dig +time=2 +tries=1 -p "${IDLE_DNS##*:}" @127.0.0.1 "idle$i.bench.example" A >/dev/null || die "dig via the idle client failed"
done
curl -sSf -o /dev/null --socks5-hostname "$IDLE_SOCKS" "http://$SRC/100000" || die "curl via the idle client failed"
sleep "$IDLE_S"
M_PORTA=$(rss "$IDLE_PID")
M_UNB=$(rss "$UNBOUND_PID")
M_LOADED=$(rss "$PORTA_DNS_PID")

# --- the table ----------------------------------------------------------

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
header
dns_row
echo "| --socks throughput h2, one stream, $((SIZE >> 20)) MiB, bytes counted, $((CHECK >> 20)) MiB SHA-256 checked (MB/s, best of $ROUNDS: ${mbs[h2]}; CPU s/GB, client+server (client)) | $T_H2; $(cpugb h2) s ($(cpugb h2.1)) | stunnel4 pair $T_ST (${mbs[st]}); $(cpugb st) s ($(cpugb st.1)) | $(ratio "$T_H2" "$T_ST") (median of rounds $(rratio h2 st)) | ≥ 1.0× |"
echo "| --socks throughput h2 on net/http's client (--std-http2), same (MB/s, best of $ROUNDS: ${mbs[h2std]}; CPU s/GB, client+server (client)) | $T_H2S; $(cpugb h2std) s ($(cpugb h2std.1)) | porta's own h2 $T_H2; $(cpugb h2) s ($(cpugb h2.1)) | own / net/http $(ratio "$T_H2" "$T_H2S") (median of rounds $(rratio h2 h2std)); client CPU per GB net/http / own $(cpuratio h2std.1 h2.1) | — |"
echo "| --socks throughput h3, same (MB/s, best of $ROUNDS: ${mbs[h3]}; CPU s/GB) | $T_H3; $(cpugb h3) s ($(cpugb h3.1)) | stunnel4 pair $T_ST; $(cpugb st) s ($(cpugb st.1)) | $(ratio "$T_H3" "$T_ST") (median of rounds $(rratio h3 st)) | ≥ 1.0× |"
echo "| --socks time to first byte h2, new connection over a warm tunnel, RTT $RTT_MS ms (median ms of $SAMPLES) | $TT_H2 | direct, open connection $TT_OPEN (new connection $TT_NEW) | $(ratio "$TT_H2" "$TT_OPEN") | ≤ 1.1× |"
echo "| --socks time to first byte h2 on net/http's client, same (median ms of $SAMPLES) | $TT_H2S | direct, open connection $TT_OPEN | $(ratio "$TT_H2S" "$TT_OPEN") | ≤ 1.1× |"
echo "| --socks time to first byte h3, same (median ms of $SAMPLES) | $TT_H3 | direct, open connection $TT_OPEN | $(ratio "$TT_H3" "$TT_OPEN") | ≤ 1.1× |"
echo "| idle client memory, --transport auto, after 10 queries and one proxied request, idle $IDLE_S s (VmRSS MiB) | $(mib "$M_PORTA") | unbound $(mib "$M_UNB") (after the DNS runs; the porta client after them: $(mib "$M_LOADED")) | — | ≤ 20 MiB |"
echo
echo "time to first byte samples (ms): h2: $(cat "$work/ttfb_h2.txt")/ h2 net/http: $(cat "$work/ttfb_h2std.txt")/ h3: $(cat "$work/ttfb_h3.txt")/ direct, open connection: $(cat "$work/ttfb_open.txt")"
