// Import of synthetic DICOM series written by gw::dicom::WriteDicomSeries: geometry with analytic answers,
// file-name independence, gzip, non-DICOM files, missing slices, diffusion tables, output naming.
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "gw/core/error.h"
#include "gw/dicom/dicom.h"
#include "gw/dicom/writer.h"
#include "gw/io/image_io.h"
#include "gw/testing/testing.h"

namespace
{
namespace fs = std::filesystem;

/// An oblique 12x10x6 image (spacing 0.8 x 1.1 x 2.5 mm) with a value ramp that identifies each voxel.
gw::FloatImage::Pointer
ObliqueImage()
{
  gw::SizeType size{ { 12, 10, 6 } };
  gw::SpacingType spacing;
  spacing[0] = 0.8;
  spacing[1] = 1.1;
  spacing[2] = 2.5;
  gw::PointType origin;
  origin[0] = -20.5;
  origin[1] = 31.25;
  origin[2] = 7.0;
  auto image = gw::testing::MakeImage(size, spacing, origin);
  // rotation of 20 degrees about x, then 10 degrees about z
  const double a = 20.0 * M_PI / 180.0, b = 10.0 * M_PI / 180.0;
  gw::DirectionType rx, rz;
  rx.SetIdentity();
  rz.SetIdentity();
  rx(1, 1) = std::cos(a);
  rx(1, 2) = -std::sin(a);
  rx(2, 1) = std::sin(a);
  rx(2, 2) = std::cos(a);
  rz(0, 0) = std::cos(b);
  rz(0, 1) = -std::sin(b);
  rz(1, 0) = std::sin(b);
  rz(1, 1) = std::cos(b);
  image->SetDirection(rz * rx);
  float * p = image->GetBufferPointer();
  for (std::size_t i = 0; i < 12 * 10 * 6; ++i)
    p[i] = static_cast<float>(i % 4000);
  return image;
}

gw::dicom::SeriesDescriptor
Descriptor(int number, const std::string & description)
{
  gw::dicom::SeriesDescriptor d;
  d.seriesNumber = number;
  d.seriesDescription = description;
  d.uidSeed = "gw-dicom-test-" + std::to_string(number);
  return d;
}

void
GzipFile(const fs::path & in, const fs::path & out)
{
  std::ifstream f(in, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  gzFile g = gzopen(out.string().c_str(), "wb");
  ASSERT_NE(g, nullptr);
  gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(g);
}
} // namespace

TEST(DicomImport, ObliqueGeometryAndVoxelsExact)
{
  gw::testing::ScratchDir dir;
  const auto image = ObliqueImage();
  gw::dicom::WriteDicomSeries(image, dir / "s", Descriptor(3, "T2 sag"), false);
  const auto scan = gw::dicom::ScanDirectories({ dir.Path() });
  ASSERT_EQ(scan.series.size(), 1u);
  const auto s = gw::dicom::LoadSeries(scan.series[0]);
  ASSERT_EQ(s.size[0], 12u);
  ASSERT_EQ(s.size[1], 10u);
  ASSERT_EQ(s.size[2], 6u);
  ASSERT_EQ(s.size[3], 1u);
  EXPECT_TRUE(s.warnings.empty());
  const auto & d = image->GetDirection();
  for (int r = 0; r < 3; ++r)
  {
    // voxel axes: i = DICOM row direction, j = column direction reversed, k = slice direction (all to 1e-6)
    EXPECT_NEAR(s.direction[r * 3 + 0], d(r, 0), 1e-6);
    EXPECT_NEAR(s.direction[r * 3 + 1], -d(r, 1), 1e-6);
    EXPECT_NEAR(s.direction[r * 3 + 2], d(r, 2), 1e-6);
    // origin: first row of DICOM is the last j, so voxel (0,0,0) sits at ITK index (0, ny-1, 0)
    EXPECT_NEAR(s.origin[r], image->GetOrigin()[r] + d(r, 1) * 1.1 * 9, 1e-4); // [mm], DS precision
  }
  EXPECT_NEAR(s.spacing[0], 0.8, 1e-6);
  EXPECT_NEAR(s.spacing[1], 1.1, 1e-6);
  EXPECT_NEAR(s.spacing[2], 2.5, 1e-4); // from positions (DS precision)
  // voxels: stored exactly (ramp < 65535 → no rescale)
  const auto f = gw::dicom::ToFloatImage(s);
  std::size_t mismatches = 0;
  for (unsigned z = 0; z < 6; ++z)
    for (unsigned y = 0; y < 10; ++y)
      for (unsigned x = 0; x < 12; ++x)
      {
        const gw::IndexType src{ { x, 9 - y, z } };
        const gw::IndexType dst{ { x, y, z } };
        if (image->GetPixel(src) != f->GetPixel(dst))
          ++mismatches;
      }
  EXPECT_EQ(mismatches, 0u);
  // the ITK image from ToFloatImage is the same physical image: voxel centre of (3,4,5) maps to the same point
  gw::PointType a, b;
  image->TransformIndexToPhysicalPoint(gw::IndexType{ { 3, 9 - 4, 5 } }, a);
  f->TransformIndexToPhysicalPoint(gw::IndexType{ { 3, 4, 5 } }, b);
  EXPECT_LT(a.EuclideanDistanceTo(b), 1e-3); // [mm]
}

TEST(DicomImport, FileNamesOrderAndGzipDoNotMatter)
{
  gw::testing::ScratchDir dir;
  const auto image = ObliqueImage();
  const auto files = gw::dicom::WriteDicomSeries(image, dir / "orig", Descriptor(5, "T1 post"), false);
  fs::create_directories(dir / "mixed" / "deep");
  // reversed, meaningless names; half gzip-compressed; a non-DICOM file and an empty file in between
  for (std::size_t i = 0; i < files.size(); ++i)
  {
    const fs::path target = dir / "mixed" / (i % 2 ? "deep" : "") / ("zz" + std::to_string(files.size() - i));
    if (i % 2)
      GzipFile(files[i], target.string() + ".dcm.gz");
    else
      fs::copy_file(files[i], target);
  }
  std::ofstream(dir / "mixed" / "notes.txt") << "not dicom\n";
  std::ofstream(dir / "mixed" / "empty");
  fs::copy_file(files[2], dir / "mixed" / "deep" / "copy_of_a_slice"); // same object twice: imported once
  const auto reference = gw::dicom::LoadSeries(gw::dicom::ScanDirectories({ dir / "orig" }).series.at(0));
  const auto scan = gw::dicom::ScanDirectories({ dir / "mixed" });
  ASSERT_EQ(scan.series.size(), 1u);
  EXPECT_EQ(scan.notes.size(), 3u); // the text file, the empty file, the duplicate
  const auto s = gw::dicom::LoadSeries(scan.series[0]);
  EXPECT_EQ(s.voxels, reference.voxels);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(s.origin[i], reference.origin[i], 1e-9);
}

TEST(DicomImport, MissingSliceIsRefused)
{
  gw::testing::ScratchDir dir;
  const auto files = gw::dicom::WriteDicomSeries(ObliqueImage(), dir / "s", Descriptor(7, "T2"), false);
  fs::remove(files[3]);
  const auto scan = gw::dicom::ScanDirectories({ dir.Path() });
  ASSERT_EQ(scan.series.size(), 1u);
  try
  {
    (void)gw::dicom::LoadSeries(scan.series[0]);
    FAIL() << "a volume with a missing slice must be refused";
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), gw::ErrorKind::Input);
    EXPECT_NE(std::string(e.what()).find("missing slice"), std::string::npos) << e.what();
  }
}

