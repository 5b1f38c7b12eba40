"""nibabel's load of the same files, best and median of REPEATS (np.asanyarray(img.dataobj): the stored int16 voxels,
what NiftiReader returns when there is no scaling). Prints 'nibabel FILE best median voxels checksum'."""
import sys, time
import numpy as np
import nibabel as nib

repeats = int(sys.argv[1])
for path in sys.argv[2:]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        data = np.asanyarray(nib.load(path, mmap=False).dataobj)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"nibabel {path} {times[0]:.3f} {times[len(times) // 2]:.3f} {data.size} {int(data.astype(np.int64).sum())}")
