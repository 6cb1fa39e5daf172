#!/usr/bin/env python3
"""Benchmark: gw_register against elastix (Debian) on the same pairs in the same run.

For each real image (sct_testing T2, longitudinal_ms FLAIR) and each trial, a known random rigid transform
(rotations up to 10 degrees about each axis, shifts up to 10 mm) makes the moving image from the fixed one
(trilinear resampling on the fixed grid). Both tools register it back (rigid, Mattes mutual information,
3-level pyramid) and the target registration error against the known transform is computed over the image
foreground (voxels above 10 % of the 99th percentile), in mm and in voxels (geometric-mean spacing).
Wall times are whole commands (reading, registering, writing); gw_register is timed with and without its
inverse-consistency QA (an independent backward registration that elastix does not do). CPU times (user + sys of
the command) are reported too: on a shared machine wall times also measure the load of other processes.
The elastix parameters below are the ones compared against (3 levels, 250 iterations, 3000 random coordinates per
iteration, adaptive stochastic gradient descent); gw_register runs with its defaults.

Usage: /usr/bin/python3 bench/registration/bench_register.py --bin BUILD/bin [--data DIR] [--trials 3]
Uses /usr/bin/python3 (Debian's numpy, scipy, nibabel, h5py).
"""
import argparse
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import nibabel as nib
import numpy as np
from scipy import ndimage

ELASTIX_RIGID = """(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
(Registration "MultiResolutionRegistration")
(Interpolator "BSplineInterpolator")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Optimizer "AdaptiveStochasticGradientDescent")
(Transform "EulerTransform")
(Metric "AdvancedMattesMutualInformation")
(AutomaticScalesEstimation "true")
(AutomaticTransformInitialization "true")
(AutomaticTransformInitializationMethod "CenterOfGravity")
(HowToCombineTransforms "Compose")
(NumberOfHistogramBins 32)
(NumberOfResolutions 3)
(MaximumNumberOfIterations 250)
(ImageSampler "RandomCoordinate")
(NumberOfSpatialSamples 3000)
(NewSamplesEveryIteration "true")
(BSplineInterpolationOrder 1)
(FinalBSplineInterpolationOrder 3)
(DefaultPixelValue 0)
(WriteResultImage "false")
(ResultImageFormat "nii.gz")
"""


def lps_affine(img):
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine


def rotation(rx, ry, rz):
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz, Rx, Ry


