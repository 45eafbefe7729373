#!/usr/bin/env bash
# Benchmarks porta's DNS over HTTPS against Debian's unbound as a DoH server
# and against a bare HTTP/2 handler returning a canned answer (the ceiling
# of net/http's HTTP/2 server here; and the same on porta's own HTTP/2
# server with its coalesced writes, the ceiling of porta's DoH), all in one
# run, all on loopback,
# forwarding to the same fast upstream. Prints a markdown table of h2load
# req/s for cache hits (a fixed set of 100 names) and misses (unique names).
#
#   bench/doh.sh              # needs h2load (nghttp2-client) and unbound
#   REQUESTS=200000 ROUNDS=5 bench/doh.sh
#   HANDLER_ONLY=1 bench/doh.sh   # the doh package without porta's server
#   CORES=1 bench/doh.sh          # each server on one core (GOMAXPROCS, unbound
#                                 # num-threads, taskset), h2load on the rest
#   BASELINE=main bench/doh.sh    # also porta server built from that git ref,
#                                 # in the same rounds: before/after a change
#
# h2load sends its URI list in the same order on every connection, so with
# -c 20 the "unique" names would repeat 20 times and mostly hit the cache.
# Misses therefore run 20 h2load processes, -c 1 -m 25 each, with their own
# names: the same 20 connections x 25 streams, every query a miss.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-100000}   # per hits run; misses send as many in total
# CORES: the cores each server may use (GOMAXPROCS for the Go servers,
# num-threads for unbound, and taskset on cores 0..CORES-1 when the
# machine has more); h2load runs on the cores left, if any. Default: all.
CORES=${CORES:-$(nproc)}
[ "$CORES" -ge 1 ] && [ "$CORES" -le "$(nproc)" ] ||
	{ echo "bench/doh.sh: CORES=$CORES, but this machine has $(nproc)" >&2; exit 2; }
server_cpus=""
load_cpus=""
if command -v taskset >/dev/null && [ "$CORES" -lt "$(nproc)" ]; then
	server_cpus="0-$((CORES - 1))"
	load_cpus="$CORES-$(($(nproc) - 1))"
