#!/usr/bin/env bash
# Crop to non-zero of a 2-channel (2, 160, 320, 320) float32 volume with a zero margin and enclosed holes:
# NnUnet.Core Cropping.CropToNonzero vs nnU-Net's crop_to_nonzero (scipy binary_fill_holes + acvl bbox + slicing,
# restated in crop_reference.py), same input (.npy), same machine, one run. Needs /usr/bin/python3 with numpy/scipy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import sys, numpy as np
rng = np.random.RandomState(0)
z, y, x = np.mgrid[0:160, 0:320, 0:320].astype(np.float32)
r = np.sqrt(((z - 80) / 70) ** 2 + ((y - 160) / 130) ** 2 + ((x - 170) / 120) ** 2)
body = r < 1.0
cavity = (r < 0.5) & (rng.rand(160, 320, 320) < 0.5)   # zeros inside the body: holes to fill
data = np.zeros((2, 160, 320, 320), np.float32)
data[0][body & ~cavity] = 100 + rng.rand(int((body & ~cavity).sum())).astype(np.float32)
data[1][body & ~cavity & (x > 170)] = 5
seg = np.zeros((1, 160, 320, 320), np.float32)
seg[0][r < 0.3] = 1
np.save(sys.argv[1] + "/data.npy", data)
np.save(sys.argv[1] + "/seg.npy", seg[0])
PY
dotnet build "$here/CropBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version)"
dotnet "$work/bin/CropBench.dll" "$work/data.npy" "$work/seg.npy" "${REPEATS:-3}" | tee "$work/csharp.log"
/usr/bin/python3 "$here/crop_reference.py" "$work/data.npy" "$work/seg.npy" "$work/csharp.log"
