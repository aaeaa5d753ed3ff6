#!/bin/bash
# usage: run.sh NAME WINDOW_S   (32 connections, 10 s warm-up, WINDOW_S measured, drain cap 20 s)
# Waits for a quiet machine (quiet_check.sh), records `top`, runs the load generator against the
# svix-server and receiver already started (their pids in $SVIX_DIR/svix-server.pid and
# receiver.pid, as in README.md), and writes bench/NAME.json.
set -u
NAME=$1; WINDOW=${2:-30}
SVIX_DIR=${SVIX_DIR:-/work/svix}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$SVIX_DIR"
mkdir -p bench
until "$HERE/quiet_check.sh"; do
  date -u; sleep 60
done
echo "quiet at $(date -u)"; ps aux --sort=-%cpu | head -8 | cut -c1-160 > bench/$NAME.ps_before.txt
TOTAL=$((10 + WINDOW + 20 + 2))
top -b -d 5 -n $((TOTAL / 5 + 1)) -w 200 > bench/$NAME.top.txt &
TOPPID=$!
venv/bin/python "$HERE/bench.py" load --token "$(cat bench/token)" --svix-pid "$(cat svix-server.pid)" \
  --receiver-pid "$(cat receiver.pid)" --conns 32 --warmup 10 --window "$WINDOW" --drain 20 \
  --out bench/$NAME.json > bench/$NAME.out 2>&1
wait $TOPPID
echo "done $(date -u)"