fi
export GOMAXPROCS=$CORES
# "${pin[@]}" CMD: CMD on the servers' cores (taskset execs it: $! stays
# its pid); "${load[@]}" CMD: on the load's.
pin=() load=()
[ -n "$server_cpus" ] && pin=(taskset -c "$server_cpus") && load=(taskset -c "$load_cpus")
CLIENTS=20
STREAMS=25
for tool in h2load unbound go; do
	command -v "$tool" >/dev/null || { echo "bench/doh.sh: $tool not found (apt-get install nghttp2-client unbound)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/helper" ./bench/dnsupstream

# start NAME CMD...: runs CMD in the background, waits for "listening ADDR"
# on its stdout and sets $addr.
start() {
	local name=$1; shift
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pids+=($!)
	for _ in $(seq 200); do
		addr=$(awk '/^listening /{print $2; exit}' "$tmp/$name.out")
		[ -n "$addr" ] && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench/doh.sh: $name did not start:" >&2; cat "$tmp/$name.err" >&2; exit 1
}

start upstream "$tmp/helper" -mode upstream
upstream=$addr

# porta: the real server once it has --upstream; until then the doh
# package's Handler and Resolver behind a plain net/http TLS server.
# HANDLER_ONLY=1 benches the doh package alone, without the server's routing.
# start_porta BINARY NAME: runs porta server from BINARY and sets $addr.
start_porta() {
	local port
	port=$((20000 + RANDOM % 20000))
	"${pin[@]}" "$1" server --listen "127.0.0.1:$port" --self-signed --state-dir "$tmp/$2-state" \
		--upstream "udp://$upstream" >"$tmp/$2.out" 2>"$tmp/$2.err" &
	pids+=($!)
	for _ in $(seq 200); do
		curl -sk -o /dev/null "https://127.0.0.1:$port/" && break
		sleep 0.05
	done
	addr="127.0.0.1:$port"
}
if [ -z "${HANDLER_ONLY:-}" ] && go run ./cmd/porta server --help 2>&1 | grep -q -- '--upstream'; then
	go build -o "$tmp/porta" ./cmd/porta
	start_porta "$tmp/porta" porta
	porta=$addr
	porta_pid=${pids[-1]}
	porta_what="porta server"
else
	start porta "${pin[@]}" "$tmp/helper" -mode doh -upstream "udp://$upstream"
	porta=$addr
	porta_pid=${pids[-1]}
	porta_what="doh.Handler and doh.Resolver behind a bare net/http server (bench/dnsupstream -mode doh)"
fi

porta_targets=(porta)
if [ -n "${BASELINE:-}" ]; then
	mkdir -p "$tmp/base-src"
	git archive "$BASELINE" | tar -x -C "$tmp/base-src"
	(cd "$tmp/base-src" && go build -o "$tmp/porta-base" ./cmd/porta)
	start_porta "$tmp/porta-base" base
	base=$addr
	base_pid=${pids[-1]}
	porta_targets+=(base)
fi

start canned "${pin[@]}" "$tmp/helper" -mode canned
canned=$addr
canned_pid=${pids[-1]}
start cannedco "${pin[@]}" "$tmp/helper" -mode canned -coalesce -h2 porta
cannedco=$addr
cannedco_pid=${pids[-1]}

# unbound as a DoH server forwarding to the same upstream.
"$tmp/helper" -mode cert -dir "$tmp"
for try in 1 2 3 4 5; do
	uport=$((20000 + RANDOM % 20000))
	cat >"$tmp/unbound.conf" <<CONF
server:
	interface: 127.0.0.1@$uport
	https-port: $uport
	tls-service-key: "$tmp/key.pem"
	tls-service-pem: "$tmp/cert.pem"
	http-endpoint: "/dns-query"
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$tmp"
	pidfile: ""
	use-syslog: no
	verbosity: 0
	num-threads: $CORES
	so-reuseport: yes
	do-ip6: no
	incoming-num-tcp: 200
	num-queries-per-thread: 4096
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: "iterator"
	qname-minimisation: no
	prefetch: no
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: ${upstream%:*}@${upstream##*:}
CONF
	"${pin[@]}" unbound -d -c "$tmp/unbound.conf" >"$tmp/unbound.out" 2>&1 &
	pids+=($!)
	up=""
	for _ in $(seq 100); do
		if curl -sk -o /dev/null -H 'accept: application/dns-message' "https://127.0.0.1:$uport/dns-query?dns=AAABAAABAAAAAAAABGZpcnN0BWJlbmNoB2V4YW1wbGUAAAEAAQ"; then up=1; break; fi
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$up" ] && break
	kill "${pids[-1]}" 2>/dev/null || true
	[ "$try" = 5 ] && { echo "bench/doh.sh: unbound did not start:" >&2; cat "$tmp/unbound.out" >&2; exit 1; }
done
unbound="127.0.0.1:$uport"
unbound_pid=${pids[-1]}

h2() { "${load[@]}" h2load --npn-list=h2 "$@"; }
hits() { # ADDR [TAG]
	"$tmp/helper" -mode queries -url "https://$1/dns-query" -n 100 -prefix hit >"$tmp/hits.txt"
	h2 -n 2000 -c "$CLIENTS" -m "$STREAMS" -i "$tmp/hits.txt" >/dev/null # warm the cache
	h2 -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" -i "$tmp/hits.txt" >"$tmp/h2.out"
	check "$tmp/h2.out" "$1 hits"
	awk '/^finished in/{t=$3; sub(",","",t); if (t ~ /ms$/) {sub("ms","",t); t/=1000} else sub("s","",t)}
	     /^requests:/{ok=$8} END{print int(ok/t)}' "$tmp/h2.out"
}
misses() { # ADDR TAG
	local per=$((REQUESTS / CLIENTS)) i start end ok=0
	for i in $(seq "$CLIENTS"); do
		"$tmp/helper" -mode queries -url "https://$1/dns-query" -n "$per" -prefix "m$2c$i-" >"$tmp/miss$i.txt"
	done
	start=$(date +%s.%N)
	for i in $(seq "$CLIENTS"); do
		h2 -n "$per" -c 1 -m "$STREAMS" -i "$tmp/miss$i.txt" >"$tmp/miss$i.out" &
	done
	wait_h2
	end=$(date +%s.%N)
	for i in $(seq "$CLIENTS"); do
		check "$tmp/miss$i.out" "$1 misses"
		ok=$((ok + $(awk '/^requests:/{print $8}' "$tmp/miss$i.out")))
	done
	awk -v n="$ok" -v s="$start" -v e="$end" 'BEGIN{print int(n/(e-s))}'
}
wait_h2() { # waits for the h2load jobs only, not the servers
	local j
	for j in $(jobs -p); do
		case " ${pids[*]} " in *" $j "*) ;; *) wait "$j" ;; esac
	done
}
check() { # FILE WHAT: warns about requests that did not succeed; only successes count
	if ! grep -q " 0 failed, 0 errored, 0 timeout" "$1" || ! grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$1"; then
		echo "bench/doh.sh: $2: not every request succeeded (only successes are counted):" >&2
		grep -E "^(requests|status codes):" "$1" >&2
	fi
}

