#!/usr/bin/env bash
# Regenerates testing-data/MANIFEST.sha256 from the files under testing-data/ (README and manifest excluded).
set -euo pipefail
cd "$(dirname "$0")/../testing-data"
find . -type f ! -name MANIFEST.sha256 ! -name README.md | sed 's|^\./||' | LC_ALL=C sort | xargs -r sha256sum > MANIFEST.sha256
