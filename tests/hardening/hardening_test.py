#!/usr/bin/env python3
"""Hardening tests of the GraftWatch apps as black boxes (standard library only).

  phi        No patient identifier leaks: a phantom DICOM study stamped with unique PatientName, PatientID,
             PatientBirthDate, AccessionNumber and InstitutionName markers goes through gw_import and gw_followup
             (study JSON with "dicom" timepoints); no output byte (also inside .gz), no file name, no stdout/stderr
             contains any marker (case-insensitive, also the ISO form of the birth date).
  traversal  SeriesDescription/ProtocolName `../../x`, `/etc/passwd`, and control characters: gw_import writes
             only inside its output folder, with names of [A-Za-z0-9._-] not starting with '.', and prints no
             control characters.
  safety     For gw_convert, gw_import, gw_segment, gw_dti, gw_register, gw_followup: inputs byte-identical
             (SHA-256) after a run; a second run without --force exits 5 and leaves outputs byte-identical; runs
             killed with SIGKILL at several moments leave no partial file under a final name (every .nii/.nii.gz
             decompresses fully to the size its header implies, JSON parses, NRRD data is complete, PNG has IEND,
             HDF5 has its signature); leftovers may only be temporaries named .*.gwtmp-*.

Usage: hardening_test.py {phi,traversal,safety} --bin BIN_DIR --scratch DIR [--apps a,b]
Exit 0 pass, 1 fail.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dicom_edit  # noqa: E402

# Unique markers (none of them can occur by chance in GraftWatch outputs; the date is checked as DA and ISO).
MARKERS = {
    "PatientName": "ZQXMARKNAME^JOHANNESQ",
    "PatientID": "PIDZQX4471",
    "PatientBirthDate": "18610817",
    "AccessionNumber": "ACCZQX90210",
    "InstitutionName": "INSTZQX MARKER HOSPITAL",
}
NEEDLES = ["ZQXMARKNAME", "JOHANNESQ", "PIDZQX4471", "18610817", "1861-08-17", "ACCZQX90210", "INSTZQX"]
TAGS = {
    "PatientName": ((0x0010, 0x0010), "PN"),
    "PatientID": ((0x0010, 0x0020), "LO"),
    "PatientBirthDate": ((0x0010, 0x0030), "DA"),
    "AccessionNumber": ((0x0008, 0x0050), "SH"),
    "InstitutionName": ((0x0008, 0x0080), "LO"),
}
TMP_RE = re.compile(r"^\..*\.gwtmp-")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, flush=True)
    return cond


def run(argv, env=None, timeout=600):
    t0 = time.time()
    p = subprocess.run(argv, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr, time.time() - t0


def app(bin_dir, name):
    return str(Path(bin_dir) / name)


def fresh(path):
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def files_under(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(root):
    root = Path(root)
    return {str(p.relative_to(root)): sha256(p) for p in files_under(root)}


def phantom(bin_dir, out, fmt, extra=()):
    code, _, err, _ = run([app(bin_dir, "gw_phantom"), "-o", str(out), "--format", fmt, "--clean", "--timepoints",
                           "2", *extra])
    if code != 0:
        raise RuntimeError("gw_phantom failed: " + err.decode(errors="replace"))


# ---------------------------------------------------------------------------------------------------------- PHI
def stamp_markers(dicom_root):
    changes = {tag: (vr, MARKERS[key]) for key, (tag, vr) in TAGS.items()}
    n = 0
    for f in files_under(dicom_root):
        if f.suffix == ".dcm":
            dicom_edit.edit(f, changes)
            n += 1
    return n


def find_markers(data):
    low = data.lower()
    return [m for m in NEEDLES if m.lower().encode() in low]


def scan_outputs(root, label):
    """Every file's bytes (and decompressed .gz content), every path component."""
    root = Path(root)
    n = 0
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        hits = find_markers(rel.encode())
        check(not hits, "%s: file name %s contains %s" % (label, rel, hits))
        if not p.is_file():
            continue
        n += 1
        data = p.read_bytes()
        hits = find_markers(data)
        check(not hits, "%s: %s contains %s" % (label, rel, hits))
        if p.name.endswith(".gz") or data[:2] == b"\x1f\x8b":
            try:
                hits = find_markers(gzip.decompress(data))
                check(not hits, "%s: %s (decompressed) contains %s" % (label, rel, hits))
            except (OSError, EOFError, zlib.error) as e:
                check(False, "%s: %s does not decompress: %s" % (label, rel, e))
        if p.suffix == ".nrrd" and b"encoding: gzip" in data[:4096]:
            body = data[data.find(b"\n\n") + 2 :]
            check(not find_markers(gzip.decompress(body)), "%s: %s (NRRD data) contains a marker" % (label, rel))
    return n


