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

Exit 77 = skipped (a tool is not installed); CTest maps it with SKIP_RETURN_CODE.
"""
import argparse
import hashlib
import json
import os
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
    """summary.json without its volatile keys: run times (keys ending in 'seconds')."""
    if isinstance(j, dict):
        return {k: strip_volatile(v) for k, v in j.items() if not k.endswith("seconds")}
    if isinstance(j, list):
        return [strip_volatile(v) for v in j]
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
    for n in ("cohort_flags.tsv", "participants.tsv", "dataset_description.json"):
        files[n] = sha(os.path.join(out, n))
    return files


def compare_results(a, b, what):
    ra, rb = result_files(a), result_files(b)
    if sorted(ra) != sorted(rb):
        fail("%s: different files: %s vs %s" % (what, sorted(ra), sorted(rb)))
    diff = [k for k in ra if ra[k] != rb[k]]
    if diff:
        fail("%s: results differ (exact comparison, tolerance 0): %s" % (what, diff))
    _, rows = read_tsv(os.path.join(a, "cohort_flags.tsv"))
    print("%s: %d result files identical (tolerance 0), %d flags" % (what, len(ra), len(rows)))


def check_layout(out, expected_subjects):
    """BIDS derivative dataset written by gw_study: description, markers, summary == subject flags."""
    with open(os.path.join(out, "dataset_description.json")) as f:
        dd = json.load(f)
    if dd.get("DatasetType") != "derivative":
        fail("DatasetType is %r" % dd.get("DatasetType"))
    gen = dd.get("GeneratedBy")
    if not (isinstance(gen, list) and gen and gen[0].get("Name") == "GraftWatch" and gen[0].get("Version")):
        fail("GeneratedBy must be a list starting with {Name: GraftWatch, Version}: %r" % gen)
    if not dd.get("BIDSVersion") or not dd.get("Name"):
        fail("dataset_description.json lacks Name/BIDSVersion")
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
    print("layout: %d subjects, %d flags in cohort_flags.tsv == subjects' flags.json" % (len(expected_subjects),
                                                                                         len(rows)))


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
    if part[1][:2] != ["sub-02", "failed"]:
        fail("participants.tsv should mark sub-02 failed: %s" % part)
    if "failed" not in open(os.path.join(outb, "index.html")).read():
        fail("index.html does not show the failed subject")
    print("failing subject isolated: exit 4, sub-01 complete, sub-02 'failed' in participants.tsv and index.html")
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=["cohort", "snakemake", "snakemake5", "resume", "report"])
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
    if rc != SKIP and not os.environ.get("GW_KEEP_TEST_OUTPUT"):
        shutil.rmtree(args.scratch, ignore_errors=True)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
