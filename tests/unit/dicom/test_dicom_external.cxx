// Real-data comparison with dcm2niix references (../shared/data/dicom/*/Ref) and robustness on malformed files.
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "gw/core/error.h"
#include "gw/dicom/dicom.h"
#include "gw/io/gradients.h"
#include "gw/testing/testing.h"

namespace
{
namespace fs = std::filesystem;
using gw::dicom::LoadedSeries;

struct Nifti
{
  std::vector<int> dim;
  short datatype = 0;
  double slope = 1, intercept = 0;
  std::array<double, 12> srow{};
  std::vector<std::uint8_t> data;
};

std::vector<std::uint8_t>
ReadAll(const fs::path & p)
{
  gzFile f = gzopen(p.string().c_str(), "rb"); // reads plain files too
  if (!f)
    return {};
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> buf(1 << 20);
  int n;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0)
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  gzclose(f);
  return out;
}

Nifti
ReadNifti(const fs::path & p)
{
  Nifti n;
  const auto d = ReadAll(p);
  if (d.size() < 352)
    return n;
  short dim[8];
  std::memcpy(dim, d.data() + 40, 16);
  for (int i = 1; i <= dim[0] && i < 8; ++i)
    n.dim.push_back(dim[i]);
  while (n.dim.size() > 3 && n.dim.back() == 1)
    n.dim.pop_back();
  std::memcpy(&n.datatype, d.data() + 70, 2);
  float f[12], voxOffset, s[2];
  std::memcpy(&voxOffset, d.data() + 108, 4);
  std::memcpy(s, d.data() + 112, 8);
  n.slope = s[0];
  n.intercept = s[1];
  std::memcpy(f, d.data() + 280, 48);
  for (int i = 0; i < 12; ++i)
    n.srow[i] = f[i];
  n.data.assign(d.begin() + static_cast<long>(voxOffset), d.end());
  return n;
}

short
Datatype(const std::string & t)
{
  static const std::map<std::string, short> m{ { "uint8", 2 },  { "int16", 4 },    { "int32", 8 },   { "float32", 16 },
                                               { "int8", 256 }, { "uint16", 512 }, { "uint32", 768 } };
  return m.at(t);
}

std::vector<std::vector<double>>
ReadMatrix(const fs::path & p)
{
  std::ifstream in(p);
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line))
  {
    std::istringstream s(line);
    std::vector<double> r;
    double v;
    while (s >> v)
      r.push_back(v);
    if (!r.empty())
      rows.push_back(r);
  }
  return rows;
}

/// One reference series: its json, and the NIfTI/bval/bvec next to it (when present).
struct Reference
{
  fs::path json, nii, bval, bvec;
  int seriesNumber = 0;
  std::string model;
};

std::vector<Reference>
References(const fs::path & refDir, const std::string & contains = {})
{
  std::vector<Reference> out;
  for (const auto & e : fs::directory_iterator(refDir))
  {
    if (e.path().extension() != ".json")
      continue;
    const std::string stem = e.path().stem().string();
    if (!contains.empty() && stem.find(contains) == std::string::npos)
      continue;
    Reference r;
    r.json = e.path();
    std::ifstream in(r.json);
    const auto j = nlohmann::json::parse(in);
    r.seriesNumber = j.value("SeriesNumber", 0);
    r.model = j.value("ManufacturersModelName", std::string());
    for (const char * ext : { ".nii", ".nii.gz" })
      if (fs::exists(refDir / (stem + ext)))
        r.nii = refDir / (stem + ext);
    if (fs::exists(refDir / (stem + ".bval")))
    {
      r.bval = refDir / (stem + ".bval");
      r.bvec = refDir / (stem + ".bvec");
    }
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const Reference & a, const Reference & b) { return a.json < b.json; });
  return out;
}

