#!/usr/bin/env python3
"""Assembles a multi-subject BIDS phantom cohort from gw_phantom studies.

gw_phantom writes one subject (sub-01) per study; this script generates one study per subject (scenario and seed
given per subject) in a scratch folder and moves it into OUT as sub-<NN>, renaming the BIDS entities in file names
(sub-01_ -> sub-NN_) and adding the subject to participants.tsv. The truth (derivatives/truth) is kept per subject.

usage: make_phantom_cohort.py --bin BIN_DIR -o OUT --timepoints N SCENARIO[:SEED] [SCENARIO[:SEED] ...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def rename_tree(src, dst, old, new):
    """Moves folder src to dst, replacing `old` by `new` in every file name (contents are not BIDS-named)."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.join(dst, rel.replace(old, new)) if rel != "." else dst
        os.makedirs(target, exist_ok=True)
        for f in files:
            shutil.move(os.path.join(root, f), os.path.join(target, f.replace(old, new)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="folder with gw_phantom")
    ap.add_argument("-o", "--output", required=True, help="cohort folder (must not exist)")
    ap.add_argument("--timepoints", type=int, default=2)
    ap.add_argument("subjects", nargs="+", help="SCENARIO[:SEED], one per subject (seed default: subject number)")
    args = ap.parse_args()
    if os.path.exists(args.output):
        sys.exit("make_phantom_cohort: output exists: " + args.output)
    os.makedirs(args.output)
    participants = ["participant_id\tscenario\tseed"]
    with tempfile.TemporaryDirectory(prefix="gwcohort") as scratch:
        for i, spec in enumerate(args.subjects, start=1):
            scenario, _, seed = spec.partition(":")
            seed = seed or str(i)
            label = "sub-%02d" % i
            study = os.path.join(scratch, label)
            cmd = [os.path.join(args.bin, "gw_phantom"), "-o", study, "--scenario", scenario, "--timepoints",
                   str(args.timepoints), "--seed", seed, "--format", "bids"]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit("make_phantom_cohort: gw_phantom failed (%d): %s" % (r.returncode, r.stderr))
            rename_tree(os.path.join(study, "sub-01"), os.path.join(args.output, label), "sub-01", label)
            truth = os.path.join(study, "derivatives", "truth")
            rename_tree(os.path.join(truth, "sub-01"), os.path.join(args.output, "derivatives", "truth", label),
                        "sub-01", label)
            for f in ("dataset_description.json", "dseg.tsv"):
                dst = os.path.join(args.output, "derivatives", "truth", f)
                if not os.path.exists(dst):
                    shutil.copy(os.path.join(truth, f), dst)
            if i == 1:
                shutil.copy(os.path.join(study, "dataset_description.json"),
                            os.path.join(args.output, "dataset_description.json"))
            participants.append("%s\t%s\t%s" % (label, scenario, seed))
    with open(os.path.join(args.output, "participants.tsv"), "w") as f:
        f.write("\n".join(participants) + "\n")
    with open(os.path.join(args.output, "participants.json"), "w") as f:
        json.dump({"scenario": {"Description": "gw_phantom scenario"},
                   "seed": {"Description": "gw_phantom random seed"}}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
