#!/usr/bin/env bash
# Wall-time benchmark: gw_import vs dcm2niix (Debian) on the same DICOM data in the same run.
# Usage: bench/import/run.sh [path/to/gw_import] [data root (default ../shared/data)] [repeats (default 3)]
# Prints, per data set, the best-of-N wall time of each tool and the ratio gw_import / dcm2niix (goal <= 0.5).
# dcm2niix cannot read gzip-compressed DICOM (philips_dwi ships IM_*.gz), so the inputs are decompressed once into
# a temporary folder and BOTH tools read that same copy; gw_import is also timed on the original .gz files.
# Both write gzip-compressed NIfTI (.nii.gz) + JSON (+ bval/bvec): dcm2niix -z y (pigz when installed, else its
# internal compressor at its default level 6), gw_import its default nii.gz (zlib level 1, run-length strategy, in
# independent pieces on all cores). The summed .nii.gz sizes of both are printed so the outputs can be compared.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
gw_import="${1:-${GW_BIN_DIR:-$root/build/bin}/gw_import}"
data="${2:-${GW_EXTERNAL_DATA:-$root/../shared/data}}"
repeats="${3:-3}"
command -v dcm2niix >/dev/null || { echo "dcm2niix not installed (apt-get install dcm2niix)" >&2; exit 2; }
[ -x "$gw_import" ] || { echo "gw_import not found: $gw_import" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
# best wall time of `repeats` runs of "$@" (output folder recreated each time)
best() {
  local out="$1"; shift
  local best_t=""
  for _ in $(seq "$repeats"); do
    rm -rf "$out"; mkdir -p "$out"
    local t0 t1
    t0=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }; t1=$(now)
    local t; t=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best_t" ] || [ "$(echo "$t < $best_t" | bc -l)" = 1 ]; then best_t=$t; fi
  done
  printf '%.3f' "$best_t"
}

nii_bytes() { find "$1" -name '*.nii.gz' -printf '%s\n' | awk '{s += $1} END {printf "%.1f", s / 1048576}'; }
echo "dcm2niix gzip: $(command -v pigz >/dev/null && echo pigz || echo internal)"
printf '%-28s %12s %12s %8s %14s %14s\n' "data set" "gw_import[s]" "dcm2niix[s]" "ratio" "gw nii.gz[MB]" "d2n nii.gz[MB]"
for set in dicom/philips_dwi dicom/siemens_xa60_enhanced; do
  src="$data/$set/In"
  [ -d "$src" ] || { echo "absent: $src" >&2; continue; }
  copy="$tmp/in_$(basename "$set")"
  mkdir -p "$copy"
  i=0
  while IFS= read -r -d '' f; do
    i=$((i + 1))
    case "$f" in
      *.gz) gzip -dc "$f" > "$copy/f$i" ;;
      *) cp "$f" "$copy/f$i" ;;
    esac
  done < <(find "$src" -type f -print0)
  g=$(best "$tmp/out_gw" "$gw_import" "$copy" -o "$tmp/out_gw" --force)
  d=$(best "$tmp/out_d2n" dcm2niix -z y -o "$tmp/out_d2n" "$copy")
  printf '%-28s %12s %12s %8.2f %14s %14s\n' "$(basename "$set")" "$g" "$d" "$(echo "$g / $d" | bc -l)" \
    "$(nii_bytes "$tmp/out_gw")" "$(nii_bytes "$tmp/out_d2n")"
  if [ -n "$(find "$src" -type f -name '*.gz' -print -quit)" ]; then
    gz=$(best "$tmp/out_gz" "$gw_import" "$src" -o "$tmp/out_gz" --force)
    printf '%-28s %12s %12s\n' "  (gw_import on .gz input)" "$gz" "-"
  fi
done
