// Unit tests of gw::registration on analytic phantoms with exactly known transforms.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include <itkAffineTransform.h>
#include <itkCompositeTransform.h>
#include <itkImageRegionConstIteratorWithIndex.h>

#include "gw/core/error.h"
#include "gw/registration/motion.h"
#include "gw/registration/registration.h"
#include "gw/testing/testing.h"
#include "phantom.h"

namespace gw::registration
{
namespace
{
using test::PhantomValue;
using test::Sample;

const SizeType PhantomSize{ { 64, 64, 64 } };
constexpr double PhantomSpacing = 1.0;

PointType
Origin0()
{
  PointType c;
  c.Fill(0.0);
  return c;
}

double
Phantom(const PointType & p)
{
  return PhantomValue(p, Origin0());
}

/// Pearson correlation of two images on the same grid over voxels where both are non-zero.
double
Correlation(const FloatImage * a, const FloatImage * b)
{
  const std::size_t n = a->GetBufferedRegion().GetNumberOfPixels();
  const float * p = a->GetBufferPointer();
  const float * q = b->GetBufferPointer();
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, m = 0;
  for (std::size_t i = 0; i < n; ++i)
  {
    if (p[i] == 0.0f || q[i] == 0.0f)
      continue;
    sa += p[i];
    sb += q[i];
    saa += double(p[i]) * p[i];
    sbb += double(q[i]) * q[i];
    sab += double(p[i]) * q[i];
    m += 1;
  }
  const double cov = sab / m - sa / m * sb / m;
  return cov / std::sqrt((saa / m - sa * sa / m / m) * (sbb / m - sb * sb / m / m));
}

/// Intensity centroid (physical point).
PointType
Centroid(const FloatImage * image)
{
  double w = 0, s[3] = { 0, 0, 0 };
  itk::ImageRegionConstIteratorWithIndex<FloatImage> it(image, image->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    image->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    w += it.Get();
    for (unsigned d = 0; d < 3; ++d)
      s[d] += it.Get() * p[d];
  }
  PointType c;
  for (unsigned d = 0; d < 3; ++d)
    c[d] = s[d] / w;
  return c;
}

std::string
Stages(const RegistrationResult & r)
{
  std::string s;
  for (const auto & l : r.qa.stages)
    s += l + "\n";
  return s;
}

TEST(Registration, RigidPhantomRecovered)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  const auto truth = MakeRigidTransform({ 7.0, -5.0, 9.0 }, { 6.0, -4.0, 3.0 }, Origin0());
  const auto moving = test::MovedPhantom(PhantomSize, PhantomSpacing, truth, Phantom);
  RegistrationOptions o;
  const RegistrationResult r = Register(fixed, moving, o);
  const PointDistance tre = TransformDistance(r.transform, truth, fixed, nullptr, 2);
  EXPECT_LT(tre.mean, 0.1) << "TRE [mm], tolerance 0.1 voxel";
  EXPECT_LT(tre.max, 0.3) << "max TRE [mm] over the grid";
  EXPECT_TRUE(r.qa.gate.passed);
  EXPECT_TRUE(r.qa.inverseConsistencyComputed);
  EXPECT_LT(r.qa.inverseConsistencyMm, 0.2) << "inverse consistency [mm]";
  EXPECT_LT(r.qa.finalMetric, r.qa.initialMetric) << "metric must improve";
  EXPECT_GT(r.qa.overlapFraction, 0.7) << "no mask: the whole fixed grid counts and its corners leave the moving FOV";
  const auto json = ToJson(r.qa);
  EXPECT_TRUE(json.at("gate").at("passed").get<bool>());
  EXPECT_TRUE(json.contains("inverse_consistency_mean_mm"));
  EXPECT_NE(json.value("inverse_consistency_method", "").find("independent backward registration"), std::string::npos)
    << "the QA JSON says how the inverse consistency was computed";
}

TEST(Registration, GeometryInitAndCorrelationMetric)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  const auto truth = MakeRigidTransform({ -4.0, 6.0, -3.0 }, { -5.0, 2.0, 7.0 }, Origin0());
  const auto moving = test::MovedPhantom(PhantomSize, PhantomSpacing, truth, Phantom);
  RegistrationOptions o;
  o.init = Initialization::Geometry;
  o.metric = MetricKind::Correlation;
  o.inverseConsistency = false;
  const RegistrationResult r = Register(fixed, moving, o);
  EXPECT_LT(TransformDistance(r.transform, truth, fixed, nullptr, 2).mean, 0.1) << "TRE [mm]";
  EXPECT_FALSE(r.qa.inverseConsistencyComputed);
  EXPECT_TRUE(r.qa.gate.passed) << "gate without inverse consistency checks metric and overlap only";
}

