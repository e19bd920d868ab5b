#!/bin/sh
# Record a real, mostly idle series: the recorder and raw text dumps side by side.
OUT=/tmp/bench-vm
mkdir -p $OUT/dumps
.venv/bin/allocsnap record --interval 1s --count 200 --store $OUT/vmstore --label run=bench 2> $OUT/record.err &
REC=$!
i=0
while [ $i -lt 200 ]; do
  cat /proc/allocinfo > $OUT/dumps/snap-$(printf %03d $i).txt
  i=$((i+1))
  sleep 1
done
wait $REC
echo "recorder exit $?"
uname -r > $OUT/kernel.txt
