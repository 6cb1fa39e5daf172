// gw::dti tests: analytic tensor phantoms (every fit exact without noise), robust outlier rejection, gradient-table
// check, tractography on a straight tube and a helix, tractogram IO, profiles, apps; real data against MRtrix3 and
// DIPY (suite DtiExternal).
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/dti/cord_profile.h"
#include "gw/dti/gradient_check.h"
#include "gw/dti/tensor_fit.h"
#include "gw/dti/tractography.h"
#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"
#include "gw/testing/testing.h"

namespace
{
using gw::testing::Rng;
using gw::testing::ScratchDir;
using Sym = std::array<double, 6>; // xx, xy, xz, yy, yz, zz [mm^2/s]
using V3 = std::array<double, 3>;
constexpr double Pi = 3.14159265358979323846;

V3
Normalized(V3 v)
{
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return { v[0] / n, v[1] / n, v[2] / n };
}
double
Dot(const V3 & a, const V3 & b)
{
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
V3
Cross(const V3 & a, const V3 & b)
{
  return { a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0] };
}

/// D = sum l_i e_i e_i^T with the orthonormal frame built from `v1` and a helper vector.
Sym
TensorFromFrame(const V3 & v1in, const V3 & helper, double l1, double l2, double l3)
{
  const V3 v1 = Normalized(v1in);
  V3 h = helper;
  const double d = Dot(h, v1);
  for (int i = 0; i < 3; ++i)
    h[i] -= d * v1[i];
  const V3 v2 = Normalized(h);
  const V3 v3 = Cross(v1, v2);
  Sym t{};
  const int idx[6][2] = { { 0, 0 }, { 0, 1 }, { 0, 2 }, { 1, 1 }, { 1, 2 }, { 2, 2 } };
  for (int c = 0; c < 6; ++c)
  {
    const int a = idx[c][0], b = idx[c][1];
    t[c] = l1 * v1[a] * v1[b] + l2 * v2[a] * v2[b] + l3 * v3[a] * v3[b];
  }
  return t;
}

double
ExpectedFa(double l1, double l2, double l3)
{
  const double md = (l1 + l2 + l3) / 3.0;
  return std::sqrt(1.5 * ((l1 - md) * (l1 - md) + (l2 - md) * (l2 - md) + (l3 - md) * (l3 - md)) /
                   (l1 * l1 + l2 * l2 + l3 * l3));
}

/// b0 volumes + `dirs` directions on a hemisphere (golden spiral) at b [s/mm^2], LPS.
gw::io::GradientTable
MakeTable(int b0, int dirs, double b)
{
  gw::io::GradientTable t;
  t.frame = "lps";
  for (int i = 0; i < b0; ++i)
    t.entries.push_back({ 0.0, { 0.0, 0.0, 0.0 } });
  const double golden = Pi * (3.0 - std::sqrt(5.0));
  for (int i = 0; i < dirs; ++i)
  {
    const double z = 1.0 - (i + 0.5) / dirs;
    const double r = std::sqrt(1.0 - z * z);
    t.entries.push_back({ b, { r * std::cos(golden * i), r * std::sin(golden * i), z } });
  }
  return t;
}

/// Simulated DWI on an identity-direction grid: S = S0 exp(-b g^T D g) (+ Gaussian noise sigma).
gw::io::Dwi
MakeDwi(const gw::SizeType & size, double spacing, const std::function<Sym(const gw::PointType &)> & tensorAt,
        double s0, const gw::io::GradientTable & table, Rng * rng = nullptr, double sigma = 0.0)
{
  gw::io::Dwi dwi;
  dwi.gradients = table;
  dwi.image = gw::DwiImage::New();
  dwi.image->SetRegions(gw::RegionType(size));
  gw::SpacingType sp;
  sp.Fill(spacing);
  dwi.image->SetSpacing(sp);
  dwi.image->SetNumberOfComponentsPerPixel(static_cast<unsigned int>(table.entries.size()));
  dwi.image->Allocate();
  float * buffer = dwi.image->GetBufferPointer();
  const std::size_t n = table.entries.size();
  std::size_t v = 0;
  for (unsigned int k = 0; k < size[2]; ++k)
    for (unsigned int j = 0; j < size[1]; ++j)
      for (unsigned int i = 0; i < size[0]; ++i, ++v)
      {
        gw::PointType p;
        dwi.image->TransformIndexToPhysicalPoint({ { i, j, k } }, p);
        const Sym d = tensorAt(p);
        for (std::size_t c = 0; c < n; ++c)
        {
          const auto & e = table.entries[c];
          const V3 g = e.direction;
          const double q = g[0] * g[0] * d[0] + 2 * g[0] * g[1] * d[1] + 2 * g[0] * g[2] * d[2] + g[1] * g[1] * d[3] +
                           2 * g[1] * g[2] * d[4] + g[2] * g[2] * d[5];
          double s = s0 * std::exp(-e.bValue * q);
          if (rng)
            s += sigma * rng->Normal();
          buffer[v * n + c] = static_cast<float>(s);
        }
      }
  return dwi;
}

gw::MaskImage::Pointer
FullMask(const itk::ImageBase<3> * ref)
{
  auto m = gw::MaskImage::New();
  m->SetRegions(ref->GetLargestPossibleRegion());
  m->CopyInformation(ref);
  m->Allocate();
  m->FillBuffer(1);
  return m;
}

float
At(const gw::FloatImage * image, std::size_t linear)
{
  return image->GetBufferPointer()[linear];
}

double
Median(std::vector<double> v)
{
  if (v.empty())
    return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
} // namespace

// ---------------------------------------------------------------------------------------------------------------

TEST(TensorMetrics, DiagonalTensorMatchesClosedForm)
{
  gw::TensorPixel t;
  t.Fill(0.0f);
  t[0] = 0.3e-3f; // xx
  t[3] = 1.7e-3f; // yy
  t[5] = 0.5e-3f; // zz
  const gw::dti::TensorMetrics m = gw::dti::ComputeTensorMetrics(t);
  EXPECT_NEAR(m.fa, ExpectedFa(1.7e-3, 0.5e-3, 0.3e-3), 1e-6); // float storage of the tensor
  EXPECT_NEAR(m.md, 2.5e-3 / 3.0, 1e-10);                      // [mm^2/s]
  EXPECT_NEAR(m.ad, 1.7e-3, 1e-10);
  EXPECT_NEAR(m.rd, 0.4e-3, 1e-10);
  EXPECT_NEAR(std::abs(m.v1[1]), 1.0, 1e-9);
}

TEST(TensorFit, EveryMethodIsExactOnNoiseFreePhantom)
{
  // 4x3x3 voxels, each with its own tensor: eigenvalues and orientation vary, including an isotropic voxel.
  Rng rng(20240501);
  std::vector<Sym> truth;
  std::vector<V3> eig;
  for (int v = 0; v < 36; ++v)
  {
    const double l1 = 0.8e-3 + 1.4e-3 * rng.Uniform();
    const double l2 = 0.2e-3 + (l1 - 0.2e-3) * rng.Uniform();
    const double l3 = v == 7 ? l1 : 0.1e-3 + (l2 - 0.1e-3) * rng.Uniform();
    const double l2b = v == 7 ? l1 : l2;
    const V3 a{ rng.Normal(), rng.Normal(), rng.Normal() }, b{ rng.Normal(), rng.Normal(), rng.Normal() };
    truth.push_back(TensorFromFrame(a, b, l1, l2b, l3));
    eig.push_back({ l1, l2b, l3 });
  }
  const gw::SizeType size{ { 4, 3, 3 } };
  std::size_t counter = 0;
  const auto table = MakeTable(2, 30, 1000.0);
  const gw::io::Dwi dwi = MakeDwi(
    size, 2.0, [&](const gw::PointType &) { return truth[counter++]; }, 800.0, table);
  const auto mask = FullMask(dwi.image);
  struct Case
  {
    gw::dti::FitMethod method;
    bool olsStart;
  };
  for (const Case c : { Case{ gw::dti::FitMethod::OLS, false }, Case{ gw::dti::FitMethod::WLS, false },
                        Case{ gw::dti::FitMethod::WLS, true }, Case{ gw::dti::FitMethod::NLLS, false },
                        Case{ gw::dti::FitMethod::Robust, false } })
  {
    gw::dti::FitOptions o;
    o.method = c.method;
    o.wlsStartFromOls = c.olsStart;
    o.robustSigma = 1.0; // noise-free data: a nominal sigma (the estimate would be float rounding)
    o.threads = 2;
    const gw::dti::DtiResult r = gw::dti::FitTensors(dwi, mask, o);
    SCOPED_TRACE(gw::dti::ToString(c.method));
    ASSERT_EQ(r.fittedVoxels, 36u);
    EXPECT_EQ(r.rejectedMeasurements, 0u);
    for (std::size_t v = 0; v < 36; ++v)
    {
      const auto & e = eig[v];
      const double md = (e[0] + e[1] + e[2]) / 3.0;
      EXPECT_NEAR(At(r.maps.fa, v), ExpectedFa(e[0], e[1], e[2]), 1e-4) << "voxel " << v;
      EXPECT_NEAR(At(r.maps.md, v), md, 1e-4 * md) << "voxel " << v;     // relative 1e-4
      EXPECT_NEAR(At(r.maps.ad, v), e[0], 1e-4 * e[0]) << "voxel " << v; // relative 1e-4
      EXPECT_NEAR(At(r.maps.rd, v), 0.5 * (e[1] + e[2]), 1e-4 * md) << "voxel " << v;
      EXPECT_NEAR(At(r.s0, v), 800.0, 800.0 * 1e-4) << "voxel " << v;
      const gw::TensorPixel t = r.tensor->GetBufferPointer()[v];
      for (int k = 0; k < 6; ++k)
        EXPECT_NEAR(t[k], truth[v][k], 1e-7) << "voxel " << v << " component " << k; // [mm^2/s]
    }
  }
}

TEST(TensorFit, RobustFitRejectsPlantedOutliers)
{
  const V3 dir = Normalized({ 1.0, 0.5, 0.2 });
  const Sym d = TensorFromFrame(dir, { 0, 0, 1 }, 1.6e-3, 0.4e-3, 0.3e-3);
  const double faTrue = ExpectedFa(1.6e-3, 0.4e-3, 0.3e-3);
  const auto table = MakeTable(3, 40, 1000.0);
  Rng noise(7);
  const double sigma = 10.0; // S0 = 1000: SNR 100 on b0
  gw::io::Dwi dwi = MakeDwi(
    { { 10, 10, 4 } }, 2.0, [&](const gw::PointType &) { return d; }, 1000.0, table, &noise, sigma);
  // plant one signal dropout per voxel (a diffusion-weighted measurement at 25 % of its value)
  Rng pick(11);
  const std::size_t n = table.entries.size(), voxels = 400;
  for (std::size_t v = 0; v < voxels; ++v)
  {
    const std::size_t c = 3 + static_cast<std::size_t>(pick.Uniform() * 40.0);
    dwi.image->GetBufferPointer()[v * n + c] *= 0.25f;
  }
  const auto mask = FullMask(dwi.image);
  gw::dti::FitOptions wls, robust;
  wls.threads = robust.threads = 2;
  robust.method = gw::dti::FitMethod::Robust;
  const auto rw = gw::dti::FitTensors(dwi, mask, wls);
  const auto rr = gw::dti::FitTensors(dwi, mask, robust);
  std::vector<double> errWls, errRobust;
  for (std::size_t v = 0; v < voxels; ++v)
  {
    errWls.push_back(std::abs(At(rw.maps.fa, v) - faTrue));
    errRobust.push_back(std::abs(At(rr.maps.fa, v) - faTrue));
  }
  // sigma estimated from WLS residuals (outliers included) within 25 %
  EXPECT_NEAR(rr.sigma, sigma, 0.25 * sigma);
  // every planted outlier found, few false rejections (3 sigma on 43 measurements: ~0.1 per voxel expected)
  EXPECT_GE(rr.rejectedMeasurements, voxels);
  EXPECT_LE(rr.rejectedMeasurements, voxels + voxels / 4);
  // the robust FA error is at the noise level, the plain WLS error several times larger
  EXPECT_LT(Median(errRobust), 0.01);
  EXPECT_GT(Median(errWls), 2.0 * Median(errRobust));
  std::cout << "[ info     ] sigma " << rr.sigma << ", rejected " << rr.rejectedMeasurements << " (planted " << voxels
            << "), median |FA error| robust " << Median(errRobust) << ", WLS " << Median(errWls) << "\n";
}

TEST(TensorFit, AutoMaskFindsTheObjectAndFillsHoles)
{
  // a bright ball (b0 1000) with a dark core (b0 100, like CSF-free hole) in a noisy dark background
  const gw::SizeType size{ { 30, 30, 20 } };
  auto b0 = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0), 0.0f);
  Rng rng(3);
  std::size_t inside = 0;
  for (unsigned int k = 0; k < 20; ++k)
    for (unsigned int j = 0; j < 30; ++j)
      for (unsigned int i = 0; i < 30; ++i)
      {
        const double r = std::sqrt((i - 15.0) * (i - 15.0) + (j - 15.0) * (j - 15.0) + (k - 10.0) * (k - 10.0));
        float v = static_cast<float>(20.0 + 5.0 * rng.Normal());
        if (r <= 8.0)
        {
          v = r <= 3.0 ? 100.0f : 1000.0f;
          ++inside;
        }
        b0->SetPixel({ { i, j, k } }, v);
      }
  const auto mask = gw::dti::AutoMask(b0);
  std::size_t count = 0;
  for (std::size_t v = 0; v < 30 * 30 * 20; ++v)
    count += mask->GetBufferPointer()[v];
  EXPECT_EQ(count, inside); // ball including its dark core, no background voxel
}

