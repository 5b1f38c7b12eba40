#!/usr/bin/env bash
# One-command, idempotent set-up of a fresh machine for NnUnetCluster.
#  - makes TorchSharp's native library loadable (needs GLIBCXX_3.4.32),
#  - installs Debian peers used by tests and benchmarks (nibabel, scipy, skimage, sklearn, chromium, postgresql),
#    and libisal2 (ISA-L: the fast gzip inflate used for .nii.gz when present),
#  - restores the .NET solution (and the runtime packs of scripts/install.sh's self-contained release).
# Prints what it did; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
SUDO=""; if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

is_debian12() { [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ]; }

libstdcxx_path() {
  ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/{print $NF; exit}'
}

has_glibcxx_3_4_32() {
  local lib; lib=$(libstdcxx_path)
  [ -n "$lib" ] && grep -aq 'GLIBCXX_3\.4\.32' "$lib"
}

APT_UPDATED=0
apt_update_once() { if [ $APT_UPDATED = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi; }

# 1. libstdc++ for TorchSharp's libLibTorchSharp.so
if has_glibcxx_3_4_32; then
  say "libstdc++ provides GLIBCXX_3.4.32: nothing to do"
elif is_debian12 && command -v apt-get >/dev/null; then
  say "libstdc++ lacks GLIBCXX_3.4.32: adding Debian trixie at pin priority 100 for libstdc++6"
  if [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
    $SUDO tee /etc/apt/sources.list.d/trixie.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  if [ ! -f /etc/apt/preferences.d/trixie-low ]; then
    $SUDO tee /etc/apt/preferences.d/trixie-low >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  fi
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t trixie libstdc++6 >/dev/null
  has_glibcxx_3_4_32 && say "libstdc++6 from trixie installed" || { say "ERROR: GLIBCXX_3.4.32 still missing"; exit 1; }
else
  say "WARNING: libstdc++ lacks GLIBCXX_3.4.32 and this is not Debian 12 with apt."
  say "         Install a libstdc++6 from GCC >= 13 (e.g. Debian trixie / Ubuntu 24.04) so TorchSharp can load."
fi

# 2. Debian peers used by fixture scripts, cross-checks, benchmarks and the browser test; ISA-L for .nii.gz loading;
#    iptables for the kernel-level network fault tests
if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  want=(python3-nibabel python3-scipy python3-skimage python3-sklearn python3-numpy python3-torch chromium postgresql libisal2 iptables)
  missing=()
  for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "Debian packages present: ${want[*]}"
  fi
else
  say "no apt: install python3 with nibabel, scipy, scikit-image, scikit-learn, and chromium yourself for the cross-checks,"
  say "        and ISA-L (libisal.so.2) for fast .nii.gz loading"
fi

# 2b. PostgreSQL server binaries for the coordinator fail-over test (it starts a throwaway server with initdb/pg_ctl;
#     as root it runs them as the 'postgres' user that Debian's package creates)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ]; then
  say "PostgreSQL server binaries: $pg_bin"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    say "WARNING: running as root but there is no 'postgres' user: the PostgreSQL test cannot start its server"
  fi
else
  say "WARNING: PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: CoordinatorFailoverTests will fail"
fi

# 3. .NET restore
command -v dotnet >/dev/null || { say "ERROR: dotnet (SDK 10) is not on PATH"; exit 1; }
say "dotnet restore"
dotnet restore NnUnetCluster.sln -v q --nologo >/dev/null
# the linux-x64 runtime packs of the self-contained release (scripts/install.sh, and its test), into its build folder
say "dotnet restore of the self-contained linux-x64 release (scripts/install.sh)"
dotnet restore src/NnUnet.Cli/NnUnet.Cli.csproj -r linux-x64 -p:SelfContained=true --artifacts-path artifacts/install/cpu -v q --nologo >/dev/null
say "done"
