#!/usr/bin/env bash
# Installs nnunet for a cluster: a self-contained linux-x64 release (the .NET runtime and libtorch included, no .NET
# SDK needed on the nodes) in PREFIX/nnunet-VERSION/, and the launcher PREFIX/bin/nnunet that every node puts on its
# PATH from a shared mount. VERSION = product version, commit and Torch backend, e.g. 0.1.0-g7059d61175-cpu.
#
#   scripts/install.sh [--prefix DIR] [--backend cpu|cuda] [--force]
#
#   --prefix DIR      where to install (default: ~/.local, so ~/.local/bin/nnunet); a shared folder on a cluster
#   --backend cpu     libtorch for CPUs (default); cuda: TorchSharp-cuda-linux (CUDA 12), needs a NuGet feed serving it
#   --force           publish again even when this release is already installed
#
# Idempotent: a release already installed (same version, commit, backend; no uncommitted changes) is not built again.
# The release is published into a staging folder and moved into place, and the launcher is replaced in one rename,
# so a node never sees a half-written install. Older releases stay (listed at the end) until you remove them.
# Needs the .NET 10 SDK on the machine that runs it; the Dockerfile / nnunet.def build the same release in a container.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '[install] %s\n' "$*"; }
fail() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

prefix="${HOME:-}/.local"
backend=cpu
force=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a folder"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --backend) [ $# -ge 2 ] || fail "--backend needs cpu or cuda"; backend=$2; shift 2 ;;
    --backend=*) backend=${1#*=}; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) fail "unknown option '$1' (scripts/install.sh --help)" ;;
  esac
done
case $backend in cpu|cuda) ;; *) fail "--backend must be cpu or cuda, not '$backend'" ;; esac
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || fail "the release is built for linux-x64; this is $(uname -s)/$(uname -m)"
command -v dotnet >/dev/null 2>&1 || fail "the .NET 10 SDK (dotnet) is needed on the machine that installs, not on the nodes: install it (https://learn.microsoft.com/dotnet/core/install/linux) or build the container (docs/install.md)"
[ -n "$prefix" ] || fail "--prefix is empty (and HOME is not set)"
mkdir -p "$prefix" || fail "cannot create $prefix"
prefix=$(cd "$prefix" && pwd)

version=$(sed -n 's:.*<Version>\([^<]*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n 1)
[ -n "$version" ] || fail "no <Version> in $repo/Directory.Build.props"
git_args=()
if commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null); then
  # uncommitted changes to what goes into the build make the release name end in -dirty, and it is always rebuilt
  dirty=""
  [ -z "$(git -C "$repo" status --porcelain -- src cluster-config Directory.Build.props Directory.Packages.props 2>/dev/null)" ] || dirty=-dirty
else
  commit=${NNUNET_COMMIT:-unknown}; dirty=""
  git_args=(-p:EnableSourceControlManagerQueries=false)
fi
name="nnunet-$version-g${commit:0:10}-$backend$dirty"
target="$prefix/$name"
cuda_version=$(sed -n 's:.*Include="TorchSharp-cuda-linux" Version="\([^"]*\)".*:\1:p' "$repo/Directory.Packages.props")

if [ -f "$target/RELEASE" ] && [ -z "$dirty" ] && [ $force = 0 ]; then
  say "$name is already installed in $prefix: nothing to build"
else
  [ -z "$dirty" ] || say "the checkout has uncommitted changes under src/ or in the build files: building $name again"
  stage="$prefix/.$name.partial.$$"
  log=$(mktemp)
  trap 'rm -rf "$stage" "$log"' EXIT
  say "publishing $name: self-contained linux-x64, $backend Torch backend (a few minutes; build files in artifacts/install/$backend)"
  # no build servers: nothing stays running on a login node (or holds the output of whoever started the install)
  if ! dotnet publish "$repo/src/NnUnet.Cli/NnUnet.Cli.csproj" -c Release -r linux-x64 --self-contained --disable-build-servers \
      -p:TorchBackend="$backend" -p:SourceRevisionId="$commit$dirty" "${git_args[@]}" \
      --artifacts-path "$repo/artifacts/install/$backend" -o "$stage" --nologo -v q -clp:ErrorsOnly >"$log" 2>&1; then
    if grep -qE 'NU110[0-9].*(TorchSharp-cuda-linux|libtorch-cuda)' "$log"; then
      feeds=$(dotnet nuget list source --format short 2>/dev/null | awk '$1 ~ /^E/ {print $2}' | paste -sd ' ' -)
      fail "no configured NuGet feed serves TorchSharp-cuda-linux $cuda_version (enabled feeds: ${feeds:-none}): add one that does (dotnet nuget add source URL, or a local folder holding TorchSharp-cuda-linux $cuda_version and the libtorch-cuda-12.8-linux-x64 packages it depends on) and run this again, or install --backend cpu"
    fi
    cat "$log" >&2
    fail "dotnet publish failed (output above)"
  fi

  # what an administrator needs next to the program: the HOCON examples (--config) and the SLURM script
  mkdir -p "$stage/cluster-config" "$stage/slurm"
  cp "$repo"/cluster-config/*.hocon "$stage/cluster-config/"
  cp "$repo"/scripts/slurm/*.sbatch "$repo"/scripts/slurm/*.sh "$stage/slurm/"
  cat >"$stage/RELEASE" <<EOF
name=$name
version=$version
commit=$commit$dirty
backend=$backend
built=$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) with .NET SDK $(dotnet --version)
EOF
  # every user of a shared install runs it, whatever the umask of the one who installed it
  chmod -R a+rX,go-w "$stage"

  if [ -e "$target" ]; then
    old="$prefix/.$name.replaced.$$"
    mv "$target" "$old"
    mv "$stage" "$target"
    rm -rf "$old"
    say "replaced $target"
  else
    mv "$stage" "$target"
    say "installed $target ($(du -sh "$target" | cut -f1))"
  fi
fi

mkdir -p "$prefix/bin"
launcher="$prefix/bin/nnunet"
min_driver=""; [ "$backend" = cuda ] && min_driver=525
tmp_launcher="$prefix/bin/.nnunet.$$"
sed -e "s|@RELEASE@|$name|g" -e "s|@BACKEND@|$backend|g" -e "s|@MIN_DRIVER@|$min_driver|g" \
  "$repo/scripts/nnunet-launcher.sh" >"$tmp_launcher"
chmod 755 "$tmp_launcher"
if cmp -s "$tmp_launcher" "$launcher"; then
  rm -f "$tmp_launcher"
  say "launcher $launcher unchanged (runs $name)"
else
  mv -f "$tmp_launcher" "$launcher"
  say "launcher $launcher now runs $name"
fi

others=$(cd "$prefix" && ls -d nnunet-*/ 2>/dev/null | sed 's:/$::' | grep -vxF "$name" | paste -sd ' ' - || true)
[ -z "$others" ] || say "other releases in $prefix (remove them once no job runs them): $others"

say "check on this machine: $launcher --version"
if "$launcher" --version | sed 's/^/    /'; then
  say "done: on every node, export PATH=$prefix/bin:\$PATH and run nnunet --version first"
else
  say "installed, but this machine cannot run it (the line above says why); nodes that can will run it"
fi
