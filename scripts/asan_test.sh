#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of a fast test subset (what CI runs): the unit tests of core,
# io, cli and dicom, and the DICOM malformed-corpus test (every file of ../shared/data/malformed parsed under the
# sanitizers; skipped when the data is absent).
#   scripts/asan_test.sh [BUILD_DIR]           default build-asan; `make asan-test`
#   GW_ASAN_ALL=1 scripts/asan_test.sh         every test (unit, app, integration, external; not slow)
# gw_import is built too (DicomImport.AppExitCodes runs it, sanitized). Any sanitizer report fails the test that produced it (halt_on_error, -fno-sanitize-recover=undefined).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-asan}
JOBS=${JOBS:-$(nproc)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$(date +%s)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_SANITIZE=ON >/dev/null
fi
if [ -n "${GW_ASAN_ALL:-}" ]; then
  cmake --build "$BUILD" -j "$JOBS"
  regex='.*'
  labels=(-LE slow)
else
  cmake --build "$BUILD" --target gw_core_tests gw_io_tests gw_cli_tests gw_dicom_tests app_gw_import -j "$JOBS"
  regex='^(Core[A-Za-z]*|Dwi|Gradients|ImageIo|Transforms|Cli|DicomImport)\.|^DicomExternal\.MalformedFilesNeverCrash$'
  labels=()
fi
built=$(date +%s)
cd "$BUILD"
ctest -R "$regex" "${labels[@]}" -j "$JOBS" --output-on-failure --timeout 900
done_=$(date +%s)
echo "asan-test: build $((built - start)) s, tests $((done_ - built)) s"
