#!/usr/bin/env bash
# PREFIX/bin/nnunet, written by scripts/install.sh from scripts/nnunet-launcher.sh: runs the self-contained release
# PREFIX/@RELEASE@/ (no .NET needed on the node). Before anything else it asks the node's dynamic loader whether the
# release's native libraries load here (libstdc++ GLIBCXX_3.4.32 for TorchSharp's libLibTorchSharp.so, the glibc
# version libtorch and .NET need) and, when --gpus or --device cuda is given, whether an NVIDIA driver is there.
# When something is missing it prints one line naming it and how to get it, and exits 3 (2 for --gpus with the cpu
# build), instead of a .NET stack trace from a failed native load. NNUNET_SKIP_NODE_CHECK=1 skips the checks.
# Relocatable: the release is found next to this file's folder (symlinks to it are followed).
release_name='@RELEASE@'
backend='@BACKEND@'
min_driver='@MIN_DRIVER@'

self=$(readlink -f -- "${BASH_SOURCE[0]}")
prefix=${self%/*}; prefix=${prefix%/*}
release="$prefix/$release_name"
node=$(uname -n)
container='run nnunet from the container instead (Dockerfile / nnunet.def, docs/install.md)'

unfit() { printf 'nnunet: %s\n' "$1" >&2; exit "${2:-3}"; }

[ -x "$release/nnunet" ] || unfit "the release $release is missing or incomplete: install it again with scripts/install.sh --prefix $prefix"

glibc_version() {
  local v; v=$(getconf GNU_LIBC_VERSION 2>/dev/null) && { echo "${v#glibc }"; return; }
  v=$(ldd --version 2>/dev/null | head -n 1); echo "${v##* }"
}

# The loader's own verdict (ldd, or ld.so --list where ldd is absent), so LD_LIBRARY_PATH, RUNPATH and the ld.so cache
# count exactly as they will when .NET loads the libraries.
check_native_libraries() {
  local files=("$release/nnunet" "$release/libcoreclr.so" "$release/libSystem.Native.so" "$release/libLibTorchSharp.so")
  local report rtld=/lib64/ld-linux-x86-64.so.2 f
  if command -v ldd >/dev/null 2>&1; then
    report=$(ldd "${files[@]}" 2>&1)
  elif [ -x "$rtld" ]; then
    report=$(for f in "${files[@]}"; do echo "$f:"; "$rtld" --list "$f"; done 2>&1)
  else
    unfit "cannot run on $node: no glibc dynamic loader ($rtld); the release needs glibc Linux on x86-64: $container"
  fi

  # "FILE: /usr/lib/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by FILE)"
  local version_re='([^ :]+): version .(GLIBCXX|CXXABI|GLIBC)_([0-9.]+). not found \(required by ([^)]+)\)'
  local line current="" cxx_lib="" cxx_tags="" cxx_by="" glibc_tags="" glibc_by="" lib_missing="" lib_by=""
  while IFS= read -r line; do
    if [[ $line =~ $version_re ]]; then
      case ${BASH_REMATCH[2]} in
        GLIBC)
          [[ " $glibc_tags " == *" GLIBC_${BASH_REMATCH[3]} "* ]] || glibc_tags="${glibc_tags:+$glibc_tags }GLIBC_${BASH_REMATCH[3]}"
          glibc_by=${glibc_by:-${BASH_REMATCH[4]##*/}} ;;
        *)
          cxx_lib=${BASH_REMATCH[1]}
          [[ " $cxx_tags " == *" ${BASH_REMATCH[2]}_${BASH_REMATCH[3]} "* ]] || cxx_tags="${cxx_tags:+$cxx_tags }${BASH_REMATCH[2]}_${BASH_REMATCH[3]}"
          cxx_by=${cxx_by:-${BASH_REMATCH[4]##*/}} ;;
      esac
    elif [[ $line =~ ^(/[^[:space:]]+):$ ]]; then
      current=${BASH_REMATCH[1]##*/}
    elif [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ not\ found ]]; then
      lib_missing=${lib_missing:-${BASH_REMATCH[1]}}; lib_by=${lib_by:-$current}
    fi
  done <<<"$report"

  if [ -n "$glibc_tags" ]; then
    unfit "cannot run on $node: its glibc is $(glibc_version) but $glibc_by needs ${glibc_tags// /, }: use nodes whose OS has that glibc or newer, or $container"
  fi
  if [ -n "$cxx_tags" ]; then
    unfit "cannot run on $node: $cxx_lib lacks ${cxx_tags// /, }, which $cxx_by (TorchSharp's native library) needs: install a libstdc++6 from GCC 13 or newer (Debian 12: add the trixie suite pinned at priority 100 and apt-get install -t trixie libstdc++6, as scripts/setup.sh does; Debian 13 and Ubuntu 24.04 have it), or put such a libstdc++.so.6 on LD_LIBRARY_PATH (e.g. module load gcc/13), or $container"
  fi
  if [ -n "$lib_missing" ]; then
    unfit "cannot run on $node: $lib_missing, which ${lib_by:-the release} needs, is not found by the dynamic loader: install the package that provides it or put its folder on LD_LIBRARY_PATH, or $container"
  fi
}

wants_gpu() {
  local arg previous="" gpu=1
  for arg in "$@"; do
    case $arg in
      --help|-h|--simulate) return 1 ;;
      --gpus|--gpus=*|--device=cuda*) gpu=0 ;;
      cuda*) [ "$previous" = --device ] && gpu=0 ;;
    esac
    previous=$arg
  done
  return $gpu
}

