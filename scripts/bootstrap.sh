#!/usr/bin/env bash
# Installs every Debian 12 package GraftWatch needs to build, test, benchmark and run its demo.
# Idempotent: prints nothing and does nothing when everything is already installed.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ccache pkg-config git clang-format
  # libraries
  libinsighttoolkit5-dev libdcmtk-dev libeigen3-dev libcli11-dev libgtest-dev
  nlohmann-json3-dev libopenjp2-7-dev zlib1g-dev libisal-dev nettle-dev
  # test helpers
  libxml2-utils libgdcm-tools python3 python3-numpy python3-nibabel
  # peer tools used by tests and benchmarks
  dcm2niix mrtrix3 elastix python3-dipy
  # cohort workflow and the report check in a browser (tests/integration)
  snakemake chromium
  # sanitizers and fuzzing (make asan-test, make fuzz-smoke)
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "bootstrap: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done" >&2