TEST(Registration, AffinePhantomRecovered)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  auto truth = itk::AffineTransform<double, 3>::New();
  itk::AffineTransform<double, 3>::MatrixType m;
  m.SetIdentity();
  m[0][0] = 1.06;
  m[1][1] = 0.95;
  m[2][2] = 1.03;
  m[0][1] = 0.04;
  m[2][0] = -0.03;
  truth->SetMatrix(m);
  itk::AffineTransform<double, 3>::OutputVectorType t;
  t[0] = 2.0;
  t[1] = -3.0;
  t[2] = 1.5;
  truth->SetTranslation(t);
  const auto moving = test::MovedPhantom(PhantomSize, PhantomSpacing, truth, Phantom);
  RegistrationOptions o;
  o.type = TransformKind::Affine;
  o.inverseConsistency = false;
  const RegistrationResult r = Register(fixed, moving, o);
  // TRE over the object (phantom > 5): an affine is unconstrained in the empty corners of the grid.
  auto object = gw::testing::MakeMask(PhantomSize, fixed->GetSpacing(), fixed->GetOrigin());
  for (std::size_t i = 0; i < object->GetBufferedRegion().GetNumberOfPixels(); ++i)
    object->GetBufferPointer()[i] = fixed->GetBufferPointer()[i] > 5.0f;
  const PointDistance tre = TransformDistance(r.transform, truth, fixed, object, 2);
  RecordProperty("affine_tre_mm", std::to_string(tre.mean));
  // Measured 0.039 mm with the finest-level bin rule on the last affine level (0.29 mm with 32 bins on every
  // level); tolerance 0.1 mm (1/10 voxel).
  EXPECT_LT(tre.mean, 0.1) << "TRE over the object [mm]\n" << Stages(r);
}

TEST(Registration, DeterministicModeIsBitwiseRepeatable)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  const auto truth = MakeRigidTransform({ 3.0, 2.0, -4.0 }, { 2.0, 3.0, -1.0 }, Origin0());
  const auto moving = test::MovedPhantom(PhantomSize, PhantomSpacing, truth, Phantom);
  RegistrationOptions o;
  o.inverseConsistency = false;
  const auto a = Register(fixed, moving, o);
  const auto b = Register(fixed, moving, o);
  const auto pa = a.linear->GetParameters();
  const auto pb = b.linear->GetParameters();
  ASSERT_EQ(pa.Size(), pb.Size());
  for (unsigned int i = 0; i < pa.Size(); ++i)
    EXPECT_EQ(pa[i], pb[i]) << "parameter " << i << " must be bitwise identical";
}

TEST(Registration, RigidMiEngineIsBitwiseIdenticalForAnyThreadCount)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  const auto truth = MakeRigidTransform({ -6.0, 4.0, 5.0 }, { -3.0, 4.0, 2.0 }, Origin0());
  const auto moving = test::MovedPhantom(PhantomSize, PhantomSpacing, truth, Phantom);
  RegistrationOptions o;
  o.inverseConsistency = false;
  o.deterministic = false; // the engine needs no single-thread mode
  std::vector<itk::OptimizerParameters<double>> params;
  for (unsigned int threads : { 1u, 2u, 5u })
  {
    o.threads = threads;
    const auto r = Register(fixed, moving, o);
    EXPECT_LT(TransformDistance(r.transform, truth, fixed, nullptr, 2).mean, 0.1)
      << "TRE [mm], " << threads << " thread(s)";
    params.push_back(r.linear->GetParameters());
  }
  for (std::size_t k = 1; k < params.size(); ++k)
  {
    ASSERT_EQ(params[k].Size(), params[0].Size());
    for (unsigned int i = 0; i < params[0].Size(); ++i)
      EXPECT_EQ(params[k][i], params[0][i]) << "parameter " << i << " must be bitwise identical for 1, 2, 5 threads";
  }
}

