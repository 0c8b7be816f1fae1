#!/usr/bin/env bash
# Re-runs each failure issue 12 reported with the binary $1 and prints what happened: the
# before/after table in docs/results.md came from this with the binary built at 221d302 and at
# the issue's last commit. PEER_TIMEOUT=5 adds --peer-timeout 5 (a flag the old binary lacks).
#   scripts/reliability-evidence.sh target/release/alexnet
set -u
B=$(realpath "$1"); T=$(mktemp -d); cd "$(dirname "$0")/.."
F=fixtures/cifar10-mini
demo() { $B train --recipe recipes/demo.toml --data $F --quiet "$@"; }
echo "### 1. two train into one run dir"
demo --run-dir $T/two --epochs 3 >/dev/null 2>$T/a.err & P=$!; sleep 0.3
demo --run-dir $T/two --epochs 3 >/dev/null 2>$T/b.err; echo "second: exit $? $(tail -1 $T/b.err)"
wait $P; echo "first: exit $?"; echo "metrics lines: $(wc -l < $T/two/metrics.jsonl) (epochs $(python3 -c "import json;print([json.loads(l)['epoch'] for l in open('$T/two/metrics.jsonl')])"))"
echo "### 2. two prepare into one OUT, --side 32 and --side 24"
$B prepare $F $T/prep --side 32 --quiet >$T/p1.out 2>&1 & P=$!
$B prepare $F $T/prep --side 24 --quiet >$T/p2.out 2>&1; echo "second: exit $? $(tail -1 $T/p2.out)"
wait $P; echo "first: exit $? $(tail -1 $T/p1.out | cut -c1-100)"; ls $T/prep | tr '\n' ' '; echo
echo "### 3. NaN weights: eval and predict"
demo --run-dir $T/nan --epochs 1 > /dev/null 2>&1
python3 - $T/nan/last.safetensors $T/nan/nan.safetensors <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read()); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n])
a, _ = h['model.features.0.conv.weight']['data_offsets']
# A NaN with a checksum that matches (recomputed), as a diverged run would have saved it.
b[8+n+a:8+n+a+4] = struct.pack('<f', float('nan'))
meta = h.get('__metadata__', {})
if 'checksums' in meta:
    import zlib
    sums = json.loads(meta['checksums']); s, e = h['model.features.0.conv.weight']['data_offsets']
    sums['model.features.0.conv.weight'] = zlib.crc32(bytes(b[8+n+s:8+n+e])); meta['checksums'] = json.dumps(sums, separators=(',', ':'))
    hb = json.dumps(h, separators=(',', ':')).encode(); hb += b' ' * (-len(hb) % 8)
    b = bytearray(struct.pack('<Q', len(hb))) + hb + b[8+n:]
open(sys.argv[2], 'wb').write(b)
PY
$B eval $T/nan/nan.safetensors 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
$B predict $T/nan/nan.safetensors $F/test/cat/0000.jpg 2>&1 | tail -2 | head -2; echo "exit ${PIPESTATUS[0]}"
echo "### 4. one flipped bit in the weights"
python3 -c "
import sys; b=bytearray(open('$T/nan/last.safetensors','rb').read()); b[len(b)//2]^=0x10; open('$T/nan/flip.safetensors','wb').write(b)"
$B eval $T/nan/flip.safetensors 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
echo "### 5. --epochs 0, and a resume with fewer epochs than done"
demo --run-dir $T/zero --epochs 0 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
$B train --resume $T/nan --epochs 1 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
echo "### 6. data.resize = 100000 (under ulimit -v 8 GB)"
(ulimit -v 8000000; demo --run-dir $T/huge --epochs 1 --set data.resize=100000 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}")
echo "### 7. lr 10: stuck at chance"
demo --run-dir $T/stuck --epochs 5 --lr 10 2>&1 | grep -E "warning|done" | cut -c1-160
echo "### 8. messages"
mkdir -p $T/d/train/cat $T/d/train/ship $T/d/val/cat $T/d/train/dog
cp $F/train/cat/0000.jpg $T/d/train/cat/a.jpg; cp $F/train/ship/0000.jpg $T/d/train/ship/a.jpg; cp $F/train/cat/0001.jpg $T/d/val/cat/a.jpg
printf '[model]\narch = 5\n' > $T/arch.toml
$B train --recipe $T/arch.toml --data $F --run-dir $T/m1 --quiet 2>&1 | tail -1
printf '[optim]\nlr = 0.01\n' > $T/ok.toml
$B train --recipe $T/ok.toml --model resnet50 --data $F --run-dir $T/m2 --quiet 2>&1 | tail -1
$B train --recipe $T/ok.toml --batch-size 0 --data $F --run-dir $T/m3 --quiet 2>&1 | tail -1
$B train --recipe recipes/demo.toml --data $T/ok.toml --run-dir $T/m4 --quiet 2>&1 | tail -1
$B prepare /nonexistent $T/never --quiet 2>&1 | tail -1; echo "OUT created: $(test -e $T/never && echo yes || echo no)"
$B train --recipe recipes/demo.toml --data $T/d --set data.val_split=\"val\" --run-dir $T/m5 --epochs 1 --quiet 2>&1 | tail -1
echo "### 9. frozen rank (kill -STOP rank 1), timing rank 0 (limit 40 s)"
PORT=$((20000 + RANDOM % 20000))
$B train --recipe recipes/demo.toml --data $F --epochs 100 --batch-size 100 --world-size 2 --rank 1 --coordinator 127.0.0.1:$PORT --quiet --run-dir $T/r1 >/dev/null 2>&1 & R1=$!
( timeout 100 $B train --recipe recipes/demo.toml --data $F --epochs 100 --batch-size 100 --world-size 2 --rank 0 --coordinator 127.0.0.1:$PORT --quiet --run-dir $T/r0 ${PEER_TIMEOUT:+--peer-timeout $PEER_TIMEOUT} 2>$T/r0.err >/dev/null; echo $? > $T/r0.rc ) 2>/dev/null & 
while [ ! -e $T/r0/last.safetensors ]; do sleep 0.1; done; kill -STOP $R1; S=$(date +%s.%N)
for i in $(seq 1 400); do [ -e $T/r0.rc ] && break; sleep 0.1; done
E=$(date +%s.%N); echo "rank 0: $( [ -e $T/r0.rc ] && echo "exit $(cat $T/r0.rc) after $(python3 -c "print(round($E-$S,1))") s: $(tail -1 $T/r0.err)" || echo "still waiting after 40 s")"
pkill -9 -f "coordinator 127.0.0.1:$PORT"; kill -9 $R1 2>/dev/null
rm -rf $T