TEST(DicomImport, DiffusionTableBothConventions)
{
  gw::testing::ScratchDir dir;
  const auto image = ObliqueImage();
  // DWI: 4 volumes (b0 + 3 directions at b=800)
  auto dwi = gw::DwiImage::New();
  dwi->SetRegions(image->GetLargestPossibleRegion());
  dwi->CopyInformation(image);
  dwi->SetNumberOfComponentsPerPixel(4);
  dwi->Allocate();
  itk::VariableLengthVector<float> v(4);
  for (unsigned c = 0; c < 4; ++c)
    v[c] = 100.0f + 10.0f * c;
  dwi->FillBuffer(v);
  gw::io::GradientTable table;
  table.entries.push_back({ 0.0, { 0, 0, 0 } });
  const double s3 = 1.0 / std::sqrt(3.0);
  table.entries.push_back({ 800.0, { 1, 0, 0 } });
  table.entries.push_back({ 800.0, { 0, s3 * std::sqrt(1.5), s3 * std::sqrt(1.5) } });
  table.entries.push_back({ 800.0, { s3, -s3, s3 } });
  for (auto convention : { gw::dicom::DiffusionConvention::Standard, gw::dicom::DiffusionConvention::Siemens })
  {
    const fs::path out = dir / (convention == gw::dicom::DiffusionConvention::Standard ? "std" : "siemens");
    auto info = Descriptor(9, "DTI");
    if (convention == gw::dicom::DiffusionConvention::Siemens)
      info.manufacturer = "SIEMENS";
    gw::dicom::WriteDicomDwiSeries(dwi, table, out, info, convention, false);
    const auto scan = gw::dicom::ScanDirectories({ out });
    ASSERT_EQ(scan.series.size(), 1u);
    EXPECT_EQ(scan.series[0].classification, "DWI");
    const auto s = gw::dicom::LoadSeries(scan.series[0]);
    ASSERT_EQ(s.size[3], 4u);
    ASSERT_EQ(s.gradients.entries.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i)
    {
      EXPECT_NEAR(s.gradients.entries[i].bValue, table.entries[i].bValue, 1e-6);
      for (int k = 0; k < 3; ++k)
        EXPECT_NEAR(s.gradients.entries[i].direction[k], table.entries[i].direction[k], 1e-6); // LPS
      // volume order = acquisition order: values 100, 110, 120, 130
      EXPECT_NEAR(s.Value(i * 12 * 10 * 6), 100.0 + 10.0 * i, 1e-6);
    }
    // FSL frame: direction expressed along the voxel axes (x flipped when det > 0), unit length kept
    const auto fsl = s.FslGradients();
    const auto a = s.RasAffine();
    const double det =
      a[0] * (a[5] * a[10] - a[6] * a[9]) - a[1] * (a[4] * a[10] - a[6] * a[8]) + a[2] * (a[4] * a[9] - a[5] * a[8]);
    for (std::size_t i = 1; i < 4; ++i)
    {
      double expected[3];
      for (int c = 0; c < 3; ++c)
      {
        expected[c] = 0;
        for (int r = 0; r < 3; ++r)
          expected[c] += table.entries[i].direction[r] * s.direction[r * 3 + c];
      }
      if (det > 0)
        expected[0] = -expected[0];
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(fsl.entries[i].direction[c], expected[c], 1e-6);
    }
  }
}

