#!/usr/bin/env bash
# Runs the libFuzzer targets for SECONDS each (default 60: the CI smoke run; `make fuzz` uses 1800).
#   fuzz/run_fuzz.sh [SECONDS] [BUILD_DIR]        BUILD_DIR default build-fuzz (configured here if absent)
# Seeds are copied at run time from ../shared/data (GW_EXTERNAL_DATA) into BUILD_DIR/corpus-seed; new inputs go to
# BUILD_DIR/corpus/<target> (kept between runs), crashes to BUILD_DIR/crashes/<target>. Limits per input: 10 s,
# 2 GB RSS, 1 GB per allocation (a header claiming a huge image must be refused before allocating). Leaks inside
# third-party libraries on malformed input are suppressed by fuzz/lsan.supp (each entry documented there).
# Exit 1 when any target found a crash, leak, timeout or out-of-memory; with FUZZ_REPORT_ONLY=1 (CI) findings are
# printed with their artifacts but the exit status is 0: exploration is random, and every fixed finding gets a
# deterministic regression test in the unit tests instead. fuzz/<target>.dict, when present, is the target's libFuzzer
# dictionary (header keywords). fuzz/replay/ builds the targets without libFuzzer to replay inputs under valgrind.
# An input counts as a hang after 25 s: a 41 kB gzip-compressed DICOM file that inflates to 42 MB takes 1.7 s under
# ASan on an idle machine (0.26 s in Release), and several times that on a loaded CI machine.
set -euo pipefail
SECONDS_PER_TARGET=${1:-60}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-build-fuzz}
DATA=${GW_EXTERNAL_DATA:-$SRC/../shared/data}
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$SRC/fuzz" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" --target fuzz_dicom fuzz_image -j "${JOBS:-2}"
rm -rf "$BUILD/corpus-seed"
python3 "$SRC/fuzz/prepare_corpus.py" "$DATA" "$BUILD/corpus-seed"
status=0
stamp=$(mktemp)
for t in dicom image; do
  mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t"
  log="$BUILD/fuzz_$t.log"
  dict=()
  [ -f "$SRC/fuzz/$t.dict" ] && dict=(-dict="$SRC/fuzz/$t.dict")
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS=suppressions="$SRC/fuzz/lsan.supp" \
    "$BUILD/bin/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -max_len=1100000 -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t/" "${dict[@]}" \
    "$BUILD/corpus/$t" "$BUILD/corpus-seed/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]*' || true)
  crashes=$(find "$BUILD/crashes/$t" -type f -newer "$stamp" | wc -l)
  echo "fuzz_$t: ${SECONDS_PER_TARGET} s, ${execs:-?} executions (${rate:-?}/s), $cov, exit $rc, $crashes new artifact(s) in $BUILD/crashes/$t (log $log)"
  if [ "$rc" -ne 0 ]; then
    status=1
    grep -m5 -E 'ERROR: |SUMMARY: |==[0-9]+==' "$log" || true
  fi
done
rm -f "$stamp"
if [ "$status" -ne 0 ] && [ "${FUZZ_REPORT_ONLY:-0}" = "1" ]; then
  echo "fuzz: FINDINGS above (reported, not fatal with FUZZ_REPORT_ONLY=1); artifacts in $BUILD/crashes/"
  exit 0
fi
exit $status
