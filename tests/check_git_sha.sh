#!/bin/bash
# cmake/GWGitSha.cmake: the commit of the sources at build time, "-dirty" for changed tracked files, "unknown"
# outside git, and the header rewritten only when its content changes (so a build after a commit recompiles the
# provenance, and a build without one recompiles nothing).
set -euo pipefail
script=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/sha.h
run() { cmake -DSOURCE_DIR="$tmp/repo" -DOUT="$out" -P "$script"; }
fail() { echo "FAIL: $*"; cat "$out" 2>/dev/null; exit 1; }
mkdir "$tmp/repo"
run
grep -q '"unknown"' "$out" || fail "outside git: expected unknown"
git -C "$tmp/repo" init -q
echo a > "$tmp/repo/f"
git -C "$tmp/repo" add f
git -C "$tmp/repo" -c user.name=t -c user.email=t@t commit -qm one
first=$(git -C "$tmp/repo" rev-parse --short=12 HEAD)
run
grep -q "\"$first\"" "$out" || fail "clean tree: expected $first"
before=$(stat -c %Y.%s "$out"); sleep 1.1; run
[ "$(stat -c %Y.%s "$out")" = "$before" ] || fail "unchanged commit: the header was rewritten"
echo b > "$tmp/repo/f"
run
grep -q "\"$first-dirty\"" "$out" || fail "changed tracked file: expected $first-dirty"
git -C "$tmp/repo" -c user.name=t -c user.email=t@t commit -qam two
second=$(git -C "$tmp/repo" rev-parse --short=12 HEAD)
run
grep -q "\"$second\"" "$out" || fail "new commit: expected $second"
echo "ok: unknown, $first, $first-dirty, $second; unchanged content not rewritten"