def test_phi(args):
    scratch = fresh(args.scratch)
    src = scratch / "phantom"
    phantom(args.bin, src, "dicom", ["--patientName", MARKERS["PatientName"], "--patientId", MARKERS["PatientID"]])
    stamped = stamp_markers(src / "dicom")
    # the markers really are in the input (otherwise the test could not fail)
    _, _, ds = dicom_edit.read(next(p for p in files_under(src / "dicom") if p.suffix == ".dcm"))
    for key, (tag, _) in TAGS.items():
        check(dicom_edit.value(ds, tag) == MARKERS[key], "input lacks the %s marker" % key)
    print("stamped %d DICOM files with 5 markers" % stamped)
    logs = {}
    imp = scratch / "import"
    code, out, err, dt = run([app(args.bin, "gw_import"), str(src / "dicom"), "-o", str(imp), "--json", "--verbose"])
    check(code == 0, "gw_import exit %d: %s" % (code, err.decode(errors="replace")[-2000:]))
    logs["gw_import"] = out + err
    print("gw_import: %.1f s, %d outputs" % (dt, len(files_under(imp))))
    code, out, err, _ = run([app(args.bin, "gw_import"), str(src / "dicom"), "--list", "--json"])
    check(code == 0, "gw_import --list exit %d" % code)
    logs["gw_import --list"] = out + err
    study = {
        "subject": "sub-01",
        "transplant_date": "2024-03-04",
        "timepoints": [
            {"id": "ses-01", "date": "2024-03-18", "dicom": str(src / "dicom" / "ses-01")},
            {"id": "ses-02", "date": "2024-06-03", "dicom": str(src / "dicom" / "ses-02")},
        ],
    }
    (scratch / "study.json").write_text(json.dumps(study, indent=1))
    fu = scratch / "followup"
    code, out, err, dt = run([app(args.bin, "gw_followup"), str(scratch / "study.json"), "-o", str(fu), "--verbose",
                              "--returnparameterfile", str(scratch / "followup_return.txt")])
    check(code == 0, "gw_followup exit %d: %s" % (code, err.decode(errors="replace")[-2000:]))
    logs["gw_followup"] = out + err
    print("gw_followup: %.1f s, %d outputs" % (dt, len(files_under(fu))))
    check(len(files_under(fu / "ses-01" / "dicom")) > 0, "gw_followup imported nothing from DICOM")
    n = scan_outputs(imp, "gw_import") + scan_outputs(fu, "gw_followup")
    check(not find_markers((scratch / "followup_return.txt").read_bytes()), "return parameter file has a marker")
    for name, text in logs.items():
        hits = find_markers(text)
        check(not hits, "%s stdout/stderr contains %s" % (name, hits))
    print("scanned %d output files (+ names, decompressed .gz) and %d captured logs for %d markers"
          % (n, len(logs), len(NEEDLES)))


# ---------------------------------------------------------------------------------------------------- traversal
HOSTILE = ["../../x", "/etc/passwd", "ctl\x01\x07\x1b[31mred\r\nline\tend\x7f", "..\\..\\win"]


def test_traversal(args):
    scratch = fresh(args.scratch)
    src = scratch / "phantom"
    phantom(args.bin, src, "dicom")
    series = src / "dicom" / "ses-01" / "S02_T2W_TSE_AX"
    inputs = fresh(scratch / "in")
    for i, desc in enumerate(HOSTILE):
        dst = inputs / ("s%d" % i)
        shutil.copytree(series, dst)
        for f in files_under(dst):
            _, _, ds = dicom_edit.read(f)
            sop = dicom_edit.value(ds, (0x0008, 0x0018))
            uid = dicom_edit.value(ds, (0x0020, 0x000E))
            dicom_edit.edit(f, {
                (0x0008, 0x103E): ("LO", desc),
                (0x0018, 0x1030): ("LO", desc),
                (0x0020, 0x0011): ("IS", str(21 + i)),
                (0x0020, 0x000E): ("UI", uid + ".%d" % (i + 1)),
                (0x0008, 0x0018): ("UI", sop + ".%d" % (i + 1)),
            })
    shutil.rmtree(src)
    out = scratch / "a" / "b" / "out"
    before = set(str(p) for p in scratch.rglob("*"))
    code, stdout, stderr, _ = run([app(args.bin, "gw_import"), str(inputs), "-o", str(out), "--json"])
    check(code == 0, "gw_import exit %d: %s" % (code, stderr.decode(errors="replace")[-2000:]))
    after = set(str(p) for p in scratch.rglob("*"))
    out_real = os.path.realpath(out)
    new = sorted(after - before)
    outside = [p for p in new if not (os.path.realpath(p) + "/").startswith(out_real + "/") and
               os.path.realpath(p) != out_real and not out_real.startswith(os.path.realpath(p) + "/")]
    check(not outside, "files created outside the output folder: %s" % outside)
    check(not Path("/etc/passwd.nii.gz").exists(), "/etc/passwd.nii.gz was created")
    safe = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    names = [str(p.relative_to(out)) for p in sorted(out.rglob("*"))]
    for p in sorted(out.rglob("*")):
        check(not p.is_symlink(), "symlink in output: %s" % p)
        check(safe.match(p.name) is not None, "unsafe output name %r" % p.name)
    images = [n for n in names if n.endswith(".nii.gz")]
    check(len(images) == len(HOSTILE), "expected %d images, got %s" % (len(HOSTILE), names))
    for label, text in (("stdout", stdout), ("stderr", stderr)):
        bad = sorted(set(c for c in text if c < 0x20 and c not in (0x0A, 0x09)) | set(c for c in text if c == 0x7F))
        check(not bad, "gw_import %s contains control bytes %s" % (label, bad))
    print("outputs: %s" % names)


