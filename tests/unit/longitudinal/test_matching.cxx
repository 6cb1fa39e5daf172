#include <cmath>

#include <gtest/gtest.h>
#include <itkImageRegionIteratorWithIndex.h>

#include "gw/core/error.h"
#include "gw/longitudinal/matching.h"
#include "gw/testing/testing.h"

namespace
{
using namespace gw::longitudinal;

gw::MaskImage::Pointer
Blank()
{
  gw::SizeType size = { { 40, 40, 40 } };
  gw::SpacingType spacing;
  spacing.Fill(0.5);
  gw::PointType origin;
  origin.Fill(0.0);
  return gw::testing::MakeMask(size, spacing, origin);
}

/// Paints a ball of radius r [voxels] centred at c [voxel index].
void
Ball(gw::MaskImage * m, double cx, double cy, double cz, double r)
{
  itk::ImageRegionIteratorWithIndex<gw::MaskImage> it(m, m->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto i = it.GetIndex();
    if (std::pow(i[0] - cx, 2) + std::pow(i[1] - cy, 2) + std::pow(i[2] - cz, 2) <= r * r)
      it.Set(1);
  }
}

struct Labeled
{
  gw::LabelImage::Pointer labels;
  std::vector<Component> comps;
};

Labeled
Label(const gw::MaskImage * m)
{
  Labeled l;
  l.comps = LabelComponents(m, 0.0, 1, l.labels);
  return l;
}

TEST(Matching, ComponentsSortedByVolumeWithCentroids)
{
  auto m = Blank();
  Ball(m, 10, 10, 10, 2);
  Ball(m, 30, 30, 30, 4);
  const auto l = Label(m);
  ASSERT_EQ(l.comps.size(), 2u);
  EXPECT_GT(l.comps[0].volume, l.comps[1].volume);
  EXPECT_NEAR(l.comps[0].centroid[0], 15.0, 1e-9); // index 30 * 0.5 mm, symmetric ball: exact
  EXPECT_NEAR(l.comps[0].volume, l.comps[0].voxels * 0.125, 1e-12);
  gw::LabelImage::Pointer tmp;
  EXPECT_EQ(LabelComponents(m, l.comps[1].volume + 0.01, 1, tmp).size(), 1u) << "min volume filter";
}

TEST(Matching, ClassifiesNewResolvedEnlargingStableMergedSplit)
{
  auto before = Blank(), after = Blank();
  Ball(before, 8, 8, 8, 2);  // -> resolved
  Ball(before, 20, 8, 8, 2); // -> enlarging (radius 2 -> 4)
  Ball(after, 20, 8, 8, 4);
  Ball(before, 8, 30, 8, 3); // -> stable
  Ball(after, 8, 30, 8, 3);
  Ball(after, 30, 30, 30, 2);  // new
  Ball(before, 20, 30, 20, 2); // two before ...
  Ball(before, 26, 30, 20, 2);
  Ball(after, 23, 30, 20, 4);  // ... merged into one
  Ball(before, 8, 20, 30, 4);  // one before ...
  Ball(after, 5, 20, 30, 1.5); // ... split into two
  Ball(after, 11, 20, 30, 1.5);
  const auto b = Label(before), a = Label(after);
  const auto matches = MatchComponents(b.labels, b.comps, a.labels, a.comps);
  std::map<std::string, int> kinds;
  for (const auto & m : matches)
    ++kinds[ToString(m.kind)];
  EXPECT_EQ(kinds["new"], 1);
  EXPECT_EQ(kinds["resolved"], 1);
  EXPECT_EQ(kinds["enlarging"], 1);
  EXPECT_EQ(kinds["stable"], 1);
  EXPECT_EQ(kinds["merged"], 1);
  EXPECT_EQ(kinds["split"], 1);
  const auto change = ChangeMap(b.labels, a.labels, matches);
  const auto idx = gw::IndexType{ { 30, 30, 30 } };
  EXPECT_EQ(change->GetPixel(idx), 1) << "new lesion voxel";
  EXPECT_EQ(change->GetPixel(gw::IndexType{ { 8, 8, 8 } }), 3) << "resolved voxel";
  EXPECT_EQ(change->GetPixel(gw::IndexType{ { 23, 8, 8 } }), 2) << "voxel added to the enlarging lesion";
}

TEST(Matching, DifferentGridsRefused)
{
  auto a = Blank();
  gw::SizeType size = { { 10, 10, 10 } };
  gw::SpacingType spacing;
  spacing.Fill(1.0);
  gw::PointType origin;
  origin.Fill(0.0);
  auto b = gw::testing::MakeMask(size, spacing, origin);
  const auto la = Label(a), lb = Label(b);
  EXPECT_THROW(MatchComponents(la.labels, la.comps, lb.labels, lb.comps), gw::Error);
}
} // namespace
