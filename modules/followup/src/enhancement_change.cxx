#include "enhancement_change.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "gw/core/error.h"
#include "gw/segmentation/anatomy.h"

namespace gw::followup::detail
{
namespace seg = gw::segmentation;

nlohmann::json
PreexistingEnhancement(std::vector<longitudinal::Match> & matches, const LabelImage * after, const MaskImage * earlier,
                       const seg::EnhancementResult & earlierEnhancement, const io::TransformType * toEarlier,
                       std::set<int> & preexisting)
{
  const auto size = earlier->GetLargestPossibleRegion().GetSize();
  const auto * enhancing = earlier->GetBufferPointer();
  const FloatImage * zMap = earlierEnhancement.zMap;
  if (!zMap || !seg::SameGrid(zMap, earlier))
    ThrowInternal("preexisting enhancement: the earlier z map must be on the grid of its enhancement");
  const float * z = zMap->GetBufferPointer();
  const double grow = earlierEnhancement.growThreshold;
  long r[3]; // the neighbourhood's half-widths [voxels]
  for (int k = 0; k < 3; ++k)
    r[k] = std::max(1L, long(std::floor(kPreexistingReachMm / earlier->GetSpacing()[k] + 1e-6)));
  struct Counts
  {
    std::size_t voxels = 0, enhancing = 0, nearGrowLevel = 0;
    double zSum = 0.0;
  };
  std::map<int, Counts> counts; // per label: voxels, voxels enhancing before, near a grow-level voxel, sum of z
  const auto afterSize = after->GetLargestPossibleRegion().GetSize();
  const std::size_t n = after->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t v = 0; v < n; ++v)
  {
    const int l = after->GetBufferPointer()[v];
    if (!l)
      continue;
    const itk::Index<3> index{ { long(v % afterSize[0]), long((v / afterSize[0]) % afterSize[1]),
                                 long(v / (afterSize[0] * afterSize[1])) } };
    PointType p;
    after->TransformIndexToPhysicalPoint(index, p);
    if (toEarlier)
      p = toEarlier->TransformPoint(p);
    const auto ci = earlier->TransformPhysicalPointToContinuousIndex<double>(p);
    long c[3];
    for (int k = 0; k < 3; ++k)
      c[k] = std::lround(ci[k]);
    const auto inside = [&](long x, long y, long zz)
    { return x >= 0 && y >= 0 && zz >= 0 && x < long(size[0]) && y < long(size[1]) && zz < long(size[2]); };
    const auto at = [&](long x, long y, long zz)
    { return std::size_t(x) + size[0] * (std::size_t(y) + size[1] * std::size_t(zz)); };
    bool was = false, nearGrow = false;
    for (long dz = -r[2]; dz <= r[2]; ++dz)
      for (long dy = -r[1]; dy <= r[1]; ++dy)
        for (long dx = -r[0]; dx <= r[0]; ++dx)
        {
          const long x = c[0] + dx, y = c[1] + dy, zz = c[2] + dz;
          if (!inside(x, y, zz))
            continue;
          was = was || enhancing[at(x, y, zz)] != 0;
          nearGrow = nearGrow || z[at(x, y, zz)] >= grow;
        }
    auto & count = counts[l];
    ++count.voxels;
    count.enhancing += was ? 1 : 0;
    count.nearGrowLevel += nearGrow ? 1 : 0;
    count.zSum += inside(c[0], c[1], c[2]) ? double(z[at(c[0], c[1], c[2])]) : 0.0;
  }
  auto out = nlohmann::json::array();
  for (auto & m : matches)
  {
    if (m.kind != longitudinal::ChangeKind::New)
      continue;
    Counts sum;
    for (int l : m.after)
    {
      sum.voxels += counts[l].voxels;
      sum.enhancing += counts[l].enhancing;
      sum.nearGrowLevel += counts[l].nearGrowLevel;
      sum.zSum += counts[l].zSum;
    }
    const double voxels = double(std::max<std::size_t>(1, sum.voxels));
    const double fraction = double(sum.enhancing) / voxels;
    const double fractionNearGrow = double(sum.nearGrowLevel) / voxels;
    const double meanZ = sum.zSum / voxels;
    const bool fainter = fractionNearGrow >= 0.5 && meanZ >= 0.5 * grow;
    const bool was = fraction >= 0.5 || fainter;
    out.push_back({ { "location_lps_mm", { m.location[0], m.location[1], m.location[2] } },
                    { "volume_mm3", m.volumeAfter },
                    { "fraction_enhancing_before", fraction },
                    { "fraction_near_grow_level_before", fractionNearGrow },
                    { "mean_z_before", meanZ },
                    { "enhanced_before", was },
                    { "fainter_before", fainter && fraction < 0.5 } });
    if (was)
    {
      m.kind = longitudinal::ChangeKind::Stable;
      preexisting.insert(m.after.begin(), m.after.end());
    }
  }
  return out;
}
} // namespace gw::followup::detail
