#!/usr/bin/env bash
# Training step (forward + backward + grad clip + SGD) of the same 3D PlainConvUNet, same batch and patch, with
# nnU-Net's Dice+CE deep-supervision loss: NnUnet.Training (TorchSharp) vs PyTorch (Debian python3-torch) on CPU,
# same machine, same run, same thread count. Prints the median step time of each and the speed ratio (ours / PyTorch).
# Also the data side (AUGMENT=0 skips it): samples/s one loader thread makes (patch sampling + nnU-Net's augmentation
# at the same patch, torch on 1 thread) against the samples/s the step consumes (target >= 1.5).
# Override the plan with env: STAGES BASE BATCH PZ PY PX WARMUP STEPS THREADS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
args=("${STAGES:-4}" "${BASE:-16}" "${BATCH:-2}" "${PZ:-32}" "${PY:-64}" "${PX:-64}" "${WARMUP:-2}" "${STEPS:-5}" "${THREADS:-$(nproc)}")
dotnet build "$here/TrainStepBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); dotnet $(dotnet --version)"
echo "plan: stages ${args[0]}, base features ${args[1]}, batch ${args[2]}, patch ${args[3]}x${args[4]}x${args[5]}, threads ${args[8]}, median of ${args[7]} steps after ${args[6]} warm-up"
# alternate the two ROUNDS times (default 2) and keep each side's best median, so a load burst on a shared machine
# does not land on one side only
rounds="${ROUNDS:-2}"
best_ours=""; best_theirs=""
for r in $(seq "$rounds"); do
  ours=$(dotnet "$work/bin/TrainStepBench.dll" "${args[@]}" 2>"$work/augment-$r.txt")
  cat "$work/augment-$r.txt"
  theirs=$(/usr/bin/python3 "$here/torch_step.py" "${args[@]}")
  echo "round $r: $ours | $theirs"
  best_ours=$(/usr/bin/python3 -c "import sys; a=sys.argv[1]; b=sys.argv[2]; print(a if not b or float(a.split()[2]) < float(b.split()[2]) else b)" "$ours" "$best_ours")
  best_theirs=$(/usr/bin/python3 -c "import sys; a=sys.argv[1]; b=sys.argv[2]; print(a if not b or float(a.split()[2]) < float(b.split()[2]) else b)" "$theirs" "$best_theirs")
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$best_ours" "$best_theirs" <<'PY'
import sys
o = float(sys.argv[1].split()[2]); t = float(sys.argv[2].split()[2])
po = sys.argv[1].split()[4]; pt = sys.argv[2].split()[4]
print(f"best medians: TorchSharp {o:.4f} s/step, PyTorch {t:.4f} s/step; parameters equal: {po == pt} ({po})")
print(f"speed ratio (TorchSharp / PyTorch): {t / o:.3f}  (target >= 0.95)")
PY