# ------------------------------------------------------------------------------------------------------- safety
NIFTI_BITPIX_OK = {8, 16, 32, 64, 128, 24}


def nifti_complete(data):
    if len(data) < 348:
        return "shorter than a NIfTI header"
    sizeof_hdr = struct.unpack_from("<i", data, 0)[0]
    endian = "<" if sizeof_hdr == 348 else ">"
    if struct.unpack_from(endian + "i", data, 0)[0] != 348:
        return "bad sizeof_hdr"
    dims = struct.unpack_from(endian + "8h", data, 40)
    bitpix = struct.unpack_from(endian + "h", data, 72)[0]
    vox_offset = int(struct.unpack_from(endian + "f", data, 108)[0])
    n = 1
    for d in dims[1 : dims[0] + 1]:
        n *= d
    expected = vox_offset + n * bitpix // 8
    if len(data) != expected:
        return "size %d, header implies %d" % (len(data), expected)
    return None


def nrrd_complete(data):
    end = data.find(b"\n\n")
    if end < 0:
        return "no end of NRRD header"
    header = data[:end].decode(errors="replace").splitlines()
    fields = dict(line.split(": ", 1) for line in header[1:] if ": " in line and not line.startswith("#"))
    if "data file" in fields or "datafile" in fields:
        return None
    sizes = [int(s) for s in fields["sizes"].split()]
    tsize = {"float": 4, "double": 8, "short": 2, "ushort": 2, "unsigned short": 2, "uchar": 1, "unsigned char": 1,
             "int": 4, "uint": 4, "unsigned int": 4, "uint8": 1, "uint16": 2, "int16": 2, "char": 1,
             "signed char": 1, "int8": 1, "float32": 4, "uint32": 4, "int32": 4}.get(fields["type"])
    if tsize is None:
        return None
    n = tsize
    for s in sizes:
        n *= s
    body = data[end + 2 :]
    if fields.get("encoding") in ("gzip", "gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as e:
            return "NRRD gzip data incomplete: %s" % e
    if len(body) != n:
        return "NRRD data %d bytes, header implies %d" % (len(body), n)
    return None


def complete(path):
    """None when the file is whole, else the reason."""
    data = path.read_bytes()
    name = path.name
    if name.endswith(".nii.gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            return "gzip incomplete: %s" % e
        return nifti_complete(data)
    if name.endswith(".nii"):
        return nifti_complete(data)
    if name.endswith(".nrrd"):
        return nrrd_complete(data)
    if name.endswith(".json"):
        try:
            json.loads(data)
        except ValueError as e:
            return "JSON does not parse: %s" % e
        return None
    if name.endswith(".png"):
        return None if data[-12:-8] == b"\0\0\0\0" and data[-8:-4] == b"IEND" else "PNG without IEND"
    if name.endswith(".h5"):
        return None if data[:8] == b"\x89HDF\r\n\x1a\n" else "not HDF5"
    if name.endswith((".tsv", ".bval", ".bvec", ".txt")):
        return None if data.endswith(b"\n") else "text without final newline"
    if name.endswith(".html"):
        return None if b"</html>" in data[-64:].lower() else "HTML without </html>"
    if name.endswith(".gz"):
        try:
            gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            return "gzip incomplete: %s" % e
    return None


def cases(bin_dir, data):
    """name -> (inputs (files or folders), argv builder(out_dir))."""
    n = data / "nifti"
    d = data / "phantom_dicom" / "dicom"
    return {
        "gw_convert": ([n / "ses-01_dwi.nii.gz", n / "ses-01_dwi.bval", n / "ses-01_dwi.bvec"],
                       lambda o: [app(bin_dir, "gw_convert"), str(n / "ses-01_dwi.nii.gz"), str(o / "dwi.nrrd"),
                                  "--kind", "dwi"]),
        "gw_import": ([d / "ses-01"], lambda o: [app(bin_dir, "gw_import"), str(d / "ses-01"), "-o", str(o / "imp")]),
        "gw_segment": ([n / "ses-01_T2w.nii.gz"],
                       lambda o: [app(bin_dir, "gw_segment"), "cord", "--t2", str(n / "ses-01_T2w.nii.gz"), "-o",
                                  str(o / "seg")]),
        "gw_dti": ([n / "ses-01_dwi.nii.gz", n / "ses-01_dwi.bval", n / "ses-01_dwi.bvec"],
                   lambda o: [app(bin_dir, "gw_dti"), str(n / "ses-01_dwi.nii.gz"), "-o", str(o / "dti"),
                              "--threads", "1"]),
        "gw_register": ([n / "ses-01_T2w.nii.gz", n / "ses-02_T2w.nii.gz"],
                        lambda o: [app(bin_dir, "gw_register"), "--fixed", str(n / "ses-01_T2w.nii.gz"), "--moving",
                                   str(n / "ses-02_T2w.nii.gz"), "-o", str(o / "reg"), "--ignore-gate"]),
        "gw_followup": ([data / "study.json", d],
                        lambda o: [app(bin_dir, "gw_followup"), str(data / "study.json"), "-o", str(o / "fu"),
                                   "--no-snapshots"]),
    }


def input_snapshot(paths):
    snap = {}
    for p in paths:
        p = Path(p)
        for f in ([p] if p.is_file() else files_under(p)):
            snap[str(f)] = sha256(f)
            snap[str(f) + ":mtime"] = os.stat(f).st_mtime_ns
    return snap


def check_outputs_whole(root, label):
    temps = 0
    for p in files_under(root):
        if TMP_RE.match(p.name):
            temps += 1
            continue
        reason = complete(p)
        check(reason is None, "%s: partial file under a final name %s: %s" % (label, p.relative_to(root), reason))
    return temps


def test_safety(args):
    scratch = fresh(args.scratch)
    data = scratch / "data"
    phantom(args.bin, data / "nifti", "nifti")
    phantom(args.bin, data / "phantom_dicom", "dicom")
    (data / "study.json").write_text(json.dumps({
        "subject": "sub-01", "transplant_date": "2024-03-04",
        "timepoints": [{"id": "ses-01", "date": "2024-03-18", "dicom": "phantom_dicom/dicom/ses-01"},
                       {"id": "ses-02", "date": "2024-06-03", "dicom": "phantom_dicom/dicom/ses-02"}]}))
    all_cases = cases(args.bin, data)
    selected = args.apps.split(",") if args.apps else list(all_cases)
    whole_inputs = input_snapshot([data])
    for name in selected:
        inputs, argv = all_cases[name]
        before = input_snapshot(inputs)
        out = fresh(scratch / name)
        code, _, err, dt = run(argv(out))
        check(code == 0, "%s exit %d: %s" % (name, code, err.decode(errors="replace")[-1500:]))
        check(input_snapshot(inputs) == before, "%s modified its inputs" % name)
        outputs = snapshot(out)
        check(len(outputs) > 0, "%s wrote nothing" % name)
        check_outputs_whole(out, name)
        code2, _, err2, _ = run(argv(out))
        check(code2 == 5, "%s second run without --force exit %d (expected 5): %s"
              % (name, code2, err2.decode(errors="replace")[-500:]))
        check(snapshot(out) == outputs, "%s second run changed the outputs" % name)
        # killed runs: SIGKILL at fractions of the normal run time
        kills, temps, finished = 0, 0, 0
        for frac in (0.05, 0.15, 0.3, 0.5, 0.7, 0.9):
            kout = fresh(scratch / (name + "_kill"))
            p = subprocess.Popen(argv(kout), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(dt * frac)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                kills += 1
            else:
                finished += 1
            p.wait()
            temps += check_outputs_whole(kout, "%s killed at %.0f%%" % (name, 100 * frac))
        check(input_snapshot(inputs) == before, "%s killed runs modified the inputs" % name)
        print("%-12s run %.2f s, %d outputs, exit 5 on rerun: %s, %d kills (%d finished first), "
              "%d temporaries left by killed runs" % (name, dt, len(outputs), code2 == 5, kills, finished, temps),
              flush=True)
    check(input_snapshot([data]) == whole_inputs, "the input data folder changed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=["phi", "traversal", "safety"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--apps", default="")
    args = ap.parse_args()
    {"phi": test_phi, "traversal": test_traversal, "safety": test_safety}[args.test](args)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
