#!/usr/bin/env bash
# nnunet predict's case pipeline and memory (see bench/README.md):
#   (a) cases/s on a 20-case CT-like test set, sequential vs pipelined, same model, inputs and run, CPU;
#   (b) peak resident memory and time predicting one 512x512x160 volume with a 50-class head (small network),
#       float16 accumulation vs float32 accumulation (each in its own process) and vs the float32 formula of the old
#       whole-volume logits tensor.
#   (c) the sweep's predict stage (test-set shards + merge job) of an embedded sweep on 1 versus 4 CPU workers: wall
#       time ratio, same model and cases, the same files written.
# Usage: bench/predict/run.sh [all|cases|large|stage]; env CASES (20; stage: STAGE_CASES 12), ROUNDS (2), Z Y X CLASSES (160 512 512 50),
#   FLOAT32 (1: also run the float32 peer), WORKERS (1,4).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
what="${1:-all}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dotnet build "$here/PredictBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version); $(date -u +%F' '%H:%M) UTC; load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "$what" == all || "$what" == cases ]]; then
  dotnet "$work/bin/PredictBench.dll" cases "$work/cases" "${CASES:-20}" "${ROUNDS:-2}"
  echo "load after (a): $(cut -d' ' -f1-3 /proc/loadavg)"
fi
if [[ "$what" == all || "$what" == stage ]]; then
  dotnet "$work/bin/PredictBench.dll" stage "$work/stage" "${STAGE_CASES:-12}" "${WORKERS:-1,4}" "${ROUNDS:-2}" | grep -v '^\['
  echo "load after (c): $(cut -d' ' -f1-3 /proc/loadavg)"
fi
if [[ "$what" == all || "$what" == large ]]; then
  dims=("${Z:-160}" "${Y:-512}" "${X:-512}" "${CLASSES:-50}")
  half=$(dotnet "$work/bin/PredictBench.dll" large "$work/large" half "${dims[@]}" | tee -a /dev/stderr | grep '^half')
  peer=""
  if [[ "${FLOAT32:-1}" == 1 ]]; then
    peer=$(dotnet "$work/bin/PredictBench.dll" large "$work/large" float32 "${dims[@]}" | tee -a /dev/stderr | grep '^float32')
  fi
  /usr/bin/python3 - "$half" "$peer" <<'PY'
import sys
def parse(line):
    t = line.split()
    return {t[i]: t[i + 1] for i in range(len(t) - 1)} if line else None
h, f = parse(sys.argv[1]), parse(sys.argv[2])
gb = lambda b: int(b) / 1e9
formula = gb(h['float32_logits_formula_bytes'])
print(f"float16: peak RSS {gb(h['peak_rss_bytes']):.2f} GB in {float(h['seconds']):.0f} s; the float32 logits tensor alone (k x voxels x 4 B) is {formula:.2f} GB: "
      f"peak / formula = {gb(h['peak_rss_bytes']) / formula:.2f}")
if f:
    print(f"float32: peak RSS {gb(f['peak_rss_bytes']):.2f} GB in {float(f['seconds']):.0f} s (ok={f['ok']}); float16 / float32 peak = {int(h['peak_rss_bytes']) / int(f['peak_rss_bytes']):.2f}")
PY
fi
