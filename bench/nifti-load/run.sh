#!/usr/bin/env bash
# Load time of a CT-like 512x512x300 int16 volume as .nii.gz (and .nii): NnUnet.Core NiftiReader.Read vs nibabel,
# same files, same run; prints both times and the ratio. Needs /usr/bin/python3 with numpy + nibabel.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
repeats="${REPEATS:-5}"
/usr/bin/python3 "$here/make_ct.py" "$work"
ls -l "$work"/ct.nii "$work"/ct.nii.gz | awk '{print $5, $9}'
dotnet build "$here/NiftiLoadBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
{
  dotnet "$work/bin/NiftiLoadBench.dll" "$repeats" "$work/ct.nii.gz" "$work/ct.nii"
  /usr/bin/python3 "$here/nibabel_load.py" "$repeats" "$work/ct.nii.gz" "$work/ct.nii"
} | tee "$work/results.txt"
/usr/bin/python3 - "$work/results.txt" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    who, path, best, median, voxels, checksum = line.split()
    rows[(who, path.rsplit("/", 1)[1])] = (float(best), float(median), checksum)
for name in ("ct.nii.gz", "ct.nii"):
    ours, theirs = rows[("csharp", name)], rows[("nibabel", name)]
    same = "same voxels" if ours[2] == theirs[2] else "CHECKSUMS DIFFER"
    print(f"{name}: C# best {ours[0]:.3f} s (median {ours[1]:.3f}), nibabel best {theirs[0]:.3f} s (median {theirs[1]:.3f}): "
          f"{theirs[0] / ours[0]:.2f}x faster; {same}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