TEST(DicomImport, ImportWritesSafeNamesAndRefusesOverwrite)
{
  gw::testing::ScratchDir dir;
  gw::dicom::WriteDicomSeries(ObliqueImage(), dir / "in", Descriptor(12, "../../etc/passwd T1 FLAIR"), false);
  gw::dicom::ImportOptions options;
  const auto result = gw::dicom::Import({ dir / "in" }, dir / "out", options);
  ASSERT_EQ(result.succeeded, 1u);
  ASSERT_EQ(result.series.size(), 1u);
  const std::string name = result.series[0].name;
  EXPECT_EQ(name.find('/'), std::string::npos);
  EXPECT_EQ(name.find(".."), std::string::npos);
  EXPECT_EQ(name.rfind("12_", 0), 0u) << name;
  for (const auto & f : result.series[0].files)
  {
    EXPECT_TRUE(fs::exists(f));
    EXPECT_EQ(f.parent_path(), dir / "out");
  }
  // the written NIfTI holds exactly the loaded voxels at the offset its header gives (read back through ITK)
  {
    const auto scan = gw::dicom::ScanDirectories({ dir / "in" });
    ASSERT_EQ(scan.series.size(), 1u);
    const auto expected = gw::dicom::ToFloatImage(gw::dicom::LoadSeries(scan.series[0]));
    const auto written = gw::io::ReadFloatImage(dir / "out" / (name + ".nii.gz"));
    ASSERT_EQ(written->GetLargestPossibleRegion().GetNumberOfPixels(),
              expected->GetLargestPossibleRegion().GetNumberOfPixels());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < expected->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
      mismatches += written->GetBufferPointer()[i] != expected->GetBufferPointer()[i];
    EXPECT_EQ(mismatches, 0u) << "voxels of the written file (exact)";
  }
  // sidecar has no patient identifiers
  std::ifstream j(dir / "out" / (name + ".json"));
  const std::string sidecar((std::istreambuf_iterator<char>(j)), std::istreambuf_iterator<char>());
  EXPECT_EQ(sidecar.find("PHANTOM^GRAFTWATCH"), std::string::npos);
  EXPECT_EQ(sidecar.find("GWPHANTOM01"), std::string::npos);
  EXPECT_NE(sidecar.find("\"Classification\""), std::string::npos);
  // second run without force: refused with an output error
  try
  {
    (void)gw::dicom::Import({ dir / "in" }, dir / "out", options);
    FAIL() << "existing outputs must not be overwritten without force";
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), gw::ErrorKind::Output);
  }
  options.force = true;
  options.format = "nrrd";
  EXPECT_EQ(gw::dicom::Import({ dir / "in" }, dir / "out", options).succeeded, 1u);
}

