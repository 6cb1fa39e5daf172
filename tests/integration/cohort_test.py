#!/usr/bin/env python3
"""Integration tests of the cohort tools on phantom cohorts (gw_phantom studies assembled as one BIDS dataset).

  cohort      gw_study on 2 subjects: BIDS derivative layout, completion markers, summary == subject flags,
              --resume skips complete subjects with identical outputs, no overwrite without --force, changed input
              detected, --jobs 1 and --jobs 2 identical
  snakemake   the Snakemake workflow (--cores 2) and gw_study give identical flags, measurements and summary
  resume      gw_study killed (SIGKILL) after the first subject is complete: no partial subject, the child process
              dies with it, --resume finishes with flags identical to an uninterrupted run
  report      index.html and every report.html open in headless Chromium with no missing resource; the screenshots
              are not blank
  bids        the output (also with a failed subject) passes bids-validator with 0 errors (GW_BIDS_VALIDATOR or
              `bids-validator` on PATH: npm install bids-validator@1); a stray misnamed file makes it fail

Exit 77 = skipped (a tool is not installed); CTest maps it with SKIP_RETURN_CODE.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import check_report as report_check  # noqa: E402


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(cmd, expect=0, **kw):
    t0 = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    dt = time.time() - t0
    print("$ %s  -> exit %d in %.1f s" % (" ".join(cmd), r.returncode, dt))
    if expect is not None and r.returncode != expect:
        fail("exit %d (expected %d)\nstdout:\n%s\nstderr:\n%s" % (r.returncode, expect, r.stdout, r.stderr))
    return r


def make_cohort(args, path, scenarios, timepoints):
    run([sys.executable, os.path.join(args.source, "scripts", "make_phantom_cohort.py"), "--bin", args.bin, "-o",
         path, "--timepoints", str(timepoints)] + scenarios)


def read_tsv(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows[0], rows[1:]


def fmt(v):
    return "%.6g" % v


def subject_dirs(out):
    return sorted(d for d in os.listdir(out) if d.startswith("sub-") and os.path.isdir(os.path.join(out, d)))


def strip_volatile(j):
    """summary.json without its volatile parts: run times (keys ending in 'seconds', and the '(0.0457 s)' at the end
    of the registration's stage lines)."""
    if isinstance(j, dict):
        return {k: strip_volatile(v) for k, v in j.items() if not k.endswith("seconds")}
    if isinstance(j, list):
        return [strip_volatile(v) for v in j]
    if isinstance(j, str):
        return re.sub(r" \([0-9.e+-]+ s\)$", "", j)
    return j


def result_files(out):
    """The analysis results to compare between runs: flags, measurements, Slicer markups and the cohort tables
    byte for byte; summary.json with its run times ('*seconds' keys) removed."""
    files = {}
    for s in subject_dirs(out):
        for n in ("flags.json", "measurements.tsv", "flags.mrk.json"):
            files[s + "/" + n] = sha(os.path.join(out, s, n))
        with open(os.path.join(out, s, "summary.json")) as f:
            canonical = json.dumps(strip_volatile(json.load(f)), sort_keys=True)
        files[s + "/summary.json (without run times)"] = hashlib.sha256(canonical.encode()).hexdigest()
        for root, _, names in os.walk(os.path.join(out, s)):
            for n in names:
                if n.endswith(".tsv") and "/ses-" in root:  # sessions.tsv is compared above; dseg lookups here
                    rel = os.path.relpath(os.path.join(root, n), out)
                    files[rel] = sha(os.path.join(root, n))
        files[s + "/" + s + "_sessions.tsv"] = sha(os.path.join(out, s, s + "_sessions.tsv"))
    for n in ("cohort_flags.tsv", "participants.tsv", "cohort_status.tsv", "dataset_description.json", "README",
              ".bidsignore"):
        files[n] = sha(os.path.join(out, n))
    return files


def tree(out):
    """Relative paths of every file, without the lock file and Snakemake's hidden directory-output timestamps."""
    paths = []
    for root, _, names in os.walk(out):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), out)
            if rel != ".gw_study.lock" and n != ".snakemake_timestamp":
                paths.append(rel)
    return sorted(paths)


