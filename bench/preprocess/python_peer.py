#!/usr/bin/python3
"""The same preprocessing in Python, nnU-Net's way (scipy binary_fill_holes crop, CT normalisation, skimage resize with
separate z where nnU-Net chooses it, RandomState(1234) class locations, np.save), one process per case like
nnU-Net's -np. Prints cases/s."""
import json, os, sys, time
from multiprocessing import Pool
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'fixtures', 'resampling'))
from make_resampling_fixtures import resample, sep_z_and_axis  # noqa: E402
from make_preprocess_fixture import crop_to_nonzero  # noqa: E402

root, out, nproc = sys.argv[1], sys.argv[2], int(sys.argv[3])
spacing = json.load(open(os.path.join(root, 'spacing.json')))
target = [2.5, 0.8, 0.8]


def run(cid):
    img = np.load(os.path.join(root, 'imagesTr', f'{cid}_0000.npy'))[None]
    seg = np.load(os.path.join(root, 'labelsTr', f'{cid}.npy'))[None].astype(np.int16)
    d, s, bbox = crop_to_nonzero(img, seg)
    sp = spacing[cid]
    new_shape = [int(round(i / j * k)) for i, j, k in zip(sp, target, d.shape[1:])]
    c0 = d[0].astype(np.float32)
    np.clip(c0, -150, 400, out=c0); c0 -= 60; c0 /= 80
    do, axis = sep_z_and_axis(None, sp, target)
    data = resample(c0[None], new_shape, False, axis, 3, do, 0).astype(np.float32)
    segr = resample(s.astype(np.float32), new_shape, True, axis, 1, do, 0).astype(np.int8)
    coords = np.argwhere(segr[0] == 1)
    rs = np.random.RandomState(1234)
    n = max(min(10000, len(coords)), int(np.ceil(len(coords) * 0.01)))
    _ = coords[rs.choice(len(coords), n, replace=False)]
    np.save(os.path.join(out, cid + '.npy'), data)
    np.save(os.path.join(out, cid + '_seg.npy'), segr)


ids = sorted(spacing)
os.makedirs(out, exist_ok=True)
t = time.perf_counter()
with Pool(nproc) as p:
    p.map(run, ids)
dt = time.perf_counter() - t
print(f'python {len(ids)} cases {dt:.2f} s {len(ids) / dt:.3f} cases/s np={nproc}')