TEST(DicomImport, Classification)
{
  gw::dicom::SeriesInfo s;
  s.description = "t2_tse_sag";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "T2");
  s.description = "T1 SE sag";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "T1");
  s.header["ContrastBolusAgent"] = "Gadovist";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "T1post");
  s.header.erase("ContrastBolusAgent");
  s.description = "sag FLAIR";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "FLAIR");
  s.description = "localizer";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "localizer");
  s.description = "ep2d_diff_ADC";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "derived");
  s.description = "DTI 30dir";
  EXPECT_EQ(gw::dicom::ClassifySeries(s), "DWI");
}

TEST(DicomImport, NrrdDwmriRoundTripThroughGwIo)
{
  gw::testing::ScratchDir dir;
  const auto image = ObliqueImage();
  auto dwi = gw::DwiImage::New();
  dwi->SetRegions(image->GetLargestPossibleRegion());
  dwi->CopyInformation(image);
  dwi->SetNumberOfComponentsPerPixel(3);
  dwi->Allocate();
  itk::VariableLengthVector<float> v(3);
  v[0] = 500.0f;
  v[1] = 200.0f;
  v[2] = 250.0f;
  dwi->FillBuffer(v);
  gw::io::GradientTable table;
  table.entries.push_back({ 0.0, { 0, 0, 0 } });
  table.entries.push_back({ 1000.0, { 0, 1, 0 } });
  table.entries.push_back({ 1000.0, { 0.6, 0, 0.8 } });
  gw::dicom::WriteDicomDwiSeries(dwi, table, dir / "in", Descriptor(4, "DWI"), gw::dicom::DiffusionConvention::Standard,
                                 false);
  gw::dicom::ImportOptions options;
  options.format = "nrrd";
  const auto result = gw::dicom::Import({ dir / "in" }, dir / "out", options);
  ASSERT_EQ(result.succeeded, 1u);
  const fs::path nrrd = dir / "out" / (result.series[0].name + ".nrrd");
  ASSERT_TRUE(fs::exists(nrrd));
  const auto read = gw::io::ReadNrrdGradients(nrrd);
  ASSERT_EQ(read.entries.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i)
  {
    EXPECT_NEAR(read.entries[i].bValue, table.entries[i].bValue, 1e-3); // [s/mm^2]
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(read.entries[i].direction[k], table.entries[i].direction[k], 1e-5); // LPS
  }
  const auto vec = gw::io::ReadVectorImage(nrrd);
  ASSERT_EQ(vec->GetNumberOfComponentsPerPixel(), 3u);
  const auto pixel = vec->GetPixel(gw::IndexType{ { 2, 3, 4 } });
  EXPECT_NEAR(pixel[1], 200.0, 1e-3);
  EXPECT_NEAR(pixel[2], 250.0, 1e-3);
}