TEST(TensorFit, RejectsUnusableGradientTables)
{
  const auto table = MakeTable(1, 5, 1000.0); // 5 directions cannot determine 6 tensor elements
  const auto dwi = MakeDwi(
    { { 2, 2, 2 } }, 1.0, [](const gw::PointType &) { return Sym{ 1e-3, 0, 0, 1e-3, 0, 1e-3 }; }, 100.0, table);
  EXPECT_THROW(gw::dti::FitTensors(dwi, FullMask(dwi.image)), gw::Error);
  gw::io::Dwi mismatched = dwi;
  mismatched.gradients.entries.pop_back();
  EXPECT_THROW(gw::dti::FitTensors(mismatched, FullMask(dwi.image)), gw::Error);
  EXPECT_THROW(gw::dti::ParseFitMethod("lsq"), gw::Error);
}

TEST(TensorFit, WritesTheRequestedMapsInParallel)
{
  // map names: case-insensitive, duplicates removed, canonical order; "all" = every map; unknown/empty refused
  EXPECT_EQ(gw::dti::ParseDtiMaps(" V1,fa, md ,FA"), (std::vector<std::string>{ "fa", "md", "v1" }));
  EXPECT_EQ(gw::dti::ParseDtiMaps("all"), gw::dti::DtiMapNames());
  EXPECT_EQ(gw::dti::DtiMapNames().size(), gw::dti::DtiOutputSuffixes().size());
  for (const char * bad : { "fa,westward", "", " , " })
  {
    try
    {
      gw::dti::ParseDtiMaps(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    }
    catch (const gw::Error & e)
    {
      EXPECT_EQ(e.Kind(), gw::ErrorKind::Usage) << bad;
    }
  }
  const auto table = MakeTable(1, 12, 1000.0);
  const gw::io::Dwi dwi = MakeDwi(
    { { 5, 4, 3 } }, 1.5,
    [](const gw::PointType & p) {
      return TensorFromFrame({ 1.0, p[0] + 0.5, 0.3 }, { 0.2, -0.4, 1.0 }, 1.6e-3, 0.5e-3, 0.3e-3);
    },
    900.0, table);
  const auto r = gw::dti::FitTensors(dwi, FullMask(dwi.image));
  ScratchDir dir("dti_maps");
  const std::string prefix = (dir / "sub/x").string(); // the output directory is created
  const auto written = gw::dti::WriteDtiResult(r, prefix, false, { "tensor", "fa", "v1", "md" }, 4);
  ASSERT_EQ(written.size(), 4u); // DtiMapNames() order
  EXPECT_EQ(written[0], gw::fs::path(prefix + "_FA.nii.gz"));
  EXPECT_EQ(written[1], gw::fs::path(prefix + "_MD.nii.gz"));
  EXPECT_EQ(written[2], gw::fs::path(prefix + "_V1.nii.gz"));
  EXPECT_EQ(written[3], gw::fs::path(prefix + "_tensor.nii.gz"));
  std::size_t files = 0;
  for (const auto & entry : gw::fs::directory_iterator(dir / "sub"))
  {
    ++files;
    EXPECT_EQ(entry.path().filename().string().find(".gwtmp"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(files, 4u); // exactly the requested maps, no temporary left
  // written concurrently, read back identical (float maps exact)
  const auto fa = gw::io::ReadFloatImage(written[0]);
  const auto md = gw::io::ReadFloatImage(written[1]);
  const auto tensor = gw::dti::ReadTensorImage(written[3]);
  for (std::size_t v = 0; v < 60; ++v)
  {
    EXPECT_EQ(fa->GetBufferPointer()[v], At(r.maps.fa, v)) << v;
    EXPECT_EQ(md->GetBufferPointer()[v], At(r.maps.md, v)) << v;
    for (unsigned int c = 0; c < 6; ++c)
      EXPECT_EQ(tensor->GetBufferPointer()[v][c], r.tensor->GetBufferPointer()[v][c]) << v << " " << c;
  }
  // an existing output is refused before anything is written
  EXPECT_THROW(gw::dti::WriteDtiResult(r, prefix, false, { "rd", "fa" }), gw::Error);
  EXPECT_FALSE(gw::fs::exists(prefix + "_RD.nii.gz"));
  EXPECT_NO_THROW(gw::dti::WriteDtiResult(r, prefix, true, { "rd", "fa" }));
  EXPECT_TRUE(gw::fs::exists(prefix + "_RD.nii.gz"));
  EXPECT_THROW(gw::dti::WriteDtiResult(r, prefix, true, { "nope" }), gw::Error);
}

// ---------------------------------------------------------------------------------------------------------------

namespace
{
/// A tube of radius r [mm] around the axis through `centre` along `axis` (infinite), anisotropic inside.
std::function<Sym(const gw::PointType &)>
TubeField(const V3 & centre, const V3 & axisIn, double radius)
{
  const V3 axis = Normalized(axisIn);
  return [=](const gw::PointType & p)
  {
    V3 d{ p[0] - centre[0], p[1] - centre[1], p[2] - centre[2] };
    const double along = Dot(d, axis);
    for (int i = 0; i < 3; ++i)
      d[i] -= along * axis[i];
    if (std::sqrt(Dot(d, d)) <= radius)
      return TensorFromFrame(axis, { 0.3, -0.7, 0.2 }, 1.7e-3, 0.3e-3, 0.3e-3);
    return Sym{ 0.8e-3, 0, 0, 0.8e-3, 0, 0.8e-3 };
  };
}
} // namespace

TEST(TensorFit, SamplesAsStoredGiveTheSameFitAsTheVectorImage)
{
  // gw_dti fits a NIfTI series as the file stores it (volume after volume, only the mask's voxels converted): every
  // method must give the vector-image fit bit for bit, with noise so that the robust fit rejects measurements
  ScratchDir dir("gwdti_stored");
  Rng rng(77);
  const auto table = MakeTable(3, 30, 1000.0);
  const auto dwi =
    MakeDwi({ { 14, 9, 6 } }, 2.0, TubeField({ 0, 8, 5 }, { 1, 0.3, 0 }, 4.0), 1000.0, table, &rng, 20.0);
  gw::io::WriteDwi(dwi, dir / "dwi.nii.gz", false);
  const gw::io::DwiSeries stored = gw::io::ReadDwiSeries(dir / "dwi.nii.gz");
  ASSERT_TRUE(stored.samples.StoredByVolume());
  const gw::io::Dwi image = gw::io::ReadDwi(dir / "dwi.nii.gz");
  ASSERT_FALSE(gw::io::DwiSamples(image.image).StoredByVolume());
  const auto meanStored = gw::dti::MeanB0(stored), meanImage = gw::dti::MeanB0(image);
  const std::size_t count = meanImage->GetBufferedRegion().GetNumberOfPixels();
  for (std::size_t v = 0; v < count; ++v)
    ASSERT_EQ(meanStored->GetBufferPointer()[v], meanImage->GetBufferPointer()[v]) << "mean b0, voxel " << v;
  for (const auto method :
       { gw::dti::FitMethod::OLS, gw::dti::FitMethod::WLS, gw::dti::FitMethod::NLLS, gw::dti::FitMethod::Robust })
  {
    SCOPED_TRACE(gw::dti::ToString(method));
    gw::dti::FitOptions o;
    o.method = method;
    o.threads = 2;
    const auto a = gw::dti::FitTensors(stored, nullptr, o); // automatic mask from the stored samples' mean b0
    const auto b = gw::dti::FitTensors(image, nullptr, o);
    ASSERT_EQ(a.fittedVoxels, b.fittedVoxels);
    ASSERT_GT(a.fittedVoxels, 50u);
    EXPECT_EQ(a.rejectedMeasurements, b.rejectedMeasurements);
    EXPECT_EQ(a.sigma, b.sigma);
    if (method == gw::dti::FitMethod::Robust)
    {
      EXPECT_GT(a.rejectedMeasurements, 0u) << "the noise should make the robust fit reject something";
    }
    for (std::size_t v = 0; v < count; ++v)
    {
      ASSERT_EQ(a.mask->GetBufferPointer()[v], b.mask->GetBufferPointer()[v]) << "voxel " << v;
      ASSERT_EQ(a.maps.fa->GetBufferPointer()[v], b.maps.fa->GetBufferPointer()[v]) << "voxel " << v;
      ASSERT_EQ(a.s0->GetBufferPointer()[v], b.s0->GetBufferPointer()[v]) << "voxel " << v;
      for (unsigned int k = 0; k < 6; ++k)
        ASSERT_EQ(a.tensor->GetBufferPointer()[v][k], b.tensor->GetBufferPointer()[v][k]) << "voxel " << v;
    }
  }
}

TEST(GradientCheck, DetectsFlippedX)
{
  const auto table = MakeTable(2, 30, 1000.0);
  const gw::SizeType size{ { 24, 24, 24 } };
  gw::io::Dwi dwi = MakeDwi(size, 1.5, TubeField({ 17.25, 17.25, 17.25 }, { 1, 2, 3 }, 4.0), 1000.0, table);
  gw::dti::GradientCheckOptions o;
  o.maxSeeds = 300;
  o.threads = 2;
  const auto correct = gw::dti::CheckGradients(dwi, nullptr, o);
  EXPECT_TRUE(correct.givenIsBest);
  EXPECT_EQ(correct.candidates.front().label, "x y z");

  for (auto & e : dwi.gradients.entries)
    e.direction[0] = -e.direction[0];
  const auto flipped = gw::dti::CheckGradients(dwi, nullptr, o);
  EXPECT_FALSE(flipped.givenIsBest);
  EXPECT_EQ(flipped.candidates.front().label, "-x y z");
  EXPECT_LT(flipped.givenScoreRatio, 0.5); // the flipped table's streamlines are less than half as long
  for (std::size_t i = 0; i < table.entries.size(); ++i)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(flipped.best.entries[i].direction[c], table.entries[i].direction[c], 1e-12);
}

// ---------------------------------------------------------------------------------------------------------------

TEST(Tractography, StraightTubeFromSimulatedDwi)
{
  // tube along x from x = 9 mm to x = 69 mm (voxels 5..34 at 2 mm: 30 voxels, 60 mm between outer faces)
  const auto table = MakeTable(1, 30, 1000.0);
  const gw::SizeType size{ { 40, 12, 12 } };
  const auto tube = TubeField({ 0, 11, 11 }, { 1, 0, 0 }, 4.5);
  const gw::io::Dwi dwi = MakeDwi(
    size, 2.0,
    [&](const gw::PointType & p)
    {
      if (p[0] < 9.5 || p[0] > 68.5)
        return Sym{ 0.8e-3, 0, 0, 0.8e-3, 0, 0.8e-3 };
      return tube(p);
    },
    1000.0, table);
  const auto fit = gw::dti::FitTensors(dwi, FullMask(dwi.image));
  auto seeds = FullMask(dwi.image);
  seeds->FillBuffer(0);
  seeds->SetPixel({ { 20, 5, 5 } }, 1);
  gw::dti::TrackingRegions regions;
  regions.seeds = seeds;
  gw::dti::TrackingOptions o;
  o.seedsPerVoxel = 8;
  o.minLengthMm = 0.0;
  const auto tracts = gw::dti::TrackTensors(fit.tensor, regions, o);
  ASSERT_EQ(tracts.streamlines.size(), 8u);
  for (const auto & s : tracts.streamlines)
  {
    EXPECT_NEAR(gw::dti::StreamlineLength(s), 60.0, 0.05 * 60.0); // within 5 %
    for (const auto & p : s)
    {
      EXPECT_NEAR(p[1], 10.0, 1.0); // stays on the axis: seed jitter is at most half a voxel (1 mm)
      EXPECT_NEAR(p[2], 10.0, 1.0);
    }
  }
  // exclude mask across the tube at x = 30 mm removes everything; an include mask there keeps everything
  auto wall = FullMask(dwi.image);
  wall->FillBuffer(0);
  for (unsigned int k = 0; k < 12; ++k)
    for (unsigned int j = 0; j < 12; ++j)
      wall->SetPixel({ { 15, j, k } }, 1);
  regions.exclude = { wall };
  EXPECT_EQ(gw::dti::TrackTensors(fit.tensor, regions, o).streamlines.size(), 0u);
  regions.exclude.clear();
  regions.include = { wall };
  EXPECT_EQ(gw::dti::TrackTensors(fit.tensor, regions, o).streamlines.size(), 8u);
  // a minimum length above the tube length removes everything
  regions.include.clear();
  o.minLengthMm = 70.0;
  EXPECT_EQ(gw::dti::TrackTensors(fit.tensor, regions, o).streamlines.size(), 0u);
}

TEST(Tractography, HelixIsRecovered)
{
  // one turn of a helix, radius 10 mm, pitch 20 mm: arc length sqrt((2 pi R)^2 + pitch^2) = 65.94 mm
  const double radius = 10.0, pitch = 20.0, c = pitch / (2 * Pi), tube = 2.5;
  const double arc = std::sqrt(std::pow(2 * Pi * radius, 2) + pitch * pitch);
  const gw::SizeType size{ { 32, 32, 32 } };
  auto tensor = gw::TensorImage::New();
  tensor->SetRegions(gw::RegionType(size));
  gw::PointType origin;
  origin[0] = origin[1] = -15.5;
  origin[2] = -5.5;
  tensor->SetOrigin(origin);
  tensor->Allocate();
  const int samples = 4000;
  auto helix = [&](double t) { return V3{ radius * std::cos(t), radius * std::sin(t), c * t }; };
  for (unsigned int k = 0; k < 32; ++k)
    for (unsigned int j = 0; j < 32; ++j)
      for (unsigned int i = 0; i < 32; ++i)
      {
        gw::PointType p;
        tensor->TransformIndexToPhysicalPoint({ { i, j, k } }, p);
        // closest helix sample: coarse search every 10 samples, then the fine samples around the coarse best
        double best = 1e9;
        int bestS = 0;
        auto visit = [&](int s)
        {
          const V3 h = helix(2 * Pi * s / samples);
          const double dd =
            (p[0] - h[0]) * (p[0] - h[0]) + (p[1] - h[1]) * (p[1] - h[1]) + (p[2] - h[2]) * (p[2] - h[2]);
          if (dd < best)
          {
            best = dd;
            bestS = s;
          }
        };
        for (int s = 0; s <= samples; s += 10)
          visit(s);
        const int coarse = bestS;
        for (int s = std::max(0, coarse - 10); s <= std::min(samples, coarse + 10); ++s)
          visit(s);
        Sym d{ 0.8e-3, 0, 0, 0.8e-3, 0, 0.8e-3 };
        if (std::sqrt(best) <= tube && bestS > 0 && bestS < samples) // flat ends: the foot point is interior
        {
          const double t = 2 * Pi * bestS / samples;
          d = TensorFromFrame({ -radius * std::sin(t), radius * std::cos(t), c }, { 0, 0, 1 }, 1.7e-3, 0.2e-3, 0.2e-3);
        }
        gw::TensorPixel px;
        for (int q = 0; q < 6; ++q)
          px[q] = static_cast<float>(d[q]);
        tensor->SetPixel({ { i, j, k } }, px);
      }
  auto seeds = FullMask(tensor);
  seeds->FillBuffer(0);
  gw::IndexType seedIndex;
  gw::PointType seedPoint;
  seedPoint[0] = -radius;
  seedPoint[1] = 0.0;
  seedPoint[2] = c * Pi;
  ASSERT_TRUE(tensor->TransformPhysicalPointToIndex(seedPoint, seedIndex));
  seeds->SetPixel(seedIndex, 1);
  gw::dti::TrackingRegions regions;
  regions.seeds = seeds;
  gw::dti::TrackingOptions o;
  o.minLengthMm = 0.0;
  o.stepMm = 0.25;
  o.faThreshold = 0.3;
  const auto tracts = gw::dti::TrackTensors(tensor, regions, o);
  ASSERT_EQ(tracts.streamlines.size(), 1u);
  EXPECT_NEAR(gw::dti::StreamlineLength(tracts.streamlines[0]), arc, 0.05 * arc); // within 5 %
  std::cout << "[ info     ] helix arc " << arc << " mm, streamline "
            << gw::dti::StreamlineLength(tracts.streamlines[0]) << " mm\n";
  double worst = 0.0;
  for (const auto & p : tracts.streamlines[0])
  {
    double best = 1e9;
    for (int s = 0; s <= samples; ++s)
    {
      const V3 h = helix(2 * Pi * s / samples);
      best = std::min(
        best, std::sqrt((p[0] - h[0]) * (p[0] - h[0]) + (p[1] - h[1]) * (p[1] - h[1]) + (p[2] - h[2]) * (p[2] - h[2])));
    }
    worst = std::max(worst, best);
  }
  EXPECT_LT(worst, 1.0); // never more than 1 mm off the helix (tube radius 2.5 mm)
  std::cout << "[ info     ] largest distance from the helix " << worst << " mm\n";
}

TEST(Tractography, TckAndVtkRoundTrip)
{
  ScratchDir dir("gwdti");
  gw::dti::Tractogram t;
  for (int s = 0; s < 3; ++s)
  {
    gw::dti::Streamline line;
    for (int i = 0; i < 5 + s; ++i)
    {
      gw::PointType p;
      p[0] = 1.5 * i - s;
      p[1] = -2.25 * s + 0.1 * i;
      p[2] = 10.0 + i;
      line.push_back(p);
    }
    t.streamlines.push_back(line);
  }
  gw::dti::WriteTck(t, dir / "a.tck", false);
  EXPECT_THROW(gw::dti::WriteTck(t, dir / "a.tck", false), gw::Error); // no overwrite without force
  const auto back = gw::dti::ReadTck(dir / "a.tck");
  ASSERT_EQ(back.streamlines.size(), 3u);
  for (std::size_t s = 0; s < 3; ++s)
  {
    ASSERT_EQ(back.streamlines[s].size(), t.streamlines[s].size());
    for (std::size_t i = 0; i < t.streamlines[s].size(); ++i)
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(back.streamlines[s][i][c], t.streamlines[s][i][c], 1e-5); // float32 storage
  }
  // the file holds RAS: the first point (0, 0, 10) LPS stays, (1.5, 0.1, 11) LPS is (-1.5, -0.1, 11) RAS
  const std::string bytes = gw::ReadFile(dir / "a.tck");
  const auto pos = bytes.find("file: . ");
  ASSERT_NE(pos, std::string::npos);
  const std::size_t offset = std::stoul(bytes.substr(pos + 8));
  float xyz[3];
  std::memcpy(xyz, bytes.data() + offset + 12, 12);
  EXPECT_FLOAT_EQ(xyz[0], -1.5f);
  EXPECT_FLOAT_EQ(xyz[1], -0.1f);
  EXPECT_FLOAT_EQ(xyz[2], 11.0f);

  gw::dti::WriteVtk(t, dir / "a.vtk", false);
  const std::string vtk = gw::ReadFile(dir / "a.vtk");
  EXPECT_NE(vtk.find("SPACE=RAS"), std::string::npos);
  EXPECT_NE(vtk.find("POINTS 18 float"), std::string::npos);
  EXPECT_NE(vtk.find("LINES 3 21"), std::string::npos);
  gw::dti::WriteVtk(t, dir / "b.vtk", false, true);
  EXPECT_NE(gw::ReadFile(dir / "b.vtk").find("SPACE=LPS"), std::string::npos);
}

TEST(Tractography, AlongTractProfileOrientsStreamlinesConsistently)
{
  // FA grows linearly with x: FA = 0.01 x on a 50x5x5 grid; two straight streamlines, one reversed
  const gw::SizeType size{ { 50, 5, 5 } };
  gw::dti::ScalarMaps maps;
  maps.fa = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0), 0.0f);
  maps.md = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0), 1e-3f);
  maps.ad = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0), 1.5e-3f);
  maps.rd = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0), 0.75e-3f);
  for (unsigned int k = 0; k < 5; ++k)
    for (unsigned int j = 0; j < 5; ++j)
      for (unsigned int i = 0; i < 50; ++i)
        maps.fa->SetPixel({ { i, j, k } }, 0.01f * i);
  gw::dti::Tractogram t;
  for (int s = 0; s < 2; ++s)
  {
    gw::dti::Streamline line;
    for (int i = 0; i <= 40; ++i)
    {
      gw::PointType p;
      p[0] = 5.0 + (s == 0 ? i : 40 - i);
      p[1] = 2.0;
      p[2] = 2.0;
      line.push_back(p);
    }
    t.streamlines.push_back(line);
  }
  const auto prof = gw::dti::AlongTractProfile(t, maps, 11);
  ASSERT_EQ(prof.streamlines, 2u);
  for (unsigned int k = 0; k < 11; ++k)
  {
    EXPECT_NEAR(prof.mean[0][k], 0.01 * (5.0 + 4.0 * k), 1e-6); // FA at x = 5 + 4k; identical in both
    EXPECT_NEAR(prof.sd[0][k], 0.0, 1e-6);                      // 0 spread proves both were oriented alike
    EXPECT_NEAR(prof.mean[1][k], 1e-3, 1e-9);
  }
  ScratchDir dir("gwdti");
  gw::dti::WriteTractProfile(prof, dir / "p.tsv", false);
  gw::dti::WriteTractProfile(prof, dir / "p.json", false);
  EXPECT_NE(gw::ReadFile(dir / "p.tsv").find("node\tx_lps_mm"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------------

TEST(CordProfile, SliceAndBandMeansAreExact)
{
  // FA = 0.5 + 0.01 z [mm] on a 1 mm grid, cord = disc of radius 3 voxels on every slice z = 0..40 mm
  const gw::SizeType size{ { 11, 11, 41 } };
  gw::dti::ScalarMaps maps;
  for (auto * img : { &maps.fa, &maps.md, &maps.ad, &maps.rd })
    *img = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0), 1e-3f);
  auto cord = gw::testing::MakeMask(size, gw::SpacingType(1.0), gw::PointType(0.0));
  std::size_t perSlice = 0;
  for (unsigned int k = 0; k < 41; ++k)
    for (unsigned int j = 0; j < 11; ++j)
      for (unsigned int i = 0; i < 11; ++i)
      {
        maps.fa->SetPixel({ { i, j, k } }, static_cast<float>(0.5 + 0.01 * k));
        const bool in = (i - 5.0) * (i - 5.0) + (j - 5.0) * (j - 5.0) <= 9.0;
        cord->SetPixel({ { i, j, k } }, in ? 1 : 0);
        if (in && k == 0)
          ++perSlice;
      }
  gw::PointType epi;
  epi[0] = 5;
  epi[1] = 5;
  epi[2] = 20;
  const auto prof = gw::dti::CordProfile(maps, cord, epi, 10.0);
  ASSERT_EQ(prof.slices.size(), 41u);
  EXPECT_EQ(prof.sliceAxis, 2);
  for (const auto & s : prof.slices)
  {
    EXPECT_EQ(s.metrics.voxels, perSlice);
    EXPECT_NEAR(s.metrics.fa, 0.5 + 0.01 * s.slice, 1e-6);
    EXPECT_NEAR(s.distanceMm, s.slice - 20.0, 1e-9);
  }
  ASSERT_EQ(prof.regions.size(), 3u);
  // epicentre: z = 15..25 (|d| <= 5) → mean z 20; rostral: d in (5, 15] → z 26..35, mean 30.5; caudal: z 5..14
  EXPECT_EQ(prof.regions[0].metrics.voxels, 11 * perSlice);
  EXPECT_NEAR(prof.regions[0].metrics.fa, 0.70, 1e-6);
  EXPECT_EQ(prof.regions[1].metrics.voxels, 10 * perSlice);
  EXPECT_NEAR(prof.regions[1].metrics.fa, 0.805, 1e-6);
  EXPECT_NEAR(prof.regions[2].metrics.fa, 0.595, 1e-6);
  EXPECT_NEAR(prof.regions[0].metrics.md, 1e-3, 1e-9);
  ScratchDir dir("gwdti");
  gw::dti::WriteCordProfile(prof, dir / "c.json", false);
  gw::dti::WriteCordProfile(prof, dir / "c.tsv", false);
  EXPECT_NE(gw::ReadFile(dir / "c.tsv").find("region\trostral"), std::string::npos);
  EXPECT_THROW(gw::dti::CordProfile(maps, cord, epi, 0.0), gw::Error);
}