/// Runs Debian's dcm2niix into `outDir` (for references whose NIfTI is absent upstream).
bool
RunDcm2niix(const fs::path & in, const fs::path & outDir)
{
  fs::create_directories(outDir);
  // dcm2niix does not read gzip-compressed DICOM: decompress such inputs into a scratch copy first
  fs::path source = in;
  bool hasGz = false;
  for (const auto & e : fs::recursive_directory_iterator(in))
    if (e.is_regular_file() && e.path().extension() == ".gz")
      hasGz = true;
  if (hasGz)
  {
    source = outDir / "decompressed";
    fs::create_directories(source);
    int k = 0;
    for (const auto & e : fs::recursive_directory_iterator(in))
      if (e.is_regular_file())
      {
        const auto bytes = ReadAll(e.path());
        std::ofstream out(source / ("f" + std::to_string(k++)), std::ios::binary);
        out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      }
  }
  const auto r = gw::testing::Run(
    { "/usr/bin/dcm2niix", "-z", "n", "-b", "y", "-f", "%s_%m_%d", "-o", outDir.string(), source.string() });
  return r.exitCode == 0;
}

struct Tally
{
  int compared = 0, exact = 0;
  int gradientsOnly = 0; ///< no NIfTI reference and no dcm2niix to regenerate it: only bval/bvec compared
};

/// Compares one loaded series with a reference (tolerances stated at the assertions).
bool
CompareSeries(const LoadedSeries & s, const Nifti * ref, const Reference & r)
{
  bool ok = true;
  if (ref)
  {
    std::vector<int> dim{ int(s.size[0]), int(s.size[1]), int(s.size[2]) };
    if (s.size[3] > 1)
      dim.push_back(int(s.size[3]));
    EXPECT_EQ(dim, ref->dim) << r.json;
    EXPECT_EQ(Datatype(s.pixelType), ref->datatype) << r.json;
    ok = ok && dim == ref->dim && Datatype(s.pixelType) == ref->datatype;
    // voxels: identical stored values (tolerance 0)
    const bool same =
      ok && s.voxels.size() <= ref->data.size() && std::memcmp(s.voxels.data(), ref->data.data(), s.voxels.size()) == 0;
    EXPECT_TRUE(same) << "voxels differ from reference " << r.json;
    ok = ok && same;
    EXPECT_NEAR(s.sclSlope, ref->slope, 1e-6 * std::abs(ref->slope)) << r.json;
    EXPECT_NEAR(s.sclIntercept, ref->intercept, 1e-6) << r.json;
    const auto a = s.RasAffine();
    double maxErr = 0;
    for (int i = 0; i < 12; ++i)
      maxErr = std::max(maxErr, std::abs(a[i] - ref->srow[i]));
    EXPECT_LT(maxErr, 1e-3) << "affine differs [mm] " << r.json; // tolerance: 1e-3 mm
    ok = ok && maxErr < 1e-3;
  }
  if (!r.bval.empty())
  {
    const auto bval = ReadMatrix(r.bval);
    const auto bvec = ReadMatrix(r.bvec);
    const auto fsl = s.FslGradients();
    const bool sizesOk = bval.size() == 1 && bvec.size() == 3 && bval[0].size() == fsl.entries.size();
    EXPECT_TRUE(sizesOk) << "gradient count " << fsl.entries.size() << " vs reference " << r.bval;
    if (!sizesOk)
      return false;
    for (std::size_t i = 0; i < fsl.entries.size(); ++i)
    {
      const double b = bval[0][i];
      EXPECT_NEAR(fsl.entries[i].bValue, b, 1e-3) << "bval " << i << " " << r.bval; // tolerance 1e-3 s/mm^2
      double d = 0, dn = 0;
      for (int k = 0; k < 3; ++k)
      {
        d = std::max(d, std::abs(fsl.entries[i].direction[k] - bvec[k][i]));
        dn = std::max(dn, std::abs(fsl.entries[i].direction[k] + bvec[k][i]));
      }
      const bool b0 = b <= gw::io::B0Threshold && fsl.entries[i].bValue <= gw::io::B0Threshold;
      if (b == 0.0 && fsl.entries[i].bValue == 0.0)
        continue; // exactly b=0: no diffusion weighting, dcm2niix writes a placeholder direction for Philips b=0
      const double err = b0 ? std::min(d, dn) : d;           // sign ambiguity only where both are b0
      EXPECT_LT(err, 1e-4) << "bvec " << i << " " << r.bvec; // tolerance 1e-4
      ok = ok && std::abs(fsl.entries[i].bValue - b) <= 1e-3 && err < 1e-4;
    }
  }
  return ok;
}