TEST(DicomImport, AppExitCodes)
{
  gw::testing::ScratchDir dir;
  fs::create_directories(dir / "nothing");
  std::ofstream(dir / "nothing" / "a.txt") << "no dicom here\n";
  // nothing usable → exit 3 (bad input), and no output folder content
  auto r = gw::testing::Run({ "gw_import", (dir / "nothing").string(), "-o", (dir / "out").string() });
  EXPECT_EQ(r.exitCode, 3) << r.err;
  gw::dicom::WriteDicomSeries(ObliqueImage(), dir / "in", Descriptor(2, "T1 sag"), false);
  r = gw::testing::Run({ "gw_import", (dir / "in").string(), "-o", (dir / "out2").string(), "--json" });
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("written").get<int>(), 1);
  EXPECT_TRUE(fs::exists(dir / "out2" / "2_T1_sag.nii.gz"));
  EXPECT_TRUE(fs::exists(dir / "out2" / "2_T1_sag.json"));
  // --list writes nothing
  r = gw::testing::Run({ "gw_import", (dir / "in").string(), "--list" });
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("2_T1_sag"), std::string::npos);
}

TEST(DicomImport, ClassificationOverrides)
{
  gw::dicom::SeriesInfo s;
  s.seriesNumber = 7;
  s.description = "sag MPRAGE";
  s.classification = gw::dicom::ClassifySeries(s);
  EXPECT_EQ(s.classification, "T1");
  EXPECT_TRUE(gw::dicom::ApplyClassificationOverrides(s, { { "mprage", "T1post" } }));
  EXPECT_EQ(s.classification, "T1post");
  EXPECT_TRUE(gw::dicom::ApplyClassificationOverrides(s, { { "mprage", "T1post" }, { "7", "other" } }));
  EXPECT_EQ(s.classification, "other"); // series number wins over a description substring
  EXPECT_FALSE(gw::dicom::ApplyClassificationOverrides(s, { { "flair", "FLAIR" } }));
  gw::testing::ScratchDir dir;
  std::ofstream(dir / "bad.json") << "[1, 2]";
  EXPECT_THROW(gw::dicom::ReadClassificationOverrides(dir / "bad.json"), gw::Error);
  std::ofstream(dir / "good.json") << R"({"7": "T1post"})";
  EXPECT_EQ(gw::dicom::ReadClassificationOverrides(dir / "good.json").at("7"), "T1post");
}

namespace
{
/// Little-endian 16- and 32-bit fields of hand-made DICOM bytes.
std::string
le16(unsigned v)
{
  return std::string{ char(v & 0xff), char(v >> 8) };
}
std::string
le32(unsigned v)
{
  return std::string{ char(v & 0xff), char((v >> 8) & 0xff), char((v >> 16) & 0xff), char(v >> 24) };
}

/// Writes `bytes` as the only file of `dir`, scans it, expects no series and returns the scan's notes, one a line.
std::string
ScanRefusedFile(const gw::testing::ScratchDir & dir, const std::string & bytes)
{
  {
    std::ofstream(dir / "bad.dcm", std::ios::binary) << bytes;
  }
  const auto scan = gw::dicom::ScanDirectories({ dir.Path() });
  EXPECT_TRUE(scan.series.empty());
  std::string notes;
  for (const auto & n : scan.notes)
    notes += n + "\n";
  return notes;
}
} // namespace