/// Fixed: phantom + a bright structure at q. Moving: phantom moved by `truth`, the structure moved by `truth` and
/// then 9 mm more (it changed independently, like a growing lesion or a displaced graft).
struct ConflictCase
{
  FloatImage::Pointer fixed, moving;
  MaskImage::Pointer fixedExclude, movingExclude;
  TransformPointer truth;
};

ConflictCase
MakeConflict()
{
  ConflictCase c;
  c.truth = MakeRigidTransform({ 4.0, -3.0, 5.0 }, { 3.0, -2.0, 2.0 }, Origin0());
  PointType q;
  q[0] = -8;
  q[1] = -14;
  q[2] = -2;
  PointType qm = c.truth->TransformPoint(q);
  qm[1] += 9.0;
  auto blob = [](const PointType & p, const PointType & at)
  {
    double e = 0;
    for (unsigned d = 0; d < 3; ++d)
      e += std::pow((p[d] - at[d]) / 5.0, 2);
    return 250.0 * std::exp(-0.5 * e);
  };
  c.fixed = Sample(PhantomSize, PhantomSpacing, [&](const PointType & p) { return Phantom(p) + blob(p, q); });
  auto inverse = c.truth->GetInverseTransform();
  c.moving = Sample(PhantomSize, PhantomSpacing,
                    [&](const PointType & y) { return Phantom(inverse->TransformPoint(y)) + blob(y, qm); });
  auto sphere = [&](const FloatImage * grid, const PointType & at)
  {
    auto m = gw::testing::MakeMask(PhantomSize, grid->GetSpacing(), grid->GetOrigin());
    itk::ImageRegionIteratorWithIndex<MaskImage> it(m, m->GetLargestPossibleRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      PointType p;
      m->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      it.Set(p.EuclideanDistanceTo(at) < 13.0);
    }
    return m;
  };
  c.fixedExclude = sphere(c.fixed, q);
  c.movingExclude = sphere(c.moving, qm);
  return c;
}

TEST(Registration, ExcludeMaskRemovesConflictingStructure)
{
  const ConflictCase c = MakeConflict();
  RegistrationOptions o;
  o.inverseConsistency = false;
  // 32 histogram bins at every level: with the default finer last level (up to 128 bins) MI separates the bright
  // blob from the tissue and the unmasked registration is itself hardly biased by it (measured 0.098 mm without vs
  // 0.086 mm with exclusion), so the effect of the exclusion is shown where the blob does bias the metric
  // (measured 0.42 mm without vs 0.19 mm with exclusion).
  o.finestLevelHistogramBins = o.histogramBins;
  const double without = TransformDistance(Register(c.fixed, c.moving, o).transform, c.truth, c.fixed, nullptr, 2).mean;
  o.fixedExcludeMask = c.fixedExclude;
  o.movingExcludeMask = c.movingExclude;
  const double with = TransformDistance(Register(c.fixed, c.moving, o).transform, c.truth, c.fixed, nullptr, 2).mean;
  RecordProperty("tre_without_exclusion_mm", std::to_string(without));
  RecordProperty("tre_with_exclusion_mm", std::to_string(with));
  EXPECT_LT(with, 0.2) << "TRE [mm] with the changed structure excluded";
  EXPECT_GT(without, 2.0 * with) << "the conflicting structure must bias the unmasked registration (TRE without "
                                 << without << " mm, with " << with << " mm)";
}

TEST(Registration, EmptyCostMaskIsInputError)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  auto all = gw::testing::MakeMask(PhantomSize, fixed->GetSpacing(), fixed->GetOrigin());
  all->FillBuffer(1);
  RegistrationOptions o;
  o.fixedExcludeMask = all;
  try
  {
    Register(fixed, fixed, o);
    FAIL() << "expected gw::Error";
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), ErrorKind::Input);
  }
  o.fixedExcludeMask = nullptr;
  o.type = TransformKind::BSpline;
  o.halfway = true;
  EXPECT_THROW(Register(fixed, fixed, o), gw::Error);
}