def compare_results(a, b, what):
    ra, rb = result_files(a), result_files(b)
    if sorted(ra) != sorted(rb):
        fail("%s: different files: %s vs %s" % (what, sorted(ra), sorted(rb)))
    diff = [k for k in ra if ra[k] != rb[k]]
    if diff:
        fail("%s: results differ (exact comparison, tolerance 0): %s" % (what, diff))
    ta, tb = tree(a), tree(b)
    if ta != tb:
        fail("%s: different trees: only in the first %s, only in the second %s" %
             (what, sorted(set(ta) - set(tb)), sorted(set(tb) - set(ta))))
    _, rows = read_tsv(os.path.join(a, "cohort_flags.tsv"))
    print("%s: %d result files identical (tolerance 0), same tree of %d files, %d flags" %
          (what, len(ra), len(ta), len(rows)))


# BIDS-Derivatives names (BIDS 1.8 common derivatives; BEP016 draft for the diffusion maps). The legacy
# bids-validator 1.x has no rules for them (they are in .bidsignore), so they are checked here.
BIDS_DERIV_NAME = {
    "anat": re.compile(r"^(sub-[A-Za-z0-9]+)_(ses-[A-Za-z0-9]+)(_space-[A-Za-z0-9]+)?(_label-[A-Za-z0-9]+)?"
                       r"(_desc-[A-Za-z0-9]+)?_(mask|dseg)\.(nii\.gz|json|tsv)$"),
    "dwi": re.compile(r"^(sub-[A-Za-z0-9]+)_(ses-[A-Za-z0-9]+)(_space-[A-Za-z0-9]+)?"
                      r"((_model-[a-z0-9]+_param-[a-z0-9]+_dwimap)|(_desc-[A-Za-z0-9]+_(mask|dwiref)))"
                      r"\.(nii\.gz|nrrd|json)$"),
}
NATIVE_NAMES = ("cord.nii.gz", "brain_mask.nii.gz", "lesions.nii.gz", "syrinx.nii.gz", "edema.nii.gz",
                "enhancement.nii.gz", "dti_FA.nii.gz", "lesion_change_in_baseline.nii.gz")


def check_bids_names(out, s):
    """Every image of sub-XX/ses-YY/{anat,dwi} has a BIDS-derivative name with the folder's subject and session;
    every dseg has its lookup table; sessions.tsv lists the session folders; no gw_followup native name is left."""
    ses_dirs = sorted(d for d in os.listdir(os.path.join(out, s)) if d.startswith("ses-"))
    if not ses_dirs:
        fail("%s has no ses-* folder" % s)
    header, rows = read_tsv(os.path.join(out, s, s + "_sessions.tsv"))
    if header[0] != "session_id" or [r[0] for r in rows] != ses_dirs:
        fail("%s_sessions.tsv lists %s, folders %s" % (s, [r[0] for r in rows], ses_dirs))
    n = 0
    for ses in ses_dirs:
        for left in NATIVE_NAMES:
            if os.path.exists(os.path.join(out, s, ses, left)):
                fail("%s/%s/%s: gw_followup name left in the BIDS tree" % (s, ses, left))
        for dt, rx in BIDS_DERIV_NAME.items():
            d = os.path.join(out, s, ses, dt)
            if not os.path.isdir(d):
                continue
            for f in sorted(os.listdir(d)):
                m = rx.match(f)
                if not m or m.group(1) != s or m.group(2) != ses:
                    fail("%s/%s/%s/%s is not a BIDS-derivative name for this subject and session" % (s, ses, dt, f))
                if f.endswith("_dseg.nii.gz") and not os.path.exists(os.path.join(d, f[:-7] + ".tsv")):
                    fail("%s has no dseg lookup table" % f)
                n += f.endswith((".nii.gz", ".nrrd"))
        if not os.path.exists(os.path.join(out, s, ses, "anat", "%s_%s_label-cord_mask.nii.gz" % (s, ses))):
            fail("%s/%s: no cord mask" % (s, ses))
    doc = json.load(open(os.path.join(out, s, "flags.json")))
    for fl in doc["flags"]:
        for e in fl.get("evidence", []):
            if not os.path.exists(os.path.join(out, s, e)):
                fail("%s: evidence %s of flag %s does not exist" % (s, e, fl["code"]))
    return n