// ---------------------------------------------------------------------------------------------------------------

TEST(DtiApps, FitThenTrackOnPhantomFiles)
{
  ScratchDir dir("gwdti");
  const auto table = MakeTable(2, 30, 1000.0);
  gw::io::GradientTable fsl = gw::io::LpsToFsl(table, gw::DirectionType::GetIdentity());
  const auto dwi = MakeDwi({ { 40, 12, 12 } }, 2.0, TubeField({ 0, 11, 11 }, { 1, 0, 0 }, 4.5), 1000.0, table);
  gw::io::WriteDwi(dwi, dir / "dwi.nii.gz", false);
  const std::string prefix = (dir / "out").string();
  auto r = gw::testing::Run({ "gw_dti", (dir / "dwi.nii.gz").string(), "-o", prefix, "--fit", "nlls" });
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto fa = gw::io::ReadFloatImage(prefix + "_FA.nii.gz");
  EXPECT_NEAR(fa->GetPixel({ { 20, 5, 5 } }), ExpectedFa(1.7e-3, 0.3e-3, 0.3e-3), 1e-4);
  EXPECT_NEAR(gw::io::ReadFloatImage(prefix + "_MD.nii.gz")->GetPixel({ { 20, 5, 5 } }), 0.7667e-3, 1e-7);
  // the tensor file read back gives the same tensor (NIfTI lower-triangle storage converted back by ITK)
  const auto t = gw::dti::ReadTensorImage(prefix + "_tensor.nii.gz");
  const auto tn = gw::dti::ReadTensorImage(prefix + "_tensor.nrrd");
  const gw::TensorPixel a = t->GetPixel({ { 20, 5, 5 } }), b = tn->GetPixel({ { 20, 5, 5 } });
  EXPECT_NEAR(a[0], 1.7e-3, 1e-7); // xx along the tube
  EXPECT_NEAR(a[3], 0.3e-3, 1e-7); // yy
  for (int k = 0; k < 6; ++k)
    EXPECT_EQ(a[k], b[k]);
  // the same outputs again without --force: refused with exit code 5
  r = gw::testing::Run({ "gw_dti", (dir / "dwi.nii.gz").string(), "-o", prefix });
  EXPECT_EQ(r.exitCode, 5);

  // track from the mask, write .tck and .vtk and a profile
  r = gw::testing::Run({ "gw_track", prefix + "_tensor.nrrd", "--seeds", prefix + "_mask.nii.gz", "-o",
                         (dir / "t.tck").string(), "--vtk", (dir / "t.vtk").string(), "--profile",
                         (dir / "p.json").string(), "--min-length", "50" });
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto tracts = gw::dti::ReadTck(dir / "t.tck");
  ASSERT_GT(tracts.streamlines.size(), 0u);
  const auto stats = gw::dti::ComputeStats(tracts);
  EXPECT_NEAR(stats.meanLengthMm, 80.0 - 2.0, 0.05 * 78.0); // tube spans the 40 x 2 mm grid: 78 mm between centres
  // bad input: a DWI is not a tensor image
  r = gw::testing::Run(
    { "gw_track", (dir / "dwi.nii.gz").string(), "--seeds", prefix + "_mask.nii.gz", "-o", (dir / "u.tck").string() });
  EXPECT_EQ(r.exitCode, 3) << r.err;
}