/// Scans `in`, loads every series that matches a reference in `refDir` (by series number and model) and
/// compares. Missing NIfTI references are regenerated with dcm2niix into a scratch directory.
Tally
CompareDataset(const fs::path & in, const fs::path & refDir, const std::string & contains = {})
{
  Tally tally;
  const auto refs = References(refDir, contains);
  const auto scan = gw::dicom::ScanDirectories({ in });
  gw::testing::ScratchDir scratch("gwdcm2niix");
  bool ranDcm2niix = false;
  std::vector<Reference> generated;
  for (const auto & r : refs)
  {
    SCOPED_TRACE(r.json.filename().string());
    std::vector<const gw::dicom::SeriesInfo *> matches;
    for (const auto & s : scan.series)
      if (s.seriesNumber == r.seriesNumber && s.header.value("ManufacturersModelName", std::string()) == r.model)
        matches.push_back(&s);
    EXPECT_EQ(matches.size(), 1u) << "series " << r.seriesNumber << " found " << matches.size() << " times";
    if (matches.size() != 1)
      continue;
    Reference ref = r;
    if (ref.nii.empty())
    {
      if (!ranDcm2niix && fs::exists("/usr/bin/dcm2niix"))
      {
        ranDcm2niix = RunDcm2niix(in, scratch.Path());
        generated = References(scratch.Path());
      }
      for (const auto & g : generated)
        if (g.seriesNumber == r.seriesNumber && g.model == r.model && !g.nii.empty())
          ref.nii = g.nii;
    }
    ++tally.compared;
    try
    {
      const LoadedSeries loaded = gw::dicom::LoadSeries(*matches[0]);
      Nifti nifti;
      if (!ref.nii.empty())
        nifti = ReadNifti(ref.nii);
      if (CompareSeries(loaded, ref.nii.empty() ? nullptr : &nifti, ref))
        ++(ref.nii.empty() ? tally.gradientsOnly : tally.exact);
    }
    catch (const gw::Error & e)
    {
      ADD_FAILURE() << "series " << r.seriesNumber << ": " << e.what();
    }
  }
  std::cout << "[ dicom ] " << in.string() << ": " << tally.exact << "/" << tally.compared
            << " series identical to dcm2niix (voxels, affine <1e-3 mm, bval/bvec)";
  if (tally.gradientsOnly > 0)
    std::cout << ", " << tally.gradientsOnly << " with bval/bvec only (dcm2niix absent to regenerate the NIfTI)";
  std::cout << "\n";
  return tally;
}

} // namespace

TEST(DicomExternal, SiemensOrientationAndJpegMosaics)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/siemens_orientation");
  const auto t = CompareDataset(root / "In", root / "Ref");
  EXPECT_EQ(t.compared, 19); // the two multiband fMRI series (axmb) have no reference
  EXPECT_EQ(t.exact + t.gradientsOnly, t.compared);
}

TEST(DicomExternal, GeDwi)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/ge_dwi");
  const auto t = CompareDataset(root / "In", root / "Ref");
  EXPECT_EQ(t.compared, 4);
  EXPECT_EQ(t.exact + t.gradientsOnly, t.compared);
}

TEST(DicomExternal, NihGeSiemensEpiWithNonDicomFiles)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/nih_ge_siemens_epi");
  const auto t = CompareDataset(root / "In", root / "Ref");
  EXPECT_EQ(t.compared, 8);
  EXPECT_EQ(t.exact + t.gradientsOnly, t.compared);
}

