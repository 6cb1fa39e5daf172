#!/usr/bin/env bash
# testing-data/ integrity: every file listed, every listed file present and unchanged.
set -euo pipefail
cd "$1"
sha256sum --quiet -c MANIFEST.sha256
listed=$(awk '{print $2}' MANIFEST.sha256 | LC_ALL=C sort)
present=$(find . -type f ! -name MANIFEST.sha256 ! -name README.md | sed 's|^\./||' | LC_ALL=C sort)
if [ "$listed" != "$present" ]; then
  echo "FAIL: files present but not in MANIFEST.sha256 (or the reverse):"
  diff <(echo "$listed") <(echo "$present") || true
  exit 1
fi
echo "ok: $(echo "$listed" | wc -l) files match MANIFEST.sha256"