namespace
{
TEST(DicomImport, ElementClaimingMoreBytesThanTheFileIsRefusedBeforeParsing)
{
  // Found by fuzzing: a few-byte file whose OB element claims 0x41414141 bytes made DCMTK allocate 1 GB.
  gw::testing::ScratchDir dir;
  std::string bytes(128, '\0');
  bytes += "DICM";
  const std::string ts = "1.2.840.10008.1.2.1"; // explicit VR little endian (odd length: padded with NUL)
  bytes += le16(0x0002) + le16(0x0010) + "UI" + le16(20) + ts + std::string(1, '\0');
  bytes += le16(0x0008) + le16(0x0060) + "CS" + le16(2) + "MR";
  bytes += le16(0x0009) + le16(0x1010) + "OB" + le16(0) + le32(0x41414141u) + "AAAA";
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("claims"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, DeflatedDatasetClaimingHugeElementIsRefused)
{
  // Found by fuzzing: the same attack inside a deflated (1.2.840.10008.1.2.1.99) dataset.
  gw::testing::ScratchDir dir;
  std::string dataset = le16(0x0008) + le16(0x0060) + "CS" + le16(2) + "MR";
  dataset += le16(0x0009) + le16(0x1010) + "OB" + le16(0) + le32(0x41414141u) + "AAAA";
  std::string deflated(256, '\0');
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = reinterpret_cast<Bytef *>(dataset.data());
  zs.avail_in = static_cast<uInt>(dataset.size());
  zs.next_out = reinterpret_cast<Bytef *>(deflated.data());
  zs.avail_out = static_cast<uInt>(deflated.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  deflated.resize(deflated.size() - zs.avail_out);
  deflateEnd(&zs);
  const std::string ts = "1.2.840.10008.1.2.1.99"; // 22 characters: even
  std::string bytes(128, '\0');
  bytes += "DICM";
  bytes += le16(0x0002) + le16(0x0010) + "UI" + le16(static_cast<unsigned>(ts.size())) + ts;
  bytes += deflated;
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("claims"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, UnknownValueRepresentationIsRefusedBeforeParsing)
{
  // Found by fuzzing: with an unknown explicit VR code DCMTK reads a 4-byte length after 2 reserved bytes, where a
  // 2-byte length walker sees a short element; the two disagreed and DCMTK allocated 1.6 GB for a 400 kB file.
  gw::testing::ScratchDir dir;
  std::string bytes(128, '\0');
  bytes += "DICM";
  const std::string ts = "1.2.840.10008.1.2.1";
  bytes += le16(0x0002) + le16(0x0010) + "UI" + le16(20) + ts + std::string(1, '\0');
  bytes += le16(0x0008) + le16(0x0060) + "CS" + le16(2) + "MR";
  // "ZZ" with length 0 to a 2-byte walker, then what it would take for the next element (tag 4141,4141 CS "MR");
  // read with a 4-byte length the same bytes claim 0x41414141 bytes
  bytes += le16(0x0009) + le16(0x1010) + "ZZ" + le16(0) + le32(0x41414141u) + "CS" + le16(2) + "MR";
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("unknown value representation"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, UnknownValueRepresentationInTheMetaHeaderIsRefused)
{
  // Found by fuzzing: the file meta walker had its own list of long-length VRs and accepted unknown VR codes, which
  // DCMTK reads with another length (3.3 GB allocated for a 2 kB file).
  gw::testing::ScratchDir dir;
  std::string bytes(128, '\0');
  bytes += "DICM";
  const std::string ts = "1.2.840.10008.1.2.1";
  bytes += le16(0x0002) + le16(0x0010) + "\xe5I" + le16(20) + ts + std::string(1, '\0');
  bytes += le16(0x0008) + le16(0x0060) + "CS" + le16(2) + "MR";
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("unknown value representation in the file meta header"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, ImplicitVrSequenceOfDefinedLengthIsWalkedBeforeParsing)
{
  // Found by fuzzing: in implicit VR the length walker skipped a defined-length sequence as opaque bytes, while
  // DCMTK parses its items (the dictionary says SQ); an element inside a DICOMDIR record claiming 2.5 GB with 2
  // bytes left in its item made DCMTK allocate 2.5 GB.
  gw::testing::ScratchDir dir;
  std::string bytes(128, '\0');
  bytes += "DICM";
  const std::string ts = "1.2.840.10008.1.2"; // implicit VR little endian (odd length: padded with NUL)
  bytes += le16(0x0002) + le16(0x0010) + "UI" + le16(18) + ts + std::string(1, '\0');
  bytes += le16(0x0008) + le16(0x0060) + le32(2) + "MR";
  // (0004,1220) Directory Record Sequence, defined length: one item of 12 bytes whose only element claims 2.5 GB
  const std::string inner = le16(0x0004) + le16(0x1400) + le32(2496144875u) + "AAAA";
  const std::string item = le16(0xFFFE) + le16(0xE000) + le32(static_cast<unsigned>(inner.size())) + inner;
  bytes += le16(0x0004) + le16(0x1220) + le32(static_cast<unsigned>(item.size())) + item;
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("claims 2496144875 bytes"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, BigEndianFileWithoutMetaHeaderIsWalkedBigEndian)
{
  // Found by fuzzing: a file without meta header whose first group reads 0008 only big endian was walked little
  // endian, while DCMTK detects big endian; its implicit-VR element (0008,0005) claimed 0x43000000 bytes (1.1 GB).
  gw::testing::ScratchDir dir;
  std::string bytes = std::string("\x00\x08\x00\x05", 4) + std::string("\x43\x00\x00\x00", 4) + "ISO_IR 100";
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("claims 1124073472 bytes"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, GarbledTransferSyntaxIsWalkedAsDcmtkReadsIt)
{
  // Found by fuzzing: a transfer syntax UID starting with NUL reads as "" in DCMTK, which is the UID of its virtual
  // "big endian implicit" syntax, so DCMTK reads the dataset big endian implicit, while the length walk assumed
  // explicit VR little endian; an element claiming 1.1 GB got through. The walk now takes the syntax as DCMTK does.
  gw::testing::ScratchDir dir;
  std::string bytes(128, '\0');
  bytes += "DICM";
  const std::string ts = std::string(9, '\0') + "\x14" + "10008.1.2."; // garbled: 20 bytes
  bytes += le16(0x0002) + le16(0x0010) + "UI" + le16(static_cast<unsigned>(ts.size())) + ts;
  // big endian implicit: tag (0008,0016), length 0x43530000
  bytes += std::string("\x00\x08\x00\x16\x43\x53\x00\x00", 8) + "1.2.840.10008.5.1.4.1.1.4";
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("element (0008,0016) claims 1129512960 bytes"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, ElementsInsideTheDeclaredMetaLengthAreWalkedAsMeta)
{
  // Found by fuzzing: DCMTK reads every element inside the length (0002,0000) declares as a file meta element,
  // whatever its group; the walk stopped at the first non-0002 element, so a (3236,322e) with a non-standard VR
  // (DCMTK then guesses its length field) inside the meta length made DCMTK allocate 4 GB.
  gw::testing::ScratchDir dir;
  const std::string ts = "1.2.840.10008.1.2.1"; // odd length: padded with NUL
  const std::string meta = le16(0x0002) + le16(0x0010) + "UI" + le16(20) + ts + std::string(1, '\0') + le16(0x3236) +
                           le16(0x322e) + std::string("\x02\x00", 2) + le16(2) + "AB";
  std::string bytes(128, '\0');
  bytes += "DICM";
  bytes += le16(0x0002) + le16(0x0000) + "UL" + le16(4) + le32(static_cast<unsigned>(meta.size())) + meta;
  bytes += le16(0x0008) + le16(0x0060) + "CS" + le16(2) + "MR";
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("unknown value representation in the file meta header"), std::string::npos) << notes;
}
} // namespace

namespace
{
TEST(DicomImport, DicomdirIsSkippedWithoutParsing)
{
  // Found by fuzzing: DCMTK leaks the directory records of a malformed DICOMDIR. A DICOMDIR indexes the files of a
  // medium and holds no image: it is skipped from its file meta header alone.
  gw::testing::ScratchDir dir;
  std::string bytes(128, '\0');
  bytes += "DICM";
  const std::string sop = "1.2.840.10008.1.3.10"; // Media Storage Directory Storage (20 characters)
  const std::string ts = "1.2.840.10008.1.2.1";   // odd length: padded with NUL
  bytes += le16(0x0002) + le16(0x0002) + "UI" + le16(20) + sop;
  bytes += le16(0x0002) + le16(0x0010) + "UI" + le16(20) + ts + std::string(1, '\0');
  // a directory record sequence with one item holding a malformed record (a UL of odd length)
  const std::string record = le16(0x0004) + le16(0x1400) + "UL" + le16(3) + "abc";
  const std::string item = le16(0xFFFE) + le16(0xE000) + le32(static_cast<unsigned>(record.size())) + record;
  bytes += le16(0x0004) + le16(0x1220) + "SQ" + le16(0) + le32(static_cast<unsigned>(item.size())) + item;
  const std::string notes = ScanRefusedFile(dir, bytes);
  EXPECT_NE(notes.find("DICOMDIR"), std::string::npos) << notes;
}
} // namespace
