#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets at run time, in a build folder (never in the repository):
  dicom/  files of ../shared/data/dicom (at most 12 per data set, each <= 512 KB) and every file of
          ../shared/data/malformed, plus per data set one multi-file seed (3 files joined by the separator
          GWFUZZ-NEXT-FILE that fuzz_dicom splits on) when <= 1 MB
  image/  NIfTI files of ../shared/data/nifti <= 512 KB whose voxels take <= 256 KiB as they are; the others as a
          valid smaller image (the same header with fewer slices, rows and volumes, compressed when the file was: a
          6.6 kB seed that inflated to 5.75 million voxels made every mutation of it convert them all, and the target
          ran 1.6-2.5 times fewer executions), and those > 512 KB also decompressed and cut to 64 KB (header + first
          voxels: a truncated image); small NRRD/MetaImage seeds are written here.
Usage: prepare_corpus.py DATA_ROOT OUT_DIR
"""
import gzip
import struct
import sys
from pathlib import Path

LIMIT = 512 * 1024
VOXEL_BUDGET = 256 * 1024  # bytes of voxel data in an image seed
SEP = b"GWFUZZ-NEXT-FILE"


def smaller_nifti(body):
    """A NIfTI-1 file `body` (uncompressed) as a valid image of about VOXEL_BUDGET voxel bytes at most: the same
    header with fewer slices (dim[3], or one slice of fewer rows, dim[2], when a slice is over the budget) and at most
    3 volumes (dim[4]), the voxels of those rows, slices and volumes. None when the header is not NIfTI-1, 5D or more,
    or already within the budget."""
    if len(body) < 352:
        return None
    for end in ("<", ">"):
        if struct.unpack(end + "i", body[:4])[0] == 348:
            break
    else:
        return None
    dim = list(struct.unpack(end + "8h", body[40:56]))
    bitpix = struct.unpack(end + "h", body[72:74])[0]
    offset = int(struct.unpack(end + "f", body[108:112])[0])
    if not 1 <= dim[0] <= 7 or bitpix <= 0 or bitpix % 8 or offset < 348:
        return None
    dims = [max(1, d) for d in dim[1 : dim[0] + 1]] + [1] * (7 - dim[0])
    bp = bitpix // 8
    plane = dims[0] * dims[1] * bp
    if any(d != 1 for d in dims[4:]):
        return None  # 5D and more: no such seed
    if plane * dims[2] * dims[3] <= VOXEL_BUDGET:
        return None
    volumes = min(dims[3], 3)
    row = dims[0] * bp
    rows = max(1, min(dims[1], VOXEL_BUDGET // (row * volumes)))  # fewer rows only when a plane is over the budget
    slices = max(1, min(dims[2], VOXEL_BUDGET // (plane * volumes))) if rows == dims[1] else 1
    volume = plane * dims[2]
    block = rows * row * slices  # the first slices (or the first rows of the first slice) of each volume
    voxels = b"".join(body[offset + t * volume : offset + t * volume + block] for t in range(volumes))
    if len(voxels) != block * volumes:
        return None  # the file holds fewer voxels than its header says
    if dim[0] >= 2:
        dim[2] = rows
    if dim[0] >= 3:
        dim[3] = slices
    if dim[0] >= 4:
        dim[4] = volumes
    return body[:40] + struct.pack(end + "8h", *dim) + body[56:offset] + voxels


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
        compressed = p.name.endswith(".gz")
        body = gzip.decompress(raw) if compressed else raw
        small = smaller_nifti(body)
        if small is not None:
            (img / ("%d_small_%s" % (m, p.name))).write_bytes(gzip.compress(small, 6) if compressed else small)
        elif len(raw) <= LIMIT:
            (img / ("%d_%s" % (m, p.name))).write_bytes(raw)
        if len(raw) > LIMIT:
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
