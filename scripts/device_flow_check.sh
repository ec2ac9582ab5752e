#!/usr/bin/env bash
# TV-L1 two-thread scaling (and optionally an A/B of builds and the OpenCV peer comparison) on
# the device machine's CPUs (16 vCPUs), pinned to the pair of CPUs with the highest two-thread
# FMA throughput. No cargo is needed there. Prepare here (.dev/ is ignored through
# .git/info/exclude and travels with `carry`):
#   mkdir -p .dev && strip -o .dev/flow_peer target/release/examples/flow_peer
#   gcc -O2 -static -mavx512f -mfma scripts/host_fma_calibration.c -o .dev/fma -lpthread
#   optional: .dev/flow_peer_old (another build, for an A/B) and the OpenCV wheel:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .dev opencv-contrib-python-headless==4.10.0.84
# Run there: bash scripts/device_flow_check.sh   (also writes $OUT/*.txt, or ./device-out)
set -u
OUT=${OUT:-device-out}; mkdir -p "$OUT"
E=.dev/flow_peer
{ date -u; nproc; lscpu | grep -E 'Model name|Thread|L2|L3'; } 2>&1 | tee "$OUT/machine.txt"
"$E" write /tmp/fp > /dev/null
for p in 2,3 6,7 10,11 4,5; do
  echo "$(taskset -c $p .dev/fma 2 | awk '{print $NF}') $(taskset -c $p .dev/fma 2 | awk '{print $NF}') $p"
done | tee /tmp/cal.txt | tee -a "$OUT/machine.txt"
best=$(awk '{print ($1 < $2 ? $1 : $2), $3}' /tmp/cal.txt | sort -rn | head -1 | cut -d' ' -f2)
echo "pinned to CPUs $best" | tee -a "$OUT/machine.txt"
bins=$E; [ -x .dev/flow_peer_old ] && bins=.dev/flow_peer_old,$E
export MEX_FMA_CALIBRATION=.dev/fma
for sr in "128 40" "256 12"; do
  set -- $sr
  echo "== TV-L1 ${1}x${1}, $2 rounds, $bins"
  taskset -c "$best" python3 scripts/flow_tvl1_scaling.py "$bins" /tmp/fp "$1" "$2" | grep '^{'
done 2>&1 | tee "$OUT/scaling.txt"
if ls .dev/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .dev/*.whl \
    && export PYTHONPATH=/tmp/site
  PYTHONUNBUFFERED=1 taskset -c "$best" python3 benches/peers/flow_opencv.py --exe "$E" --reps 3 --threads 1 2 \
    2>&1 | tee "$OUT/peer.txt"
fi