TEST(Registration, NearestAndLabelGaussianKeepLabels)
{
  SpacingType sp;
  sp.Fill(1.0);
  PointType origin;
  origin.Fill(-20.0);
  auto labels = LabelImage::New();
  labels->SetRegions(RegionType(SizeType{ { 41, 41, 41 } }));
  labels->SetSpacing(sp);
  labels->SetOrigin(origin);
  labels->Allocate();
  std::map<int, double> volume;
  itk::ImageRegionIteratorWithIndex<LabelImage> it(labels, labels->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    labels->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    std::uint16_t v = 0;
    if (p.GetVectorFromOrigin().GetNorm() < 15)
      v = 3;
    if (std::abs(p[0] - 4) < 5 && std::abs(p[1]) < 6 && std::abs(p[2] + 2) < 7)
      v = 7;
    if (p[0] < -5 && p[1] < 0 && p.GetVectorFromOrigin().GetNorm() < 15)
      v = 1200;
    it.Set(v);
    volume[v] += 1;
  }
  const auto rot = MakeRigidTransform({ 10.0, 0.0, 17.0 }, { 1.3, 0.4, -0.7 }, PointType(0.0));
  for (const auto interp : { Interpolation::Nearest, Interpolation::LabelGaussian })
  {
    const auto out = Resample(labels.GetPointer(), labels, rot, interp);
    std::map<int, double> outVolume;
    itk::ImageRegionConstIteratorWithIndex<LabelImage> ot(out, out->GetLargestPossibleRegion());
    for (; !ot.IsAtEnd(); ++ot)
      outVolume[ot.Get()] += 1;
    for (const auto & [label, n] : outVolume)
      EXPECT_TRUE(volume.count(label)) << "resampling invented label " << label;
    for (int label : { 3, 7, 1200 })
      EXPECT_NEAR(outVolume[label], volume[label], 0.05 * volume[label])
        << "label " << label << " volume within 5% after a rigid resampling";
  }
  EXPECT_THROW(Resample(labels.GetPointer(), labels, rot, Interpolation::Linear), gw::Error);
}

TEST(Registration, HalfTransformSquaresToTransform)
{
  const auto t = MakeRigidTransform({ 8.0, -6.0, 12.0 }, { 7.0, -3.0, 5.0 }, PointType(3.0));
  const auto h = HalfTransform(t);
  auto hh = itk::CompositeTransform<double, 3>::New();
  hh->AddTransform(h);
  hh->AddTransform(h);
  const auto grid = Sample(SizeType{ { 20, 20, 20 } }, 3.0, [](const PointType &) { return 0.0; });
  EXPECT_LT(TransformDistance(hh, t, grid).max, 1e-9) << "H∘H = T [mm]";
  // The half of a rigid motion is rigid: half the rotation angle.
  const auto * lin = dynamic_cast<const itk::MatrixOffsetTransformBase<double, 3, 3> *>(h.GetPointer());
  ASSERT_NE(lin, nullptr);
  const auto m = lin->GetMatrix();
  const auto mt = lin->GetMatrix().GetTranspose();
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned c = 0; c < 3; ++c)
    {
      double s = 0;
      for (unsigned k = 0; k < 3; ++k)
        s += m[r][k] * mt[k][c];
      EXPECT_NEAR(s, r == c ? 1.0 : 0.0, 1e-9) << "orthonormal half rotation";
    }
}