def check_layout(out, expected_subjects):
    """BIDS derivative dataset written by gw_study: description, markers, summary == subject flags, BIDS names."""
    with open(os.path.join(out, "dataset_description.json")) as f:
        dd = json.load(f)
    if dd.get("DatasetType") != "derivative":
        fail("DatasetType is %r" % dd.get("DatasetType"))
    gen = dd.get("GeneratedBy")
    if not (isinstance(gen, list) and gen and gen[0].get("Name") == "GraftWatch" and gen[0].get("Version")):
        fail("GeneratedBy must be a list starting with {Name: GraftWatch, Version}: %r" % gen)
    if not dd.get("BIDSVersion") or not dd.get("Name"):
        fail("dataset_description.json lacks Name/BIDSVersion")
    src = dd.get("SourceDatasets")
    if not (isinstance(src, list) and src and src[0].get("URL", "").startswith("bids:")):
        fail("SourceDatasets must name the source dataset as a BIDS URI: %r" % src)
    link = dd.get("DatasetLinks", {}).get(src[0]["URL"].split(":")[1])
    if not link:
        fail("DatasetLinks has no entry for %s" % src[0]["URL"])
    if subject_dirs(out) != expected_subjects:
        fail("subject folders %s, expected %s" % (subject_dirs(out), expected_subjects))
    leftovers = [d for d in os.listdir(out) if ".partial-" in d or ".old-" in d]
    if leftovers:
        fail("temporary folders left: %s" % leftovers)
    header, rows = read_tsv(os.path.join(out, "cohort_flags.tsv"))
    if header[:6] != ["subject", "timepoint", "code", "status", "value", "threshold"]:
        fail("cohort_flags.tsv header %s" % header)
    expected_rows = []
    for s in expected_subjects:
        marker = json.load(open(os.path.join(out, s, "graftwatch_complete.json")))
        if marker.get("schema") != "graftwatch-subject-complete" or marker.get("subject") != s:
            fail("bad completion marker for " + s)
        for name, h in marker["outputs"].items():
            if sha(os.path.join(out, s, name)) != h:
                fail("marker checksum of %s/%s does not match the file" % (s, name))
        if not marker["inputs"]:
            fail("marker of %s lists no input" % s)
        images = check_bids_names(out, s)
        if images == 0:
            fail("%s has no image in ses-*/anat or ses-*/dwi" % s)
        doc = json.load(open(os.path.join(out, s, "flags.json")))
        for fl in doc["flags"]:
            expected_rows.append([s, fl["timepoint"], fl["code"], fl["status"], fmt(fl["value"]),
                                  fmt(fl["threshold"]), fl["unit"]])
    if rows != expected_rows:
        fail("cohort_flags.tsv rows differ from the subjects' flags.json:\n%s\nvs\n%s" % (rows, expected_rows))
    if not rows:
        fail("the phantom scenarios should raise flags; cohort_flags.tsv is empty")
    _, part = read_tsv(os.path.join(out, "participants.tsv"))
    if [p[0] for p in part] != expected_subjects or any(p[1] != "complete" for p in part):
        fail("participants.tsv: %s" % part)
    index = open(os.path.join(out, "index.html")).read()
    for s in expected_subjects:
        if ('href="%s/report.html"' % s) not in index:
            fail("index.html does not link %s/report.html" % s)
    print("layout: %d subjects, %d flags in cohort_flags.tsv == subjects' flags.json; BIDS-derivative names, "
          "sessions.tsv and flag evidence paths checked" % (len(expected_subjects), len(rows)))


