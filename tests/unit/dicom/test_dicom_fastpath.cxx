// The single-parse import path: the scan notes where each file keeps its pixels (read later without parsing the
// header again), DCMTK parses headers without the private elements that are never read, and NIfTI images are
// gzip-compressed in independent pieces. Each test compares with an answer that does not depend on these paths.
#include <cstring>
#include <fstream>

#include <zlib.h>

#include "gw/dicom/dicom.h"
#include "gw/dicom/writer.h"
#include "gw/testing/testing.h"

namespace
{
namespace fs = std::filesystem;

std::string
Le16(unsigned v)
{
  return std::string{ char(v & 0xff), char((v >> 8) & 0xff) };
}
std::string
Le32(std::uint32_t v)
{
  return std::string{ char(v & 0xff), char((v >> 8) & 0xff), char((v >> 16) & 0xff), char((v >> 24) & 0xff) };
}
std::string
Short(unsigned g, unsigned e, const char * vr, const std::string & value)
{
  return Le16(g) + Le16(e) + vr + Le16(static_cast<unsigned>(value.size())) + value;
}
std::string
Long(unsigned g, unsigned e, const char * vr, const std::string & value, bool undefined = false)
{
  return Le16(g) + Le16(e) + vr + Le16(0) + Le32(undefined ? 0xFFFFFFFFu : static_cast<std::uint32_t>(value.size())) +
         value;
}
std::string
Item(const std::string & content, bool undefined = false)
{
  return Le16(0xFFFE) + Le16(0xE000) + Le32(undefined ? 0xFFFFFFFFu : static_cast<std::uint32_t>(content.size())) +
         content + (undefined ? Le16(0xFFFE) + Le16(0xE00D) + Le32(0) : std::string());
}
const std::string sequenceDelimiter = Le16(0xFFFE) + Le16(0xE0DD) + Le32(0);

std::string
ReadAll(const fs::path & p)
{
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// Inserts `bytes` into an explicit VR little endian file (as WriteDicomSeries writes them) before the first
/// top-level element whose group is >= `group`.
void
InsertBefore(const fs::path & file, unsigned group, const std::string & bytes)
{
  std::string s = ReadAll(file);
  ASSERT_EQ(s.compare(128, 4, "DICM"), 0);
  std::size_t pos = 132;
  auto u16 = [&](std::size_t at) { return unsigned(std::uint8_t(s[at])) | unsigned(std::uint8_t(s[at + 1])) << 8; };
  auto u32 = [&](std::size_t at) { return std::uint32_t(u16(at)) | std::uint32_t(u16(at + 2)) << 16; };
  while (pos + 8 <= s.size() && u16(pos) < group)
  {
    const std::string vr = s.substr(pos + 4, 2);
    const bool longVr = vr == "OB" || vr == "OW" || vr == "OF" || vr == "SQ" || vr == "UN" || vr == "UT" ||
                        vr == "UC" || vr == "UR" || vr == "OD" || vr == "OL";
    const std::uint32_t length = longVr ? u32(pos + 8) : u16(pos + 6);
    ASSERT_NE(length, 0xFFFFFFFFu) << "test helper handles defined lengths only";
    pos += (longVr ? 12 : 8) + length;
  }
  s.insert(pos, bytes);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << s;
}

/// A 4-volume DWI (b0 + 3 directions) with the Siemens private diffusion tags only, so that the gradients can only
/// come from the private elements (0019,100C/100E) the header filter must keep.
struct Dwi
{
  gw::DwiImage::Pointer image;
  gw::io::GradientTable table;
};
Dwi
MakeDwi()
{
  Dwi d;
  gw::SizeType size{ { 9, 7, 5 } };
  d.image = gw::DwiImage::New();
  gw::RegionType region;
  region.SetSize(size);
  d.image->SetRegions(region);
  d.image->SetNumberOfComponentsPerPixel(4);
  d.image->Allocate();
  float * p = d.image->GetBufferPointer();
  for (std::size_t i = 0; i < 9 * 7 * 5 * 4; ++i)
    p[i] = static_cast<float>((i * 37) % 3001);
  d.table.frame = "lps";
  const double dirs[4][3] = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 0.6, 0.8 }, { -0.48, 0.6, 0.64 } };
  for (int v = 0; v < 4; ++v)
  {
    gw::io::GradientEntry e;
    e.bValue = v == 0 ? 0.0 : 1000.0;
    for (int k = 0; k < 3; ++k)
      e.direction[k] = dirs[v][k];
    d.table.entries.push_back(e);
  }
  return d;
}

gw::dicom::SeriesDescriptor
DwiDescriptor()
{
  gw::dicom::SeriesDescriptor info;
  info.seriesNumber = 4;
  info.seriesDescription = "dwi fast path";
  info.manufacturer = "SIEMENS";
  info.uidSeed = "gw-dicom-fastpath";
  return info;
}
} // namespace

