#!/usr/bin/python3
"""Times one scipy.ndimage.label(mask, structure=np.ones((3,3,3))) call on MASK.npy and prints the seconds; with a
second argument also saves the labels (int32) there for the equality check."""
import sys
import time

import numpy as np
from scipy import ndimage

mask = np.load(sys.argv[1])
structure = np.ones((3,) * mask.ndim, dtype=bool)
t = time.perf_counter()
labels, count = ndimage.label(mask, structure=structure)
elapsed = time.perf_counter() - t
if len(sys.argv) > 2:
    np.save(sys.argv[2], labels.astype(np.int32))
print(repr(elapsed))
