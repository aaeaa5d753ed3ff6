#!/bin/bash
# exit 0 when quiet. Brief's rule: no bench/cashout-local/cargo/rustc/java process >20% CPU.
# Stricter (STRICT=1, default): also total CPU of all processes that are not ours (svix-server,
# svixpg-owned postgres, our python receiver/loadgen, top) must be <= 20% of one core.
STRICT=${STRICT:-1}
top -b -n 2 -d 3 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ {print}' | awk -v strict=$STRICT -v mine="$(cat ${SVIX_DIR:-/work/svix}/svix-server.pid 2>/dev/null) $(cat ${SVIX_DIR:-/work/svix}/receiver.pid 2>/dev/null)" '
 BEGIN{split(mine,m," "); for(i in m) ours[m[i]]=1}
 ($12 ~ /^(bench|cashout-local|cashout-l|cargo|rustc|java)/) && $9+0 > 20 {print "BUSY(named):", $1, $9, $12; busy=1}
 !($1 in ours) && $2 != "svixpg" && $12 != "top" {other += $9}
 END{ if (strict && other > 20) {print "BUSY(other total %):", other; busy=1}; exit busy }'
