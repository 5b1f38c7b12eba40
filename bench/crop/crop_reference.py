"""nnU-Net's crop_to_nonzero (preprocessing/cropping/cropping.py) restated with numpy/scipy, timed on the bench input,
compared with the C# result printed in the log."""
import sys
import time

import numpy as np
from scipy.ndimage import binary_fill_holes


def get_bbox_from_mask(mask):
    Z, X, Y = mask.shape
    bounds = []
    for axis, size in enumerate((Z, X, Y)):
        other = tuple(a for a in range(3) if a != axis)
        present = np.any(mask, axis=other)
        idx = np.nonzero(present)[0]
        bounds.append([int(idx[0]), int(idx[-1]) + 1] if len(idx) else [0, size])
    return bounds


def crop_to_nonzero(data, seg):
    mask = data[0] != 0
    for c in range(1, data.shape[0]):
        mask |= data[c] != 0
    mask = binary_fill_holes(mask)
    bbox = get_bbox_from_mask(mask)
    slicer = tuple(slice(*b) for b in bbox)
    mask = mask[slicer][None]
    data = data[(slice(None),) + slicer]
    seg = seg[(slice(None),) + slicer]
    seg[(seg == 0) & (~mask)] = -1
    return data, seg, bbox


data = np.load(sys.argv[1])
seg = np.load(sys.argv[2])[None]
start = time.perf_counter()
_, seg_c, bbox = crop_to_nonzero(data, seg.copy())
python_seconds = time.perf_counter() - start
log = dict(line.split(" ", 1) for line in open(sys.argv[3]).read().splitlines())
csharp_seconds = float(log["csharp_seconds"])
same_bbox = log["csharp_bbox"] == ",".join(f"{a}:{b}" for a, b in bbox)
same_outside = int(log["csharp_outside"]) == int((seg_c < 0).sum())
print(f"python_seconds {python_seconds:.3f}")
print(f"same bbox: {same_bbox}, same voxels outside the mask: {same_outside}")
print(f"C# vs nnU-Net (numpy/scipy): {python_seconds / csharp_seconds:.1f}x faster")
