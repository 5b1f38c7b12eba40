#!/usr/bin/python3
"""Times skimage.transform.resize(order=3, mode='edge', anti_aliasing=False) and scipy.ndimage.zoom(order=3) on the
same input as the C# run, and prints ratios and the max abs difference of C# vs skimage."""
import sys, time, os, re
import numpy as np
from scipy import ndimage
from skimage.transform import resize

inp, outdir, csharp_log = sys.argv[1], sys.argv[2], sys.argv[3]
vol = np.load(inp)
times = {}
for line in open(csharp_log):
    m = re.match(r'csharp (\w+) ([\d.]+)', line)
    if m:
        times[m.group(1)] = float(m.group(2))
for tag, factor in (('coarser', 1 / 1.5), ('finer', 1.5)):
    new_shape = tuple(int(round(s * factor)) for s in vol.shape)
    t = time.perf_counter()
    ref = resize(vol, new_shape, order=3, mode='edge', anti_aliasing=False)
    t_sk = time.perf_counter() - t
    t = time.perf_counter()
    ndimage.zoom(vol, factor, order=3)
    t_zoom = time.perf_counter() - t
    ours = np.load(os.path.join(outdir, f'csharp_{tag}.npy'))
    diff = float(np.abs(ours.astype(np.float64) - ref.astype(np.float64)).max())
    cs = times[tag]
    print(f'{tag:8s} {vol.shape} -> {new_shape}: C# {cs:.2f} s | skimage {t_sk:.2f} s ({t_sk / cs:.1f}x) | '
          f'scipy zoom {t_zoom:.2f} s ({t_zoom / cs:.1f}x) | max |C# - skimage| = {diff:.2e} (data range 0..1000)')