def write_study_json(cohort, sub, path, label):
    """A study JSON naming the images of BIDS subject `sub` (dates from sessions.tsv, graft site and transplant
    date from graftwatch.json)."""
    root = os.path.join(cohort, sub)
    meta = json.load(open(os.path.join(root, "graftwatch.json")))
    _, sessions = read_tsv(os.path.join(root, sub + "_sessions.tsv"))
    study = {"subject": label, "transplant_date": meta["transplant_date"], "graft_site_lps": meta["graft_site_lps"],
             "timepoints": []}
    for ses, date in sessions:
        anat = os.path.join(root, ses, "anat", "%s_%s_" % (sub, ses))
        dwi = os.path.join(root, ses, "dwi", "%s_%s_dwi" % (sub, ses))
        study["timepoints"].append({
            "id": ses, "date": date,
            "images": {"T2w": anat + "T2w.nii.gz", "T1w": anat + "T1w.nii.gz",
                       "T1w_ce": anat + "ce-gadolinium_T1w.nii.gz", "FLAIR": anat + "FLAIR.nii.gz",
                       "dwi": dwi + ".nii.gz"},
            "bval": dwi + ".bval", "bvec": dwi + ".bvec"})
    with open(path, "w") as f:
        json.dump(study, f, indent=2)


def test_cohort(args):
    cohort = os.path.join(args.scratch, "cohort")
    make_cohort(args, cohort, ["mass_growth_100", "new_syrinx"], 2)
    study = os.path.join(args.bin, "gw_study")
    out2 = os.path.join(args.scratch, "out_j2")
    t0 = time.time()
    r = run([study, cohort, "-o", out2, "--jobs", "2"])
    print("gw_study 2 subjects x 2 timepoints, --jobs 2: %.1f s" % (time.time() - t0))
    check_layout(out2, ["sub-01", "sub-02"])
    if r.stdout.count("\tprocessed") != 2:
        fail("expected 2 processed subjects:\n" + r.stdout)
    out1 = os.path.join(args.scratch, "out_j1")
    run([study, cohort, "-o", out1, "--jobs", "1"])
    compare_results(out1, out2, "--jobs 1 vs --jobs 2")
    before = {k: v for k, v in result_files(out2).items()}
    mtimes = {s: os.stat(os.path.join(out2, s, "flags.json")).st_mtime_ns for s in subject_dirs(out2)}
    # existing output without --resume/--force: refused (exit 5), nothing changed
    run([study, cohort, "-o", out2], expect=5)
    # --resume: every subject complete -> skipped, outputs untouched
    r = run([study, cohort, "-o", out2, "--resume"])
    if r.stdout.count("\tskipped") != 2:
        fail("--resume should skip both complete subjects:\n" + r.stdout)
    if result_files(out2) != before or any(
            os.stat(os.path.join(out2, s, "flags.json")).st_mtime_ns != m for s, m in mtimes.items()):
        fail("--resume on a complete cohort changed outputs")
    # an input changes: --resume refuses to keep or overwrite the stale subject without --force
    with open(os.path.join(cohort, "sub-02", "ses-01", "anat", "sub-02_ses-01_T2w.json")) as f:
        sidecar = json.load(f)
    sidecar["GraftWatchTestEdit"] = 1
    with open(os.path.join(cohort, "sub-02", "ses-01", "anat", "sub-02_ses-01_T2w.json"), "w") as f:
        json.dump(sidecar, f)
    r = run([study, cohort, "-o", out2, "--resume"], expect=4)
    if "sub-01\tskipped" not in r.stdout or "sub-02\tfailed" not in r.stdout or "inputs changed" not in r.stdout:
        fail("a changed input must be detected by --resume:\n" + r.stdout)
    r = run([study, cohort, "-o", out2, "--resume", "--force"])
    if "sub-02\tprocessed" not in r.stdout:
        fail("--force should recompute the stale subject:\n" + r.stdout)
    check_layout(out2, ["sub-01", "sub-02"])
    # study JSON input (a list file): same images, dates and graft site as the BIDS sub-01 -> the same flags
    jdir = os.path.join(args.scratch, "json_studies")
    os.makedirs(jdir)
    write_study_json(cohort, "sub-01", os.path.join(jdir, "a.json"), "sub-json01")
    with open(os.path.join(jdir, "list.txt"), "w") as f:
        f.write("# one study per line\na.json\n")
    outj = os.path.join(args.scratch, "out_json")
    run([study, os.path.join(jdir, "list.txt"), "-o", outj])
    flags_bids = json.load(open(os.path.join(out2, "sub-01", "flags.json")))["flags"]
    flags_json = json.load(open(os.path.join(outj, "sub-json01", "flags.json")))["flags"]
    key = lambda fl: (fl["timepoint"], fl["code"], fl["status"], fl["value"], fl["threshold"])  # noqa: E731
    if [key(f) for f in flags_bids] != [key(f) for f in flags_json]:
        fail("study JSON and BIDS input of the same images give different flags:\n%s\n%s" %
             ([key(f) for f in flags_bids], [key(f) for f in flags_json]))
    print("study JSON list input: %d flags identical to the BIDS input (exact)" % len(flags_json))
    # a subject that fails (unreadable T2w) does not stop the others and leaves no folder
    bad = os.path.join(args.scratch, "cohort_bad")
    shutil.copytree(cohort, bad)
    with open(os.path.join(bad, "sub-02", "ses-01", "anat", "sub-02_ses-01_T2w.nii.gz"), "wb") as f:
        f.write(b"not an image")
    outb = os.path.join(args.scratch, "out_bad")
    r = run([study, bad, "-o", outb, "--jobs", "2"], expect=4)
    if "sub-01\tprocessed" not in r.stdout or "sub-02\tfailed" not in r.stdout:
        fail("one failing subject: expected sub-01 processed, sub-02 failed:\n" + r.stdout)
    if subject_dirs(outb) != ["sub-01"] or any(".partial-" in d for d in os.listdir(outb)):
        fail("after a failed subject: %s" % sorted(os.listdir(outb)))
    _, part = read_tsv(os.path.join(outb, "participants.tsv"))
    if [p[0] for p in part] != ["sub-01"]:
        fail("participants.tsv should list the subject folders present (sub-01 only): %s" % part)
    _, status = read_tsv(os.path.join(outb, "cohort_status.tsv"))
    if status[1][:2] != ["sub-02", "failed"] or status[0][:2] != ["sub-01", "complete"]:
        fail("cohort_status.tsv should mark sub-02 failed: %s" % status)
    if "failed" not in open(os.path.join(outb, "index.html")).read():
        fail("index.html does not show the failed subject")
    print("failing subject isolated: exit 4, sub-01 complete, sub-02 'failed' in cohort_status.tsv and index.html")
    # a subject selected with --participant-label
    out3 = os.path.join(args.scratch, "out_one")
    run([study, cohort, "-o", out3, "--participant-label", "02"])
    if subject_dirs(out3) != ["sub-02"]:
        fail("--participant-label 02 gave %s" % subject_dirs(out3))
    print("OK")