TEST(Registration, HalfwayPutsBothImagesInTheMiddle)
{
  const auto fixed = Sample(PhantomSize, PhantomSpacing, Phantom);
  const auto truth = MakeRigidTransform({ 0.0, 0.0, 14.0 }, { 8.0, -6.0, 4.0 }, Origin0());
  const auto moving = test::MovedPhantom(PhantomSize, PhantomSpacing, truth, Phantom);
  RegistrationOptions o;
  o.halfway = true;
  o.inverseConsistency = false;
  const RegistrationResult r = Register(fixed, moving, o);
  ASSERT_TRUE(r.halfwayToFixed && r.halfwayToMoving && r.halfwayReference);
  const auto hf = Resample(fixed, r.halfwayReference, r.halfwayToFixed);
  const auto hm = Resample(moving, r.halfwayReference, r.halfwayToMoving);
  EXPECT_GT(Correlation(hf, hm), 0.995) << "both images agree in halfway space";
  const PointType cf = Centroid(hf), cm = Centroid(hm);
  EXPECT_LT(cf.EuclideanDistanceTo(cm), 0.2) << "centroids in halfway space [mm]";
  // Midway: the halfway position of the fixed centroid is equally far from where it is in fixed and moving space.
  const PointType x = Centroid(fixed);
  const PointType mid = r.halfwayToMoving->GetInverseTransform()->TransformPoint(truth->TransformPoint(x));
  const double toFixed = mid.EuclideanDistanceTo(x);
  const double toMoving = mid.EuclideanDistanceTo(truth->TransformPoint(x));
  EXPECT_NEAR(toFixed, toMoving, 0.05 * (toFixed + toMoving)) << "halfway point equidistant within 5%";
  EXPECT_GT(toFixed, 1.0) << "the motion is large enough for the check to mean something [mm]";
  // Both grids share the scanner axes, so the halfway grid keeps them (fixed axes turned by +7 deg and moving axes
  // by -7 deg average out): each image is then resampled through a 7 deg rotation, neither on its own grid.
  for (unsigned i = 0; i < 3; ++i)
    for (unsigned j = 0; j < 3; ++j)
      EXPECT_NEAR(r.halfwayReference->GetDirection()[i][j], i == j ? 1.0 : 0.0, 1e-6) << "halfway axes";
  const auto * halfToFixed =
    dynamic_cast<const itk::MatrixOffsetTransformBase<double, 3, 3> *>(r.halfwayToFixed.GetPointer());
  ASSERT_NE(halfToFixed, nullptr);
  EXPECT_NEAR(std::acos(std::min(1.0, halfToFixed->GetMatrix()[0][0])) * 180.0 / std::acos(-1.0), 7.0, 0.2)
    << "halfway → fixed rotation [deg]";
}

TEST(Registration, TransformDistanceInVoxels)
{
  const auto grid = Sample(SizeType{ { 10, 10, 10 } }, 2.0, [](const PointType &) { return 0.0; });
  auto shift = itk::AffineTransform<double, 3>::New();
  itk::AffineTransform<double, 3>::OutputVectorType t;
  t[0] = 3.0;
  t[1] = 4.0;
  t[2] = 0.0;
  shift->SetTranslation(t);
  auto identity = itk::AffineTransform<double, 3>::New();
  const PointDistance d = TransformDistance(shift, identity, grid);
  EXPECT_NEAR(d.mean, 5.0, 1e-12) << "[mm]";
  EXPECT_NEAR(d.meanVoxels, 2.5, 1e-12) << "[voxels of 2 mm]";
  EXPECT_EQ(d.count, 1000u);
}

/// One volume of a moved DWI phantom: b-value, gradient (LPS), rotation about the grid centre [deg, about x,y,z]
/// and shift [mm] (MakeRigidTransform's convention).
struct MovedVolume
{
  double b;
  std::array<double, 3> g;
  std::array<double, 3> rot, shift;
};

struct MovedDwi
{
  gw::io::Dwi dwi;
  std::vector<TransformPointer> truths; ///< per volume: the known motion
};

