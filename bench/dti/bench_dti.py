#!/usr/bin/python3
"""Benchmark: gw_dti against MRtrix3 (dwi2tensor + tensor2metric) and DIPY (TensorModel WLS) on the same data in
the same run. Each tool fits the same mask (gw_dti's automatic mask from a first run) and writes the same seven
.nii.gz files: the tensor, S0, FA, MD, AD, RD and the principal eigenvector (gw_dti --maps tensor,s0,fa,md,ad,rd,v1;
dwi2tensor -b0; tensor2metric -fa -adc -ad -rd -vector; DIPY lower-triangular tensor and S0_hat). The runs of the
tools are interleaved. Wall time of the whole command (start-up, reading, fitting, writing), median of --repeat
runs; prints the time ratios gw_dti / peer (goal: <= 0.5 x MRtrix3) and gw_dti's per-phase timings (--verbose).
Also the CPU time (user + system, all threads) of each command and its ratio: it shows the work done whatever the
number of cores and is far less sensitive than wall time to other load on the machine (the load average is printed;
quote wall-time ratios from an idle machine).

Usage: /usr/bin/python3 bench/dti/bench_dti.py --bin BUILD/bin [--data DIR] [--repeat 5] [--threads N]
DIR holds dmri.nii.gz, bvals.txt, bvecs.txt (default ../shared/data/nifti/sct_tutorial_dmri).
Uses /usr/bin/python3 because Debian's python3-dipy lives there.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DIPY = r"""
import sys, numpy as np, nibabel as nib
from dipy.io.gradients import read_bvals_bvecs
from dipy.core.gradients import gradient_table
import dipy.reconst.dti as dti
dwi, bval, bvec, mask, out = sys.argv[1:6]
img = nib.load(dwi)
b, v = read_bvals_bvecs(bval, bvec)
m = np.asanyarray(nib.load(mask).dataobj) > 0
fit = dti.TensorModel(gradient_table(b, v), fit_method='WLS', return_S0_hat=True).fit(img.get_fdata(), mask=m)
for name, data in (('tensor', fit.lower_triangular()), ('S0', fit.S0_hat), ('FA', fit.fa), ('MD', fit.md),
                   ('AD', fit.ad), ('RD', fit.rd), ('V1', fit.evecs[..., 0])):
    nib.save(nib.Nifti1Image(data.astype(np.float32), img.affine), out + '_' + name + '.nii.gz')
"""


def timed(cmd, env=None):
    """(wall, cpu) seconds of one command; cpu = user + system time of the child, all its threads."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))
    return Timing(dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


class Timing:
    def __init__(self, wall, cpu):
        self.wall, self.cpu = wall, cpu

    def __add__(self, other):
        return Timing(self.wall + other.wall, self.cpu + other.cpu)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with gw_dti")
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "..", "shared", "data", "nifti", "sct_tutorial_dmri"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="threads for gw_dti and MRtrix3 (0: all)")
    a = ap.parse_args()
    dwi, bval, bvec = (os.path.join(a.data, f) for f in ("dmri.nii.gz", "bvals.txt", "bvecs.txt"))
    gw = os.path.join(a.bin, "gw_dti")
    for f in (dwi, bval, bvec, gw):
        if not os.path.exists(f):
            sys.exit("missing: " + f)
    tmp = tempfile.mkdtemp(prefix="gw_bench_dti_")
    try:
        subprocess.run([gw, dwi, "--bval", bval, "--bvec", bvec, "-o", os.path.join(tmp, "ref"), "--quiet"], check=True)
        mask = os.path.join(tmp, "ref_mask.nii.gz")
        threads = [] if a.threads == 0 else ["--threads", str(a.threads)]
        mr_threads = [] if a.threads == 0 else ["-nthreads", str(a.threads)]
        times = {"gw_dti": [], "mrtrix3": [], "dipy": []}
        have_mrtrix = shutil.which("dwi2tensor") and shutil.which("tensor2metric")
        have_dipy = subprocess.run(["/usr/bin/python3", "-c", "import dipy"], capture_output=True).returncode == 0
        maps = ["--maps", "tensor,s0,fa,md,ad,rd,v1"]

        def gw_cmd(out):
            return [gw, dwi, "--bval", bval, "--bvec", bvec, "-o", out, "--mask", mask] + maps + threads

        script = os.path.join(tmp, "dipy_fit.py")
        with open(script, "w") as f:
            f.write(DIPY)
        for i in range(a.repeat):
            out = os.path.join(tmp, "gw%d" % i)
            times["gw_dti"].append(timed(gw_cmd(out) + ["--quiet"]))
            if have_mrtrix:
                o = os.path.join(tmp, "mr%d" % i)
                t = timed(["dwi2tensor", "-quiet", "-fslgrad", bvec, bval, "-mask", mask, "-b0", o + "_S0.nii.gz", dwi,
                           o + "_dt.nii.gz"] + mr_threads)
                t += timed(["tensor2metric", "-quiet", "-fa", o + "_FA.nii.gz", "-adc", o + "_MD.nii.gz", "-ad",
                            o + "_AD.nii.gz", "-rd", o + "_RD.nii.gz", "-vector", o + "_V1.nii.gz", o + "_dt.nii.gz"]
                           + mr_threads)
                times["mrtrix3"].append(t)
            if have_dipy:
                times["dipy"].append(timed(["/usr/bin/python3", script, dwi, bval, bvec, mask,
                                            os.path.join(tmp, "dp%d" % i)]))
        profile = subprocess.run(gw_cmd(os.path.join(tmp, "profile")) + ["--verbose"], capture_output=True, text=True)
        med = {k: statistics.median(t.wall for t in v) for k, v in times.items() if v}
        cpu = {k: statistics.median(t.cpu for t in v) for k, v in times.items() if v}
        print("data: %s (%d repeats, median wall time; CPU time = user + system of all threads)" % (a.data, a.repeat))
        print("machine: %d hardware threads, load average %.2f at the end" % (os.cpu_count(), os.getloadavg()[0]))
        for k, v in med.items():
            print("  %-8s %8.3f s wall %8.3f s CPU" % (k, v, cpu[k]))
        for peer in ("mrtrix3", "dipy"):
            if peer in med:
                print("  ratio gw_dti / %-7s = %.2f wall, %.2f CPU" % (peer, med["gw_dti"] / med[peer],
                                                                       cpu["gw_dti"] / cpu[peer]))
            else:
                print("  %s not available: skipped" % peer)
        print("gw_dti phases (one more run, --verbose):")
        for line in profile.stderr.splitlines():
            if "timing:" in line:
                print("  " + line.split("timing:", 1)[1].strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
