#!/usr/bin/env bash
# The README's main job on a built-in demo: a generated phantom study (spinal cord after a graft, 3 timepoints,
# scenario "combined": mass growth, new enhancement, edema, new syrinx, cord swelling, FA decline) written as
# DICOM like a scanner would, then the whole pipeline: DICOM import -> registration to baseline with a quality
# gate -> segmentation -> DTI -> follow-up analysis and safety flags -> HTML report.
# Usage: scripts/demo.sh [BUILD_DIR] [DEMO_DIR]
set -euo pipefail
BUILD_DIR=${1:-build}
DEMO_DIR=${2:-$BUILD_DIR/demo}
BIN=$BUILD_DIR/bin
for app in gw_phantom gw_import gw_followup; do
  [[ -x $BIN/$app ]] || { echo "demo: $BIN/$app is missing (build first: make build)" >&2; exit 1; }
done
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)

echo "== 1/4 generating a phantom follow-up study as DICOM (scenario 'combined', 3 timepoints)"
"$BIN/gw_phantom" -o "$DEMO_DIR/study" --scenario combined --timepoints 3 --seed 1 --format dicom --quiet

echo "== 2/4 importing the DICOM series (gw_import)"
"$BIN/gw_import" "$DEMO_DIR/study/dicom" -o "$DEMO_DIR/imported" --quiet
ls "$DEMO_DIR/imported" | sed 's/^/   /' | head -20

echo "== 3/4 writing the study description (timepoints = DICOM folders, dates, transplant date)"
python3 - "$DEMO_DIR" <<'PY'
import json, sys, pathlib, csv
demo = pathlib.Path(sys.argv[1])
meta = json.loads((demo / "study" / "graftwatch.json").read_text())
rows = list(csv.DictReader(open(demo / "study" / "sessions.tsv"), delimiter="\t"))
study = {"subject": "sub-demo", "transplant_date": meta["transplant_date"],
         "timepoints": [{"id": r["session_id"], "date": r["acq_time"][:10],
                         "dicom": f"study/dicom/{r['session_id']}"} for r in rows]}
if "graft_site_lps" in meta:
    study["graft_site_lps"] = meta["graft_site_lps"]
(demo / "study.json").write_text(json.dumps(study, indent=2) + "\n")
PY

echo "== 4/4 follow-up analysis: import, registration, segmentation, DTI, flags, report (gw_followup)"
set +e
"$BIN/gw_followup" "$DEMO_DIR/study.json" -o "$DEMO_DIR/followup"
code=$?
set -e
[[ $code -eq 0 ]] || { echo "demo: gw_followup failed with exit code $code" >&2; exit $code; }
echo
echo "Expected flags (phantom truth): $(python3 -c "import json,sys; t=json.load(open('$DEMO_DIR/study/truth/truth.json')); print(', '.join(sorted({f['timepoint']+' '+f['code'] for f in t['expected_flags']})))")"
echo
echo "Report:        $DEMO_DIR/followup/report.html"
echo "Flags:         $DEMO_DIR/followup/flags.json"
echo "Measurements:  $DEMO_DIR/followup/measurements.tsv"