TEST(DicomFastPath, UnreadPrivateElementsAreSkippedWithoutLosingReadOnes)
{
  gw::testing::ScratchDir dir;
  const Dwi dwi = MakeDwi();
  const auto files = gw::dicom::WriteDicomDwiSeries(dwi.image, dwi.table, dir / "plain", DwiDescriptor(),
                                                    gw::dicom::DiffusionConvention::Siemens, false);
  fs::create_directories(dir / "private");
  // every file gets private groups the import never reads: a defined-length sequence (its items hold standard
  // and private elements), an undefined-length sequence of undefined-length items, a private OB, and a standard
  // sequence (after group 0028) whose item holds private elements; sequence and item lengths must be recomputed
  const std::string nested = Short(0x0020, 0x0013, "IS", "99") + Short(0x0029, 0x0010, "LO", "GW NESTED ") +
                             Short(0x0029, 0x1001, "LO", "nested..") + Short(0x0029, 0x1010, "LO", "not CSA!");
  const std::string privateGroup = Short(0x0011, 0x0010, "LO", "GW TEST ") +
                                   Long(0x0011, 0x1001, "SQ", Item(nested) + Item(nested)) +
                                   Long(0x0011, 0x1002, "SQ", Item(nested, true) + sequenceDelimiter, true) +
                                   Long(0x0011, 0x1010, "OB", std::string(5000, '\x7f'));
  const std::string standardSequence = Long(0x0040, 0x0275, "SQ", Item(nested) + Item(nested, true));
  for (const auto & f : files)
  {
    const fs::path copy = dir / "private" / f.filename();
    fs::copy_file(f, copy);
    InsertBefore(copy, 0x7FE0, standardSequence); // first: the helper does not walk undefined lengths
    InsertBefore(copy, 0x0018, privateGroup);
  }
  const auto plain = gw::dicom::ScanDirectories({ dir / "plain" });
  const auto withPrivate = gw::dicom::ScanDirectories({ dir / "private" });
  ASSERT_EQ(plain.series.size(), 1u);
  ASSERT_EQ(withPrivate.series.size(), 1u) << (withPrivate.notes.empty() ? "" : withPrivate.notes[0]);
  const auto a = gw::dicom::LoadSeries(plain.series[0]);
  const auto b = gw::dicom::LoadSeries(withPrivate.series[0]);
  EXPECT_EQ(a.voxels, b.voxels);
  EXPECT_EQ(b.size[3], 4u);
  ASSERT_EQ(b.gradients.entries.size(), 4u);
  for (std::size_t v = 0; v < 4; ++v)
  {
    EXPECT_NEAR(b.gradients.entries[v].bValue, dwi.table.entries[v].bValue, 1e-6); // [s/mm^2]
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(b.gradients.entries[v].direction[k], dwi.table.entries[v].direction[k], 1e-6);
  }
  // the nested InstanceNumber 99 and the nested (0029,1010) are not mistaken for top-level ones
  EXPECT_EQ(b.sidecar.dump(), a.sidecar.dump());
}

TEST(DicomFastPath, FileChangedBetweenScanAndLoadIsReadFromItsCurrentBytes)
{
  gw::testing::ScratchDir dir;
  const Dwi dwi = MakeDwi();
  const auto files = gw::dicom::WriteDicomDwiSeries(dwi.image, dwi.table, dir / "s", DwiDescriptor(),
                                                    gw::dicom::DiffusionConvention::Standard, false);
  const auto scan = gw::dicom::ScanDirectories({ dir / "s" });
  ASSERT_EQ(scan.series.size(), 1u);
  const auto reference = gw::dicom::LoadSeries(scan.series[0]);
  std::size_t located = 0;
  for (const auto & f : scan.series[0].frames)
    if (f.pixelData.elementOffset > 0 && !f.pixelData.encapsulated)
      ++located;
  EXPECT_EQ(located, scan.series[0].frames.size()); // every uncompressed file's pixels were located by the scan
  // the pixel data move by 5024 bytes after the scan: the noted offsets are stale and must not be trusted
  for (const auto & f : files)
    InsertBefore(f, 0x0018,
                 Short(0x0011, 0x0010, "LO", "GW TEST ") + Long(0x0011, 0x1010, "OB", std::string(4996, 'x')));
  const auto again = gw::dicom::LoadSeries(scan.series[0]);
  EXPECT_EQ(again.voxels, reference.voxels);
}

TEST(DicomFastPath, LargeImageGzipIsOneValidMember)
{
  // 2 x 3.1 M int16 voxels: several independently compressed pieces, concatenated, CRC combined
  gw::testing::ScratchDir dir;
  gw::dicom::LoadedSeries s;
  s.pixelType = "int16";
  s.size = { 256, 256, 24, 2 };
  s.voxels.resize(s.VoxelCount() * 2);
  std::uint32_t state = 12345u;
  for (std::size_t i = 0; i < s.VoxelCount(); ++i)
  {
    state = state * 1664525u + 1013904223u; // LCG: runs and noise
    const std::int16_t v = static_cast<std::int16_t>((i / 300) % 2 ? (state >> 20) : (i / 4096));
    std::memcpy(s.voxels.data() + 2 * i, &v, 2);
  }
  s.sidecar = { { "SeriesNumber", 1 } };
  const auto written = gw::dicom::WriteSeries(s, dir / "big", "nii.gz", false);
  ASSERT_FALSE(written.empty());
  gzFile g = gzopen(written[0].string().c_str(), "rb");
  ASSERT_NE(g, nullptr);
  std::vector<std::uint8_t> back(352 + s.voxels.size() + 16);
  const int n = gzread(g, back.data(), static_cast<unsigned>(back.size()));
  EXPECT_EQ(gzclose(g), Z_OK); // CRC-32 and length of the member verified by zlib
  ASSERT_EQ(n, static_cast<int>(352 + s.voxels.size()));
  EXPECT_EQ(std::memcmp(back.data() + 352, s.voxels.data(), s.voxels.size()), 0);
  std::int32_t sizeofHdr = 0;
  std::memcpy(&sizeofHdr, back.data(), 4);
  EXPECT_EQ(sizeofHdr, 348);
}
