// IO hardening: crafted headers refused with Error(Input) before ITK derives orientations or allocates voxels
// (regressions of fuzzing findings: a NaN sform made VNL abort inside ITK's NIfTI reader; headers claiming more
// voxels than their data hold; NRRD/MetaImage data files outside the header's folder).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/io/image_io.h"
#include "gw/testing/testing.h"

namespace
{
using namespace gw;
namespace fs = std::filesystem;

FloatImage::Pointer
SmallImage()
{
  SizeType size{ { 4, 3, 2 } };
  SpacingType spacing;
  spacing.Fill(1.5);
  PointType origin;
  origin.Fill(-3.0);
  auto image = gw::testing::MakeImage(size, spacing, origin);
  float v = 0.0f;
  for (float * p = image->GetBufferPointer(); p != image->GetBufferPointer() + 24; ++p)
    *p = (v += 0.5f);
  return image;
}

void
WriteBytes(const fs::path & p, const std::string & bytes)
{
  std::ofstream(p, std::ios::binary) << bytes;
}

/// Expects Error(Input) with a one-line message containing `needle` when reading `p`.
void
ExpectRefused(const fs::path & p, const std::string & needle)
{
  try
  {
    io::ReadFloatImage(p);
    ADD_FAILURE() << "expected Error(Input) for " << p.filename();
  }
  catch (const Error & e)
  {
    EXPECT_EQ(e.Kind(), ErrorKind::Input) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one-line message: " << e.what();
  }
}

template <typename T>
void
Put(std::string & bytes, std::size_t offset, T value)
{
  std::memcpy(&bytes[offset], &value, sizeof(T));
}

std::uint32_t
Crc32(const std::string & s)
{
  std::uint32_t c = 0xffffffffu;
  for (unsigned char b : s)
  {
    c ^= b;
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

/// A gzip file of `data` in stored (uncompressed) deflate blocks: a valid .nii.gz without linking zlib.
std::string
GzipStored(const std::string & data)
{
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  std::size_t pos = 0;
  do
  {
    const std::size_t n = std::min<std::size_t>(65535, data.size() - pos);
    out += static_cast<char>(pos + n == data.size() ? 1 : 0);
    const std::uint16_t len = static_cast<std::uint16_t>(n), nlen = static_cast<std::uint16_t>(~len);
    out.append(reinterpret_cast<const char *>(&len), 2);
    out.append(reinterpret_cast<const char *>(&nlen), 2);
    out.append(data, pos, n);
    pos += n;
  } while (pos < data.size());
  const std::uint32_t crc = Crc32(data), size = static_cast<std::uint32_t>(data.size());
  out.append(reinterpret_cast<const char *>(&crc), 4);
  out.append(reinterpret_cast<const char *>(&size), 4);
  return out;
}
} // namespace

TEST(ImageIoHeaders, NiftiBadQformOrSformRefusedBeforeItk)
{
  gw::testing::ScratchDir dir("io_headers");
  io::WriteImage(SmallImage().GetPointer(), dir / "ok.nii", false);
  const std::string good = ReadFile(dir / "ok.nii");
  ASSERT_GE(good.size(), 352u);
  // control: the unmodified file and its gzip (stored blocks) read with their voxels
  WriteBytes(dir / "ok_stored.nii.gz", GzipStored(good));
  for (const char * name : { "ok.nii", "ok_stored.nii.gz" })
  {
    const auto img = io::ReadFloatImage(dir / name);
    EXPECT_FLOAT_EQ(img->GetBufferPointer()[23], 12.0f) << name << ": last voxel, exact";
    EXPECT_NEAR(img->GetSpacing()[0], 1.5, 1e-6) << name << ": spacing [mm], tolerance 1e-6";
  }
  // control: scaled int16 voxels (scl_slope 2) are complete with 2 bytes per voxel, although ITK reads them as
  // float (an earlier size check used ITK's float size and refused such real files as truncated)
  {
    std::string bytes = good.substr(0, 352);
    Put<std::int16_t>(bytes, 70, 4);  // NIFTI_TYPE_INT16
    Put<std::int16_t>(bytes, 72, 16); // bitpix
    Put<float>(bytes, 112, 2.0f);     // scl_slope
    Put<float>(bytes, 116, 0.0f);     // scl_inter
    for (std::int16_t i = 0; i < 24; ++i)
      bytes.append(reinterpret_cast<const char *>(&i), 2);
    WriteBytes(dir / "scaled.nii", bytes);
    const auto img = io::ReadFloatImage(dir / "scaled.nii");
    EXPECT_FLOAT_EQ(img->GetBufferPointer()[23], 46.0f) << "23 x scl_slope 2, exact";
    WriteBytes(dir / "scaled_short.nii", bytes.substr(0, bytes.size() - 2));
    ExpectRefused(dir / "scaled_short.nii", "refused before allocation");
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case
  {
    const char * name;
    const char * needle;
    void (*edit)(std::string &);
  };
  const Case cases[] = {
    { "dim0_zero", "dim[0] = 0",
      [](std::string & b)
      {
        // fuzz finding: dim[0] = 0 (in either byte order), xform codes out of range, NaN sform
        Put<std::int16_t>(b, 40, 0);
        Put<std::int16_t>(b, 252, 3590);
        Put<std::int16_t>(b, 254, 16560);
        Put<float>(b, 300, std::numeric_limits<float>::quiet_NaN());
      } },
    { "sform_nan", "non-finite sform",
      [](std::string & b)
      {
        Put<std::int16_t>(b, 254, 1);
        Put<float>(b, 280, std::numeric_limits<float>::quiet_NaN()); // srow_x[0]: VNL abort() in ITK 5.2
      } },
    { "sform_inf", "non-finite sform",
      [](std::string & b)
      {
        Put<std::int16_t>(b, 254, 2);
        Put<float>(b, 300, std::numeric_limits<float>::infinity());
      } },
    { "sform_singular", "singular sform",
      [](std::string & b)
      {
        Put<std::int16_t>(b, 254, 1);
        for (int i = 0; i < 12; ++i)
          Put<float>(b, 280 + 4 * i, i == 0 ? 1.0f : 0.0f); // only one voxel axis
      } },
    { "qform_nan", "non-finite qform",
      [](std::string & b)
      {
        Put<std::int16_t>(b, 252, 1);
        Put<float>(b, 260, std::numeric_limits<float>::quiet_NaN());
      } },
    { "qform_offset_inf", "non-finite qform",
      [](std::string & b)
      {
        Put<std::int16_t>(b, 252, 1);
        Put<float>(b, 272, -std::numeric_limits<float>::infinity());
      } },
    { "qform_not_rotation", "not a rotation",
      [](std::string & b)
      {
        Put<std::int16_t>(b, 252, 1);
        Put<float>(b, 256, 0.9f);
        Put<float>(b, 260, 0.9f);
      } },
    { "xform_code", "outside 0..5", [](std::string & b) { Put<std::int16_t>(b, 254, 77); } },
    { "pixdim_nan", "non-finite pixdim[2]",
      [](std::string & b) { Put<float>(b, 84, std::numeric_limits<float>::quiet_NaN()); } },
    { "pixdim_zero", "is not positive", [](std::string & b) { Put<float>(b, 88, 0.0f); } },
    { "vox_offset_nan", "vox_offset",
      [](std::string & b) { Put<float>(b, 108, std::numeric_limits<float>::quiet_NaN()); } },
    // found by fuzzing: niftilib reads a header with the NIfTI magic whatever its sizeof_hdr
    { "sizeof_hdr_garbage_sform_nan", "non-finite sform",
      [](std::string & b)
      {
        Put<std::int32_t>(b, 0, 0x6567615c);
        Put<std::int16_t>(b, 254, 1);
        Put<float>(b, 304, std::numeric_limits<float>::quiet_NaN());
      } },
    // found by fuzzing: 1.8e28 overflowed the conversion to a byte count (undefined behaviour)
    { "vox_offset_huge", "vox_offset", [](std::string & b) { Put<float>(b, 108, 1.8e28f); } },
  };
  for (const auto & c : cases)
  {
    std::string bytes = good;
    c.edit(bytes);
    WriteBytes(dir / (std::string(c.name) + ".nii"), bytes);
    ExpectRefused(dir / (std::string(c.name) + ".nii"), c.needle);
    // the same header gzip-compressed: checked on the decompressed bytes too
    WriteBytes(dir / (std::string(c.name) + ".nii.gz"), GzipStored(bytes));
    ExpectRefused(dir / (std::string(c.name) + ".nii.gz"), c.needle);
  }
  // a byte-swapped (big-endian) header with a NaN sform is refused as well
  {
    std::string bytes = good;
    Put<std::int16_t>(bytes, 254, 1);
    Put<float>(bytes, 280, nan);
    auto swap = [&](std::size_t off, std::size_t n) { std::reverse(bytes.begin() + off, bytes.begin() + off + n); };
    swap(0, 4);
    for (int i = 0; i < 8; ++i)
      swap(40 + 2 * i, 2);
    swap(70, 2);
    swap(72, 2);
    for (int i = 0; i < 8; ++i)
      swap(76 + 4 * i, 4);
    swap(108, 4);
    swap(252, 2);
    swap(254, 2);
    for (int i = 0; i < 18; ++i)
      swap(256 + 4 * i, 4);
    WriteBytes(dir / "swapped.nii", bytes);
    ExpectRefused(dir / "swapped.nii", "non-finite sform");
  }
}

TEST(ImageIoHeaders, NrrdDetachedDataCheckedBeforeAllocation)
{
  gw::testing::ScratchDir dir("io_headers");
  std::string voxels(24 * sizeof(float), '\0');
  for (int i = 0; i < 24; ++i)
  {
    const float v = 0.25f * static_cast<float>(i);
    std::memcpy(&voxels[4 * static_cast<std::size_t>(i)], &v, 4);
  }
  WriteBytes(dir / "data.raw", voxels);
  const auto header = [](const std::string & sizes, const std::string & encoding, const std::string & file)
  {
    return "NRRD0004\ntype: float\ndimension: 3\nsizes: " + sizes +
           "\nspace: left-posterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nendian: little\n"
           "encoding: " +
           encoding + "\ndata file: " + file + "\n";
  };
  // control: a detached raw file of exactly the claimed size reads with its values
  WriteBytes(dir / "ok.nhdr", header("4 3 2", "raw", "data.raw"));
  const auto img = io::ReadFloatImage(dir / "ok.nhdr");
  EXPECT_FLOAT_EQ(img->GetBufferPointer()[23], 5.75f) << "last voxel, exact";
  // more voxels than the raw file holds (1000^3 floats = 4 GB claimed, 96 bytes present)
  WriteBytes(dir / "claims.nhdr", header("1000 1000 1000", "raw", "data.raw"));
  ExpectRefused(dir / "claims.nhdr", "refused before allocation");
  // gzip: deflate cannot expand 96 bytes into 4 GB
  WriteBytes(dir / "claims_gz.nhdr", header("1000 1000 1000", "gzip", "data.raw"));
  ExpectRefused(dir / "claims_gz.nhdr", "refused before allocation");
  // data file paths that leave the header's folder, absolute ones, devices, lists
  fs::create_directories(dir / "sub");
  WriteBytes(dir / "sub" / "up.nhdr", header("4 3 2", "raw", "../data.raw"));
  ExpectRefused(dir / "sub" / "up.nhdr", "outside the header's folder");
  WriteBytes(dir / "abs.nhdr", header("4 3 2", "raw", (dir / "data.raw").string()));
  ExpectRefused(dir / "abs.nhdr", "relative path");
  WriteBytes(dir / "dev.nhdr", header("4 3 2", "raw", "/dev/zero"));
  ExpectRefused(dir / "dev.nhdr", "relative path");
  WriteBytes(dir / "list.nhdr", header("4 3 2", "raw", "LIST"));
  ExpectRefused(dir / "list.nhdr", "multi-file");
  WriteBytes(dir / "missing.nhdr", header("4 3 2", "raw", "nothing.raw"));
  ExpectRefused(dir / "missing.nhdr", "not found");
  WriteBytes(dir / "bz.nhdr", header("4 3 2", "bzip2", "data.raw"));
  ExpectRefused(dir / "bz.nhdr", "not supported");
  // a field line of binary data (found by fuzzing: a gzip stream without the blank line before it overflowed the
  // error buffer of ITK's NrrdIO) and an overlong field line; a long key:=value line stays readable (control)
  WriteBytes(dir / "binary.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\nkinds: domain domain do" +
                                    std::string("\x1f\x8b\x08\x08\x02\xff", 6) + std::string(1200, 'x') + "\n\n");
  ExpectRefused(dir / "binary.nrrd", "binary data");
  WriteBytes(dir / "long.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\nkinds: " + std::string(1000, 'x') +
                                  "\nencoding: raw\n\n" + std::string(16, '\0'));
  ExpectRefused(dir / "long.nrrd", "longer than 512");
  WriteBytes(dir / "longkv.nhdr", header("4 3 2", "raw", "data.raw") + "Note:=" + std::string(2000, 'v') + "\n");
  EXPECT_FLOAT_EQ(io::ReadFloatImage(dir / "longkv.nhdr")->GetBufferPointer()[1], 0.25f) << "control, exact";
  // attached raw data shorter than claimed
  WriteBytes(dir / "attached.nrrd",
             "NRRD0004\ntype: float\ndimension: 3\nsizes: 1000 1000 1000\nendian: little\nencoding: raw\n\n" + voxels);
  ExpectRefused(dir / "attached.nrrd", "refused before allocation");
}

TEST(ImageIoHeaders, MetaImageDetachedDataCheckedBeforeAllocation)
{
  gw::testing::ScratchDir dir("io_headers");
  io::WriteImage(SmallImage().GetPointer(), dir / "ok.mhd", false);
  const std::string text = ReadFile(dir / "ok.mhd");
  const auto pos = text.find("ElementDataFile = ");
  ASSERT_NE(pos, std::string::npos) << text;
  const std::string dataName = text.substr(pos + 18, text.find('\n', pos) - pos - 18);
  const auto withData = [&](const std::string & file, const std::string & dims)
  {
    std::string t = text.substr(0, pos) + "ElementDataFile = " + file + "\n";
    const auto d = t.find("DimSize = ");
    return t.substr(0, d) + "DimSize = " + dims + t.substr(t.find('\n', d));
  };
  EXPECT_FLOAT_EQ(io::ReadFloatImage(dir / "ok.mhd")->GetBufferPointer()[23], 12.0f) << "control, exact";
  WriteBytes(dir / "claims.mhd", withData(dataName, "1000 1000 1000"));
  ExpectRefused(dir / "claims.mhd", "refused before allocation");
  fs::create_directories(dir / "sub");
  WriteBytes(dir / "sub" / "up.mhd", withData("../" + dataName, "4 3 2"));
  ExpectRefused(dir / "sub" / "up.mhd", "outside the header's folder");
  WriteBytes(dir / "abs.mhd", withData("/etc/passwd", "4 3 2"));
  ExpectRefused(dir / "abs.mhd", "relative path");
  WriteBytes(dir / "pattern.mhd", withData("slice%03d.raw 1 2 1", "4 3 2"));
  ExpectRefused(dir / "pattern.mhd", "multi-file");
  // an unknown element type (found by fuzzing: ITK's size query threw itk::ExceptionObject out of the reader)
  {
    std::string t = withData("LOCAL", "4 4 4");
    const auto e = t.find("ElementType = ");
    t = t.substr(0, e) + "ElementType = MEAOT_FLT" + t.substr(t.find('\n', e));
    WriteBytes(dir / "unknown_type.mha", t + std::string(256, '\x01'));
    ExpectRefused(dir / "unknown_type.mha", "unknown or unsupported voxel type");
  }
  // a huge NDims (found by fuzzing: MetaIO kept reading per-axis values for minutes)
  {
    std::string t = withData("LOCAL", "4 3 2");
    const auto e = t.find("NDims = ");
    ASSERT_NE(e, std::string::npos) << t;
    t = t.substr(0, e) + "NDims = 88888888888888" + t.substr(t.find('\n', e));
    WriteBytes(dir / "ndims.mha", t + std::string(96, '\0'));
    ExpectRefused(dir / "ndims.mha", "NDims");
  }
  // LOCAL data shorter than claimed
  std::string local = withData("LOCAL", "1000 1000 1000");
  local += std::string(96, '\0');
  WriteBytes(dir / "local.mha", local);
  ExpectRefused(dir / "local.mha", "refused before allocation");
}
