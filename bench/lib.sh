# bench/lib.sh — what the bench scripts share; sourced from the top of
# the repository. It makes $work, a temporary folder removed at exit, and
# pids, the processes bg started, killed at exit.

me="bench/$(basename "$0")"

work=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "$me: $*" >&2; exit 1; }
# bg NAME CMD...: CMD in the background, output in $work/NAME.log; sets $pid.
bg() {
	local name=$1; shift
	"$@" >"$work/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
}
# waitfor NAME REGEX: waits until NAME's log matches, prints the match; dies
# when the process bg started last ends first.
waitfor() {
	local m
	for _ in $(seq 200); do
		m=$(grep -o -m1 -E "$2" "$work/$1.log" 2>/dev/null || true)
		[ -n "$m" ] && { echo "$m"; return 0; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "$me: $1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system, clock ticks
sumticks() { local p t=0; for p in "$@"; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
best() { tr ' ' '\n' | grep . | sort -g | tail -1; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