TEST(DicomExternal, TransferSyntaxes)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/transfer_syntaxes");
  // the same mosaic in 9 transfer syntaxes (same UIDs): each file on its own against Ref/<k>.nii
  int exact = 0;
  for (int k = 1; k <= 9; ++k)
  {
    SCOPED_TRACE("transfer syntax file " + std::to_string(k));
    const auto scan = gw::dicom::ScanDirectories({ root / "In" / (std::to_string(k) + ".dcm") });
    ASSERT_EQ(scan.series.size(), 1u);
    Reference ref;
    ref.json = root / "Ref" / (std::to_string(k) + ".json");
    ref.nii = root / "Ref" / (std::to_string(k) + ".nii");
    const Nifti nifti = ReadNifti(ref.nii);
    try
    {
      if (CompareSeries(gw::dicom::LoadSeries(scan.series[0]), &nifti, ref))
        ++exact;
    }
    catch (const gw::Error & e)
    {
      ADD_FAILURE() << scan.series[0].transferSyntax << ": " << e.what();
    }
  }
  std::cout << "[ dicom ] transfer syntaxes: " << exact << "/9 identical to dcm2niix\n";
  // scanned together: one series (same SeriesInstanceUID), nine objects (distinct SOPInstanceUIDs) of one
  // mosaic, assembled as nine identical volumes whatever their codecs
  const auto all = gw::dicom::ScanDirectories({ root / "In" });
  ASSERT_EQ(all.series.size(), 1u);
  EXPECT_EQ(all.series[0].frames.size(), 9u);
  const auto s = gw::dicom::LoadSeries(all.series[0]);
  ASSERT_EQ(s.size[3], 9u);
  const std::size_t volumeBytes = s.voxels.size() / 9;
  for (std::size_t t = 1; t < 9; ++t)
    EXPECT_TRUE(std::equal(s.voxels.begin(), s.voxels.begin() + static_cast<long>(volumeBytes),
                           s.voxels.begin() + static_cast<long>(t * volumeBytes)))
      << "volume " << t;
  EXPECT_EQ(exact, 9);
}

TEST(DicomExternal, CanonEnhancedDti)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/canon_enhanced_dti");
  const auto t = CompareDataset(root / "In", root / "Ref");
  EXPECT_EQ(t.compared, 2);
  EXPECT_EQ(t.exact + t.gradientsOnly, t.compared);
}

TEST(DicomExternal, SiemensSagittalMosaicDwi)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/siemens_sag_mosaic_dwi");
  const auto t = CompareDataset(root / "In", root / "Ref");
  EXPECT_EQ(t.compared, 1);
  EXPECT_EQ(t.exact + t.gradientsOnly, t.compared);
}

TEST(DicomExternal, SiemensXa60Enhanced)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/siemens_xa60_enhanced");
  const auto t = CompareDataset(root / "In", root / "Ref");
  EXPECT_EQ(t.compared, 18); // 8 XA61 + 10 XA60 references
  EXPECT_EQ(t.exact + t.gradientsOnly, t.compared);
}

TEST(DicomExternal, PhilipsDwiClassicAndEnhanced)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/philips_dwi");
  const auto cl = CompareDataset(root / "In" / "cl", root / "Ref", "_cl");
  EXPECT_EQ(cl.compared, 1);
  EXPECT_EQ(cl.exact + cl.gradientsOnly, cl.compared);
  // In/enh holds only a DICOMDIR, a presentation state and raw-data objects (the enhanced image itself is not in
  // the upstream data set; dcm2niix finds no image either): nothing must be imported from it
  const auto enh = gw::dicom::ScanDirectories({ root / "In" / "enh" });
  EXPECT_TRUE(enh.series.empty());
  EXPECT_EQ(enh.notes.size(), 4u);
}

