#!/usr/bin/env bash
# Connected-component labelling with full connectivity (3x3x3) of random SIZE^3 volumes (default 256) of several
# densities plus a smooth "blobs" volume: NnUnet.Core ConnectedComponents.Label vs
# scipy.ndimage.label(structure=np.ones((3,3,3))), same input, same machine, REPEATS rounds (default 5) with the two
# interleaved, best time of each; our labels are checked equal to scipy's.
# Needs /usr/bin/python3 with numpy and scipy (Debian python3-scipy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
repeats="${REPEATS:-5}"
size="${SIZE:-256}"
/usr/bin/python3 - "$work" "$size" <<'PY'
import sys, numpy as np
from scipy import ndimage
work, n = sys.argv[1], int(sys.argv[2])
rng = np.random.RandomState(0)
volumes = {
    'random_0.05': rng.rand(n, n, n) < 0.05,
    'random_0.2': rng.rand(n, n, n) < 0.2,
    'random_0.5': rng.rand(n, n, n) < 0.5,
    'blobs': ndimage.gaussian_filter(rng.rand(n, n, n).astype(np.float32), 2) > 0.52,
}
for name, mask in volumes.items():
    np.save(f'{work}/{name}.mask.npy', np.ascontiguousarray(mask.astype(np.uint8)))
PY
dotnet build "$here/ComponentsBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version); volume ${size}^3; best of $repeats interleaved rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet "$work/bin/ComponentsBench.dll" "$work" "$repeats" "$here/scipy_label.py" random_0.05 random_0.2 random_0.5 blobs