// ---------------------------------------------------------------------------------------------------------------
// Real data against the Debian peers (MRtrix3 dwi2tensor/tensor2metric, DIPY TensorModel), same run.

namespace
{
std::optional<std::string>
FindProgram(const std::string & name)
{
  const char * path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && std::filesystem::exists(std::filesystem::path(dir) / name))
      return (std::filesystem::path(dir) / name).string();
  return std::nullopt;
}

/// Median |FA_ours - FA_peer| over `voxels`, sampling the peer image at the same physical points.
double
MedianAbsDiff(const gw::FloatImage * ours, const gw::FloatImage * peer, const std::vector<std::size_t> & voxels)
{
  const auto size = ours->GetLargestPossibleRegion().GetSize();
  std::vector<double> diffs;
  for (const std::size_t v : voxels)
  {
    const gw::IndexType idx{ { static_cast<long>(v % size[0]), static_cast<long>((v / size[0]) % size[1]),
                               static_cast<long>(v / (size[0] * size[1])) } };
    gw::PointType p;
    ours->TransformIndexToPhysicalPoint(idx, p);
    gw::IndexType q;
    if (!peer->TransformPhysicalPointToIndex(p, q))
      continue;
    diffs.push_back(std::abs(static_cast<double>(ours->GetPixel(idx)) - peer->GetPixel(q)));
  }
  EXPECT_EQ(diffs.size(), voxels.size()) << "peer FA on another field of view";
  return Median(diffs);
}

