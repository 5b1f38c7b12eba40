"""Writes a CT-like 512x512x300 int16 volume as .nii.gz (gzip level 6, what zlib/SimpleITK use by default):
air at -1000 HU, a body ellipse of soft tissue with lungs and bone, Gaussian noise sd 12 HU everywhere (real CT noise),
0.7 x 0.7 x 1.5 mm. Also writes the same voxels uncompressed (.nii) as a reference point."""
import gzip, sys
import numpy as np
import nibabel as nib

out = sys.argv[1]
rng = np.random.default_rng(0)
y, x = np.mgrid[0:512, 0:512].astype(np.float32)
body = ((x - 256) / 230) ** 2 + ((y - 256) / 170) ** 2 < 1
lungs = (((x - 170) / 70) ** 2 + ((y - 240) / 100) ** 2 < 1) | (((x - 342) / 70) ** 2 + ((y - 240) / 100) ** 2 < 1)
spine = ((x - 256) / 25) ** 2 + ((y - 370) / 25) ** 2 < 1
slice_ = np.full((512, 512), -1000, np.float32)
slice_[body] = 40
slice_[lungs] = -820
slice_[spine] = 700
volume = np.empty((512, 512, 300), np.int16)
for z in range(300):
    noisy = slice_ + rng.normal(0, 12, (512, 512)).astype(np.float32)
    volume[:, :, z] = np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)
img = nib.Nifti1Image(volume, np.diag([0.7, 0.7, 1.5, 1.0]))
img.header.set_data_dtype(np.int16)
nib.save(img, out + "/ct.nii")
with open(out + "/ct.nii", "rb") as src, gzip.open(out + "/ct.nii.gz", "wb", compresslevel=6) as dst:
    dst.write(src.read())
print(f"checksum {int(volume.astype(np.int64).sum())}")
