#!/usr/bin/python3
"""Synthetic CT-like raw dataset: 20 cases, (40-60, 192, 192) float32 .npy, air border, body ellipse, an 'organ' label."""
import json, os, sys
import numpy as np
from scipy.ndimage import gaussian_filter

root = sys.argv[1]
os.makedirs(os.path.join(root, 'imagesTr'), exist_ok=True)
os.makedirs(os.path.join(root, 'labelsTr'), exist_ok=True)
rng = np.random.RandomState(0)
spacing = {}
for i in range(20):
    cid = f'ct_{i:03d}'
    z = 40 + (i * 7) % 21
    shape = (z, 192, 192)
    zz, yy, xx = np.meshgrid(np.arange(z), np.arange(192), np.arange(192), indexing='ij')
    body = ((yy - 96) / 80.0) ** 2 + ((xx - 96) / 70.0) ** 2 < 1
    img = np.where(body, 40 + 30 * gaussian_filter(rng.randn(*shape).astype(np.float32), 2), -1000).astype(np.float32)
    organ = ((zz - z / 2) / (z / 4)) ** 2 + ((yy - 90) / 25.0) ** 2 + ((xx - 100) / 30.0) ** 2 < 1
    img[organ] += 80
    img[:, :8, :] = 0  # zero border rows (outside the scanner field): cropped away
    np.save(os.path.join(root, 'imagesTr', f'{cid}_0000.npy'), img)
    np.save(os.path.join(root, 'labelsTr', f'{cid}.npy'), organ.astype(np.float32))
    spacing[cid] = [float(2.0 + (i % 4) * 0.5), float(0.7 + (i % 3) * 0.1), float(0.7 + (i % 3) * 0.1)]
json.dump(spacing, open(os.path.join(root, 'spacing.json'), 'w'))
json.dump({'channel_names': {'0': 'CT'}, 'labels': {'background': 0, 'organ': 1}, 'numTraining': 20,
           'file_ending': '.npy'}, open(os.path.join(root, 'dataset.json'), 'w'), indent=1)
