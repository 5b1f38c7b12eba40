#!/usr/bin/env bash
# Connected-component labelling with full connectivity (3x3x3) of random 256^3 volumes of several densities plus a
# smooth "blobs" volume: NnUnet.Core ConnectedComponents.Label vs scipy.ndimage.label(structure=np.ones((3,3,3))),
# same input, same machine, best of REPEATS (default 3) each; the C# labels are checked equal to scipy's.
# Needs /usr/bin/python3 with numpy and scipy (Debian python3-scipy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
repeats="${REPEATS:-3}"
size="${SIZE:-256}"
names="random_0.05 random_0.2 random_0.5 blobs"
/usr/bin/python3 - "$work" "$repeats" "$size" <<'PY'
import sys, time, numpy as np
from scipy import ndimage
work, repeats, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.RandomState(0)
volumes = {
    'random_0.05': rng.rand(n, n, n) < 0.05,
    'random_0.2': rng.rand(n, n, n) < 0.2,
    'random_0.5': rng.rand(n, n, n) < 0.5,
    'blobs': ndimage.gaussian_filter(rng.rand(n, n, n).astype(np.float32), 2) > 0.52,
}
structure = np.ones((3, 3, 3), dtype=bool)
for name, mask in volumes.items():
    mask = np.ascontiguousarray(mask.astype(np.uint8))
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        labels, count = ndimage.label(mask, structure=structure)
        best = min(best, time.perf_counter() - t)
    np.save(f'{work}/{name}.mask.npy', mask)
    np.save(f'{work}/{name}.scipy.npy', labels.astype(np.int32))
    open(f'{work}/{name}.scipy_seconds', 'w').write(repr(best))
PY
dotnet build "$here/ComponentsBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version); volume ${size}^3; best of $repeats"
dotnet "$work/bin/ComponentsBench.dll" "$work" "$repeats" $names