void
CompareWithPeers(const std::filesystem::path & dir, const std::string & image)
{
  const auto dwiPath = dir / image, bval = dir / "bvals.txt", bvec = dir / "bvecs.txt";
  const auto dwi2tensor = FindProgram("dwi2tensor"), tensor2metric = FindProgram("tensor2metric");
  const bool dipy = std::filesystem::exists("/usr/bin/python3") &&
                    gw::testing::Run({ "/usr/bin/python3", "-c", "import dipy.reconst.dti" }).exitCode == 0;
  if (!dwi2tensor && !dipy)
    GTEST_SKIP() << "neither MRtrix3 nor DIPY installed";
  ScratchDir scratch("gwdti_ext");
  const gw::io::Dwi dwi = gw::io::ReadDwi(dwiPath, bval, bvec);
  gw::dti::FitOptions mrtrixLike; // default: first solve weighted by the signal, 2 reweightings = dwi2tensor
  const auto ours = gw::dti::FitTensors(dwi, nullptr, mrtrixLike);
  {
    // gw_dti's path (the series as stored, voxels converted on demand) gives the same maps bit for bit
    const auto stored = gw::dti::FitTensors(gw::io::ReadDwiSeries(dwiPath, bval, bvec), nullptr, mrtrixLike);
    ASSERT_EQ(stored.fittedVoxels, ours.fittedVoxels);
    const std::size_t n = ours.maps.fa->GetBufferedRegion().GetNumberOfPixels();
    for (std::size_t v = 0; v < n; ++v)
      ASSERT_EQ(stored.maps.fa->GetBufferPointer()[v], ours.maps.fa->GetBufferPointer()[v]) << "voxel " << v;
  }
  gw::io::WriteImage(ours.mask.GetPointer(), scratch / "mask.nii.gz", false);
  // compare where the tensor is positive definite: FA of a tensor with a negative eigenvalue is convention
  // (MRtrix3 reports FA > 1, DIPY clips eigenvalues at 0, we clamp FA to 1)
  std::vector<std::size_t> voxels;
  const std::size_t count = ours.mask->GetBufferedRegion().GetNumberOfPixels();
  for (std::size_t v = 0; v < count; ++v)
    if (ours.mask->GetBufferPointer()[v] &&
        gw::dti::ComputeTensorMetrics(ours.tensor->GetBufferPointer()[v]).lambda[2] > 0.0)
      voxels.push_back(v);
  ASSERT_GE(voxels.size(), 50u) << "too few positive-definite voxels for a comparison";
  std::cout << "[ info     ] " << image << ": mask " << ours.fittedVoxels << " voxels, positive definite "
            << voxels.size() << "\n";
  if (dwi2tensor && tensor2metric)
  {
    const auto tensor = (scratch / "dt.mif").string(), fa = (scratch / "fa_mrtrix.nii").string();
    auto r = gw::testing::Run({ *dwi2tensor, "-quiet", "-fslgrad", bvec.string(), bval.string(), "-mask",
                                (scratch / "mask.nii.gz").string(), dwiPath.string(), tensor });
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = gw::testing::Run({ *tensor2metric, "-quiet", "-fa", fa, tensor });
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const double d = MedianAbsDiff(ours.maps.fa, gw::io::ReadFloatImage(fa), voxels);
    std::cout << "[ info     ] median |FA - FA_MRtrix3| = " << d << "\n";
    EXPECT_LT(d, 0.005);
  }
  if (dipy)
  {
    const std::string script = "import sys, numpy as np, nibabel as nib\n"
                               "from dipy.io.gradients import read_bvals_bvecs\n"
                               "from dipy.core.gradients import gradient_table\n"
                               "import dipy.reconst.dti as dti\n"
                               "img = nib.load(sys.argv[1])\n"
                               "b, v = read_bvals_bvecs(sys.argv[2], sys.argv[3])\n"
                               "mask = np.asanyarray(nib.load(sys.argv[4]).dataobj) > 0\n"
                               "fit = dti.TensorModel(gradient_table(b, v), fit_method='WLS').fit(img.get_fdata(), "
                               "mask=mask)\n"
                               "nib.save(nib.Nifti1Image(fit.fa.astype(np.float32), img.affine), sys.argv[5])\n";
    gw::WriteTextFile(scratch / "dipy_fa.py", script, false);
    const auto fa = (scratch / "fa_dipy.nii.gz").string();
    const auto r = gw::testing::Run({ "/usr/bin/python3", (scratch / "dipy_fa.py").string(), dwiPath.string(),
                                      bval.string(), bvec.string(), (scratch / "mask.nii.gz").string(), fa });
    ASSERT_EQ(r.exitCode, 0) << r.err;
    gw::dti::FitOptions dipyLike; // DIPY "WLS": OLS start, one reweighting
    dipyLike.wlsStartFromOls = true;
    dipyLike.wlsIterations = 1;
    const auto oursDipy = gw::dti::FitTensors(dwi, ours.mask, dipyLike);
    const auto peer = gw::io::ReadFloatImage(fa);
    const double d = MedianAbsDiff(oursDipy.maps.fa, peer, voxels);
    std::cout << "[ info     ] median |FA - FA_DIPY| = " << d
              << " (MRtrix3-like fit vs DIPY: " << MedianAbsDiff(ours.maps.fa, peer, voxels) << ")\n";
    EXPECT_LT(d, 0.01);
  }
}
} // namespace

