// The baseline space's grid (internal to the follow-up module, modules/followup/src/analysis_grid.h): refined where
// a later scan was acquired finer, and the two scans compared at one resolution.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "analysis_grid.h"
#include "brain_activity.h"
#include "gw/registration/registration.h"
#include "gw/testing/testing.h"

namespace
{
namespace detail = gw::followup::detail;
namespace reg = gw::registration;

gw::FloatImage::Pointer
Grid(long nx, long ny, long nz, double sx, double sy, double sz)
{
  gw::SizeType size;
  size[0] = nx;
  size[1] = ny;
  size[2] = nz;
  gw::SpacingType spacing;
  spacing[0] = sx;
  spacing[1] = sy;
  spacing[2] = sz;
  gw::PointType origin;
  origin.Fill(0.0);
  return gw::testing::MakeImage(size, spacing, origin);
}

TEST(FollowupAnalysisGrid, ResolutionAlongAnAxisIsItsSpacing)
{
  const auto img = Grid(8, 8, 8, 0.7, 0.7, 3.0);
  itk::Vector<double, 3> z(0.0);
  z[2] = 1.0;
  EXPECT_NEAR(detail::ResolutionAlong(img, z), 3.0, 1e-12); // exact: the slice spacing
  itk::Vector<double, 3> oblique(0.0);
  oblique[0] = oblique[2] = std::sqrt(0.5);
  EXPECT_NEAR(detail::ResolutionAlong(img, oblique), 3.0 * std::sqrt(0.5), 1e-12); // the thick edge's projection
}

TEST(FollowupAnalysisGrid, RefinedWhereALaterScanIsFiner)
{
  const auto baseline = Grid(32, 32, 12, 0.72, 0.72, 4.0);
  const auto same = Grid(32, 32, 12, 0.72, 0.72, 4.0);
  const auto thinner = Grid(32, 32, 16, 0.72, 0.72, 3.0);
  const auto slightly = Grid(32, 32, 13, 0.72, 0.72, 3.5);
  // the same slices, or slices within kRefineRatio: the baseline's own grid
  for (const gw::FloatImage * later : { same.GetPointer(), slightly.GetPointer() })
  {
    const auto g = detail::RefinedAnalysisGrid(baseline, { { baseline, nullptr }, { later, nullptr } });
    EXPECT_EQ(g.refinement, (std::array<unsigned int, 3>{ { 1, 1, 1 } }));
  }
  // 3 mm slices against 4 mm: the slice axis halved (4 / 2 = 2 mm <= 1.25 x 3 mm; 4 mm is not)
  const auto g = detail::RefinedAnalysisGrid(baseline, { { baseline, nullptr }, { thinner, nullptr } });
  ASSERT_EQ(g.refinement, (std::array<unsigned int, 3>{ { 1, 1, 2 } }));
  EXPECT_EQ(g.grid->GetLargestPossibleRegion().GetSize()[2], 23u); // (12 - 1) x 2 + 1
  EXPECT_NEAR(g.grid->GetSpacing()[2], 2.0, 1e-12);
  // every second plane is a baseline plane: same origin, same direction
  for (int k = 0; k < 3; ++k)
    EXPECT_NEAR(g.grid->GetOrigin()[k], baseline->GetOrigin()[k], 1e-12);
  // a sagittal later scan (its 1 mm in-plane axes along the baseline's slice axis): limited to 4 along one axis
  auto sagittal = Grid(16, 16, 16, 1.0, 1.0, 5.0);
  gw::DirectionType d;
  d.Fill(0.0);
  d(2, 0) = 1.0; // its first axis is S
  d(1, 1) = 1.0;
  d(0, 2) = 1.0; // its slices are along L
  sagittal->SetDirection(d);
  const auto s = detail::RefinedAnalysisGrid(baseline, { { sagittal, nullptr } });
  EXPECT_EQ(s.refinement, (std::array<unsigned int, 3>{ { 1, 1, 4 } })) << "4 mm over 1 mm: ceil(3.2), at most 4";
  // a 1 mm isotropic scan against a 4 mm isotropic baseline: at most 8 voxels for one
  const auto coarse = Grid(8, 8, 8, 4.0, 4.0, 4.0);
  const auto fine = Grid(32, 32, 32, 1.0, 1.0, 1.0);
  const auto c = detail::RefinedAnalysisGrid(coarse, { { fine, nullptr } });
  EXPECT_EQ(c.refinement[0] * c.refinement[1] * c.refinement[2], 8u);
}

TEST(FollowupAnalysisGrid, BlurToResolutionKeepsTheSignalAndSpreadsIt)
{
  // a plate one voxel (1 mm) thick, blurred from 1 mm to 3 mm along z: variance (9 - 1) / 12 mm^2
  auto img = Grid(8, 8, 21, 1.0, 1.0, 1.0);
  img->FillBuffer(0.0f);
  for (long y = 0; y < 8; ++y)
    for (long x = 0; x < 8; ++x)
      img->GetBufferPointer()[x + 8 * (y + 8 * 10)] = 100.0f;
  const auto same = detail::BlurToResolution(img, { 1, 1, 1 }, { 1, 1, 1 });
  EXPECT_EQ(same.GetPointer(), img.GetPointer()) << "nothing to blur: the image itself";
  const auto b = detail::BlurToResolution(img, { 1, 1, 1 }, { 1, 1, 3 });
  double sum = 0.0;
  for (long z = 0; z < 21; ++z)
    sum += b->GetBufferPointer()[4 + 8 * (4 + 8 * z)];
  EXPECT_NEAR(sum, 100.0, 1.0) << "the plate's integral along z (1%: the kernel's truncation)";
  // a Gaussian of sigma sqrt(8 / 12) = 0.816 mm peaks at 1 / (sqrt(2 pi) sigma) = 0.489 of the integral (sampled)
  EXPECT_NEAR(b->GetBufferPointer()[4 + 8 * (4 + 8 * 10)], 57.1, 1.0)
    << "peak: ITK's discrete Gaussian kernel of variance t = 2/3 voxel^2 weighs its centre exp(-t) I0(t) = 0.571 "
       "(1: the kernel's truncation)";
  EXPECT_NEAR(b->GetBufferPointer()[4 + 8 * (4 + 8 * 0)], 0.0, 1e-3) << "far from the plate";
}

TEST(FollowupAnalysisGrid, TheLaterScanIsNeverTheSharper)
{
  // a later scan on 3 mm slices against 4 mm: as if acquired again in 4 mm slices, sqrt(3^2 + 4^2) = 5 mm; in-plane
  // equal: unchanged
  const auto [a, b] = detail::CommonResolution({ 0.7, 0.7, 4.0 }, { 0.7, 0.7, 3.0 });
  EXPECT_EQ(a, (std::array<double, 3>{ { 0.7, 0.7, 4.0 } }));
  EXPECT_NEAR(b[2], 5.0, 1e-12);
  EXPECT_EQ(b[0], 0.7);
  // an earlier scan finer: blurred to the later one's resolution; within a tenth of each other: unchanged
  const auto [c, d] = detail::CommonResolution({ 1.0, 2.0, 5.5 }, { 3.0, 2.1, 5.0 });
  EXPECT_EQ(c[0], 3.0);
  EXPECT_EQ(d[0], 3.0);
  EXPECT_EQ(c[1], 2.0);
  EXPECT_EQ(d[1], 2.1);
  EXPECT_EQ(c[2], 5.5);
  EXPECT_EQ(d[2], 5.0);
}

/// A slab scanned in slices of `thickness` mm centred every `thickness` mm from z = 0 (box slice profile): 100, plus
/// `lesion` (6 x 6 mm in-plane, z `from`..`to` mm) when given, plus Gaussian noise of sigma 4.
gw::FloatImage::Pointer
Scan(double thickness, long nz, double lesion, std::uint64_t seed, double from = 5.0, double to = 7.0)
{
  auto img = Grid(48, 48, nz, 1.0, 1.0, thickness);
  gw::testing::Rng rng(seed);
  for (long z = 0; z < nz; ++z)
  {
    const double lo = z * thickness - 0.5 * thickness, hi = lo + thickness;
    const double overlap = std::max(0.0, std::min(hi, to) - std::max(lo, from)) / thickness;
    for (long y = 0; y < 48; ++y)
      for (long x = 0; x < 48; ++x)
      {
        const bool in = x >= 20 && x < 26 && y >= 20 && y < 26;
        img->GetBufferPointer()[x + 48 * (y + 48 * z)] =
          float(100.0 + (in ? lesion * overlap : 0.0) + 4.0 * rng.Normal());
      }
  }
  return img;
}

/// accepted new lesions centred within 2 mm of the lesion's centre (22.5, 22.5, 6) among `candidates`
int
FoundAtTheLesion(const std::vector<detail::ActivityCandidate> & candidates)
{
  int found = 0;
  for (const auto & c : candidates)
    found += c.accepted && c.kind == "new" && std::abs(c.centroid[0] - 22.5) < 2.0 &&
             std::abs(c.centroid[1] - 22.5) < 2.0 && std::abs(c.centroid[2] - 6.0) < 2.0;
  return found;
}

/// The lesion activity between `earlier` and `later` (same space) on `grid`, as the follow-up runs it: both resampled
/// onto the grid, brought to one resolution, compared
std::vector<detail::ActivityCandidate>
Compare(const gw::FloatImage * earlier, const gw::FloatImage * later, const gw::FloatImage * grid,
        const std::array<unsigned int, 3> & refinement)
{
  const auto identity = reg::MakeRigidTransform({ 0, 0, 0 }, { 0, 0, 0 }, reg::GridCenter(earlier));
  const auto before = reg::Resample(earlier, grid, identity);
  const auto after = reg::Resample(later, grid, identity);
  const auto rb = detail::ResolutionOnGrid(grid, earlier, nullptr);
  const auto ra = detail::ResolutionOnGrid(grid, later, nullptr);
  const auto [tb, ta] = detail::CommonResolution(rb, ra);
  auto brain = gw::testing::MakeMask(grid->GetLargestPossibleRegion().GetSize(), grid->GetSpacing(), grid->GetOrigin());
  brain->FillBuffer(1);
  detail::ActivityParams p;
  p.refinement = refinement;
  std::vector<detail::ActivityCandidate> candidates;
  detail::SubtractionActivity(detail::BlurToResolution(before, rb, tb), detail::BlurToResolution(after, ra, ta), brain,
                              nullptr, nullptr, p, &candidates);
  return candidates;
}

TEST(FollowupAnalysisGrid, ANewLesionOfAThinSliceIsFoundOnTheRefinedGridOnly)
{
  // earlier: 4 mm slices (centres 0, 4, 8 ...); later: 2 mm slices (a 3D FLAIR, say), the new lesion exactly in its
  // slice at 6 mm, which falls halfway between two 4 mm centres: resampled at 4 and 8 mm (later slices without it)
  // it vanishes
  const auto earlier = Scan(4.0, 12, 0.0, 1);
  const auto later = Scan(2.0, 23, 60.0, 2);
  // on the earlier scan's own 4 mm grid: nothing
  EXPECT_EQ(FoundAtTheLesion(Compare(earlier, later, earlier, { { 1, 1, 1 } })), 0);
  const auto refined = detail::RefinedAnalysisGrid(earlier, { { earlier, nullptr }, { later, nullptr } });
  ASSERT_EQ(refined.refinement, (std::array<unsigned int, 3>{ { 1, 1, 2 } }));
  // on the grid refined to 2 mm (4 mm / 2 <= 1.25 x 2 mm) a plane lies at 6 mm, through the lesion's slice: found
  // (blurred by the 4 mm slices' profile, a Gaussian of sigma 4 / sqrt(12) mm, it keeps 0.74 of its contrast: 44 of
  // 60, about 8 sigmas of the difference)
  EXPECT_EQ(FoundAtTheLesion(Compare(earlier, later, refined.grid, refined.refinement)), 1);
}

TEST(FollowupAnalysisGrid, AThinStructureOfOneThickSliceIsNoNewLesionBetweenTwo)
{
  // a thin bright plate (z 20.5..21.5 mm, 6 x 6 mm, +200) in both scans, no change: in the 4 mm earlier scan it is
  // within the slice at 20 mm (18..22, a quarter of its contrast) and the interpolation halfway to the next slice
  // (22 mm, a plane of the refined grid) halves that; the 2 mm later scan holds it in its slices at 20 and 22 mm
  const auto earlier = Scan(4.0, 12, 200.0, 3, 20.5, 21.5);
  const auto later = Scan(2.0, 23, 200.0, 4, 20.5, 21.5);
  const auto refined = detail::RefinedAnalysisGrid(earlier, { { earlier, nullptr }, { later, nullptr } });
  ASSERT_EQ(refined.refinement, (std::array<unsigned int, 3>{ { 1, 1, 2 } }));
  // its local contrast on the refined grid: 5.4 sigmas before (the interpolation), 11.6 after, rose and doubled; from
  // the earlier slice at 20 mm it did not double
  int accepted = 0;
  for (const auto & c : Compare(earlier, later, refined.grid, refined.refinement))
    accepted += c.accepted && c.rising;
  EXPECT_EQ(accepted, 0) << "a new lesion accepted at a structure of one earlier slice";
}
} // namespace