TEST(DicomExternal, MalformedFilesNeverCrash)
{
  GW_REQUIRE_EXTERNAL(root, "malformed");
  // every file, scanned and (when it forms a series) loaded: errors are gw::Error with a message, never a crash
  const auto start = std::chrono::steady_clock::now();
  const auto scan = gw::dicom::ScanDirectories({ root });
  std::size_t loaded = 0, refused = 0;
  for (const auto & s : scan.series)
  {
    try
    {
      (void)gw::dicom::LoadSeries(s);
      ++loaded;
    }
    catch (const gw::Error & e)
    {
      EXPECT_FALSE(std::string(e.what()).empty());
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one-line message expected";
      ++refused;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ dicom ] malformed: " << scan.filesSeen << " files, " << scan.series.size() << " series, " << loaded
            << " loaded, " << refused << " refused, " << scan.notes.size() << " notes, " << seconds << " s\n";
  EXPECT_GT(scan.filesSeen, 100u);
  EXPECT_LT(seconds, 60.0); // no hang: the whole malformed corpus within a minute
}

TEST(DicomExternal, SiemensCsaDiffusionAsNibabelExpects)
{
  GW_REQUIRE_EXTERNAL(root, "malformed/nibabel/siemens_dwi_1000.dcm.gz");
  const auto scan = gw::dicom::ScanDirectories({ root });
  ASSERT_EQ(scan.series.size(), 1u);
  EXPECT_EQ(scan.series[0].mosaicSlices, 48u); // CSA NumberOfImagesInMosaic
  const auto s = gw::dicom::LoadSeries(scan.series[0]);
  ASSERT_EQ(s.gradients.entries.size(), 1u);
  // CSA B_value is the nominal b (dcm2niix convention); nibabel's 992.05 is the B_matrix trace (not used here)
  EXPECT_NEAR(s.gradients.entries[0].bValue, 1000.0, 1e-6);
  // nibabel test_dicomwrappers: q-vector direction (0.00507649, 0.99997450, -0.00502361) from the CSA B_matrix,
  // expressed along nibabel's array axes (column cosine, row cosine, slice normal). Our LPS direction (CSA
  // DiffusionGradientDirection) projected on those axes agrees to 1e-4.
  const std::array<double, 3> expected{ 0.00507649, 0.99997450, -0.00502361 };
  const auto & o = scan.series[0].orientation;
  const std::array<double, 3> row{ o[0], o[1], o[2] }, col{ o[3], o[4], o[5] };
  const std::array<double, 3> normal{ row[1] * col[2] - row[2] * col[1], row[2] * col[0] - row[0] * col[2],
                                      row[0] * col[1] - row[1] * col[0] };
  const std::array<double, 3> g = s.gradients.entries[0].direction;
  auto dot = [&](const std::array<double, 3> & a) { return a[0] * g[0] + a[1] * g[1] + a[2] * g[2]; };
  EXPECT_NEAR(dot(col), expected[0], 1e-4);
  EXPECT_NEAR(dot(row), expected[1], 1e-4);
  EXPECT_NEAR(dot(normal), expected[2], 1e-4);
}

namespace
{
TEST(DicomExternal, Jpeg2000CodestreamSizeCheckedBeforeDecoding)
{
  GW_REQUIRE_EXTERNAL(root, "dicom/transfer_syntaxes");
  // Found by fuzzing: a changed size field in the JPEG 2000 codestream made OpenJPEG allocate 33 GB. The codestream's
  // image size (SIZ marker) must equal Rows/Columns before OpenJPEG decodes. Here the 384 x 384 mosaic of file 9
  // (JPEG 2000 lossless) claims 30000 x 30000 pixels in one tile (3.6 GB to decode).
  std::ifstream in(root / "In" / "9.dcm", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t soc = bytes.find(std::string("\xff\x4f\xff\x51", 4));
  ASSERT_NE(soc, std::string::npos) << "SOC and SIZ markers";
  auto put32 = [&](std::size_t at, std::uint32_t v)
  {
    for (int k = 0; k < 4; ++k)
      bytes[at + k] = static_cast<char>(v >> (24 - 8 * k)); // big endian
  };
  for (std::size_t field : { 8u, 12u, 24u, 28u }) // Xsiz, Ysiz, XTsiz, YTsiz after SOC
    put32(soc + field, 30000);
  gw::testing::ScratchDir dir("gwj2k");
  std::ofstream(dir / "big.dcm", std::ios::binary) << bytes;
  const auto scan = gw::dicom::ScanDirectories({ dir.Path() });
  ASSERT_EQ(scan.series.size(), 1u) << "the header itself is valid";
  try
  {
    gw::dicom::LoadSeries(scan.series[0]);
    ADD_FAILURE() << "a codestream of another size than Rows/Columns was decoded";
  }
  catch (const gw::Error & e)
  {
    EXPECT_NE(std::string(e.what()).find("does not match Rows/Columns"), std::string::npos) << e.what();
  }
}
} // namespace
