#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets at run time, in a build folder (never in the repository):
  dicom/  files of ../shared/data/dicom (at most 12 per data set, each <= 512 KB) and every file of
          ../shared/data/malformed, plus per data set one multi-file seed (3 files joined by the separator
          GWFUZZ-NEXT-FILE that fuzz_dicom splits on) when <= 1 MB
  image/  NIfTI files of ../shared/data/nifti <= 512 KB as they are, larger ones decompressed and cut to 64 KB
          (header + first voxels: the header path is what matters), and small NRRD/MetaImage seeds written here.
Usage: prepare_corpus.py DATA_ROOT OUT_DIR
"""
import gzip
import sys
from pathlib import Path

LIMIT = 512 * 1024
SEP = b"GWFUZZ-NEXT-FILE"


def main():
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    dcm, img = out / "dicom", out / "image"
    for d in (dcm, img):
        d.mkdir(parents=True, exist_ok=True)
    n = 0
    for ds in sorted((data / "dicom").iterdir()) if (data / "dicom").is_dir() else []:
        files = [p for p in sorted(ds.rglob("*")) if p.is_file() and p.stat().st_size <= LIMIT]
        step = max(1, len(files) // 12)
        for p in files[::step][:12]:
            (dcm / ("%s_%d" % (ds.name, n))).write_bytes(p.read_bytes())
            n += 1
        multi = files[:3]
        if len(multi) > 1 and sum(p.stat().st_size for p in multi) <= 2 * LIMIT:
            (dcm / ("%s_multi" % ds.name)).write_bytes(SEP.join(p.read_bytes() for p in multi))
    for p in sorted((data / "malformed").rglob("*")) if (data / "malformed").is_dir() else []:
        if p.is_file():
            (dcm / ("malformed_%d_%s" % (n, p.name))).write_bytes(p.read_bytes())
            n += 1
    m = 0
    for p in sorted((data / "nifti").rglob("*.nii*")) if (data / "nifti").is_dir() else []:
        raw = p.read_bytes()
        if len(raw) <= LIMIT:
            (img / ("%d_%s" % (m, p.name))).write_bytes(raw)
        else:
            body = gzip.decompress(raw) if p.name.endswith(".gz") else raw
            (img / ("%d_%s.cut" % (m, p.name))).write_bytes(body[: 64 * 1024])
        m += 1
    vox = bytes(range(256))  # voxel bytes for the small seeds (4x4x4 float32 = 256 bytes)
    (img / "seed_raw.nrrd").write_bytes(
        b"NRRD0004\ntype: float\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 4 4\n"
        b"space directions: (1,0,0) (0,1,0) (0,0,2)\nkinds: domain domain domain\nendian: little\n"
        b"encoding: raw\nspace origin: (0,0,0)\n\n" + vox[:256])
    (img / "seed_dwi.nrrd").write_bytes(
        b"NRRD0004\ntype: short\ndimension: 4\nspace: left-posterior-superior\nsizes: 3 2 2 2\n"
        b"space directions: none (1,0,0) (0,1,0) (0,0,1)\nkinds: list domain domain domain\nendian: little\n"
        b"encoding: raw\nspace origin: (0,0,0)\nmeasurement frame: (1,0,0) (0,1,0) (0,0,1)\nmodality:=DWMRI\n"
        b"DWMRI_b-value:=1000\nDWMRI_gradient_0000:=0 0 0\nDWMRI_gradient_0001:=1 0 0\n"
        b"DWMRI_gradient_0002:=0 1 0\n\n" + vox[:48])
    (img / "seed.mha").write_bytes(
        b"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        b"Offset = 0 0 0\nElementSpacing = 1 1 1\nDimSize = 4 4 4\nElementType = MET_FLOAT\n"
        b"ElementDataFile = LOCAL\n" + vox[:256])
    print("dicom seeds: %d, image seeds: %d" % (len(list(dcm.iterdir())), len(list(img.iterdir()))))


if __name__ == "__main__":
    main()