def make_moving(fixed_path, out_path, R, c, t):
    """M(y) = F(T^-1(y)) with T(x) = R (x - c) + c + t in LPS mm, on the fixed grid."""
    img = nib.load(fixed_path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    A = lps_affine(img)
    Ainv = np.linalg.inv(A)
    # voxel v_y -> world y -> x = R^T (y - c - t) + c -> voxel v_x
    M = np.eye(4)
    M[:3, :3] = R.T
    M[:3, 3] = -R.T @ (c + t) + c
    V = Ainv @ M @ A
    moved = ndimage.affine_transform(data, V[:3, :3], offset=V[:3, 3], order=1, mode="constant", cval=0.0)
    header = img.header.copy()
    header.set_data_dtype(np.float32)  # float on disk: no requantisation, no scl_slope
    nib.save(nib.Nifti1Image(moved.astype(np.float32), img.affine, header), out_path)


def versor_matrix(v):
    x, y, z = v
    w = math.sqrt(max(0.0, 1.0 - x * x - y * y - z * z))
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def read_itk_h5(path):
    """The composite of the linear transforms in an ITK .h5 file, as (matrix, offset): T(x) = A x + b."""
    A, b = np.eye(3), np.zeros(3)
    with h5py.File(path, "r") as f:
        group = f["TransformGroup"]
        for key in sorted(group.keys(), key=int):
            g = group[key]
            kind = g["TransformType"][0].decode() if hasattr(g["TransformType"][0], "decode") else str(g["TransformType"][0])
            if "Composite" in kind:
                continue
            p = np.array(g["TransformParameters"], dtype=float)
            fp = np.array(g["TransformFixedParameters"], dtype=float)
            if "VersorRigid3D" in kind:
                Rm, t = versor_matrix(p[:3]), p[3:6]
            elif "Affine" in kind or "MatrixOffset" in kind:
                Rm, t = p[:9].reshape(3, 3), p[9:12]
            else:
                raise RuntimeError("unsupported transform " + kind)
            c = fp[:3]
            Ak, bk = Rm, Rm @ (-c) + c + t
            # ITK composite applies the last-added (highest index) first; compose accordingly
            A, b = A @ Ak, A @ bk + b
    return A, b


def read_elastix(path):
    text = open(path).read()
    p = [float(x) for x in re.search(r"\(TransformParameters ([^)]*)\)", text).group(1).split()]
    c = np.array([float(x) for x in re.search(r"\(CenterOfRotationPoint ([^)]*)\)", text).group(1).split()])
    zyx = re.search(r'\(ComputeZYX "true"\)', text) is not None
    Rz, Rx, Ry = rotation(p[0], p[1], p[2])
    R = Rz @ Ry @ Rx if zyx else Rz @ Rx @ Ry
    t = np.array(p[3:6])
    return R, R @ (-c) + c + t


def tre(fixed_path, A, b, R, c, t):
    img = nib.load(fixed_path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    mask = data > 0.1 * np.percentile(data, 99)
    idx = np.argwhere(mask)[::7]
    L = lps_affine(img)
    x = (L[:3, :3] @ idx.T).T + L[:3, 3]
    truth = (R @ (x - c).T).T + c + t
    est = (A @ x.T).T + b
    err = np.linalg.norm(est - truth, axis=1)
    spacing = np.sqrt((img.affine[:3, :3] ** 2).sum(0))
    return err.mean(), err.max(), err.mean() / float(np.prod(spacing) ** (1 / 3))


def timed(cmd):
    """(wall seconds, completed process, CPU seconds user + sys of the command)."""
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, r, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if shutil.which("elastix") is None:
        sys.exit("elastix not installed (scripts/bootstrap.sh installs it)")
    images = [("sct T2", os.path.join(a.data, "nifti/sct_testing/t2/t2.nii.gz")),
              ("MS FLAIR", os.path.join(a.data, "nifti/longitudinal_ms/patient01/study1_FLAIR.nii.gz"))]
    rng = np.random.default_rng(a.seed)
    work = tempfile.mkdtemp(prefix="gwbench_reg_")
    par = os.path.join(work, "rigid.txt")
    open(par, "w").write(ELASTIX_RIGID)
    rows = []
    for name, path in images:
        if not os.path.exists(path):
            print("skip (absent):", path)
            continue
        img = nib.load(path)
        L = lps_affine(img)
        c = L[:3, :3] @ ((np.array(img.shape[:3]) - 1) / 2.0) + L[:3, 3]
        for trial in range(a.trials):
            ang = np.radians(rng.uniform(-10, 10, 3))
            t = rng.uniform(-10, 10, 3)
            Rz, Rx, Ry = rotation(*ang)
            R = Rz @ Rx @ Ry
            d = os.path.join(work, f"{name.replace(' ', '_')}_{trial}")
            os.makedirs(d)
            moving = os.path.join(d, "moving.nii.gz")
            make_moving(path, moving, R, c, t)
            tg, r, cg = timed([os.path.join(a.bin, "gw_register"), "--fixed", path, "--moving", moving, "-o",
                           os.path.join(d, "gw"), "--quiet"])
            if r.returncode not in (0, 4):
                sys.exit("gw_register failed: " + r.stderr)
            tq, r, cq = timed([os.path.join(a.bin, "gw_register"), "--fixed", path, "--moving", moving, "-o",
                           os.path.join(d, "gwnoqa"), "--quiet", "--no-inverse-consistency"])
            te, r, ce = timed(["elastix", "-f", path, "-m", moving, "-p", par, "-out", d])
            if r.returncode != 0:
                sys.exit("elastix failed: " + r.stdout[-2000:])
            Ag, bg = read_itk_h5(os.path.join(d, "gwnoqa_transform.h5"))
            Ae, be = read_elastix(os.path.join(d, "TransformParameters.0.txt"))
            eg, eg_max, eg_vox = tre(path, Ag, bg, R, c, t)
            ee, ee_max, ee_vox = tre(path, Ae, be, R, c, t)
            rows.append((name, trial, tg, tq, te, eg, eg_vox, ee, ee_vox, cg, cq, ce))
            print(f"{name} trial {trial}: gw_register {tq:.2f} s ({tg:.2f} s with QA; CPU {cq:.2f} / {cg:.2f} s), "
                  f"TRE {eg:.3f} mm ({eg_vox:.3f} vox) | elastix {te:.2f} s (CPU {ce:.2f} s), TRE {ee:.3f} mm "
                  f"({ee_vox:.3f} vox) | ratio {tq / te:.2f} ({tg / te:.2f} with QA)", flush=True)
    if rows:
        tq = np.array([r[3] for r in rows]); tg = np.array([r[2] for r in rows]); te = np.array([r[4] for r in rows])
        print(f"median time ratio gw_register / elastix = {np.median(tq / te):.2f} "
              f"(with the inverse-consistency QA: {np.median(tg / te):.2f}); goal <= 0.5")
        cg = np.array([r[9] for r in rows]); cq = np.array([r[10] for r in rows]); ce = np.array([r[11] for r in rows])
        print(f"median CPU-time ratio = {np.median(cq / ce):.2f} (with QA: {np.median(cg / ce):.2f})")
        print(f"mean TRE gw_register {np.mean([r[5] for r in rows]):.3f} mm, elastix {np.mean([r[7] for r in rows]):.3f} mm; "
              f"gw_register TRE <= elastix TRE in {sum(r[5] <= r[7] for r in rows)} of {len(rows)} pairs")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
