// Follow-up measurement helpers (internal to the module): robust statistics, partial-volume and iso-surface volumes
// of small structures on analytic phantoms, and the free-water correction of the cord-border FA.
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "enhancement_change.h"
#include "gw/testing/testing.h"
#include "measurements.h"

namespace
{
namespace detail = gw::followup::detail;
using gw::FloatImage;
using gw::LabelImage;
using gw::MaskImage;

TEST(FollowupMeasurements, RobustStatistics)
{
  std::vector<float> v{ 5, 1, 4, 2, 3 };
  EXPECT_EQ(detail::Median(v), 3.0);
  v = { 5, 1, 4, 2, 3 };
  EXPECT_EQ(detail::Percentile(v, 0.0), 1.0);
  EXPECT_EQ(detail::Percentile(v, 1.0), 5.0);
  EXPECT_EQ(detail::Percentile(v, 0.75), 4.0); // round(0.75 x 4) = 3
  // ranks 25..75% of 1..9: 3..7, mean 5; an outlier does not move it
  v = { 9, 1, 8, 2, 7, 3, 6, 4, 1000 };
  EXPECT_DOUBLE_EQ(detail::InterquartileMean(v), (3.0 + 4 + 6 + 7 + 8) / 5.0);
  v = { 1, 2, 3, 4, 100 };
  const auto [med, sigma] = detail::MedianAndSigma(v);
  EXPECT_EQ(med, 3.0);
  EXPECT_NEAR(sigma, 1.4826, 1e-6); // deviations 2 1 0 1 97: median 1
  std::vector<float> empty;
  EXPECT_TRUE(std::isnan(detail::Median(empty)));
  EXPECT_TRUE(std::isnan(detail::InterquartileMean(empty)));
}

/// An ellipsoid (semi-axes r, centred at c [mm]) of intensity `inside` in a background `outside`, partial volume by
/// 5^3 sub-samples per voxel, on a 24 x 24 x 16 grid of 1 x 1 x 2.5 mm; labels = voxels above half maximum.
struct Blob
{
  FloatImage::Pointer image;
  LabelImage::Pointer labels;
  MaskImage::Pointer tissue;
  double volume = 0.0; ///< analytic [mm^3]
  std::size_t voxels = 0;
};

Blob
MakeBlob(const std::array<double, 3> & c, const std::array<double, 3> & r, double inside, double outside)
{
  Blob b;
  gw::SizeType size{ { 24, 24, 16 } };
  gw::SpacingType sp;
  sp[0] = 1.0;
  sp[1] = 1.0;
  sp[2] = 2.5;
  gw::PointType origin;
  origin.Fill(0.0);
  b.image = gw::testing::MakeImage(size, sp, origin);
  b.tissue = gw::testing::MakeMask(size, sp, origin);
  b.labels = LabelImage::New();
  b.labels->CopyInformation(b.image);
  b.labels->SetRegions(b.image->GetLargestPossibleRegion());
  b.labels->Allocate(true);
  const int n = 5;
  std::size_t i = 0;
  for (unsigned z = 0; z < size[2]; ++z)
    for (unsigned y = 0; y < size[1]; ++y)
      for (unsigned x = 0; x < size[0]; ++x, ++i)
      {
        int in = 0;
        for (int a = 0; a < n; ++a)
          for (int bb = 0; bb < n; ++bb)
            for (int e = 0; e < n; ++e)
            {
              const double px = (x - 0.5 + (a + 0.5) / n) * sp[0], py = (y - 0.5 + (bb + 0.5) / n) * sp[1],
                           pz = (z - 0.5 + (e + 0.5) / n) * sp[2];
              const double u = (px - c[0]) / r[0], v = (py - c[1]) / r[1], w = (pz - c[2]) / r[2];
              in += u * u + v * v + w * w <= 1.0;
            }
        const double f = double(in) / double(n * n * n);
        b.image->GetBufferPointer()[i] = float(outside + f * (inside - outside));
        b.tissue->GetBufferPointer()[i] = 1;
        if (f >= 0.5)
        {
          b.labels->GetBufferPointer()[i] = 1;
          ++b.voxels;
        }
      }
  b.volume = 4.0 / 3.0 * M_PI * r[0] * r[1] * r[2];
  return b;
}

TEST(FollowupMeasurements, IsoSurfaceVolumeOfSmallEllipsoidDoesNotFollowTheGrid)
{
  // The phantom's graft (5 x 4 x 10 mm), and the same grown by 40% in volume, each at eight sub-voxel positions on
  // 1 x 1 x 2.5 mm voxels, counted at the half-maximum level. The voxel count moves by a voxel layer with the
  // position (here 90..110 mm^3 for 104.7); the volume inside the interpolated iso-surface varies 3 times less.
  // Both sit below the analytic volume: partial volume over 2.5 mm slices puts the half-maximum surface inside a
  // convex structure at its tips (radius of curvature 1.25 mm), by 8% for the voxel count and 16% for the
  // iso-surface (trilinear interpolation adds its own blur): bound at 22%. The bias shrinks as the structure grows,
  // which the growth ratio must survive: mean ratio within 0.06 of 1.4 (the MASS_GROWTH rule is 0.40, enlarging
  // lesions 0.50).
  const double grow = std::cbrt(1.4);
  std::vector<double> iso[2], count[2];
  for (int size = 0; size < 2; ++size)
    for (int k = 0; k < 8; ++k)
    {
      const double f = size ? grow : 1.0;
      const std::array<double, 3> c{ 11.0 + 0.37 * (k & 1), 11.0 + 0.41 * ((k >> 1) & 1), 19.0 + 1.1 * (k >> 2) };
      const auto b = MakeBlob(c, { 2.5 * f, 2.0 * f, 5.0 * f }, 800.0, 350.0);
      const auto v = detail::IsoSurfaceVolumes(b.image, b.labels, b.tissue, [](int) { return 575.0; });
      ASSERT_EQ(v.count(1), 1u);
      EXPECT_GT(v.at(1) / b.volume, 0.78) << "size " << size << " offset " << k;
      EXPECT_LT(v.at(1) / b.volume, 1.0) << "size " << size << " offset " << k;
      iso[size].push_back(v.at(1));
      count[size].push_back(double(b.voxels) * 2.5);
    }
  auto range = [](const std::vector<double> & x)
  { return *std::max_element(x.begin(), x.end()) - *std::min_element(x.begin(), x.end()); };
  auto mean = [](const std::vector<double> & x) { return std::accumulate(x.begin(), x.end(), 0.0) / double(x.size()); };
  for (int size = 0; size < 2; ++size)
    EXPECT_LT(range(iso[size]), 0.5 * range(count[size]))
      << "iso-surface range " << range(iso[size]) << " mm^3, voxel count range " << range(count[size]) << " mm^3";
  EXPECT_NEAR(mean(iso[1]) / mean(iso[0]), 1.4, 0.06);
}

TEST(FollowupMeasurements, PartialVolumeOfCavityByLinearMixing)
{
  // a syrinx-like cavity (CSF 1000) in uniform cord (350): linear mixing recovers the volume to 2% (the phantom's
  // own partial volume is a 5^3 sub-sampling, 0.8% per boundary voxel)
  const auto b = MakeBlob({ 11.3, 11.6, 20.0 }, { 1.8, 1.5, 10.0 }, 1000.0, 350.0);
  const auto v = detail::PartialVolumes(
    b.image, b.labels, b.tissue, [](int) { return 1000.0; }, 350.0);
  ASSERT_EQ(v.count(1), 1u);
  EXPECT_NEAR(v.at(1) / b.volume, 1.0, 0.02);
  const auto levels = detail::InteriorLevels(b.image, b.labels);
  EXPECT_NEAR(levels.at(1), 1000.0, 1e-3) << "interior voxels are pure cavity";
}

TEST(FollowupMeasurements, BorderFaCorrectionRemovesIsotropicCsfPart)
{
  // 6 x 6 x 4 voxels of white matter (FA 0.7, MD 1e-3 mm^2/s); the cord mask (on a grid twice as fine) leaves out
  // half of the outer ring of voxels, whose apparent tensor gets an isotropic 0.3e-3 mm^2/s (CSF partial volume)
  gw::SizeType size{ { 6, 6, 4 } };
  gw::SpacingType sp;
  sp.Fill(2.0);
  gw::PointType origin;
  origin.Fill(0.0);
  gw::dti::ScalarMaps maps;
  maps.fa = gw::testing::MakeImage(size, sp, origin);
  maps.md = gw::testing::MakeImage(size, sp, origin);
  maps.ad = gw::testing::MakeImage(size, sp, origin);
  maps.rd = gw::testing::MakeImage(size, sp, origin);
  auto roi = gw::testing::MakeMask(size, sp, origin);
  gw::SizeType fine{ { 12, 12, 8 } };
  gw::SpacingType fsp;
  fsp.Fill(1.0);
  gw::PointType forigin;
  forigin.Fill(-0.5); // voxel centres of the fine grid at the quarter positions of the coarse voxels
  auto cord = gw::testing::MakeMask(fine, fsp, forigin);
  for (unsigned z = 0; z < 8; ++z)
    for (unsigned y = 1; y < 11; ++y)
      for (unsigned x = 1; x < 11; ++x)
        cord->SetPixel({ { x, y, z } }, 1);
  const double c = 0.7 * std::sqrt(3.0 / (9.0 - 6.0 * 0.49)); // prolate tensor with FA 0.7, MD 1e-3
  const double l1 = 1e-3 * (1 + 2 * c), l2 = 1e-3 * (1 - c);
  auto fa = [](double a, double b) { return std::abs(a - b) / std::sqrt(a * a + 2 * b * b); };
  std::size_t border = 0;
  for (unsigned z = 0; z < 4; ++z)
    for (unsigned y = 0; y < 6; ++y)
      for (unsigned x = 0; x < 6; ++x)
      {
        const bool edge = x == 0 || y == 0 || x == 5 || y == 5;
        const double d = edge ? 0.3e-3 : 0.0;
        const itk::Index<3> idx{ { x, y, z } };
        maps.fa->SetPixel(idx, float(fa(l1 + d, l2 + d)));
        maps.md->SetPixel(idx, float(1e-3 + d));
        maps.ad->SetPixel(idx, float(l1 + d));
        maps.rd->SetPixel(idx, float(l2 + d));
        roi->SetPixel(idx, 1);
        border += edge;
      }
  EXPECT_NEAR(fa(l1, l2), 0.7, 1e-9);
  EXPECT_LT(fa(l1 + 0.3e-3, l2 + 0.3e-3), 0.6) << "the CSF part lowers FA by more than 0.1";
  detail::BorderFaCorrection info;
  const auto corrected = detail::CorrectBorderFa(maps, cord, roi, &info);
  EXPECT_EQ(info.border, border);
  EXPECT_EQ(info.corrected, border);
  EXPECT_EQ(info.interior, 4u * 16u);
  EXPECT_NEAR(info.referenceMd, 1e-3, 1e-9);
  for (std::size_t v = 0; v < 6 * 6 * 4; ++v)
    EXPECT_NEAR(corrected->GetBufferPointer()[v], 0.7, 1e-5) << "voxel " << v;
  EXPECT_NEAR(maps.fa->GetBufferPointer()[0], fa(l1 + 0.3e-3, l2 + 0.3e-3), 1e-6) << "input unchanged";

  // edema inside the cord (interior voxels of slice z = 1, edema mask on the fine grid): free water as well, those
  // voxels are corrected too and stay out of the reference MD; an interior voxel outside the edema is untouched
  auto edema = gw::testing::MakeMask(fine, fsp, forigin);
  std::size_t edemaVoxels = 0;
  for (unsigned y = 1; y < 5; ++y)
    for (unsigned x = 1; x < 5; ++x)
    {
      const itk::Index<3> idx{ { x, y, 1 } };
      maps.fa->SetPixel(idx, float(fa(l1 + 0.5e-3, l2 + 0.5e-3)));
      maps.md->SetPixel(idx, float(1.5e-3));
      ++edemaVoxels;
      for (unsigned fz = 2; fz < 4; ++fz) // the fine voxels inside coarse voxel (x, y, 1)
        for (unsigned fy = 2 * y; fy < 2 * y + 2; ++fy)
          for (unsigned fx = 2 * x; fx < 2 * x + 2; ++fx)
            edema->SetPixel({ { fx, fy, fz } }, 1);
    }
  const auto withEdema = detail::CorrectBorderFa(maps, cord, roi, &info, edema);
  EXPECT_EQ(info.edema, edemaVoxels);
  EXPECT_EQ(info.interior, 4u * 16u - edemaVoxels);
  EXPECT_EQ(info.corrected, border + edemaVoxels);
  EXPECT_NEAR(info.referenceMd, 1e-3, 1e-9) << "the edema's MD is not in the reference";
  for (std::size_t v = 0; v < 6 * 6 * 4; ++v)
    EXPECT_NEAR(withEdema->GetBufferPointer()[v], 0.7, 1e-5) << "voxel " << v;
  const auto without = detail::CorrectBorderFa(maps, cord, roi, &info);
  EXPECT_LT(without->GetPixel({ { 2, 2, 1 } }), 0.6) << "without the edema mask its voxels keep the lowered FA";
}

TEST(FollowupEnhancingAnywhere, PairsAndSeedsEnhancedLoneVoxelsDidNot)
{
  // A z map (grow 3.5, seed 5) of zeros with, far apart: a lone voxel at 4.0 (noise), a pair of adjacent voxels at
  // 3.8 (a thin vessel cut by a thick slice), three in a row at 3.7 (a cluster's minimum) and a lone voxel at 5.5
  // (a seed). The pair counts as enhancement when a later focus is tested (kEarlierEnhancementMinVoxels = 2; it
  // did not at 3, a cluster's minimum), the lone voxel of noise does not.
  gw::segmentation::EnhancementResult e;
  e.zMap = gw::testing::MakeImage(gw::SizeType{ { 30, 30, 5 } }, gw::SpacingType(1.0), gw::PointType(0.0));
  e.growThreshold = 3.5;
  e.seedThreshold = 5.0;
  auto set = [&](long x, long y, float v) { e.zMap->SetPixel({ { x, y, 2 } }, v); };
  set(3, 3, 4.0f);
  set(15, 3, 3.8f);
  set(16, 3, 3.8f);
  set(3, 20, 3.7f);
  set(4, 20, 3.7f);
  set(5, 20, 3.7f);
  set(20, 20, 5.5f);
  const auto m = detail::EnhancingAnywhere(e);
  auto at = [&](long x, long y) { return int(m->GetPixel({ { x, y, 2 } })); };
  EXPECT_EQ(at(3, 3), 0) << "a lone voxel of noise above the grow threshold";
  EXPECT_EQ(at(15, 3) + at(16, 3), 2) << "two adjacent voxels above the grow threshold";
  EXPECT_EQ(at(3, 20) + at(4, 20) + at(5, 20), 3);
  EXPECT_EQ(at(20, 20), 1) << "a lone voxel above the seed threshold";
  std::size_t total = 0;
  for (std::size_t v = 0; v < m->GetLargestPossibleRegion().GetNumberOfPixels(); ++v)
    total += m->GetBufferPointer()[v];
  EXPECT_EQ(total, 6u);
}
/// One later focus (3 voxels in a row, label 1, 1 mm grid) tested against an earlier z map (grow 3.5, seed 5) of
/// zeros with `footprint` at the focus's own voxels and one lone voxel of `lone` at `lonePos`: the record, and
/// whether the focus stayed new.
std::pair<nlohmann::json, bool>
TestFocus(float footprint, float lone, std::array<long, 2> lonePos)
{
  namespace lg = gw::longitudinal;
  const gw::SizeType size{ { 20, 20, 5 } };
  auto after = gw::LabelImage::New();
  after->SetRegions(gw::LabelImage::RegionType(size));
  after->Allocate(true);
  gw::segmentation::EnhancementResult e;
  e.zMap = gw::testing::MakeImage(size, gw::SpacingType(1.0), gw::PointType(0.0));
  e.growThreshold = 3.5;
  e.seedThreshold = 5.0;
  for (long x = 8; x <= 10; ++x)
  {
    after->SetPixel({ { x, 10, 2 } }, 1);
    e.zMap->SetPixel({ { x, 10, 2 } }, footprint);
  }
  e.zMap->SetPixel({ { lonePos[0], lonePos[1], 2 } }, lone);
  std::vector<lg::Match> matches(1);
  matches[0].after = { 1 };
  matches[0].kind = lg::ChangeKind::New;
  std::set<int> preexisting;
  const auto earlier = detail::EnhancingAnywhere(e);
  const auto records = detail::PreexistingEnhancement(matches, after, earlier, e, nullptr, preexisting);
  EXPECT_EQ(records.size(), 1u);
  return { records.at(0), matches[0].kind == lg::ChangeKind::New };
}

TEST(FollowupPreexistingEnhancement, FainterBeforeIsNotNewNoiseIsNot)
{
  // A faint vessel: the focus's voxels at 2.5 before (at least half the grow level, 1.75) and a lone voxel at 3.6
  // (the grow level, 3.5) next to it, which EnhancingAnywhere leaves out: it was there, fainter.
  {
    const auto [record, isNew] = TestFocus(2.5f, 3.6f, { 9, 11 });
    EXPECT_FALSE(isNew) << record.dump();
    EXPECT_DOUBLE_EQ(record["fraction_enhancing_before"].get<double>(), 0.0) << "EnhancingAnywhere: nothing";
    EXPECT_DOUBLE_EQ(record["fraction_near_grow_level_before"].get<double>(), 1.0);
    EXPECT_NEAR(record["mean_z_before"].get<double>(), 2.5, 1e-6);
    EXPECT_TRUE(record["fainter_before"].get<bool>());
  }
  // the same lone voxel beside a focus whose voxels were noise (0 before): new
  {
    const auto [record, isNew] = TestFocus(0.0f, 3.6f, { 9, 11 });
    EXPECT_TRUE(isNew) << record.dump();
    EXPECT_FALSE(record["fainter_before"].get<bool>());
  }
  // elevated before (2.5) without a voxel at the grow level within reach (the lone one is 3.4): new
  EXPECT_TRUE(TestFocus(2.5f, 3.4f, { 9, 11 }).second);
  // the lone voxel at the grow level 3 voxels from the focus (the reach is 2 mm: 2 voxels): new
  EXPECT_TRUE(TestFocus(2.5f, 3.6f, { 9, 13 }).second);
  // just within reach of one end only (x = 12 reaches x = 10, not 8 or 9): a third of the voxels, new
  EXPECT_TRUE(TestFocus(2.5f, 3.6f, { 12, 10 }).second);
  // within reach of two of the three (x = 11 reaches 9 and 10): two thirds, not new
  EXPECT_FALSE(TestFocus(2.5f, 3.6f, { 11, 10 }).second);
}
} // namespace