/// DWI phantom on an isotropic grid centred on 0: volume c is the phantom, attenuated for b > 0 by 0.35 + 0.2 g_x
/// (DW contrast differing per direction) plus `extra(p, b)` when given, moved by vols[c]'s rigid motion.
MovedDwi
MakeMovedDwi(const SizeType & size, double spacing, const std::vector<MovedVolume> & vols,
             const std::function<double(const PointType &, double)> & extra)
{
  const unsigned n = static_cast<unsigned>(vols.size());
  auto image = DwiImage::New();
  SpacingType sp;
  sp.Fill(spacing);
  PointType origin;
  for (unsigned d = 0; d < 3; ++d)
    origin[d] = -spacing * (size[d] - 1.0) / 2.0;
  image->SetRegions(RegionType(size));
  image->SetSpacing(sp);
  image->SetOrigin(origin);
  image->SetNumberOfComponentsPerPixel(n);
  image->Allocate();
  MovedDwi out;
  out.dwi.image = image;
  out.dwi.gradients.frame = "lps";
  const PointType centre = GridCenter(image.GetPointer());
  for (unsigned c = 0; c < n; ++c)
  {
    out.truths.push_back(MakeRigidTransform(vols[c].rot, vols[c].shift, centre));
    const double att = vols[c].b > 0 ? 0.35 + 0.2 * vols[c].g[0] : 1.0;
    const auto vol =
      test::MovedPhantom(size, spacing, out.truths.back(),
                         [&](const PointType & p) { return att * Phantom(p) + (extra ? extra(p, vols[c].b) : 0.0); });
    const float * src = vol->GetBufferPointer();
    float * dst = image->GetBufferPointer();
    const std::size_t voxels = vol->GetBufferedRegion().GetNumberOfPixels();
    for (std::size_t i = 0; i < voxels; ++i)
      dst[i * n + c] = src[i];
    gw::io::GradientEntry e;
    e.bValue = vols[c].b;
    e.direction = vols[c].g;
    out.dwi.gradients.entries.push_back(e);
  }
  return out;
}

