// Segmentation and morphometry: analytic phantoms (cord tube with CSF, syrinx cavities, ellipsoid lesions,
// enhancing foci, edema halo) on axial and sagittal grids, plus real data (SCT testing data, TCGA gadolinium pair).
#include <chrono>
#include <cmath>
#include <functional>

#include <itkImageRegionIteratorWithIndex.h>
#include <nlohmann/json.hpp>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/io/image_io.h"
#include "gw/segmentation/anatomy.h"
#include "gw/segmentation/cord.h"
#include "gw/segmentation/lesion.h"
#include "gw/segmentation/morphometry.h"
#include "gw/testing/testing.h"

namespace
{
using namespace gw;
using namespace gw::segmentation;
using gw::testing::Dice;

/// Grid orientation of a phantom.
enum class Orientation
{
  Axial,   ///< voxel axes = L, P, S
  Sagittal ///< voxel axes = P, S, L (like SCT's sagittal T2)
};

/// Tissue classes of the analytic phantom, intensity per class.
struct Contrast
{
  double background = 40, csf = 200, cord = 100, syrinx = 195, lesion = 160, noise = 6;
};

/// Analytic cord phantom: an elliptic cord (semi-axes a along LR, b along AP) in a CSF tube of radius rCsf,
/// centred on x(z) = amplitude sin(2 pi z / period), optionally tilted in the sagittal plane (y = tilt z);
/// an elliptic syrinx (semi-axes sa, sb) over |z - zc| <= halfLength; an ellipsoidal lesion.
struct Spec
{
  Orientation orientation = Orientation::Axial;
  std::array<double, 3> spacing{ { 0.5, 0.5, 1.0 } }; ///< along LR, AP, SI [mm]
  std::array<double, 3> extent{ { 30, 30, 60 } };     ///< field of view along LR, AP, SI [mm]
  double a = 4.5, b = 3.5, rCsf = 7.0, amplitude = 2.0, period = 80.0, tilt = 0.0;
  bool syrinx = false;
  double sa = 1.5, sb = 1.5, halfLength = 10.0, zc = 0.0;
  bool lesion = false;
  std::array<double, 3> lesionCentre{ { 0, 0, -12 } }, lesionRadii{ { 2.0, 1.5, 3.0 } };
  Contrast contrast;
  std::uint64_t seed = 1;
  int subsamples = 3; ///< per voxel axis: partial volume in steps of 1/subsamples^3
};

struct Phantom
{
  FloatImage::Pointer image;
  MaskImage::Pointer cord, syrinx, lesion;
};

double
CentreX(const Spec & s, double z)
{
  return s.amplitude * std::sin(2 * M_PI * z / s.period);
}

/// Class of a physical point: 0 background, 1 CSF, 2 cord, 3 syrinx, 4 lesion.
int
ClassAt(const Spec & s, double x, double y, double z)
{
  const double cx = CentreX(s, z), cy = s.tilt * z;
  const double dx = x - cx, dy = y - cy;
  if (s.lesion)
  {
    const double u = (x - s.lesionCentre[0]) / s.lesionRadii[0], v = (y - s.lesionCentre[1]) / s.lesionRadii[1],
                 w = (z - s.lesionCentre[2]) / s.lesionRadii[2];
    if (u * u + v * v + w * w <= 1)
      return 4;
  }
  if (s.syrinx && std::abs(z - s.zc) <= s.halfLength && (dx / s.sa) * (dx / s.sa) + (dy / s.sb) * (dy / s.sb) <= 1)
    return 3;
  if ((dx / s.a) * (dx / s.a) + (dy / s.b) * (dy / s.b) <= 1)
    return 2;
  if (dx * dx + dy * dy <= s.rCsf * s.rCsf)
    return 1;
  return 0;
}

Phantom
MakePhantom(const Spec & s)
{
  // voxel axis -> anatomical axis
  std::array<unsigned, 3> anat = s.orientation == Orientation::Axial ? std::array<unsigned, 3>{ { 0, 1, 2 } }
                                                                     : std::array<unsigned, 3>{ { 1, 2, 0 } };
  SizeType size;
  SpacingType spacing;
  DirectionType dir;
  dir.Fill(0);
  PointType origin;
  for (unsigned i = 0; i < 3; ++i)
  {
    size[i] = static_cast<itk::SizeValueType>(std::lround(s.extent[anat[i]] / s.spacing[anat[i]]));
    spacing[i] = s.spacing[anat[i]];
    dir(anat[i], i) = 1.0;
  }
  for (unsigned r = 0; r < 3; ++r)
  {
    unsigned i = 0;
    while (anat[i] != r)
      ++i;
    origin[r] = -0.5 * double(size[i] - 1) * spacing[i];
  }
  Phantom p;
  p.image = FloatImage::New();
  p.image->SetRegions(RegionType(size));
  p.image->SetSpacing(spacing);
  p.image->SetOrigin(origin);
  p.image->SetDirection(dir);
  p.image->Allocate();
  const auto newMask = [&]
  {
    auto m = MaskImage::New();
    m->CopyInformation(p.image);
    m->SetRegions(p.image->GetLargestPossibleRegion());
    m->Allocate(true);
    return m;
  };
  p.cord = newMask();
  p.syrinx = newMask();
  p.lesion = newMask();
  const std::array<double, 5> value{ { s.contrast.background, s.contrast.csf, s.contrast.cord, s.contrast.syrinx,
                                       s.contrast.lesion } };
  gw::testing::Rng rng(s.seed);
  const int sub = s.subsamples; // sub-samples per voxel axis: partial volume
  itk::ImageRegionIteratorWithIndex<FloatImage> it(p.image, p.image->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    double sum = 0;
    for (int a = 0; a < sub; ++a)
      for (int b = 0; b < sub; ++b)
        for (int c = 0; c < sub; ++c)
        {
          itk::ContinuousIndex<double, 3> ci;
          ci[0] = idx[0] + (a + 0.5) / sub - 0.5;
          ci[1] = idx[1] + (b + 0.5) / sub - 0.5;
          ci[2] = idx[2] + (c + 0.5) / sub - 0.5;
          PointType q;
          p.image->TransformContinuousIndexToPhysicalPoint(ci, q);
          sum += value[std::size_t(ClassAt(s, q[0], q[1], q[2]))];
        }
    it.Set(float(sum / (sub * sub * sub) + s.contrast.noise * rng.Normal()));
    PointType q;
    p.image->TransformIndexToPhysicalPoint(idx, q);
    const int cls = ClassAt(s, q[0], q[1], q[2]);
    p.cord->SetPixel(idx, cls >= 2);
    p.syrinx->SetPixel(idx, cls == 3);
    p.lesion->SetPixel(idx, cls == 4);
  }
  return p;
}

std::size_t
Count(const MaskImage * m)
{
  return CountNonZero(m);
}

double
Seconds(const std::function<void()> & f)
{
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------------------------
// Anatomy helpers

TEST(SegmentationAnatomy, AxesFollowDirectionCosines)
{
  Spec s;
  s.orientation = Orientation::Sagittal;
  const auto p = MakePhantom(s);
  const auto ax = GetAnatomicalAxes(p.image);
  EXPECT_EQ(ax.axis[LR], 2u);
  EXPECT_EQ(ax.axis[AP], 0u);
  EXPECT_EQ(ax.axis[SI], 1u);
  EXPECT_NEAR(ax.spacing[SI], 1.0, 1e-12);
  EXPECT_NEAR(ax.obliquityDeg, 0.0, 1e-9);
}

TEST(SegmentationAnatomy, ExternalMaskResampledNearestAndBinarised)
{
  // A Slicer-style label map (value 255) on a grid with twice the spacing maps onto the fine grid.
  Spec s;
  const auto p = MakePhantom(s);
  auto coarse = MaskImage::New();
  SizeType size = p.image->GetLargestPossibleRegion().GetSize();
  for (auto & n : size)
    n /= 2;
  coarse->SetRegions(RegionType(size));
  auto sp = p.image->GetSpacing();
  for (auto & v : sp)
    v *= 2;
  coarse->SetSpacing(sp);
  PointType o = p.image->GetOrigin();
  for (unsigned d = 0; d < 3; ++d)
    o[d] += 0.5 * p.image->GetSpacing()[d];
  coarse->SetOrigin(o);
  coarse->Allocate(true);
  itk::ImageRegionIteratorWithIndex<MaskImage> it(coarse, coarse->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType q;
    coarse->TransformIndexToPhysicalPoint(it.GetIndex(), q);
    it.Set(ClassAt(s, q[0], q[1], q[2]) >= 2 ? 255 : 0);
  }
  const auto fine = ResampleMaskNearest(coarse, p.image);
  EXPECT_TRUE(SameGrid(fine, p.image));
  unsigned maxValue = 0;
  for (std::size_t i = 0; i < p.image->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    maxValue = std::max<unsigned>(maxValue, fine->GetBufferPointer()[i]);
  EXPECT_EQ(maxValue, 1u);
  // nearest neighbour from a 2x coarser grid: boundary voxels may flip; Dice vs the fine truth >= 0.85
  EXPECT_GE(Dice(fine, p.cord), 0.85);
}

TEST(SegmentationAnatomy, DistanceMapHonoursAnisotropicSpacing)
{
  Spec s;
  const auto p = MakePhantom(s);
  auto m = MaskImage::New();
  m->CopyInformation(p.image);
  m->SetRegions(p.image->GetLargestPossibleRegion());
  m->Allocate(true);
  IndexType c{ { 30, 30, 30 } };
  m->SetPixel(c, 1);
  const auto d = DistanceMap(m);
  IndexType q{ { 34, 33, 32 } }; // 4*0.5, 3*0.5, 2*1.0 mm
  EXPECT_NEAR(d->GetPixel(q), std::sqrt(4.0 + 2.25 + 4.0), 1e-5);
  const auto ball = DilateMm(m, 2.0);
  // voxels within 2 mm of a point on a 0.5x0.5x1 grid: count analytically
  std::size_t expected = 0;
  for (int k = -2; k <= 2; ++k)
    for (int j = -4; j <= 4; ++j)
      for (int i = -4; i <= 4; ++i)
        expected += (0.25 * i * i + 0.25 * j * j + 1.0 * k * k) <= 4.0 + 1e-6;
  EXPECT_EQ(Count(ball), expected);
}

// ---------------------------------------------------------------------------------------------------------------
// Cord

void
ExpectCord(const Spec & s, CordContrast contrast, double minDice, double maxCentreError)
{
  const auto p = MakePhantom(s);
  CordParams cp;
  cp.contrast = contrast;
  CordResult r;
  const double t = Seconds([&] { r = SegmentCord(p.image, cp); });
  const double dice = Dice(r.mask, p.cord);
  EXPECT_GE(dice, minDice);
  ASSERT_FALSE(r.centerline.empty());
  double worst = 0;
  for (const auto & q : r.centerline)
  {
    const double ex = q[0] - CentreX(s, q[2]), ey = q[1] - s.tilt * q[2];
    worst = std::max(worst, std::hypot(ex, ey));
  }
  EXPECT_LE(worst, maxCentreError);
  std::cout << "  cord phantom dice " << dice << ", max centerline error " << worst << " mm, " << t << " s\n";
}

TEST(SegmentationCord, AxialT2PhantomWithNoise)
{
  Spec s;
  // Dice >= 0.90 and centerline within 1 mm (2 voxels in-plane) of the analytic curve
  ExpectCord(s, CordContrast::T2, 0.90, 1.0);
}

TEST(SegmentationCord, NoDataIslandIsNotTakenForTheCord)
{
  // A block of exact zeros (no data, 7 x 7 mm, the size of a cord) framed by bright signal on every side, off the
  // cord, on every slice: on T2 it looks like a dark cord in bright CSF, darker than the real one (0 against 100,
  // the same CSF level), and the ring detector would take it. A box holding no data in a tenth of its voxels is no
  // cord: the centerline stays within 1 mm (2 voxels) of the analytic curve.
  Spec s;
  s.extent = { { 50, 50, 60 } };
  const auto p = MakePhantom(s);
  itk::ImageRegionIteratorWithIndex<FloatImage> it(p.image, p.image->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType q;
    p.image->TransformIndexToPhysicalPoint(it.GetIndex(), q);
    const double d = std::max(std::abs(q[0] - 15.0), std::abs(q[1] - 15.0)); // from the island's centre [mm]
    if (d <= 3.5)
      it.Set(0.0f);
    else if (d <= 6.5)
      it.Set(float(s.contrast.csf));
  }
  CordParams cp;
  cp.contrast = CordContrast::T2;
  const auto centerline = DetectCenterline(p.image, cp);
  ASSERT_FALSE(centerline.empty());
  double worst = 0;
  for (const auto & q : centerline)
    worst = std::max(worst, std::hypot(q[0] - CentreX(s, q[2]), q[1] - s.tilt * q[2]));
  EXPECT_LE(worst, 1.0) << "the centerline went to the island (15, 15)";
}

TEST(SegmentationCord, SagittalT1PhantomTilted)
{
  Spec s;
  s.orientation = Orientation::Sagittal;
  s.tilt = 0.3; // cord leaning 17 degrees in the sagittal plane
  s.contrast.csf = 40;
  s.contrast.cord = 150;
  s.contrast.background = 90;
  ExpectCord(s, CordContrast::T1, 0.90, 1.0);
}

TEST(SegmentationCord, ContourApDiameterIsSubVoxel)
{
  // On a coarse 1.5 x 1.5 x 3 mm grid the mask's AP extent moves in 1.5 mm steps; the contour's AP extent (half-level
  // crossings of the edge profile) follows the cord: AP diameters 7 to 9 mm in steps of 0.5 mm (a third of a voxel)
  // measured increasing, each within 0.5 mm, 0.3 mm on average (median over the slices; the phantom's partial
  // volume is sampled 9^3 times per voxel, noise sigma 6% of the cord/CSF contrast)
  std::vector<double> truth, measured;
  for (const double b : { 3.5, 3.75, 4.0, 4.25, 4.5 })
  {
    Spec s;
    s.spacing = { { 1.5, 1.5, 3.0 } };
    s.extent = { { 33, 33, 60 } };
    s.a = 5.0;
    s.b = b;
    s.rCsf = 8.0;
    s.amplitude = 0.0;
    s.subsamples = 9;
    const auto p = MakePhantom(s);
    const auto r = SegmentCord(p.image);
    ASSERT_GE(r.contour.size(), 10u);
    std::vector<double> ap;
    for (const auto & c : r.contour)
      ap.push_back(c.apDiameter);
    for (std::size_t i = 1; i < r.contour.size(); ++i)
      EXPECT_LT(r.contour[i - 1].z, r.contour[i].z) << "inferior to superior";
    std::nth_element(ap.begin(), ap.begin() + long(ap.size() / 2), ap.end());
    truth.push_back(2 * b);
    measured.push_back(ap[ap.size() / 2]);
    EXPECT_NEAR(measured.back(), truth.back(), 0.5) << "contour AP diameter [mm]";
  }
  double sum = 0;
  for (std::size_t i = 0; i < truth.size(); ++i)
  {
    sum += std::abs(measured[i] - truth[i]);
    if (i > 0)
    {
      EXPECT_GT(measured[i], measured[i - 1]) << "a cord 0.5 mm larger measures larger (" << truth[i] << " mm)";
    }
  }
  EXPECT_LT(sum / double(truth.size()), 0.3) << "mean absolute error [mm]";
}

TEST(SegmentationCord, GivenCenterlineAndRoundTrip)
{
  Spec s;
  const auto p = MakePhantom(s);
  std::vector<PointType> truth;
  for (double z = -29.5; z <= 29.5; z += 1.0)
  {
    PointType q;
    q[0] = CentreX(s, z);
    q[1] = 0;
    q[2] = z;
    truth.push_back(q);
  }
  CordParams cp;
  cp.centerline = truth;
  const auto r = SegmentCord(p.image, cp);
  EXPECT_GE(Dice(r.mask, p.cord), 0.90);
  gw::testing::ScratchDir dir("gwseg");
  WriteCenterlineJson(r.centerline, dir / "c.json", false);
  const auto back = ReadCenterline(dir / "c.json");
  ASSERT_EQ(back.size(), r.centerline.size());
  for (std::size_t i = 0; i < back.size(); ++i)
    for (unsigned d = 0; d < 3; ++d)
      EXPECT_NEAR(back[i][d], r.centerline[i][d], 1e-9);
  EXPECT_THROW(WriteCenterlineJson(r.centerline, dir / "c.json", false), gw::Error); // no overwrite
}

TEST(SegmentationCord, NoCordThrowsProcessingError)
{
  auto img = gw::testing::MakeImage(SizeType{ { 30, 30, 20 } }, SpacingType(1.0), PointType(0.0), 100.0f);
  try
  {
    SegmentCord(img);
    FAIL() << "expected an error";
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), ErrorKind::Processing);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Morphometry

TEST(SegmentationMorphometry, CordAreaAndDiametersSameOnAxialAndSagittalGrids)
{
  for (const auto o : { Orientation::Axial, Orientation::Sagittal })
  {
    Spec s;
    s.orientation = o;
    s.amplitude = 0;
    s.contrast.noise = 0;
    s.spacing = { { 0.25, 0.25, 1.0 } };
    s.extent = { { 20, 20, 20 } };
    const auto p = MakePhantom(s);
    const auto cord = ComputeCordMorphometry(p.cord);
    ASSERT_EQ(cord.size(), 20u);
    for (const auto & c : cord)
    {
      EXPECT_NEAR(c.area, M_PI * s.a * s.b, 0.02 * M_PI * s.a * s.b); // 2 % (voxelised ellipse, 0.25 mm)
      EXPECT_NEAR(c.apDiameter, 2 * s.b, 0.25);                       // one voxel
      EXPECT_NEAR(c.lrDiameter, 2 * s.a, 0.25);
      EXPECT_NEAR(c.angleDeg, 0.0, 1e-6);
    }
  }
}

TEST(SegmentationMorphometry, TiltedCordAreaCorrectedByCenterlineAngle)
{
  // The phantom tube is sheared (centre y = tan(30 deg) z): every axial section is the same circle of radius 4,
  // so the true perpendicular cross-section is pi 16 cos(30 deg).
  Spec s;
  s.amplitude = 0;
  s.tilt = std::tan(30.0 * M_PI / 180.0);
  s.a = s.b = 4.0;
  s.rCsf = 6;
  s.contrast.noise = 0;
  s.spacing = { { 0.25, 0.25, 0.5 } };
  s.extent = { { 24, 40, 20 } };
  const auto p = MakePhantom(s);
  const auto cord = ComputeCordMorphometry(p.cord);
  ASSERT_GT(cord.size(), 10u);
  const double axial = M_PI * 16.0, perpendicular = axial * std::cos(M_PI / 6);
  for (std::size_t i = 3; i + 3 < cord.size(); ++i)
  {
    EXPECT_NEAR(cord[i].angleDeg, 30.0, 0.5);                       // fitted centroid path, within 0.5 degree
    EXPECT_NEAR(cord[i].areaRaw, axial, 0.02 * axial);              // 2 % (voxelised circle, 0.25 mm)
    EXPECT_NEAR(cord[i].area, perpendicular, 0.03 * perpendicular); // 3 %
  }
}

TEST(SegmentationMorphometry, EllipsoidLesionMetrics)
{
  Spec s;
  s.amplitude = 0;
  s.contrast.noise = 0;
  s.lesion = true;
  s.lesionCentre = { { 0, 0, 0 } };
  s.lesionRadii = { { 2.0, 1.5, 6.0 } }; // LR, AP, SI semi-axes [mm]
  s.spacing = { { 0.25, 0.25, 0.5 } };
  s.extent = { { 20, 20, 30 } };
  for (const auto o : { Orientation::Axial, Orientation::Sagittal })
  {
    s.orientation = o;
    const auto p = MakePhantom(s);
    std::vector<Component> comps;
    const auto labels = LabelComponents(p.lesion, 1, 0.0, &comps);
    ASSERT_EQ(comps.size(), 1u);
    const auto m = ComputeMorphometry(labels, p.cord, "lesion");
    ASSERT_EQ(m.components.size(), 1u);
    const auto & c = m.components[0];
    const double volume = 4.0 / 3.0 * M_PI * 2.0 * 1.5 * 6.0;
    EXPECT_NEAR(c.volume, volume, 0.03 * volume);   // 3 %
    EXPECT_NEAR(c.length, 12.0, 0.5 + 1e-9);        // one slice
    EXPECT_NEAR(c.maxApDiameter, 3.0, 0.25 + 1e-9); // one voxel
    EXPECT_NEAR(c.maxLrDiameter, 4.0, 0.25 + 1e-9);
    EXPECT_NEAR(c.ranoLongest, 4.0, 0.3);
    EXPECT_NEAR(c.ranoPerpendicular, 3.0, 0.3);
    EXPECT_NEAR(c.maxEquivalentDiameter, 2 * std::sqrt(2.0 * 1.5), 0.1);
    EXPECT_NEAR(c.maxAxialDamageRatio, (2.0 * 1.5) / (4.5 * 3.5), 0.03);
    EXPECT_NEAR(c.apRatio, 3.0 / 7.0, 0.05);
    // midsagittal bridges: cord AP semi-axis 3.5 minus lesion 1.5 on each side = 2 mm (one voxel tolerance)
    EXPECT_NEAR(c.dorsalBridge, 2.0, 0.25 + 1e-9);
    EXPECT_NEAR(c.ventralBridge, 2.0, 0.25 + 1e-9);
    const auto j = ToJson(m);
    EXPECT_TRUE(j["components"][0].contains("max_equivalent_diameter [mm]"));
    EXPECT_NE(ComponentsToTsv(m).find("volume [mm3]"), std::string::npos);
  }
}

TEST(SegmentationMorphometry, DorsalBridgeOnPosteriorLesion)
{
  Spec s;
  s.amplitude = 0;
  s.contrast.noise = 0;
  s.lesion = true;
  s.lesionCentre = { { 0, 1.5, 0 } }; // +y = posterior (LPS)
  s.lesionRadii = { { 1.5, 1.0, 4.0 } };
  s.spacing = { { 0.25, 0.25, 0.5 } };
  s.extent = { { 20, 20, 20 } };
  const auto p = MakePhantom(s);
  const auto labels = LabelComponents(p.lesion, 1, 0.0);
  const auto m = ComputeMorphometry(labels, p.cord, "lesion");
  ASSERT_EQ(m.components.size(), 1u);
  EXPECT_NEAR(m.components[0].dorsalBridge, 3.5 - 2.5, 0.25 + 1e-9);  // posterior rim
  EXPECT_NEAR(m.components[0].ventralBridge, 3.5 + 0.5, 0.25 + 1e-9); // anterior rim
}

// ---------------------------------------------------------------------------------------------------------------
// Lesions

TEST(SegmentationLesion, T2HyperintenseEllipsoidInsideCord)
{
  Spec s;
  s.lesion = true;
  s.contrast.lesion = 180;
  const auto p = MakePhantom(s);
  const auto r = SegmentLesions(p.image, p.cord);
  ASSERT_EQ(r.components.size(), 1u);
  const double dice = Dice(r.mask, p.lesion);
  EXPECT_GE(dice, 0.85);
  std::cout << "  lesion phantom dice " << dice << "\n";
}

TEST(SegmentationLesion, T1HypointenseAndSeededMode)
{
  Spec s;
  s.lesion = true;
  s.contrast.lesion = 50; // dark on T1 relative to the cord (100)
  const auto p = MakePhantom(s);
  LesionParams lp;
  lp.hypointense = true;
  const auto r = SegmentLesions(p.image, p.cord, lp);
  ASSERT_EQ(r.components.size(), 1u);
  EXPECT_GE(Dice(r.mask, p.lesion), 0.85);
  // seeded: from a point in the lesion, one component; from a point in normal cord, nothing
  PointType inLesion;
  for (unsigned d = 0; d < 3; ++d)
    inLesion[d] = s.lesionCentre[d];
  lp.seed = inLesion;
  const auto seeded = SegmentLesions(p.image, p.cord, lp);
  ASSERT_EQ(seeded.components.size(), 1u);
  EXPECT_GE(Dice(seeded.mask, p.lesion), 0.85);
  PointType normal;
  normal[0] = CentreX(s, 15.0);
  normal[1] = 0;
  normal[2] = 15.0;
  lp.seed = normal;
  EXPECT_EQ(SegmentLesions(p.image, p.cord, lp).components.size(), 0u);
}

TEST(SegmentationLesion, NoLesionNoComponent)
{
  Spec s;
  const auto p = MakePhantom(s);
  EXPECT_EQ(SegmentLesions(p.image, p.cord).components.size(), 0u);
}

TEST(SegmentationLesion, EmptyTissueMaskIsInputError)
{
  Spec s;
  const auto p = MakePhantom(s);
  auto empty = MaskImage::New();
  empty->CopyInformation(p.image);
  empty->SetRegions(p.image->GetLargestPossibleRegion());
  empty->Allocate(true);
  try
  {
    SegmentLesions(p.image, empty);
    FAIL();
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), ErrorKind::Input);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Syrinx

struct SyrinxCase
{
  double sa, sb, halfLength, noise;
  Orientation orientation;
};

TEST(SegmentationSyrinx, CordTubePhantomsSeveralSizes)
{
  const SyrinxCase cases[] = { { 1.0, 1.0, 6.0, 4.0, Orientation::Axial },
                               { 1.5, 1.25, 10.0, 6.0, Orientation::Axial },
                               { 2.5, 2.0, 15.0, 8.0, Orientation::Axial },
                               { 2.0, 1.5, 12.0, 6.0, Orientation::Sagittal } };
  for (const auto & k : cases)
  {
    Spec s;
    s.orientation = k.orientation;
    s.syrinx = true;
    s.sa = k.sa;
    s.sb = k.sb;
    s.halfLength = k.halfLength;
    s.contrast.noise = k.noise;
    s.seed = 7;
    const auto p = MakePhantom(s);
    const auto r = SegmentSyrinx(p.image, nullptr, p.cord, nullptr);
    ASSERT_EQ(r.components.size(), 1u) << "syrinx " << k.sa << "x" << k.sb;
    const double dice = Dice(r.mask, p.syrinx);
    const auto m = ComputeMorphometry(r.labels, p.cord, "syrinx");
    const auto truth = ComputeMorphometry(LabelComponents(p.syrinx, 1, 0.0), p.cord, "syrinx");
    ASSERT_EQ(m.components.size(), 1u);
    const auto & c = m.components[0];
    EXPECT_GE(dice, 0.85) << "syrinx " << k.sa << "x" << k.sb;
    EXPECT_NEAR(c.maxApDiameter, 2 * k.sb, 0.5) << "AP diameter within 0.5 mm";
    EXPECT_NEAR(c.length, truth.components[0].length, s.spacing[SI] + 1e-9) << "length within one slice";
    // syrinx/cord AP ratio: both diameters within one voxel each
    EXPECT_NEAR(c.apRatio, k.sb / s.b, (0.5 + 0.5) / (2 * s.b));
    std::cout << "  syrinx " << 2 * k.sa << "x" << 2 * k.sb << "x" << 2 * k.halfLength << " mm, noise " << k.noise
              << ": dice " << dice << ", AP " << c.maxApDiameter << " (true " << 2 * k.sb << "), length " << c.length
              << " (true voxelised " << truth.components[0].length << ")\n";
  }
}

TEST(SegmentationSyrinx, LesionNotSyrinxAndRoundCavityRejected)
{
  // A lesion (T2 160: brighter than cord, darker than CSF) next to a syrinx: the syrinx excludes it.
  Spec s;
  s.syrinx = true;
  s.zc = 10;
  s.halfLength = 8;
  s.lesion = true;
  s.lesionCentre = { { 0, 0, -12 } };
  s.lesionRadii = { { 2.0, 2.0, 3.0 } };
  auto p = MakePhantom(s);
  const auto r = SegmentSyrinx(p.image, nullptr, p.cord, nullptr);
  ASSERT_EQ(r.components.size(), 1u);
  EXPECT_GE(Dice(r.mask, p.syrinx), 0.85);
  std::size_t overlap = 0;
  for (std::size_t i = 0; i < p.image->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    overlap += r.mask->GetBufferPointer()[i] && p.lesion->GetBufferPointer()[i];
  EXPECT_EQ(overlap, 0u);
  // a short CSF-bright cavity (length 2 mm, diameter 3 mm) is not elongated: no syrinx
  Spec round;
  round.syrinx = true;
  round.halfLength = 1.0;
  round.sa = round.sb = 1.5;
  p = MakePhantom(round);
  EXPECT_EQ(SegmentSyrinx(p.image, nullptr, p.cord, nullptr).components.size(), 0u);
}

TEST(SegmentationSyrinx, SmallCavityFoundWithFlairAndFlairBrightLesionRejected)
{
  // A syrinx 2.4 x 2 mm across on 1 x 1 x 2.5 mm voxels is mostly partial-volume rim: its median T2 falls short of
  // the CSF level. With a FLAIR (CSF suppressed) the core of the cavity on T2 and its dark FLAIR identify it; an
  // elongated lesion as bright on T2 as the cavity's rim but bright on FLAIR is not a syrinx.
  Spec s;
  s.spacing = { { 1.0, 1.0, 2.5 } };
  s.syrinx = true;
  s.sa = 1.2;
  s.sb = 1.0;
  s.halfLength = 10.0;
  s.zc = 12.0;
  s.lesion = true;
  s.lesionCentre = { { 0, 0, -14 } };
  s.lesionRadii = { { 1.5, 1.5, 8.0 } };
  s.contrast.noise = 4.0;
  s.seed = 3;
  const auto t2 = MakePhantom(s);
  Spec f = s;
  f.contrast.csf = 20;
  f.contrast.syrinx = 20;
  f.contrast.lesion = 180;
  f.seed = 4;
  const auto flair = MakePhantom(f);
  const auto r = SegmentSyrinx(t2.image, nullptr, flair.image, t2.cord, nullptr);
  ASSERT_EQ(r.components.size(), 1u) << "the cavity, and not the lesion";
  const double dice = Dice(r.mask, t2.syrinx);
  EXPECT_GE(dice, 0.6) << "a 2-voxel-wide cavity: half its voxels are rim";
  std::size_t onLesion = 0;
  for (std::size_t i = 0; i < t2.image->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    onLesion += r.mask->GetBufferPointer()[i] && t2.lesion->GetBufferPointer()[i];
  EXPECT_EQ(onLesion, 0u);
  const auto without = SegmentSyrinx(t2.image, nullptr, t2.cord, nullptr);
  std::cout << "  small syrinx: with FLAIR dice " << dice << "; T2 only: " << without.components.size()
            << " component(s)\n";
  // a FLAIR on another grid is refused
  Spec other = f;
  other.spacing = { { 1.0, 1.0, 2.0 } };
  EXPECT_THROW(SegmentSyrinx(t2.image, nullptr, MakePhantom(other).image, t2.cord, nullptr), gw::Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Enhancement

struct EnhancementPhantom
{
  FloatImage::Pointer pre, post;
  std::vector<PointType> foci;
};

EnhancementPhantom
MakeEnhancement(bool withFoci, std::uint64_t seed)
{
  const SizeType size{ { 60, 60, 40 } };
  const SpacingType sp(1.0);
  EnhancementPhantom e;
  e.pre = gw::testing::MakeImage(size, sp, PointType(0.0));
  e.post = gw::testing::MakeImage(size, sp, PointType(0.0));
  // foci: spheres of radius 1.0 (7 voxels = 7 mm^3), 1.5, 2.5 mm; enhancement +40 (noise sigma 5 per image)
  const double radii[] = { 1.0, 1.5, 2.5 };
  const double centres[][3] = { { 15, 15, 10 }, { 40, 20, 20 }, { 30, 45, 30 } };
  if (withFoci)
    for (const auto & c : centres)
    {
      PointType q;
      for (unsigned d = 0; d < 3; ++d)
        q[d] = c[d];
      e.foci.push_back(q);
    }
  gw::testing::Rng rng(seed);
  itk::ImageRegionIteratorWithIndex<FloatImage> it(e.pre, e.pre->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    const double tissue = 100 + 20 * std::sin(idx[0] / 9.0); // smooth anatomy, identical pre/post
    double enh = 0;
    for (std::size_t f = 0; f < e.foci.size(); ++f)
    {
      const double dx = idx[0] - e.foci[f][0], dy = idx[1] - e.foci[f][1], dz = idx[2] - e.foci[f][2];
      if (dx * dx + dy * dy + dz * dz <= radii[f] * radii[f] + 1e-9)
        enh = 40;
    }
    it.Set(float(tissue + 5 * rng.Normal()));
    e.post->SetPixel(idx, float(1.3 * (tissue + enh) + 5 * rng.Normal())); // global gain change post contrast
  }
  return e;
}

TEST(SegmentationEnhancement, PlantedFociAllDetected)
{
  const auto e = MakeEnhancement(true, 11);
  const auto r = SegmentEnhancement(e.pre, e.post, nullptr);
  EXPECT_EQ(r.components.size(), e.foci.size());
  for (const auto & f : e.foci)
  {
    IndexType idx;
    e.pre->TransformPhysicalPointToIndex(f, idx);
    EXPECT_EQ(r.mask->GetPixel(idx), 1) << "focus at " << f;
  }
  for (const auto & c : r.components)
  {
    EXPECT_GE(c.voxels, 3u);
    EXPECT_GE(c.volume, 3.0);
  }
}

TEST(SegmentationEnhancement, NoiseOnlyGivesNoCluster)
{
  for (std::uint64_t seed : { 21u, 22u, 23u })
  {
    const auto e = MakeEnhancement(false, seed);
    EXPECT_EQ(SegmentEnhancement(e.pre, e.post, nullptr).components.size(), 0u) << "seed " << seed;
  }
}

TEST(SegmentationEnhancement, DifferentGridsRejected)
{
  const auto e = MakeEnhancement(false, 3);
  auto other = gw::testing::MakeImage(SizeType{ { 60, 60, 39 } }, SpacingType(1.0), PointType(0.0));
  EXPECT_THROW(SegmentEnhancement(e.pre, other, nullptr), gw::Error);
}

TEST(SegmentationEnhancement, WideFaintFocusFoundByItsExtent)
{
  // A focus 6 mm across (voxel centres within 3 mm: 123 mm^3) whose every voxel enhances by about 4.2 sigmas: above
  // the grow level (3.5), below the seed level (5), as thick slices and resampling leave a small nodule. Around it
  // the post-contrast image is the pre-contrast one scaled (no independent noise there), so its z is exact.
  auto e = MakeEnhancement(false, 31);
  const PointType centre(std::array<double, 3>{ 30.0, 30.0, 20.0 }.data());
  itk::ImageRegionIteratorWithIndex<FloatImage> it(e.post, e.post->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    if (std::abs(idx[0] - 30) <= 6 && std::abs(idx[1] - 30) <= 6 && std::abs(idx[2] - 20) <= 6)
      it.Set(1.3f * e.pre->GetPixel(idx));
  }
  const double sigma = SegmentEnhancement(e.pre, e.post, nullptr).tissueSigma;
  for (it.GoToBegin(); !it.IsAtEnd(); ++it)
  {
    PointType q;
    e.post->TransformIndexToPhysicalPoint(it.GetIndex(), q);
    if (q.EuclideanDistanceTo(centre) <= 3.0 + 1e-9)
      it.Set(it.Get() + float(1.3 * 4.2 * sigma));
  }
  IndexType c;
  e.pre->TransformPhysicalPointToIndex(centre, c);
  const auto r = SegmentEnhancement(e.pre, e.post, nullptr);
  std::size_t inFocus = 0;
  for (it.GoToBegin(); !it.IsAtEnd(); ++it)
  {
    PointType q;
    e.post->TransformIndexToPhysicalPoint(it.GetIndex(), q);
    if (q.EuclideanDistanceTo(centre) > 3.0 + 1e-9)
      continue;
    ++inFocus;
    const float z = r.zMap->GetPixel(it.GetIndex());
    ASSERT_TRUE(z > 3.5f && z < 5.0f) << "the premise: between the grow and the seed levels, z " << z;
  }
  EXPECT_EQ(inFocus, 123u);
  EXPECT_EQ(r.mask->GetPixel(c), 1) << "found by its extent (123 mm^3 against 50)";
  EnhancementParams seedOnly;
  seedOnly.extentMm3 = 0.0;
  EXPECT_EQ(SegmentEnhancement(e.pre, e.post, nullptr, seedOnly).mask->GetPixel(c), 0) << "missed by the seed alone";
  // (noise alone forms no such cluster: NoiseOnlyGivesNoCluster runs with the same defaults)
}

TEST(SegmentationEnhancement, NoDataInEitherImageIsNotSearched)
{
  // A pre-contrast series with no data (exact zeros) over x >= 50, where the post-contrast one, aligned from
  // another position, has tissue: against pre's zeros its signal is 26 sigmas of "enhancement". Searched in a mask
  // of the whole grid, only the three foci (x <= 42.5) are found, and nothing within 2 mm of the empty part.
  auto e = MakeEnhancement(true, 12);
  auto all =
    gw::testing::MakeMask(e.pre->GetLargestPossibleRegion().GetSize(), e.pre->GetSpacing(), e.pre->GetOrigin());
  all->FillBuffer(1);
  itk::ImageRegionIteratorWithIndex<FloatImage> it(e.pre, e.pre->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
    if (it.GetIndex()[0] >= 50)
      it.Set(0.0f);
  const auto r = SegmentEnhancement(e.pre, e.post, all);
  EXPECT_EQ(r.components.size(), e.foci.size());
  std::size_t near = 0;
  itk::ImageRegionConstIteratorWithIndex<MaskImage> m(r.mask, r.mask->GetLargestPossibleRegion());
  for (; !m.IsAtEnd(); ++m)
    near += m.Get() && m.GetIndex()[0] >= 48;
  EXPECT_EQ(near, 0u) << "voxels within 2 mm of the empty part";
  EnhancementParams without;
  without.noDataMarginMm = -1.0; // not even the empty voxels themselves
  EXPECT_GT(SegmentEnhancement(e.pre, e.post, all, without).components.size(), e.foci.size())
    << "without the rule the empty part is read as enhancement";
}

TEST(SegmentationEnhancement, FatReachingInFromOutsideIsNotSearched)
{
  // Fat (3.5 times the tissue) over x < 12, of which x = 8..11 lies inside the tissue mask (x >= 8), as orbit and
  // scalp lie inside a brain mask on thick slices; post contrast its edge lies one voxel further (x < 13: a
  // sub-voxel shift and the fat's chemical shift). A T1-bright focus wholly inside the tissue (a haemorrhage,
  // sphere of radius 2.5 mm at (40, 30, 20)) enhances. With outsideFatRatio 2: the focus alone; by default (0, off)
  // the fat's moved edge is read as enhancement too.
  auto e = MakeEnhancement(false, 13);
  auto tissue =
    gw::testing::MakeMask(e.pre->GetLargestPossibleRegion().GetSize(), e.pre->GetSpacing(), e.pre->GetOrigin());
  itk::ImageRegionIteratorWithIndex<FloatImage> it(e.pre, e.pre->GetLargestPossibleRegion());
  gw::testing::Rng rng(5);
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    tissue->SetPixel(idx, idx[0] >= 8 ? 1 : 0);
    const double dx = idx[0] - 40.0, dy = idx[1] - 30.0, dz = idx[2] - 20.0;
    const bool focus = dx * dx + dy * dy + dz * dz <= 2.5 * 2.5;
    if (idx[0] < 12)
      it.Set(float(350 + 5 * rng.Normal()));
    if (idx[0] < 13)
      e.post->SetPixel(idx, float(1.3 * 350 + 5 * rng.Normal()));
    if (focus)
    {
      it.Set(float(300 + 5 * rng.Normal()));
      e.post->SetPixel(idx, float(1.3 * 360 + 5 * rng.Normal()));
    }
  }
  EnhancementParams p;
  p.outsideFatRatio = 2.0;
  const auto r = SegmentEnhancement(e.pre, e.post, tissue, p);
  ASSERT_EQ(r.components.size(), 1u);
  IndexType centre{ { 40, 30, 20 } };
  EXPECT_EQ(r.mask->GetPixel(centre), 1) << "the T1-bright focus inside the tissue is searched";
  const auto off = SegmentEnhancement(e.pre, e.post, tissue);
  EXPECT_EQ(off.components.size(), 2u) << "without the rule: the fat's moved edge and the focus";
}

// ---------------------------------------------------------------------------------------------------------------
// Edema

TEST(SegmentationEdema, HaloAroundLesionSeparateFromCore)
{
  const SizeType size{ { 60, 60, 40 } };
  auto img = gw::testing::MakeImage(size, SpacingType(1.0), PointType(0.0));
  auto lesion = gw::testing::MakeMask(size, SpacingType(1.0), PointType(0.0));
  auto truth = gw::testing::MakeMask(size, SpacingType(1.0), PointType(0.0));
  gw::testing::Rng rng(5);
  itk::ImageRegionIteratorWithIndex<FloatImage> it(img, img->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    const double r = std::sqrt(std::pow(idx[0] - 30.0, 2) + std::pow(idx[1] - 30.0, 2) + std::pow(idx[2] - 20.0, 2));
    double v = 100;
    if (r <= 5)
    {
      v = 250; // core
      lesion->SetPixel(idx, 1);
    }
    else if (r <= 9)
    {
      v = 150; // edema halo
      truth->SetPixel(idx, 1);
    }
    it.Set(float(v + 8 * rng.Normal()));
  }
  const auto r = SegmentEdema(img, nullptr, lesion);
  ASSERT_EQ(r.components.size(), 1u);
  EXPECT_GE(Dice(r.mask, truth), 0.85);
  std::size_t overlap = 0;
  for (std::size_t i = 0; i < img->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    overlap += r.mask->GetBufferPointer()[i] && lesion->GetBufferPointer()[i];
  EXPECT_EQ(overlap, 0u);
}

// ---------------------------------------------------------------------------------------------------------------
// Real data

TEST(SegmentationCordExternal, SctT2ManualDice)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_testing/t2");
  const auto img = io::ReadFloatImage(dir / "t2.nii.gz");
  const auto ref = io::ReadMask(dir / "t2_seg-manual.nii.gz");
  CordResult r;
  const double t = Seconds([&] { r = SegmentCord(img); });
  const double dice = Dice(r.mask, ref);
  std::cout << "  SCT t2 cord dice " << dice << " (" << t << " s)\n";
  EXPECT_GE(dice, 0.90);
  // the contour's sub-voxel AP diameter agrees with the manual mask's AP extent slice by slice (the manual mask's
  // extent counts whole voxels: within 1.5 voxels per slice, 0.75 mm on the median)
  const auto manual = ComputeCordMorphometry(ref);
  const double voxel = std::max(img->GetSpacing()[0], img->GetSpacing()[1]);
  std::vector<double> diffs;
  for (const auto & c : r.contour)
    for (const auto & m : manual)
      if (std::abs(m.z - c.z) < 1e-3)
      {
        diffs.push_back(c.apDiameter - m.apDiameter);
        EXPECT_NEAR(c.apDiameter, m.apDiameter, 1.5 * voxel) << "slice at z = " << c.z;
      }
  ASSERT_GE(diffs.size(), 10u);
  std::nth_element(diffs.begin(), diffs.begin() + long(diffs.size() / 2), diffs.end());
  std::cout << "  SCT t2 contour AP - manual AP extent: median " << diffs[diffs.size() / 2] << " mm over "
            << diffs.size() << " slices\n";
  EXPECT_LT(std::abs(diffs[diffs.size() / 2]), 0.75);
}

TEST(SegmentationCordExternal, SctT1ManualDice)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_testing/t1");
  const auto img = io::ReadFloatImage(dir / "t1w.nii.gz");
  const auto ref = io::ReadMask(dir / "t1w_seg-manual.nii.gz");
  CordParams cp;
  cp.contrast = CordContrast::T1;
  const auto r = SegmentCord(img, cp);
  const double dice = Dice(r.mask, ref);
  std::cout << "  SCT t1 cord dice " << dice << "\n";
  EXPECT_GE(dice, 0.85);
}

TEST(SegmentationLesionExternal, SctFakeLesionWithGivenAndAutomaticCord)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/sct_testing/t2");
  const auto img = io::ReadFloatImage(dir / "t2_fake_lesion.nii.gz");
  const auto ref = io::ReadMask(dir / "t2_fake_lesion_lesion_seg.nii.gz");
  const auto cordGiven = io::ReadMask(dir / "t2_fake_lesion_sc_seg.nii.gz");
  const auto given = SegmentLesions(img, cordGiven);
  const auto cord = SegmentCord(img);
  const auto automatic = SegmentLesions(img, cord.mask);
  const double dGiven = Dice(given.mask, ref), dAuto = Dice(automatic.mask, ref);
  std::cout << "  SCT fake lesion dice: given cord " << dGiven << ", automatic cord " << dAuto << " (cord dice "
            << Dice(cord.mask, cordGiven) << ")\n";
  EXPECT_GE(dGiven, 0.80);
  EXPECT_GE(dAuto, 0.80);
}

TEST(SegmentationEnhancementExternal, TcgaPrePostGadolinium)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/pre_post_gadolinium");
  const auto pre = io::ReadFloatImage(dir / "t1_pre.nii.gz");
  const auto post = io::ReadFloatImage(dir / "t1_post_gad.nii.gz");
  EnhancementResult r;
  const double t = Seconds([&] { r = SegmentEnhancement(pre, post, nullptr); });
  double total = 0;
  for (const auto & c : r.components)
  {
    EXPECT_GE(c.voxels, 3u);
    EXPECT_GE(c.volume, 3.0);
    total += c.volume;
  }
  std::cout << "  TCGA gadolinium: " << r.components.size() << " clusters, " << total << " mm^3, sigma "
            << r.tissueSigma << " (" << t << " s)\n";
  EXPECT_GT(r.tissueSigma, 0.0);
  // the tumour enhances: at least one cluster; enhancement is focal (< 2 % of the field of view)
  EXPECT_GE(r.components.size(), 1u);
  const auto & sp = pre->GetSpacing();
  const double fov = double(pre->GetLargestPossibleRegion().GetNumberOfPixels()) * sp[0] * sp[1] * sp[2];
  EXPECT_LT(total, 0.02 * fov);
}

// ---------------------------------------------------------------------------------------------------------------
// App

TEST(SegmentationApp, CordThenLesionWithExternalMaskAndNoOverwrite)
{
  gw::testing::ScratchDir dir("gwsegapp");
  Spec s;
  s.lesion = true;
  s.contrast.lesion = 180;
  const auto p = MakePhantom(s);
  io::WriteImage(p.image, dir / "t2.nii.gz", false);
  // an SCT-style mask with value 2 (non-zero = inside)
  auto ext = MaskImage::New();
  ext->CopyInformation(p.cord);
  ext->SetRegions(p.cord->GetLargestPossibleRegion());
  ext->Allocate();
  for (std::size_t i = 0; i < p.cord->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    ext->GetBufferPointer()[i] = p.cord->GetBufferPointer()[i] ? 2 : 0;
  io::WriteImage(ext, dir / "cord_sct.nii.gz", false);

  const std::string prefix = (dir / "out" / "case").string();
  auto r = gw::testing::Run({ "gw_segment", "cord", "--t2", (dir / "t2.nii.gz").string(), "-o", prefix });
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto cord = io::ReadMask(prefix + "_cord.nii.gz");
  EXPECT_GE(Dice(cord, p.cord), 0.90);
  const auto centre = nlohmann::json::parse(ReadFile(prefix + "_centerline.json"));
  EXPECT_EQ(centre["coordinate_system"], "LPS");
  EXPECT_GT(centre["points"].size(), 50u);
  EXPECT_TRUE(fs::exists(prefix + "_cord_morphometry.tsv"));
  EXPECT_TRUE(fs::exists(prefix + "_cord.provenance.json"));

  // same prefix without --force: refused, exit 5
  r = gw::testing::Run({ "gw_segment", "cord", "--t2", (dir / "t2.nii.gz").string(), "-o", prefix });
  EXPECT_EQ(r.exitCode, 5);

  const std::string prefix2 = (dir / "out" / "lesion").string();
  r = gw::testing::Run({ "gw_segment", "lesion", "--t2", (dir / "t2.nii.gz").string(), "--cord-mask",
                         (dir / "cord_sct.nii.gz").string(), "-o", prefix2 });
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["components"], 1);
  EXPECT_FALSE(fs::exists(prefix2 + "_cord.nii.gz")); // external cord mask used, not computed
  const auto lesion = io::ReadMask(prefix2 + "_lesion.nii.gz");
  EXPECT_GE(Dice(lesion, p.lesion), 0.85);
  const auto morph = nlohmann::json::parse(ReadFile(prefix2 + "_morphometry.json"));
  ASSERT_EQ(morph["components"].size(), 1u);
  const double volume = 4.0 / 3.0 * M_PI * 2.0 * 1.5 * 3.0;
  const double measured = morph["components"][0]["volume [mm3]"].get<double>();
  EXPECT_NEAR(measured, double(CountNonZero(lesion)) * 0.25, 1e-6); // voxels x 0.5 x 0.5 x 1 mm^3, exact
  // hysteresis at 3 sigma keeps partial-volume rim voxels of this small lesion (150 voxels): within 35 %
  EXPECT_NEAR(measured, volume, 0.35 * volume);

  // missing input for the task: usage error
  r = gw::testing::Run({ "gw_segment", "enhancement", "--t1", (dir / "t2.nii.gz").string(), "-o", prefix2 + "x" });
  EXPECT_EQ(r.exitCode, 2);
}
} // namespace
