#!/bin/sh
# The suite under a CPU hog on every core, N times in a row (issue 8's "done when").
#   tools/stress-suite.sh NAME [RUNS]
# Clones this checkout's HEAD into /tmp/NAME, sets it up, starts `stress-ng --cpu <cores>` and runs
# `make test` RUNS times (default 3), stopping at the first failing run. Logs: $LOGS/NAME.runK.log
# (LOGS defaults to /tmp/stress-logs); one line per run in $LOGS/NAME.summary.
set -u
name=${1:?usage: tools/stress-suite.sh NAME [RUNS]}
runs=${2:-3}
logs=${LOGS:-/tmp/stress-logs}
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
dir=/tmp/$name
mkdir -p "$logs"
rm -rf "$dir"
git clone -q "$src" "$dir" || exit 2
cd "$dir" || exit 2
commit=$(git rev-parse --short HEAD)
make setup > "$logs/$name.setup.log" 2>&1 || { echo "$name: make setup failed" >> "$logs/$name.summary"; exit 2; }
stress-ng --cpu "$(nproc)" --timeout 0 > /dev/null 2>&1 &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT INT TERM
status=0
k=1
while [ "$k" -le "$runs" ]; do
    start=$(date +%s)
    make test > "$logs/$name.run$k.log" 2>&1
    status=$?
    load=$(cut -d' ' -f1 /proc/loadavg)
    result=$(grep -E '^=+ .*(passed|failed|error).* =+$' "$logs/$name.run$k.log" | tail -1)
    echo "$name ($commit) run $k: exit $status, $(( $(date +%s) - start )) s, load $load: $result" >> "$logs/$name.summary"
    [ "$status" -eq 0 ] || break
    k=$((k + 1))
done
exit "$status"