// DWI phantom: 2 b0 + 6 weighted volumes, each moved by a known rigid motion; volume 5 jumps.
TEST(Registration, DwiMotionCorrectionRecoversMotionAndRotatesGradients)
{
  const SizeType size{ { 48, 48, 40 } };
  // Small motions (FD below one voxel) except volume 5, which jumps.
  const std::vector<MovedVolume> vols = {
    { 0, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } },
    { 1000, { 1, 0, 0 }, { 0.2, -0.1, 0.2 }, { 0.2, 0.1, -0.1 } },
    { 1000, { 0, 1, 0 }, { -0.1, 0.1, 0 }, { 0.1, -0.1, 0 } },
    { 0, { 0, 0, 0 }, { 0.2, 0, -0.1 }, { -0.1, 0.1, 0.1 } },
    { 1000, { 0, 0, 1 }, { 0, 0.2, 0.1 }, { 0, 0.2, 0.1 } },
    { 1000, { 0.6, 0.8, 0 }, { 4, -3, 5 }, { 4, -3, 3 } },
    { 1000, { 0, 0.6, 0.8 }, { 0.1, 0.1, 0.1 }, { -0.1, 0, 0.1 } },
    { 1000, { 0.8, 0, 0.6 }, { -0.1, 0, 0.1 }, { 0, -0.1, 0 } },
  };
  const unsigned n = static_cast<unsigned>(vols.size());
  // DW volumes also carry a central blob (a different contrast than b0)
  const auto [in, truths] =
    MakeMovedDwi(size, 1.5, vols,
                 [](const PointType & p, double b)
                 { return b > 0 ? 15.0 * std::exp(-p.GetVectorFromOrigin().GetSquaredNorm() / 200.0) : 0.0; });
  DwiMotionOptions o;
  const DwiMotionResult r = MotionCorrectDwi(in, o);
  ASSERT_EQ(r.volumes.size(), n);
  EXPECT_EQ(r.model, MotionModel::Rigid3D) << "isotropic voxels";
  // The reference (mean of the aligned b0s) sits between b0 #0 and b0 #3, so compare motions relative to
  // volume 0: T_c ∘ T_0^-1 (volume-0 point → volume-c point) against truth_c ∘ truth_0^-1.
  for (unsigned c = 1; c < n; ++c)
  {
    auto est = itk::CompositeTransform<double, 3>::New(); // volume-0 point → volume-c point
    est->AddTransform(r.transforms[c]);
    est->AddTransform(r.transforms[0]->GetInverseTransform());
    auto tru = itk::CompositeTransform<double, 3>::New();
    tru->AddTransform(truths[c]);
    tru->AddTransform(truths[0]->GetInverseTransform());
    const double err = TransformDistance(est, tru, r.meanB0, r.mask, 2).mean;
    EXPECT_LT(err, 0.3) << "volume " << c << " motion error [mm] (0.2 voxel)";
  }
  // Gradient rotation: g' = R^T g with R the rotation of the estimated transform; check with the TRUE rotation
  // relative to the reference (truth_c ∘ truth_0^-1 ≈ T_c ∘ T_0^-1, and volume 0 has no motion).
  for (unsigned c = 0; c < n; ++c)
  {
    if (vols[c].b == 0)
      continue;
    const auto * lin = dynamic_cast<const itk::MatrixOffsetTransformBase<double, 3, 3> *>(truths[c].GetPointer());
    const auto R = lin->GetMatrix();
    const auto & got = r.corrected.gradients.entries[c].direction;
    // reference within ~0.2 deg of volume 0 (midway to b0 #3): tolerance 0.02 (about 1.1 deg)
    for (unsigned i = 0; i < 3; ++i)
    {
      const double expected = R[0][i] * vols[c].g[0] + R[1][i] * vols[c].g[1] + R[2][i] * vols[c].g[2];
      EXPECT_NEAR(got[i], expected, 0.02) << "volume " << c << " gradient component " << i;
    }
  }
  // Volume 5 jumps by ~5 deg and 5 mm: outlier by framewise displacement (so is volume 6, which jumps back).
  EXPECT_TRUE(r.volumes[5].outlier) << r.volumes[5].reason;
  EXPECT_FALSE(r.volumes[1].outlier) << r.volumes[1].reason;
  EXPECT_FALSE(r.volumes[2].outlier) << r.volumes[2].reason;
  EXPECT_TRUE(r.volumes[6].outlier) << r.volumes[6].reason;
  EXPECT_EQ(r.outliers, 2u);
  EXPECT_NEAR(r.volumes[5].rotationDeg[2], 5.0, 0.4) << "rotation about z [deg], reference offset ~0.1 deg";
  EXPECT_NEAR(r.volumes[5].rotationDeg[0], 4.0, 0.4) << "rotation about x [deg]";
  const auto json = ToJson(r);
  EXPECT_EQ(json.at("per_volume").size(), n);
  EXPECT_NE(ToTsv(r).find("fd_mm"), std::string::npos);
}
// In-plane model (forced here on isotropic voxels; Auto picks it for thick slices): 2 b0 + 6 DW volumes moved
// in the axial plane (rotation about z up to 2 deg, shifts up to 1.5 mm), DW contrast differing per direction.
TEST(Registration, DwiMotionCorrectionInPlaneModelRecoversInPlaneMotion)
{
  const SizeType size{ { 48, 48, 24 } };
  // b, gradient, rotation (only about z) [deg], shift (only in-plane) [mm]
  const std::vector<MovedVolume> vols = {
    { 0, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } },
    { 1000, { 1, 0, 0 }, { 0, 0, 1.5 }, { 0.8, -0.5, 0 } },
    { 1000, { 0, 1, 0 }, { 0, 0, -2.0 }, { -1.2, 0.4, 0 } },
    { 0, { 0, 0, 0 }, { 0, 0, 0.5 }, { 0.3, 0.2, 0 } },
    { 1000, { 0, 0, 1 }, { 0, 0, 0.7 }, { 1.5, 1.0, 0 } },
    { 1000, { 0.6, 0.8, 0 }, { 0, 0, -1.0 }, { -0.6, -1.4, 0 } },
    { 1000, { 0, 0.6, 0.8 }, { 0, 0, 1.2 }, { 0.2, 0.9, 0 } },
    { 1000, { 0.8, 0, 0.6 }, { 0, 0, -0.4 }, { -1.0, -0.3, 0 } },
  };
  const unsigned n = static_cast<unsigned>(vols.size());
  const auto [in, truths] = MakeMovedDwi(size, 1.5, vols, {});
  DwiMotionOptions o;
  o.model = MotionModel::InPlane;
  const DwiMotionResult r = MotionCorrectDwi(in, o);
  ASSERT_EQ(r.volumes.size(), n);
  EXPECT_EQ(r.model, MotionModel::InPlane);
  // Each group (b0s; the DW shell) has its own template in the group's mean pose, so compare motions within a
  // group relative to its first member: T_c ∘ T_f^-1 against truth_c ∘ truth_f^-1.
  for (unsigned c = 0; c < n; ++c)
  {
    const unsigned first = vols[c].b > 0 ? 1 : 0;
    if (c == first)
      continue;
    auto est = itk::CompositeTransform<double, 3>::New();
    est->AddTransform(r.transforms[c]);
    est->AddTransform(r.transforms[first]->GetInverseTransform());
    auto tru = itk::CompositeTransform<double, 3>::New();
    tru->AddTransform(truths[c]);
    tru->AddTransform(truths[first]->GetInverseTransform());
    const double err = TransformDistance(est, tru, r.meanB0, r.mask, 2).mean;
    EXPECT_LT(err, 0.15) << "volume " << c << " relative in-plane motion error [mm] (0.1 voxel, noise-free)";
    // motion stays in-plane: the rotation axis is z
    const auto * lin = dynamic_cast<const itk::MatrixOffsetTransformBase<double, 3, 3> *>(r.transforms[c].GetPointer());
    ASSERT_NE(lin, nullptr);
    EXPECT_NEAR(lin->GetMatrix()[2][2], 1.0, 1e-12) << "volume " << c << ": no through-plane rotation";
  }
}
} // namespace
} // namespace gw::registration

