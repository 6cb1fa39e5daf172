#!/usr/bin/env bash
# Installs every Debian 12 package GraftWatch needs to build, test, benchmark and run its demo, and bids-validator
# from npm. Idempotent: prints nothing and does nothing when everything is already installed.
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

# bids-validator (npm, not in Debian): the BIDS check of a cohort's output (test integration.study.bids). Installed
# with npm from the npm registry, the version the test was written against; when that fails (no registry), the
# bootstrap goes on and the test reports itself skipped.
BIDS_VALIDATOR=bids-validator@1.15.0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "bootstrap: done" >&2
fi

if ! command -v bids-validator >/dev/null 2>&1 && [ -z "${GW_BIDS_VALIDATOR:-}" ]; then
  echo "bootstrap: installing $BIDS_VALIDATOR (npm)" >&2
  if ! $SUDO npm install -g --no-fund --no-audit --loglevel=error "$BIDS_VALIDATOR" >/dev/null 2>&1; then
    echo "bootstrap: warning: could not install $BIDS_VALIDATOR; test integration.study.bids will be skipped" >&2
  fi
fi
