#!/usr/bin/env bash
# Records the peak resident set size (VmHWM, KiB) of `wxgate serve` processes while a
# benchmark runs: checks once a second (cheap enough not to disturb the run) and
# prints the largest peak seen when stopped (SIGTERM/SIGINT) or after $1 seconds.
set -u
limit=${1:-600}
max=0
end=$((SECONDS + limit))
trap 'echo "peak_rss_kib=$max"; exit 0' TERM INT
while [ $SECONDS -lt $end ]; do
  for pid in $(pgrep -f 'wxgate serve' || true); do
    hwm=$(awk '/^VmHWM/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ "${hwm:-0}" -gt "$max" ] && max=$hwm
  done
  sleep 1
done
echo "peak_rss_kib=$max"
