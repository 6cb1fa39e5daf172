// Brain lesion activity (internal to the follow-up module, modules/followup/src/brain_activity.h) on thick slices:
// the later image, resampled onto the earlier grid, mixes neighbouring slices; a thin bright structure then
// brightens the slices beside it and dims its own without any change of the anatomy.
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "brain_activity.h"
#include "gw/testing/testing.h"

namespace
{
namespace detail = gw::followup::detail;

constexpr long kNx = 64, kNy = 64, kNz = 16;

/// Anatomy on a 1 x 1 x `sliceMm` grid: brain 100; a thin bright plate (fat, 400) one slice thick at slice 8,
/// x 16..47, y 8..13; when `lesion`, a new lesion (220) of 6 x 6 voxels in slices 3 and 4 at x 36..41, y 40..45.
std::vector<float>
Anatomy(bool lesion)
{
  std::vector<float> a(std::size_t(kNx * kNy * kNz), 100.0f);
  for (long z = 0; z < kNz; ++z)
    for (long y = 0; y < kNy; ++y)
      for (long x = 0; x < kNx; ++x)
      {
        float & v = a[std::size_t(x + kNx * (y + kNy * z))];
        if (z == 8 && x >= 16 && x <= 47 && y >= 8 && y <= 13)
          v = 400.0f;
        if (lesion && (z == 3 || z == 4) && x >= 36 && x <= 41 && y >= 40 && y <= 45)
          v = 220.0f;
      }
  return a;
}

/// `anatomy` (blurred along z by 0.25, 0.5, 0.25 when `blurred`: resampled halfway between slices acquired at
/// another angle) plus Gaussian noise of sigma 4, on a grid of `sliceMm` slices.
gw::FloatImage::Pointer
Image(const std::vector<float> & anatomy, bool blurred, double sliceMm, std::uint64_t seed)
{
  gw::SizeType size;
  size[0] = kNx;
  size[1] = kNy;
  size[2] = kNz;
  gw::SpacingType spacing;
  spacing[0] = 1.0;
  spacing[1] = 1.0;
  spacing[2] = sliceMm;
  gw::PointType origin;
  origin.Fill(0.0);
  auto img = gw::testing::MakeImage(size, spacing, origin);
  gw::testing::Rng rng(seed);
  const std::size_t plane = std::size_t(kNx * kNy);
  for (std::size_t i = 0; i < anatomy.size(); ++i)
  {
    const std::size_t z = i / plane;
    double v = anatomy[i];
    if (blurred)
      v = 0.25 * anatomy[z > 0 ? i - plane : i] + 0.5 * anatomy[i] +
          0.25 * anatomy[z + 1 < std::size_t(kNz) ? i + plane : i];
    img->GetBufferPointer()[i] = float(v + 4.0 * rng.Normal());
  }
  return img;
}

struct Outcome
{
  std::vector<detail::ActivityCandidate> candidates;
  std::size_t acceptedAtPlate = 0; ///< accepted candidates (either direction) centred on the plate's slices 7..9
  bool lesionFound = false;        ///< an accepted new candidate at the new lesion
};

Outcome
RunActivity(double sliceMm)
{
  const auto before = Image(Anatomy(false), false, sliceMm, 1);
  const auto after = Image(Anatomy(true), true, sliceMm, 2);
  auto brain =
    gw::testing::MakeMask(before->GetLargestPossibleRegion().GetSize(), before->GetSpacing(), before->GetOrigin());
  brain->FillBuffer(1);
  // the plate is an earlier lesion (it is bright on the earlier image): only an earlier lesion can shrink
  auto earlier = gw::LabelImage::New();
  earlier->CopyInformation(before);
  earlier->SetRegions(before->GetLargestPossibleRegion());
  earlier->Allocate(true);
  const auto plate = Anatomy(false);
  for (std::size_t i = 0; i < plate.size(); ++i)
    earlier->GetBufferPointer()[i] = plate[i] > 300.0f ? 1 : 0;
  Outcome o;
  detail::SubtractionActivity(before, after, brain, earlier, nullptr, detail::ActivityParams{}, &o.candidates);
  for (const auto & c : o.candidates)
  {
    if (!c.accepted)
      continue;
    // the plate: x 16..47, y 8..13 (centre 31.5, 10.5), slices 7..9
    if (std::abs(c.centroid[0] - 31.5) < 16.0 && std::abs(c.centroid[1] - 10.5) < 3.0 &&
        std::abs(c.centroid[2] - 8.0 * sliceMm) <= sliceMm)
      ++o.acceptedAtPlate;
    // the lesion's centre: x 38.5, y 42.5, z between slices 3 and 4
    if (c.kind == "new" && std::abs(c.centroid[0] - 38.5) < 1.0 && std::abs(c.centroid[1] - 42.5) < 1.0 &&
        std::abs(c.centroid[2] - 3.5 * sliceMm) < sliceMm)
      o.lesionFound = true;
  }
  return o;
}

TEST(FollowupBrainActivity, ThickSliceResamplingOfABrightPlateIsNoChange)
{
  // 5 mm slices: the plate's slices 7 and 9 brighten by a quarter of its excess (+75, 19 noise sigmas) and slice 8
  // dims by half (-150) in the blurred later image; the new lesion (+120 over 6 x 6 x 2 voxels, blurred into slices
  // 2..5) is the only change of the anatomy. (A small cluster of noise elsewhere may pass as well: only the plate
  // and the lesion are checked.)
  const auto o = RunActivity(5.0);
  EXPECT_TRUE(o.lesionFound) << "the new lesion is found";
  EXPECT_EQ(o.acceptedAtPlate, 0u) << "no change at the plate: its brighter neighbouring slices and its dimmer own "
                                      "slice are explained by the earlier image blurred across slices";
  std::size_t rising = 0, falling = 0; // the plate's candidates that only the thick-slice test rejects
  for (const auto & c : o.candidates)
    if (!c.accepted && c.reason.find("across slices") != std::string::npos)
    {
      if (c.rising)
      {
        ++rising;
        EXPECT_GT(c.localBeforeBlurred, c.localBefore + 1.0) << "beside the plate the blurred earlier image holds a "
                                                                "quarter of it";
      }
      else
      {
        ++falling;
        EXPECT_LT(c.localBeforeBlurred, c.localBefore - 1.0) << "on the plate's slice the blurred earlier image "
                                                                "holds half of it";
      }
    }
  EXPECT_GE(rising, 1u) << "the rise beside the plate passes every other test (it would be an enlarging lesion)";
  EXPECT_GE(falling, 1u) << "the plate's dimming passes every other test (it would be a shrinking lesion)";
}

TEST(FollowupBrainActivity, LinesOneVoxelWideAreNoLesions)
{
  // A new lesion is at least 3 mm across (MAGNIMS), so on a 1 mm in-plane grid it holds a block of 2 x 2 voxels; a
  // line one voxel wide (an edge that moved between the scans: cortex, a sulcus, scalp beside the brain mask) is no
  // lesion however bright. Grid 1 x 1 x 5 mm; after: +120 (30 noise sigmas) on a diagonal line of 8 voxels
  // (slice 8), a straight line of 8 voxels (slice 11), and the smallest new lesion, the 2 x 2 voxels of slice 4
  // whose centres lie within 1.5 mm of (40.5, 40.5).
  auto anatomy = std::vector<float>(std::size_t(kNx * kNy * kNz), 100.0f);
  auto at = [&](long x, long y, long z) -> float & { return anatomy[std::size_t(x + kNx * (y + kNy * z))]; };
  const auto before = Image(anatomy, false, 5.0, 3);
  for (long i = 0; i < 8; ++i)
  {
    at(10 + i, 10 + i, 8) = 220.0f;
    at(10 + i, 50, 11) = 220.0f;
  }
  for (long y = 40; y <= 41; ++y)
    for (long x = 40; x <= 41; ++x)
      at(x, y, 4) = 220.0f;
  const auto after = Image(anatomy, false, 5.0, 4);
  auto brain =
    gw::testing::MakeMask(before->GetLargestPossibleRegion().GetSize(), before->GetSpacing(), before->GetOrigin());
  brain->FillBuffer(1);
  for (long z = 0; z < kNz; ++z) // the columns x = 0..3 lie outside the brain
    for (long y = 0; y < kNy; ++y)
      for (long x = 0; x < 4; ++x)
        brain->GetBufferPointer()[std::size_t(x + kNx * (y + kNy * z))] = 0;
  std::vector<detail::ActivityCandidate> candidates;
  gw::FloatImage::Pointer difference;
  detail::SubtractionActivity(before, after, brain, nullptr, nullptr, detail::ActivityParams{}, &candidates, {},
                              &difference);
  // the subtraction image: the lesion's rise in sigmas of the difference (120 over noise of 4 * sqrt(2): about 21),
  // zero outside the brain
  ASSERT_TRUE(difference);
  EXPECT_GT(difference->GetBufferPointer()[std::size_t(40 + kNx * (40 + kNy * 4))], 15.0);
  EXPECT_EQ(difference->GetBufferPointer()[std::size_t(2 + kNx * (40 + kNy * 4))], 0.0f);
  std::size_t lines = 0;
  bool lesion = false;
  for (const auto & c : candidates)
  {
    // tolerance: the hysteresis adds a few noise voxels around a candidate (at most 1.5 mm in-plane, or part of a
    // neighbouring slice)
    const auto near = [&](double x, double y, double z) {
      return std::abs(c.centroid[0] - x) < 1.5 && std::abs(c.centroid[1] - y) < 1.5 &&
             std::abs(c.centroid[2] - z) < 2.5;
    };
    if (near(40.5, 40.5, 20.0))
      lesion = c.accepted && c.kind == "new";
    const bool diagonal = near(13.5, 13.5, 40.0), straight = near(13.5, 50.0, 55.0);
    if (diagonal || straight)
    {
      ++lines;
      EXPECT_FALSE(c.accepted) << "a line one voxel wide is no lesion";
      EXPECT_NE(c.reason.find("thinner than a lesion: no block of 2 x 2 x 1 voxels"), std::string::npos) << c.reason;
      EXPECT_GE(c.localAfter - c.localBefore, 20.0) << "it passes the contrast tests (a rise of 30 noise sigmas)";
    }
  }
  EXPECT_EQ(lines, 2u) << "each line is one candidate";
  EXPECT_TRUE(lesion) << "the 2 x 2 voxel lesion (20 mm^3) is found as new";
}
} // namespace
