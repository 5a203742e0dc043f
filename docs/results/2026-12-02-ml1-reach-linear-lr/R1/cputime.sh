#!/bin/bash
# cputime.sh PID: CPU seconds (user+sys) of PID and its descendants, from /proc
tot=0; tck=$(getconf CLK_TCK)
for p in $1 $(pgrep -P $1) $(for c in $(pgrep -P $1); do pgrep -P $c; done); do
  [ -r /proc/$p/stat ] || continue
  s=$(awk '{print $14+$15}' /proc/$p/stat); tot=$((tot+s))
done
echo "scale=1; $tot/$tck" | bc