TEST(DtiExternal, SctTutorialMatchesMrtrixAndDipy)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_tutorial_dmri/dmri.nii.gz");
  CompareWithPeers(dir.parent_path(), "dmri.nii.gz");
}

TEST(DtiExternal, SctTestingTinyDwiMatchesMrtrixAndDipy)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_testing/dmri/dmri.nii.gz");
  CompareWithPeers(dir.parent_path(), "dmri.nii.gz");
}

TEST(DtiExternal, SctTutorialGradientTableIsCoherent)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_tutorial_dmri/dmri.nii.gz");
  const auto root = dir.parent_path();
  gw::io::Dwi dwi = gw::io::ReadDwi(dir, root / "bvals.txt", root / "bvecs.txt");
  gw::dti::GradientCheckOptions o;
  o.maxSeeds = 500;
  const auto given = gw::dti::CheckGradients(dwi, nullptr, o);
  EXPECT_TRUE(given.givenIsBest) << "best: " << given.candidates.front().label;
  // the same data with the y axis of the b-vectors flipped (image axes) must be caught
  const auto flipped = gw::dti::ApplyCandidate(dwi.gradients, dwi.image->GetDirection(),
                                               gw::dti::GradientCandidate{ { 0, 1, 2 }, { 1, -1, 1 }, "", 0.0, 0 });
  dwi.gradients = flipped;
  const auto check = gw::dti::CheckGradients(dwi, nullptr, o);
  EXPECT_FALSE(check.givenIsBest);
  EXPECT_EQ(check.candidates.front().label, "x -y z");
  std::cout << "[ info     ] given table score ratio after a y flip: " << check.givenScoreRatio << "\n";
}