libcuda_found() {
  local dir
  local IFS=:
  for dir in ${LD_LIBRARY_PATH:-}; do [ -n "$dir" ] && [ -e "$dir/libcuda.so.1" ] && return 0; done
  unset IFS
  for ldconfig in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
    command -v "$ldconfig" >/dev/null 2>&1 || continue
    "$ldconfig" -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' && return 0
    return 1
  done
  # no ldconfig to ask: the usual driver locations
  for dir in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /.singularity.d/libs; do [ -e "$dir/libcuda.so.1" ] && return 0; done
  return 1
}

check_cuda_driver() {
  local proc=/proc/driver/nvidia/version driver
  [ -r "$proc" ] || unfit "cannot use GPUs on $node: --gpus/--device cuda was given but no NVIDIA driver is loaded ($proc is missing): run on a GPU node (SLURM: --gres=gpu:N), or leave out --gpus to run on the CPU"
  driver=$(sed -n 's/.*Kernel Module[^0-9]*\([0-9][0-9.]*\).*/\1/p' "$proc" | head -n 1)
  libcuda_found || unfit "cannot use GPUs on $node: the NVIDIA kernel module ${driver:-?} is loaded but its user-space library libcuda.so.1 is not found: install the driver's libcuda (libcuda1 / nvidia-driver-cuda), or in a container start it with apptainer --nv / docker --gpus all"
  [ "$backend" = cuda ] || unfit "--gpus/--device cuda was given but $release_name is the cpu build: install the cuda build with scripts/install.sh --backend cuda (docs/install.md)" 2
  if [ -n "$min_driver" ] && [ -n "$driver" ] && [ "${driver%%.*}" -lt "$min_driver" ] 2>/dev/null; then
    unfit "cannot use GPUs on $node: its NVIDIA driver $driver is older than $min_driver, the oldest that runs libtorch's CUDA 12: ask for a newer driver, or leave out --gpus to run on the CPU"
  fi
}

if [ "${NNUNET_SKIP_NODE_CHECK:-0}" != 1 ]; then
  check_native_libraries
  if wants_gpu "$@"; then check_cuda_driver; fi
fi
exec "$release/nnunet" "$@"
