#!/bin/bash
# summarize a top -b log: per sample, CPU% (of one core) for svix-server, postgres (all svixpg procs), our python procs, everything else
F=$1; D=${SVIX_DIR:-/work/svix}; SV=$(cat $D/svix-server.pid); RC=$(cat $D/receiver.pid)
awk -v sv=$SV -v rc=$RC '
 function flush(){ if (t!="") printf "%s  svix-server=%5.1f  postgres=%5.1f  receiver=%5.1f  loadgen(py)=%5.1f  other=%5.1f  | %s\n", t, s, p, r, l, o, cpu }
 /^top -/{flush(); t=$3; s=p=r=l=o=0; next}
 /^%Cpu/{cpu=$0; next}
 $1 ~ /^[0-9]+$/ { if ($1==sv) s+=$9; else if ($2=="svixpg") p+=$9; else if ($1==rc) r+=$9; else if ($12=="python") l+=$9; else if ($12!="top") o+=$9 }
 END{flush()}' "$F"