// The non-linear fits on real data stay physical: before the log-Cholesky entries were bounded, a few
// ill-conditioned voxels of the SCT tutorial DWI ran away to AD = 5.6e9 mm^2/s (NLLS).
TEST(DtiExternal, NonLinearFitsStayPhysicalOnRealData)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_tutorial_dmri/dmri.nii.gz");
  const auto root = dir.parent_path();
  const gw::io::Dwi dwi = gw::io::ReadDwi(dir, root / "bvals.txt", root / "bvecs.txt");
  for (const auto method : { gw::dti::FitMethod::NLLS, gw::dti::FitMethod::Robust })
  {
    gw::dti::FitOptions o;
    o.method = method;
    const auto r = gw::dti::FitTensors(dwi, nullptr, o);
    const float * ad = r.maps.ad->GetBufferPointer();
    const auto * m = r.mask->GetBufferPointer();
    float worst = 0.0f;
    for (std::size_t i = 0; i < r.mask->GetBufferedRegion().GetNumberOfPixels(); ++i)
      if (m[i])
        worst = std::max(worst, ad[i]);
    // bound of the fit: every diffusivity below 0.03 mm^2/s (10x free water at 37 degC)
    EXPECT_LE(worst, 0.03f) << gw::dti::ToString(method) << ": largest AD in the mask [mm^2/s]";
    std::cout << "[ info     ] " << gw::dti::ToString(method) << " largest AD " << worst << " mm^2/s\n";
  }
}
