#!/usr/bin/env bash
# bench/soak.sh — nothing lost under load: CONNS (default 200) tunnels at
# once through `porta client --socks`, each moving a random MIN..MAX bytes
# (default 2-20 MB) both ways at once to a loopback target, every byte
# checked by SHA-256 at the far end (bench/soak), ROUNDS (default 3)
# rounds per transport (TRANSPORTS, default "h2 h3"); then the same again
# with LOAD (default 2) CPU burners running beside it (LOAD=0 skips that).
# Half the tunnels' targets finish first and half-close while the client
# still uploads, and the other way round, by the sizes' luck. Prints a
# markdown table and exits 1 if any tunnel failed or any byte differed.
# Nothing leaves 127.0.0.1: the server gets a loopback upstream.
# Needs: go.
#
#   bench/soak.sh
#   CONNS=50 ROUNDS=1 LOAD=0 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-200}
ROUNDS=${ROUNDS:-3}
MIN=${MIN:-2000000}
MAX=${MAX:-20000000}
LOAD=${LOAD:-2}
TRANSPORTS=${TRANSPORTS:-h2 h3}
TOKEN=soak-token

work=$(mktemp -d)
pids=()
burners=()
cleanup() {
	local p
	for p in "${burners[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/porta" ./cmd/porta
go build -o "$work/soak" ./bench/soak
go build -o "$work/dnsup" ./bench/dnsupstream

# bg NAME CMD...: CMD in the background, its output in $work/NAME.log.
bg() {
	local name=$1; shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
}
# waitfor NAME REGEX: waits until NAME's log matches and prints the match.
waitfor() {
	local m
	for _ in $(seq 200); do
		m=$(grep -o -m1 -E "$2" "$work/$1.log" 2>/dev/null || true)
		[ -n "$m" ] && { echo "$m"; return 0; }
		sleep 0.05
	done
	echo "bench/soak.sh: $1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}

bg upstream "$work/dnsup" -mode upstream
UPSTREAM=$(waitfor upstream '^listening [0-9.:]+' | cut -d' ' -f2)
bg server "$work/porta" server --listen 127.0.0.1:0 --self-signed --state-dir "$work/state" \
	--user "u:$TOKEN" --allow-private --upstream "udp://$UPSTREAM"
PIN=$(waitfor server 'pin="[^"]+"' | cut -d'"' -f2)
SRV=$(waitfor server 'msg=serving addr=[0-9.:]+' | sed 's/.*addr=//')

declare -A socks
for tr in $TRANSPORTS; do
	bg "client_$tr" "$work/porta" client --server "https://u:$TOKEN@$SRV" --pin "$PIN" \
		--transport "$tr" --dns "" --socks 127.0.0.1:0
	socks[$tr]=$(waitfor "client_$tr" 'socks=[0-9.:]+' | cut -d= -f2)
done

echo "$CONNS tunnels at once, $MIN to $MAX bytes each way, $(nproc) cores"
echo
status=0
header=-header
loads=(0)
[ "$LOAD" -gt 0 ] && loads+=("$LOAD")
for load in "${loads[@]}"; do
	for _ in $(seq "$load"); do
		yes >/dev/null &
		burners+=($!)
	done
	for tr in $TRANSPORTS; do
		"$work/soak" -socks "${socks[$tr]}" -label "--socks over $tr, $load CPU burners" -conns "$CONNS" \
			-rounds "$ROUNDS" -min "$MIN" -max "$MAX" $header || status=1
		header=
	done
done
exit "$status"