# The machine is shared: run ROUNDS rounds, the servers interleaved, and
# keep each server's best rate. Alongside, the CPU time the server process
# itself spent per request (summed over all rounds), which the load from
# h2load and other work affects much less than the rate.
ROUNDS=${ROUNDS:-3}
best() { # VAR RATE: keeps the larger
	case $2 in ''|*[!0-9]*) echo "bench/doh.sh: no rate for $1" >&2; exit 1 ;; esac
	[ "$2" -gt "${!1:-0}" ] && printf -v "$1" %s "$2" || true
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system, clock ticks
declare -A cpu
measure() { # TARGET KIND: one run, rate kept by best, CPU added up
	local pid_var="${1}_pid" before after rate
	before=$(ticks "${!pid_var}")
	rate=$("$2" "${!1}" "${1:0:1}$round")
	after=$(ticks "${!pid_var}")
	best "${1}_$2" "$rate"
	rates[$1_$2]+="$rate "
	cpu[$1_$2]=$(( ${cpu[$1_$2]:-0} + after - before ))
}
declare -A rates
for round in $(seq "$ROUNDS"); do
	for target in canned cannedco "${porta_targets[@]}" unbound; do
		measure "$target" hits
	done
	for target in "${porta_targets[@]}" unbound; do
		measure "$target" misses
	done
done
# No dnsperf -m doh here, though it was once a second opinion: its DoH
# client keeps one answer buffer per connection, not per stream, and
# hands an answer over only at the read after the one that brought it
# (src/net_doh.c, and its 100 ms poll), so it counts lost the answers of
# a server that writes several streams' frames together, and stalls on
# one that writes a whole answer (HEADERS and DATA) in one TLS record, as
# porta's does: 7 answers/s against h2load's 180,000. h2load is the
# measure.

hz=$(getconf CLK_TCK)
us() { awk -v t="${cpu[$1]}" -v hz="$hz" -v n="$((ROUNDS * REQUESTS))" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
# rratio A B: the median over rounds of rates[A][i] / rates[B][i]; the
# rounds are interleaved, so a busy moment on a shared machine weighs on
# one round of each server rather than on one server's best.
rratio() {
	paste <(echo "${rates[$1]}" | tr ' ' '\n' | grep .) <(echo "${rates[$2]}" | tr ' ' '\n' | grep .) |
		awk '{print $1 / $2}' | sort -g | awk '{a[NR]=$1} END{printf "%.2f", a[int((NR+1)/2)]}'
}
cat <<TABLE
h2load DoH GET, -c $CLIENTS -m $STREAMS, $REQUESTS requests per run, best of $ROUNDS interleaved rounds, servers on $CORES of $(nproc) cores${load_cpus:+ (h2load on the others)}; upstream: bench/dnsupstream on udp://$upstream
porta = $porta_what

| server | hits req/s | misses req/s | server CPU µs/hit | server CPU µs/miss |
|---|---:|---:|---:|---:|
| canned answer, net/http's HTTP/2 server (its ceiling) | $canned_hits | – | $(us canned_hits) | – |
| canned answer, porta's HTTP/2 server (the ceiling of porta's DoH) | $cannedco_hits | – | $(us cannedco_hits) | – |
| porta | $porta_hits | $porta_misses | $(us porta_hits) | $(us porta_misses) |$(
	[ -n "${BASELINE:-}" ] && printf '\n| porta at %s (baseline) | %s | %s | %s | %s |' "$BASELINE" "$base_hits" "$base_misses" "$(us base_hits)" "$(us base_misses)")
| unbound $(unbound -V | awk 'NR==1{print $2}') | $unbound_hits | $unbound_misses | $(us unbound_hits) | $(us unbound_misses) |


porta hits / unbound hits: $(ratio "$porta_hits" "$unbound_hits") (target ≥ 1.00); median of rounds' ratios: $(rratio porta_hits unbound_hits)
porta hits / net/http's ceiling: $(ratio "$porta_hits" "$canned_hits"); / porta's own ceiling: $(ratio "$porta_hits" "$cannedco_hits"); median of rounds' ratios: $(rratio porta_hits canned_hits), $(rratio porta_hits cannedco_hits)
porta misses / unbound misses: $(ratio "$porta_misses" "$unbound_misses") (target ≥ 1.00); median of rounds' ratios: $(rratio porta_misses unbound_misses)
TABLE
if [ -n "${BASELINE:-}" ]; then
	echo "porta / baseline $BASELINE: hits $(ratio "$porta_hits" "$base_hits"), misses $(ratio "$porta_misses" "$base_misses"); median of rounds' ratios: hits $(rratio porta_hits base_hits), misses $(rratio porta_misses base_misses)"
fi