TEST(Registration, RepositionMovesTheGridNotThePixels)
{
  // a grid with an oblique direction; a rigid transform (rotation 5, -3, 12 degrees about a centre, translation)
  const gw::SizeType size = { { 7, 5, 4 } };
  gw::SpacingType spacing;
  spacing[0] = 0.8;
  spacing[1] = 1.1;
  spacing[2] = 3.0;
  gw::PointType origin;
  origin[0] = -10.0;
  origin[1] = 4.0;
  origin[2] = 20.0;
  auto image = gw::testing::MakeImage(size, spacing, origin);
  gw::FloatImage::DirectionType oblique; // 20 degrees about the second axis
  oblique.SetIdentity();
  oblique[0][0] = std::cos(20.0 * M_PI / 180.0);
  oblique[0][2] = std::sin(20.0 * M_PI / 180.0);
  oblique[2][0] = -std::sin(20.0 * M_PI / 180.0);
  oblique[2][2] = std::cos(20.0 * M_PI / 180.0);
  image->SetDirection(oblique);
  for (std::size_t i = 0; i < image->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    image->GetBufferPointer()[i] = float(i);
  gw::PointType centre;
  centre[0] = 3.0;
  centre[1] = -2.0;
  centre[2] = 25.0;
  const auto rigid = gw::registration::MakeRigidTransform({ 5, -3, 12 }, { 4, -6, 2.5 }, centre);
  const auto moved = gw::registration::Reposition(image, rigid);
  EXPECT_EQ(moved->GetBufferPointer(), image->GetBufferPointer()) << "the pixels are shared, not resampled";
  // every voxel: rigid(new physical point) = old physical point, to 1e-9 mm
  itk::ImageRegionConstIteratorWithIndex<gw::FloatImage> it(image, image->GetLargestPossibleRegion());
  double worst = 0.0;
  for (; !it.IsAtEnd(); ++it)
  {
    gw::PointType before, after;
    image->TransformIndexToPhysicalPoint(it.GetIndex(), before);
    moved->TransformIndexToPhysicalPoint(it.GetIndex(), after);
    const auto mapped = rigid->TransformPoint(after);
    worst = std::max(worst, mapped.EuclideanDistanceTo(before));
  }
  EXPECT_LT(worst, 1e-9);
  // not a rotation: refused
  auto affine = itk::AffineTransform<double, 3>::New();
  auto m = affine->GetMatrix();
  m[0][0] = 1.1;
  affine->SetMatrix(m);
  EXPECT_THROW(gw::registration::Reposition(image, affine), gw::Error);
}
