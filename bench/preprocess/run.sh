#!/usr/bin/env bash
# Whole preprocessing (crop, CT normalisation, resampling with separate z where chosen, class locations, write) of a
# synthetic 20-case CT-like dataset: NnUnet.Core DatasetPreprocessor vs the same steps in Python done nnU-Net's way
# (skimage/scipy), same input, same run. Needs /usr/bin/python3 with numpy/scipy/skimage.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
NP="${NP:-2}"
/usr/bin/python3 "$here/make_dataset.py" "$work/Dataset900_SynthCT"
dotnet build "$here/PreprocessBench.csproj" -c Release -v q -clp:ErrorsOnly -o "$work/bin" >/dev/null
echo "machine: $(nproc) cores, $(uname -m); dotnet $(dotnet --version)"
cs=$(dotnet "$work/bin/PreprocessBench.dll" "$work/Dataset900_SynthCT" "$work/cs_out" "$NP" | tee /dev/stderr)
py=$(/usr/bin/python3 "$here/python_peer.py" "$work/Dataset900_SynthCT" "$work/py_out" "$NP" | tee /dev/stderr)
/usr/bin/python3 - "$cs" "$py" <<'PY'
import sys
cs = float(sys.argv[1].split()[5]); py = float(sys.argv[2].split()[5])
print(f'C# {cs:.3f} cases/s vs Python (nnU-Net way) {py:.3f} cases/s: {cs / py:.1f}x')
PY