def test_snakemake(args, scenarios, timepoints):
    snakemake = shutil.which("snakemake")
    if not snakemake:
        print("SKIP: snakemake is not installed (Debian package snakemake)")
        return SKIP
    cohort = os.path.join(args.scratch, "cohort")
    make_cohort(args, cohort, scenarios, timepoints)
    out_study = os.path.join(args.scratch, "out_study")
    t0 = time.time()
    run([os.path.join(args.bin, "gw_study"), cohort, "-o", out_study, "--jobs", "2"])
    t_study = time.time() - t0
    out_sm = os.path.join(args.scratch, "out_snakemake")
    workdir = os.path.join(args.scratch, "snakemake_workdir")
    os.makedirs(workdir)
    t0 = time.time()
    run([snakemake, "-s", os.path.join(args.source, "workflow", "Snakefile"), "--configfile",
         os.path.join(args.source, "workflow", "config", "config.yaml"), "--cores", "2", "--config",
         "study=" + cohort, "out=" + out_sm, "bin=" + args.bin], cwd=workdir)
    t_sm = time.time() - t0
    subjects = ["sub-%02d" % (i + 1) for i in range(len(scenarios))]
    check_layout(out_study, subjects)
    if subject_dirs(out_sm) != subjects:
        fail("snakemake subject folders: %s" % subject_dirs(out_sm))
    compare_results(out_study, out_sm, "gw_study vs snakemake")
    with open(os.path.join(out_study, "cohort_flags.tsv")) as f:
        print(f.read())
    print("%d subjects x %d timepoints: gw_study --jobs 2 %.1f s, snakemake --cores 2 %.1f s" %
          (len(subjects), timepoints, t_study, t_sm))
    print("OK")


