#!/usr/bin/env bash
# Order-3 resampling of a 512x512x120 float32 volume (array (120, 512, 512)) to 1.5x coarser and 1.5x finer:
# NnUnet.Core SplineResize vs skimage.transform.resize(order=3, mode='edge', anti_aliasing=False) and
# scipy.ndimage.zoom(order=3), same input (.npy), same machine, one run. Needs /usr/bin/python3 with numpy/scipy/skimage.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/input.npy" <<'PY'
import sys, numpy as np
from scipy.ndimage import gaussian_filter
rng = np.random.RandomState(0)
# CT-like: smooth structures plus noise, values 0..1000
v = gaussian_filter(rng.rand(120, 512, 512).astype(np.float32), 3) * 4000 - 1500 + rng.rand(120, 512, 512).astype(np.float32) * 50
np.save(sys.argv[1], np.clip(v, 0, 1000).astype(np.float32))
PY
dotnet build "$here/ResampleBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version)"
dotnet "$work/bin/ResampleBench.dll" "$work/input.npy" "$work" "${REPEATS:-2}" | tee "$work/csharp.log"
/usr/bin/python3 "$here/compare.py" "$work/input.npy" "$work" "$work/csharp.log"
