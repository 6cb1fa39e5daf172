// IO: image formats, gradient tables (FSL and NRRD DWMRI), transforms.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <itkAffineTransform.h>
#include <itkCompositeTransform.h>
#include <itkImageFileReader.h>
#include <itkNiftiImageIO.h>
#include <itkVersorRigid3DTransform.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/io/dwi_io.h"
#include "gw/io/gradients.h"
#include "gw/io/gzip.h"
#include "gw/io/image_io.h"
#include "gw/io/transform_io.h"
#include "gw/testing/testing.h"
#include "nifti_direct.h"

namespace
{
using namespace gw;
namespace fs = std::filesystem;

DirectionType
Oblique()
{
  // Rotation of 20 degrees about x then 10 degrees about z (an oblique acquisition).
  const double a = 20.0 * M_PI / 180.0, b = 10.0 * M_PI / 180.0;
  DirectionType rx, rz;
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
  return rz * rx;
}

FloatImage::Pointer
Ramp()
{
  SizeType size{ { 7, 5, 4 } };
  SpacingType spacing;
  spacing[0] = 0.9;
  spacing[1] = 1.1;
  spacing[2] = 3.0;
  PointType origin;
  origin[0] = -12.5;
  origin[1] = 30.25;
  origin[2] = 101.0;
  auto image = gw::testing::MakeImage(size, spacing, origin);
  image->SetDirection(Oblique());
  float v = 0.0f;
  for (float * p = image->GetBufferPointer();
       p != image->GetBufferPointer() + image->GetBufferedRegion().GetNumberOfPixels(); ++p)
    *p = (v += 1.25f);
  return image;
}

void
ExpectSameGeometry(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b)
{
  for (unsigned int i = 0; i < 3; ++i)
  {
    EXPECT_EQ(a->GetLargestPossibleRegion().GetSize()[i], b->GetLargestPossibleRegion().GetSize()[i]);
    EXPECT_NEAR(a->GetSpacing()[i], b->GetSpacing()[i], 1e-6) << "spacing [mm], tolerance 1e-6";
    EXPECT_NEAR(a->GetOrigin()[i], b->GetOrigin()[i], 1e-4) << "origin [mm], tolerance 1e-4 (NIfTI stores float)";
    for (unsigned int j = 0; j < 3; ++j)
      EXPECT_NEAR(a->GetDirection()(i, j), b->GetDirection()(i, j), 1e-6) << "direction cosine, tolerance 1e-6";
  }
}

TEST(ImageIo, RoundTripEveryFormatKeepsVoxelsAndObliqueGeometry)
{
  gw::testing::ScratchDir dir("io");
  auto image = Ramp();
  for (const std::string ext : { ".nii", ".nii.gz", ".nrrd", ".mha" })
  {
    const fs::path path = dir / ("ramp" + ext);
    io::WriteImage(image.GetPointer(), path, false);
    auto back = io::ReadFloatImage(path);
    ExpectSameGeometry(image, back);
    const std::size_t n = image->GetBufferedRegion().GetNumberOfPixels();
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(image->GetBufferPointer()[i], back->GetBufferPointer()[i]) << ext << " voxel " << i << " (exact)";
    const auto info = io::ReadImageInfo(path);
    EXPECT_EQ(info.dimension, 3u);
    EXPECT_EQ(info.components, 1u);
  }
}

TEST(ImageIo, RefusesOverwriteWithoutForceAndLeavesNoTemporaryFiles)
{
  gw::testing::ScratchDir dir("io");
  auto image = Ramp();
  const fs::path path = dir / "a.nii.gz";
  io::WriteImage(image.GetPointer(), path, false);
  const std::string before = Sha256File(path);
  try
  {
    io::WriteImage(image.GetPointer(), path, false);
    FAIL() << "overwrite without force must throw";
  }
  catch (const Error & e)
  {
    EXPECT_EQ(e.Kind(), ErrorKind::Output);
  }
  EXPECT_EQ(before, Sha256File(path));
  io::WriteImage(image.GetPointer(), path, true);
  int files = 0;
  for (const auto & entry : fs::directory_iterator(dir.Path()))
  {
    ++files;
    EXPECT_EQ(entry.path().filename().string().find(".gwtmp"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(files, 1);
}

TEST(ImageIo, MaskAndLabelReading)
{
  gw::testing::ScratchDir dir("io");
  auto image = Ramp();
  image->GetBufferPointer()[0] = 0.0f;
  io::WriteImage(image.GetPointer(), dir / "r.nrrd", false);
  auto mask = io::ReadMask(dir / "r.nrrd");
  EXPECT_EQ(mask->GetBufferPointer()[0], 0);
  EXPECT_EQ(mask->GetBufferPointer()[1], 1);
  // 1.25 steps are not integers: refused as a label map
  EXPECT_THROW(io::ReadLabelImage(dir / "r.nrrd"), Error);
  auto labels = LabelImage::New();
  labels->CopyInformation(image);
  labels->SetRegions(image->GetLargestPossibleRegion());
  labels->Allocate();
  labels->FillBuffer(0);
  labels->GetBufferPointer()[3] = 65535;
  labels->GetBufferPointer()[4] = 7;
  io::WriteImage(labels.GetPointer(), dir / "l.nii.gz", false);
  auto back = io::ReadLabelImage(dir / "l.nii.gz");
  EXPECT_EQ(back->GetBufferPointer()[3], 65535);
  EXPECT_EQ(back->GetBufferPointer()[4], 7);
}

TEST(ImageIo, BadFilesGiveInputErrors)
{
  gw::testing::ScratchDir dir("io");
  const auto expectInput = [](const fs::path & p)
  {
    try
    {
      io::ReadFloatImage(p);
      ADD_FAILURE() << "expected an error for " << p;
    }
    catch (const Error & e)
    {
      EXPECT_EQ(e.Kind(), ErrorKind::Input) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one-line message: " << e.what();
    }
  };
  expectInput(dir / "missing.nii.gz");
  expectInput(dir / "file.xyz");
  {
    std::ofstream(dir / "garbage.nii") << "this is not a NIfTI file at all, just text";
  }
  expectInput(dir / "garbage.nii");
  const fs::path fixtures = gw::testing::TestingData() / "fixtures" / "bad_headers";
  expectInput(fixtures / "huge_dims.nhdr");
  {
    // a MetaImage header with a long binary field (found by fuzzing: ITK's MetaIO overflowed a fixed buffer)
    std::ofstream m(dir / "long.mha", std::ios::binary);
    m << "ObjectType = Image\nNDims = 3\nOffset(= 0 0 A" << std::string(600, '\x91') << "\nElementDataFile = LOCAL\n";
  }
  expectInput(dir / "long.mha");
  {
    // a NIfTI header claiming far more voxels than the file holds (found by fuzzing: ITK allocated 3.8 GB)
    auto small = Ramp();
    gw::io::WriteImage(small.GetPointer(), dir / "ok.nii", false);
    std::string bytes = gw::ReadFile(dir / "ok.nii");
    const short dims[4] = { 3, 1000, 1000, 900 };
    std::memcpy(&bytes[40], dims, sizeof(dims));
    std::ofstream(dir / "claims.nii", std::ios::binary) << bytes;
  }
  expectInput(dir / "claims.nii");
  expectInput(fixtures / "not_an_image.nii.gz");
  // a 4D image with several volumes is not a 3D image
  auto series = Float4DImage::New();
  Float4DImage::SizeType size{ { 3, 3, 3, 2 } };
  series->SetRegions(size);
  series->Allocate();
  series->FillBuffer(1.0f);
  io::WriteImage(series.GetPointer(), dir / "s.nii.gz", false);
  expectInput(dir / "s.nii.gz");
}

TEST(ImageIo, FourDAndVectorLayoutsConvertExactly)
{
  auto image = Ramp();
  auto series = Float4DImage::New();
  Float4DImage::SizeType size{ { 7, 5, 4, 3 } };
  series->SetRegions(size);
  series->Allocate();
  for (std::size_t i = 0; i < series->GetBufferedRegion().GetNumberOfPixels(); ++i)
    series->GetBufferPointer()[i] = static_cast<float>(i);
  auto vec = io::ToVectorImage(series);
  ASSERT_EQ(vec->GetNumberOfComponentsPerPixel(), 3u);
  auto back = io::ToFloat4DImage(vec);
  for (std::size_t i = 0; i < series->GetBufferedRegion().GetNumberOfPixels(); ++i)
    ASSERT_EQ(series->GetBufferPointer()[i], back->GetBufferPointer()[i]);
  auto v2 = io::ExtractVolume(series, 2);
  auto c2 = io::ExtractComponent(vec, 2);
  for (std::size_t i = 0; i < v2->GetBufferedRegion().GetNumberOfPixels(); ++i)
    ASSERT_EQ(v2->GetBufferPointer()[i], c2->GetBufferPointer()[i]);
  EXPECT_EQ(v2->GetBufferPointer()[0], static_cast<float>(2 * 7 * 5 * 4));
}

/// A NIfTI-1 single file written byte by byte (so that the test does not depend on the writer under test): a 4D
/// series of `datatype` (2 uint8, 4 int16, 16 float32) in either byte order, sample (v, t) = Sample(v, t).
std::string
HandMadeNifti(std::int16_t datatype, bool bigEndian, const std::array<std::int16_t, 4> & dims, std::int16_t dim0 = 4,
              std::size_t voxOffset = 352)
{
  auto value = [](std::size_t v, std::size_t t) { return static_cast<double>((v * 7 + t * 13) % 200) - 20.0; };
  const std::size_t typeSize = datatype == 2 ? 1 : datatype == 4 ? 2 : datatype == 64 ? 8 : 4;
  const std::size_t voxels = std::size_t(dims[0]) * dims[1] * dims[2];
  std::string bytes(voxOffset + voxels * dims[3] * typeSize, '\0');
  auto put = [&](std::size_t off, auto x)
  {
    std::memcpy(&bytes[off], &x, sizeof(x));
    if (bigEndian)
      std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(off),
                   bytes.begin() + static_cast<std::ptrdiff_t>(off + sizeof(x)));
  };
  put(0, std::int32_t{ 348 });
  put(40, dim0);
  for (int i = 0; i < 4; ++i)
    put(42 + 2 * i, dims[static_cast<std::size_t>(i)]);
  for (int i = 4; i < 7; ++i)
    put(42 + 2 * i, std::int16_t{ 1 });
  put(70, datatype);
  put(72, static_cast<std::int16_t>(8 * typeSize));
  const float pixdim[8] = { 1.0f, 1.5f, 2.0f, 3.0f, 1.0f, 1.0f, 1.0f, 1.0f };
  for (int i = 0; i < 8; ++i)
    put(76 + 4 * i, pixdim[i]);
  put(108, static_cast<float>(voxOffset));
  put(252, std::int16_t{ 1 }); // qform: identity rotation, offset below
  for (int i = 0; i < 3; ++i)
    put(268 + 4 * i, 10.0f * static_cast<float>(i + 1));
  std::memcpy(&bytes[344], "n+1", 4);
  for (std::size_t t = 0; t < static_cast<std::size_t>(dims[3]); ++t)
    for (std::size_t v = 0; v < voxels; ++v)
    {
      const std::size_t off = voxOffset + (t * voxels + v) * typeSize;
      const double x =
        datatype == 2 ? value(v, t) + 20.0 : value(v, t) + (datatype == 16 || datatype == 64 ? 0.25 : 0.0);
      if (datatype == 2)
        put(off, static_cast<std::uint8_t>(x));
      else if (datatype == 4)
        put(off, static_cast<std::int16_t>(x));
      else if (datatype == 64)
        put(off, x + 1e-9); // a double that a float cannot hold: the conversion rounds it as ITK's does
      else
        put(off, static_cast<float>(x));
    }
  return bytes;
}

TEST(ImageIo, NiftiSeriesReadAsStoredGivesEverySampleOfEveryLayout)
{
  // gw_dti reads a NIfTI series as stored (volume after volume, the file's type) and converts voxels on demand; the
  // samples, volume sums and the converted vector image must be the file's exactly, whatever its type, byte order
  // and compression; an intensity-scaled file is read through ITK (scaling applied) and gives the same API
  gw::testing::ScratchDir dir("io_stored");
  const std::array<std::int16_t, 4> dims{ 5, 4, 3, 6 };
  const std::size_t voxels = 5 * 4 * 3;
  struct Case
  {
    std::int16_t datatype;
    bool bigEndian, gz;
  };
  int k = 0;
  for (const Case c : { Case{ 4, false, true }, Case{ 4, true, true }, Case{ 2, false, false }, Case{ 16, true, false },
                        Case{ 16, false, true }, Case{ 64, true, true } })
  {
    SCOPED_TRACE("datatype " + std::to_string(c.datatype) + (c.bigEndian ? " big-endian" : " little-endian") +
                 (c.gz ? " .nii.gz" : " .nii"));
    const std::string bytes = HandMadeNifti(c.datatype, c.bigEndian, dims);
    const fs::path path = dir / ("s" + std::to_string(k++) + (c.gz ? ".nii.gz" : ".nii"));
    if (c.gz)
      io::WriteGzipFile(path, { { reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size() } });
    else
      WriteTextFile(path, bytes, false);
    const io::DwiSamples samples = io::ReadDwiSamples(path);
    ASSERT_TRUE(samples.StoredByVolume());
    ASSERT_EQ(samples.Voxels(), voxels);
    ASSERT_EQ(samples.Volumes(), 6u);
    EXPECT_NEAR(samples.Geometry()->GetSpacing()[2], 3.0, 1e-9);
    EXPECT_NEAR(samples.Geometry()->GetOrigin()[2], 30.0, 1e-6); // LPS: z unchanged from RAS
    const DwiImage::Pointer image = samples.ToImage();
    std::vector<float> one(6);
    std::vector<double> sums(voxels, 0.0);
    samples.AddVolume(4, sums.data());
    for (std::size_t v = 0; v < voxels; ++v)
    {
      samples.Load(v, one.data());
      for (std::size_t t = 0; t < 6; ++t)
      {
        const double raw = static_cast<double>((v * 7 + t * 13) % 200) - 20.0;
        const double expected =
          c.datatype == 2 ? raw + 20.0
                          : (c.datatype == 4 ? raw : static_cast<double>(static_cast<float>(raw + 0.25))); // 16, 64
        ASSERT_EQ(one[t], static_cast<float>(expected)) << "voxel " << v << " volume " << t;
        ASSERT_EQ(image->GetBufferPointer()[v * 6 + t], one[t]) << "voxel " << v << " volume " << t;
      }
      ASSERT_EQ(sums[v], static_cast<double>(one[4])) << "voxel " << v;
    }
    // ITK's reader agrees (its 4D series turned into components)
    const DwiImage::Pointer viaItk = io::ToVectorImage(io::ReadFloat4DImage(path));
    for (std::size_t i = 0; i < voxels * 6; ++i)
      ASSERT_EQ(viaItk->GetBufferPointer()[i], image->GetBufferPointer()[i]) << "sample " << i;
  }
  // intensity scaling: not read as stored; ITK applies scl_slope
  std::string scaled = HandMadeNifti(4, false, dims);
  const float slope = 2.0f;
  std::memcpy(&scaled[112], &slope, 4);
  WriteTextFile(dir / "scaled.nii", scaled, false);
  const io::DwiSamples viaItk = io::ReadDwiSamples(dir / "scaled.nii");
  EXPECT_FALSE(viaItk.StoredByVolume());
  std::vector<float> one(6);
  viaItk.Load(1, one.data());
  EXPECT_EQ(one[0], 2.0f * static_cast<float>(7 - 20)); // voxel 1, volume 0: raw (7 % 200) - 20, times the slope
}

TEST(ImageIo, NiftiScalarReadDirectlyEqualsItksReading)
{
  // a 3D NIfTI-1 file is read straight into the float image (pieces of 4 MiB, inflated by ISA-L as they come): the
  // voxels and the geometry are exactly ITK's, whatever the type, byte order, compression, a 4D header of one
  // volume, double samples, or samples split across two pieces (a voxel offset that is not a multiple of the sample
  // size)
  gw::testing::ScratchDir dir("io_direct");
  struct Case
  {
    std::int16_t datatype;
    bool bigEndian, gz;
    std::array<std::int16_t, 4> dims;
    std::int16_t dim0;
    std::size_t offset;
  };
  int k = 0;
  for (const Case c :
       { Case{ 4, false, true, { 5, 4, 3, 1 }, 3, 352 }, Case{ 4, true, false, { 5, 4, 3, 1 }, 4, 352 },
         Case{ 2, false, true, { 7, 5, 3, 1 }, 3, 352 }, Case{ 16, true, true, { 5, 4, 3, 1 }, 3, 352 },
         Case{ 16, false, false, { 160, 160, 50, 1 }, 3, 354 }, Case{ 16, false, true, { 160, 160, 50, 1 }, 3, 354 },
         Case{ 4, true, true, { 200, 180, 70, 1 }, 3, 353 }, Case{ 64, true, true, { 5, 4, 3, 1 }, 3, 352 },
         Case{ 64, false, false, { 90, 80, 40, 1 }, 3, 356 } })
  {
    SCOPED_TRACE("case " + std::to_string(k) + ": datatype " + std::to_string(c.datatype) +
                 (c.bigEndian ? " big-endian" : " little-endian") + (c.gz ? " .nii.gz" : " .nii"));
    const std::string bytes = HandMadeNifti(c.datatype, c.bigEndian, c.dims, c.dim0, c.offset);
    const fs::path path = dir / ("d" + std::to_string(k++) + (c.gz ? ".nii.gz" : ".nii"));
    if (c.gz)
      io::WriteGzipFile(path, { { reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size() } });
    else
      WriteTextFile(path, bytes, false);
    auto header = itk::NiftiImageIO::New();
    header->SetFileName(path.string());
    header->ReadImageInformation();
    const auto direct = io::detail::ReadNiftiScalarDirect(path, header);
    ASSERT_TRUE(direct) << "read directly, not through ITK";
    auto reader = itk::ImageFileReader<FloatImage>::New();
    reader->SetImageIO(itk::NiftiImageIO::New());
    reader->SetFileName(path.string());
    reader->Update();
    const FloatImage::Pointer viaItk = reader->GetOutput();
    ASSERT_EQ(direct->GetLargestPossibleRegion(), viaItk->GetLargestPossibleRegion());
    EXPECT_EQ(direct->GetSpacing(), viaItk->GetSpacing());
    EXPECT_EQ(direct->GetOrigin(), viaItk->GetOrigin());
    EXPECT_EQ(direct->GetDirection(), viaItk->GetDirection());
    const std::size_t n = direct->GetLargestPossibleRegion().GetNumberOfPixels();
    ASSERT_EQ(std::memcmp(direct->GetBufferPointer(), viaItk->GetBufferPointer(), n * sizeof(float)), 0);
    // and ReadFloatImage takes that path
    const auto read = io::ReadFloatImage(path);
    ASSERT_EQ(std::memcmp(read->GetBufferPointer(), viaItk->GetBufferPointer(), n * sizeof(float)), 0);
  }
  // not read directly: intensity scaling (ITK applies it), a second gzip member after the first, a 4D series
  std::string scaled = HandMadeNifti(4, false, { 5, 4, 3, 1 }, 3);
  const float slope = 2.0f;
  std::memcpy(&scaled[112], &slope, 4);
  const std::string plain = HandMadeNifti(4, false, { 5, 4, 3, 1 }, 3);
  const std::string series = HandMadeNifti(4, false, { 5, 4, 3, 2 }, 4);
  WriteTextFile(dir / "scaled.nii", scaled, false);
  WriteTextFile(dir / "series.nii", series, false);
  {
    // two members: the header and half the voxels, then the rest (gzip's concatenation; ReadFloatImage refuses it
    // earlier, by the size its trailer states)
    const std::size_t half = plain.size() / 2;
    io::WriteGzipFile(dir / "a.gz", { { reinterpret_cast<const std::uint8_t *>(plain.data()), half } });
    io::WriteGzipFile(dir / "b.gz",
                      { { reinterpret_cast<const std::uint8_t *>(plain.data()) + half, plain.size() - half } });
    WriteTextFile(dir / "members.nii.gz", ReadFile(dir / "a.gz") + ReadFile(dir / "b.gz"), false);
  }
  for (const char * name : { "scaled.nii", "series.nii", "members.nii.gz" })
  {
    SCOPED_TRACE(name);
    auto header = itk::NiftiImageIO::New();
    header->SetFileName((dir / name).string());
    header->ReadImageInformation();
    EXPECT_FALSE(io::detail::ReadNiftiScalarDirect(dir / name, header));
  }
  EXPECT_EQ(io::ReadFloatImage(dir / "scaled.nii")->GetBufferPointer()[1], 2.0f * static_cast<float>(7 - 20));
}

io::GradientTable
MultiShellLps()
{
  io::GradientTable t;
  t.entries.push_back({ 0.0, { 0, 0, 0 } });
  const double dirs[][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 }, { 0.6, 0.8, 0 }, { -0.48, 0.6, 0.64 } };
  for (double b : { 800.0, 2000.0 })
    for (const auto & d : dirs)
      t.entries.push_back({ b, { d[0], d[1], d[2] } });
  return t;
}

TEST(Gradients, FslFrameFlipsXForPositiveDeterminantAndRoundTrips)
{
  DirectionType identity;
  identity.SetIdentity();
  io::GradientTable lps;
  lps.entries.push_back({ 1000.0, { 1.0, 0.0, 0.0 } });
  const auto fsl = io::LpsToFsl(lps, identity);
  EXPECT_NEAR(fsl.entries[0].direction[0], -1.0, 1e-12) << "LPS identity grid has det > 0: x flipped";
  DirectionType flipped = identity;
  flipped(0, 0) = -1.0; // det < 0 (radiological storage): no flip, but the axis itself is reversed
  EXPECT_NEAR(io::LpsToFsl(lps, flipped).entries[0].direction[0], -1.0, 1e-12);

  const auto table = MultiShellLps();
  const auto oblique = Oblique();
  const auto back = io::FslToLps(io::LpsToFsl(table, oblique), oblique);
  for (std::size_t i = 0; i < table.entries.size(); ++i)
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(back.entries[i].direction[k], table.entries[i].direction[k], 1e-12);
}

TEST(Gradients, FslFilesRoundTripAndRejectMismatch)
{
  gw::testing::ScratchDir dir("grad");
  auto table = io::LpsToFsl(MultiShellLps(), Oblique());
  io::WriteFslGradients(table, dir / "d.bval", dir / "d.bvec", false);
  EXPECT_THROW(io::WriteFslGradients(table, dir / "d.bval", dir / "d.bvec", false), Error);
  const auto back = io::ReadFslGradients(dir / "d.bval", dir / "d.bvec");
  ASSERT_EQ(back.entries.size(), table.entries.size());
  for (std::size_t i = 0; i < table.entries.size(); ++i)
  {
    EXPECT_NEAR(back.entries[i].bValue, table.entries[i].bValue, 1e-3);
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(back.entries[i].direction[k], table.entries[i].direction[k], 1e-6) << "6 decimals written";
  }
  // N x 3 layout is accepted too
  {
    std::ofstream(dir / "c.bval") << "0\n1000\n";
    std::ofstream(dir / "c.bvec") << "0 0 0\n0 0.6 0.8\n";
  }
  const auto column = io::ReadFslGradients(dir / "c.bval", dir / "c.bvec");
  ASSERT_EQ(column.entries.size(), 2u);
  EXPECT_NEAR(column.entries[1].direction[2], 0.8, 1e-12);
  {
    std::ofstream(dir / "m.bval") << "0 1000 1000\n";
    std::ofstream(dir / "m.bvec") << "0 1\n0 0\n0 0\n";
    std::ofstream(dir / "n.bvec") << "0 1 x\n0 0 0\n0 0 1\n";
  }
  EXPECT_THROW(io::ReadFslGradients(dir / "m.bval", dir / "m.bvec"), Error);
  EXPECT_THROW(io::ReadFslGradients(dir / "m.bval", dir / "n.bvec"), Error);
}

io::Dwi
SmallDwi()
{
  io::Dwi dwi;
  dwi.gradients = MultiShellLps();
  const unsigned int n = static_cast<unsigned int>(dwi.gradients.entries.size());
  dwi.image = DwiImage::New();
  DwiImage::SizeType size{ { 4, 3, 2 } };
  dwi.image->SetRegions(size);
  dwi.image->SetDirection(Oblique());
  dwi.image->SetNumberOfComponentsPerPixel(n);
  dwi.image->Allocate();
  for (std::size_t i = 0; i < 4 * 3 * 2 * n; ++i)
    dwi.image->GetBufferPointer()[i] = static_cast<float>(i % 97);
  return dwi;
}

void
ExpectSameDwi(const io::Dwi & a, const io::Dwi & b, double tolDir)
{
  ASSERT_EQ(a.image->GetNumberOfComponentsPerPixel(), b.image->GetNumberOfComponentsPerPixel());
  const std::size_t n = a.image->GetBufferedRegion().GetNumberOfPixels() * a.image->GetNumberOfComponentsPerPixel();
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_EQ(a.image->GetBufferPointer()[i], b.image->GetBufferPointer()[i]);
  ASSERT_EQ(a.gradients.entries.size(), b.gradients.entries.size());
  EXPECT_EQ(b.gradients.frame, "lps");
  for (std::size_t i = 0; i < a.gradients.entries.size(); ++i)
  {
    EXPECT_NEAR(a.gradients.entries[i].bValue, b.gradients.entries[i].bValue, 1e-3) << "b [s/mm^2]";
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(a.gradients.entries[i].direction[k], b.gradients.entries[i].direction[k], tolDir) << i;
  }
}

TEST(Dwi, NrrdDwmriAndNiftiRoundTripsKeepMultiShellGradientsInLps)
{
  gw::testing::ScratchDir dir("dwi");
  const auto dwi = SmallDwi();
  io::WriteDwi(dwi, dir / "d.nrrd", false);
  const std::string header = ReadFile(dir / "d.nrrd").substr(0, 4000);
  EXPECT_NE(header.find("DWMRI_b-value:=2000"), std::string::npos) << header;
  EXPECT_NE(header.find("measurement frame"), std::string::npos);
  EXPECT_NE(header.find("modality:=DWMRI"), std::string::npos);
  ExpectSameDwi(dwi, io::ReadDwi(dir / "d.nrrd"), 1e-8);
  io::WriteDwi(dwi, dir / "d.nii.gz", false);
  EXPECT_TRUE(fs::exists(dir / "d.bval"));
  EXPECT_TRUE(fs::exists(dir / "d.bvec"));
  ExpectSameDwi(dwi, io::ReadDwi(dir / "d.nii.gz"), 2e-6);
  EXPECT_THROW(io::WriteDwi(dwi, dir / "d.nii.gz", false), Error);
}

TEST(Dwi, NrrdMeasurementFrameIsApplied)
{
  gw::testing::ScratchDir dir("dwi");
  {
    // 2x1x1 voxels, 2 volumes; gradient given in a frame rotated 90 degrees about z.
    std::ofstream h(dir / "m.nhdr");
    h << "NRRD0005\ntype: float\ndimension: 4\nspace: left-posterior-superior\nsizes: 2 2 1 1\n"
         "space directions: none (1,0,0) (0,1,0) (0,0,1)\nkinds: list domain domain domain\nendian: little\n"
         "encoding: raw\nspace origin: (0,0,0)\nmeasurement frame: (0,1,0) (-1,0,0) (0,0,1)\n"
         "modality:=DWMRI\nDWMRI_b-value:=1000\nDWMRI_gradient_0000:=0 0 0\nDWMRI_gradient_0001:=1 0 0\n"
         "data file: m.raw\n";
    std::ofstream r(dir / "m.raw", std::ios::binary);
    const float v[4] = { 1, 2, 3, 4 };
    r.write(reinterpret_cast<const char *>(v), sizeof(v));
  }
  const auto table = io::ReadNrrdGradients(dir / "m.nhdr");
  ASSERT_EQ(table.entries.size(), 2u);
  // measurement frame columns: (0,1,0) (-1,0,0) (0,0,1); g=(1,0,0) → world (0,1,0)
  EXPECT_NEAR(table.entries[1].direction[0], 0.0, 1e-12);
  EXPECT_NEAR(table.entries[1].direction[1], 1.0, 1e-12);
  EXPECT_NEAR(table.entries[1].bValue, 1000.0, 1e-9);
}

TEST(Transforms, TfmAndH5RoundTripRigidAffineAndComposite)
{
  gw::testing::ScratchDir dir("tfm");
  auto rigid = itk::VersorRigid3DTransform<double>::New();
  itk::Versor<double> versor;
  itk::Vector<double, 3> axis;
  axis[0] = 0.2;
  axis[1] = -0.3;
  axis[2] = 0.9;
  versor.Set(axis, 0.15);
  rigid->SetRotation(versor);
  itk::Vector<double, 3> t;
  t[0] = 3.5;
  t[1] = -2.0;
  t[2] = 7.25;
  rigid->SetTranslation(t);
  auto affine = itk::AffineTransform<double, 3>::New();
  affine->Scale(1.1);
  affine->Shear(0, 1, 0.05);
  auto composite = itk::CompositeTransform<double, 3>::New();
  composite->AddTransform(rigid);
  composite->AddTransform(affine);
  PointType p;
  p[0] = 10.0;
  p[1] = -20.0;
  p[2] = 35.0;
  for (const std::string ext : { ".tfm", ".h5" })
  {
    for (const auto & [name, tr] : std::vector<std::pair<std::string, io::TransformType::Pointer>>{
           { "rigid", rigid.GetPointer() }, { "affine", affine.GetPointer() }, { "comp", composite.GetPointer() } })
    {
      const fs::path path = dir / (name + ext);
      io::WriteTransform(tr, path, false);
      EXPECT_THROW(io::WriteTransform(tr, path, false), Error);
      const auto back = io::ReadTransform(path);
      const auto q1 = tr->TransformPoint(p);
      const auto q2 = back->TransformPoint(p);
      for (int k = 0; k < 3; ++k)
        EXPECT_NEAR(q1[k], q2[k], 1e-9) << name << ext << " [mm]";
    }
  }
  EXPECT_THROW(io::ReadTransform(dir / "none.h5"), Error);
}

TEST(GradientsExternal, FslToLpsAgreesWithMrtrixOnObliqueCanonDti)
{
  GW_REQUIRE_EXTERNAL(ref, "dicom/canon_enhanced_dti/Ref");
  if (std::system("command -v mrinfo >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "mrinfo (mrtrix3) not installed";
  gw::testing::ScratchDir dir("grad");
  int compared = 0;
  for (const std::string stem : { "10000_SAG_DTI_PA-COR_20d_enh", "6000_DTI_PA-AX_20d_enh" })
  {
    const fs::path nii = ref / (stem + ".nii.gz");
    const auto info = io::ReadImageInfo(nii);
    DirectionType d;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c)
        d(r, c) = info.direction[r * info.dimension + c];
    const auto lps = io::FslToLps(io::ReadFslGradients(ref / (stem + ".bval"), ref / (stem + ".bvec")), d);
    const fs::path out = dir / (stem + ".b");
    const auto r =
      gw::testing::Run({ "mrinfo", nii.string(), "-fslgrad", (ref / (stem + ".bvec")).string(),
                         (ref / (stem + ".bval")).string(), "-export_grad_mrtrix", out.string(), "-quiet" });
    ASSERT_EQ(r.exitCode, 0) << r.err;
    std::ifstream in(out);
    std::string line;
    std::size_t i = 0;
    while (std::getline(in, line))
    {
      if (line.empty() || line[0] == '#')
        continue;
      std::istringstream s(line);
      double x, y, z, b;
      s >> x >> y >> z >> b;
      ASSERT_LT(i, lps.entries.size());
      const auto & e = lps.entries[i++];
      if (e.bValue <= io::B0Threshold)
        continue;
      // MRtrix exports scanner RAS; ours is LPS: x and y negated. Tolerance 1e-4 (text precision).
      EXPECT_NEAR(-x, e.direction[0], 1e-4) << stem << " volume " << i - 1;
      EXPECT_NEAR(-y, e.direction[1], 1e-4) << stem << " volume " << i - 1;
      EXPECT_NEAR(z, e.direction[2], 1e-4) << stem << " volume " << i - 1;
      ++compared;
    }
    EXPECT_EQ(i, lps.entries.size());
  }
  EXPECT_GT(compared, 10);
}
} // namespace