def followup_children(marker):
    """PIDs of gw_followup processes whose command line contains `marker`."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith("gw_followup") and any(marker in c for c in cmd):
            pids.append(int(p))
    return pids


def test_resume(args):
    cohort = os.path.join(args.scratch, "cohort")
    make_cohort(args, cohort, ["mass_growth_100", "new_syrinx", "cord_swelling"], 2)
    study = os.path.join(args.bin, "gw_study")
    ref = os.path.join(args.scratch, "out_reference")
    run([study, cohort, "-o", ref, "--jobs", "2"])
    out = os.path.join(args.scratch, "out_killed")
    proc = subprocess.Popen([study, cohort, "-o", out, "--jobs", "1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not os.path.isdir(os.path.join(out, "sub-01")):
        if proc.poll() is not None:
            fail("gw_study ended (exit %d) before it could be killed" % proc.returncode)
        if time.time() > deadline:
            proc.kill()
            fail("sub-01 did not appear within 120 s")
        time.sleep(0.01)
    # sub-01 complete; sub-02 is being analysed by a child process
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_state = sorted(os.listdir(out))
    print("after SIGKILL: %s" % killed_state)
    if "sub-03" in killed_state:
        fail("the kill came too late (all subjects done); cannot test the interruption")
    # the child dies with its parent (PR_SET_PDEATHSIG): no orphan keeps writing
    deadline = time.time() + 10
    while followup_children(out) and time.time() < deadline:
        time.sleep(0.05)
    if followup_children(out):
        fail("gw_followup children survive the killed gw_study: %s" % followup_children(out))
    partial = [d for d in killed_state if d.startswith("sub-")]
    for s in partial:
        if not os.path.exists(os.path.join(out, s, "graftwatch_complete.json")):
            fail("%s is in place without its completion marker (a partial subject)" % s)
    r = run([study, cohort, "-o", out, "--resume", "--jobs", "1"])
    for s in partial:
        if s + "\tskipped" not in r.stdout:
            fail("%s was complete before the kill and should be skipped:\n%s" % (s, r.stdout))
    if "processed" not in r.stdout:
        fail("--resume should process the remaining subjects:\n" + r.stdout)
    check_layout(out, ["sub-01", "sub-02", "sub-03"])
    compare_results(ref, out, "uninterrupted vs killed + --resume")
    print("OK")


def test_report(args):
    chromium = report_check.find_chromium()
    if not chromium:
        print("SKIP: chromium is not installed (Debian package chromium)")
        return SKIP
    cohort = os.path.join(args.scratch, "cohort")
    make_cohort(args, cohort, ["combined", "new_syrinx"], 2)
    out = os.path.join(args.scratch, "out")
    run([os.path.join(args.bin, "gw_study"), cohort, "-o", out, "--jobs", "2"])
    pages = [os.path.join(out, "index.html")] + [os.path.join(out, s, "report.html") for s in subject_dirs(out)]
    shots = os.path.join(args.scratch, "screenshots")
    os.makedirs(shots)
    for page in pages:
        name = os.path.relpath(page, out).replace("/", "_").replace(".html", ".png")
        res = report_check.check_page(page, os.path.join(shots, name), chromium)
        print("%s: %d local resources present (%d pictures decoded non-blank, %d rendered in Chromium); screenshot %dx%d, pixel variance "
              "%.1f, non-background %.1f%%" % (os.path.relpath(page, out), res["resources"], res["images"], res["rendered"],
                                               res["width"], res["height"], res["variance"],
                                               100 * res["nonbackground"]))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        for f in os.listdir(shots):
            shutil.copy(os.path.join(shots, f), os.path.join(args.keep, f))
        print("screenshots kept in " + args.keep)
    print("OK")


def find_bids_validator():
    exe = os.environ.get("GW_BIDS_VALIDATOR") or shutil.which("bids-validator")
    return exe if exe and os.access(exe, os.X_OK) else None


def validate(exe, path):
    """bids-validator's JSON report: (errors, warnings) as lists of (code, key, files)."""
    r = subprocess.run([exe, "--json", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    try:
        report = json.loads(r.stdout[r.stdout.index("{"):])
    except ValueError:
        fail("bids-validator printed no JSON report (exit %d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
    out = {}
    for kind in ("errors", "warnings"):
        out[kind] = [(i.get("code"), i.get("key"),
                      sorted({(f.get("file") or {}).get("relativePath", "") for f in i.get("files", [])}))
                     for i in report.get("issues", {}).get(kind, [])]
    return out["errors"], out["warnings"], report.get("summary", {})


def test_bids(args):
    exe = find_bids_validator()
    if not exe:
        print("SKIP: bids-validator not found (set GW_BIDS_VALIDATOR, or `npm install -g bids-validator@1`)")
        return SKIP
    version = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    cohort = os.path.join(args.scratch, "cohort")
    make_cohort(args, cohort, ["mass_growth_100", "new_syrinx"], 2)
    # a third subject that fails: the dataset must stay valid (participants.tsv == subject folders)
    shutil.copytree(os.path.join(cohort, "sub-02"), os.path.join(cohort, "sub-03"))
    for root, _, names in os.walk(os.path.join(cohort, "sub-03")):
        for n in names:
            if n.startswith("sub-02"):
                os.rename(os.path.join(root, n), os.path.join(root, n.replace("sub-02", "sub-03", 1)))
    header, _ = read_tsv(os.path.join(cohort, "participants.tsv"))
    with open(os.path.join(cohort, "participants.tsv"), "a") as f:
        f.write("\t".join(["sub-03"] + ["n/a"] * (len(header) - 1)) + "\n")
    with open(os.path.join(cohort, "sub-03", "ses-01", "anat", "sub-03_ses-01_T2w.nii.gz"), "wb") as f:
        f.write(b"not an image")
    # the output where BIDS puts derivatives (a relative DatasetLinks entry to the source)
    out = os.path.join(cohort, "derivatives", "graftwatch")
    run([os.path.join(args.bin, "gw_study"), cohort, "-o", out, "--jobs", "2"], expect=4)
    check_layout(out, ["sub-01", "sub-02"])
    dd = json.load(open(os.path.join(out, "dataset_description.json")))
    if dd["DatasetLinks"] != {"raw": "../.."}:
        fail("DatasetLinks of derivatives/graftwatch should be {'raw': '../..'}: %r" % dd["DatasetLinks"])
    errors, warnings, summary = validate(exe, out)
    print("bids-validator %s on %s: %d errors, %d warnings; subjects %s, sessions %s" %
          (version, os.path.relpath(out, args.scratch), len(errors), len(warnings), summary.get("subjects"),
           summary.get("sessions")))
    for w in warnings:
        print("  warning %s %s %s" % w)
    if errors:
        fail("bids-validator errors: %s" % errors)
    if sorted(summary.get("subjects", [])) != ["01", "02"]:
        fail("bids-validator should see subjects 01 and 02: %r" % summary.get("subjects"))
    # negative control: the validator does look at the subject folders
    bad = os.path.join(args.scratch, "bad_copy")
    shutil.copytree(out, bad)
    open(os.path.join(bad, "sub-01", "ses-01", "anat", "sub-01_ses-01_lesionmask.nii.gz"), "wb").close()
    errors, _, _ = validate(exe, bad)
    if not any(e[1] == "NOT_INCLUDED" for e in errors):
        fail("a misnamed file in the output should make bids-validator fail: %s" % errors)
    print("negative control: a misnamed file gives %s" % [e[1] for e in errors])
    print("OK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=["cohort", "snakemake", "snakemake5", "resume", "report", "bids"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--keep", help="copy screenshots here")
    args = ap.parse_args()
    if os.path.exists(args.scratch):
        shutil.rmtree(args.scratch)
    os.makedirs(args.scratch)
    rc = 0
    if args.test == "cohort":
        rc = test_cohort(args)
    elif args.test == "snakemake":
        rc = test_snakemake(args, ["mass_growth_100", "new_syrinx"], 2)
    elif args.test == "snakemake5":
        rc = test_snakemake(args, ["stable", "mass_growth_100", "new_enhancement", "syrinx_expansion",
                                   "fa_decline"], 3)
    elif args.test == "resume":
        rc = test_resume(args)
    elif args.test == "report":
        rc = test_report(args)
    elif args.test == "bids":
        rc = test_bids(args)
    if rc != SKIP and not os.environ.get("GW_KEEP_TEST_OUTPUT"):
        shutil.rmtree(args.scratch, ignore_errors=True)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
