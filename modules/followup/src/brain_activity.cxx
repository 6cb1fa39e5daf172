// Brain (MS-like) lesion activity by subtraction in the baseline space.
#include "brain_activity.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "gw/core/error.h"
#include "gw/segmentation/anatomy.h"

namespace gw::followup::detail
{
namespace seg = gw::segmentation;

/// Brain (MS-like) lesion activity by subtraction in the baseline space, the approach of longitudinal MS lesion
/// detection: both FLAIR (or primary) images are normalised to their own brain (z = (I - median) / 1.4826 MAD),
/// the difference of the later minus the earlier is normalised the same way, and active voxels are those where
/// the difference exceeds kDiff sigma and the later image is hyperintense (z > kBright); hysteresis down to half
/// of both thresholds; components of at least minVolume [mm^3]. Returns a label map (1 new: no overlap with the
/// earlier lesions; 2 enlarging: overlapping them) on the baseline grid.
LabelImage::Pointer
SubtractionActivity(const FloatImage * before, const FloatImage * after, const MaskImage * brain,
                    const MaskImage * beforeLesions, double minVolume, double kDiff, double kBright)
{
  const std::size_t n = before->GetLargestPossibleRegion().GetNumberOfPixels();
  const float * b = before->GetBufferPointer();
  const float * a = after->GetBufferPointer();
  const auto * m = brain->GetBufferPointer();
  auto robust = [&](auto get)
  {
    std::vector<float> v;
    for (std::size_t i = 0; i < n; ++i)
      if (m[i])
        v.push_back(get(i));
    if (v.size() < 100)
      ThrowProcessing("brain mask too small for lesion activity detection");
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    const double med = v[v.size() / 2];
    for (float & x : v)
      x = std::abs(x - float(med));
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return std::pair<double, double>(med, std::max(1e-6, 1.4826 * v[v.size() / 2]));
  };
  const auto [mb, sb] = robust([&](std::size_t i) { return b[i]; });
  const auto [ma, sa] = robust([&](std::size_t i) { return a[i]; });
  auto zb = [&, mb = mb, sb = sb](std::size_t i) { return (b[i] - mb) / sb; };
  auto za = [&, ma = ma, sa = sa](std::size_t i) { return (a[i] - ma) / sa; };
  const auto [md, sd] = robust([&](std::size_t i) { return float(za(i) - zb(i)); });
  auto seed = MaskImage::New();
  seed->CopyInformation(before);
  seed->SetRegions(before->GetLargestPossibleRegion());
  seed->Allocate(true);
  auto grow = MaskImage::New();
  grow->CopyInformation(before);
  grow->SetRegions(before->GetLargestPossibleRegion());
  grow->Allocate(true);
  for (std::size_t i = 0; i < n; ++i)
  {
    if (!m[i])
      continue;
    const double d = (za(i) - zb(i) - md) / sd;
    grow->GetBufferPointer()[i] = (d > 0.5 * kDiff && za(i) > 0.5 * kBright) ? 1 : 0;
    seed->GetBufferPointer()[i] = (d > kDiff && za(i) > kBright) ? 1 : 0;
  }
  // hysteresis: keep grow components that hold a seed
  std::vector<seg::Component> components;
  const auto labels = seg::LabelComponents(grow, 1, 0.0, &components);
  std::set<int> seeded;
  for (std::size_t i = 0; i < n; ++i)
    if (seed->GetBufferPointer()[i] && labels->GetBufferPointer()[i])
      seeded.insert(labels->GetBufferPointer()[i]);
  for (std::size_t i = 0; i < n; ++i)
    grow->GetBufferPointer()[i] = seeded.count(labels->GetBufferPointer()[i]) ? 1 : 0;
  const auto active = seg::LabelComponents(grow, 3, minVolume, &components);
  std::set<int> overlapping;
  for (std::size_t i = 0; beforeLesions && i < n; ++i)
    if (active->GetBufferPointer()[i] && beforeLesions->GetBufferPointer()[i])
      overlapping.insert(active->GetBufferPointer()[i]);
  auto out = LabelImage::New();
  out->CopyInformation(before);
  out->SetRegions(before->GetLargestPossibleRegion());
  out->Allocate(true);
  for (std::size_t i = 0; i < n; ++i)
  {
    const int l = active->GetBufferPointer()[i];
    if (l)
      out->GetBufferPointer()[i] = overlapping.count(l) ? 2 : 1;
  }
  return out;
}

} // namespace gw::followup::detail
