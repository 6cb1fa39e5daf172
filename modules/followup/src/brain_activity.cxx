// Brain (MS-like) lesion activity by subtraction in the baseline space.
#include "brain_activity.h"
#include "measurements.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include <itkDiscreteGaussianImageFilter.h>

#include "gw/core/error.h"
#include "gw/segmentation/anatomy.h"

namespace gw::followup::detail
{
namespace seg = gw::segmentation;

namespace
{
/// median and 1.4826 MAD of the values of `get(i)` over the voxels of `m`
template <typename Get>
std::pair<double, double>
Robust(const MaskImage::PixelType * m, std::size_t n, Get get)
{
  std::vector<float> v;
  for (std::size_t i = 0; i < n; ++i)
    if (m[i])
      v.push_back(get(i));
  if (v.size() < 100)
    ThrowProcessing("brain mask too small for lesion activity detection");
  const auto [med, sigma] = MedianAndSigma(v);
  return { med, std::max(1e-6, sigma) };
}

FloatImage::Pointer
Smooth(const FloatImage * image, double sigmaMm)
{
  if (sigmaMm <= 0)
  {
    auto copy = FloatImage::New();
    copy->Graft(image);
    return copy;
  }
  using Filter = itk::DiscreteGaussianImageFilter<FloatImage, FloatImage>;
  auto f = Filter::New();
  f->SetInput(image);
  f->SetVariance(sigmaMm * sigmaMm); // physical units (UseImageSpacing is on by default)
  f->SetMaximumError(0.01);
  f->SetMaximumKernelWidth(32);
  f->Update();
  return f->GetOutput();
}

MaskImage::Pointer
NewMask(const itk::ImageBase<3> * grid)
{
  auto m = MaskImage::New();
  m->CopyInformation(grid);
  m->SetRegions(grid->GetLargestPossibleRegion());
  m->Allocate(true);
  return m;
}
} // namespace

nlohmann::json
ToJson(const std::vector<ActivityCandidate> & candidates)
{
  auto out = nlohmann::json::array();
  for (const auto & c : candidates)
    out.push_back({ { "centroid_lps_mm", { c.centroid[0], c.centroid[1], c.centroid[2] } },
                    { "direction", c.rising ? "rising" : "falling" },
                    { "volume_mm3", c.volume },
                    { "mean_difference_sigma", c.meanDiff },
                    { "local_contrast_before_sigma", c.localBefore },
                    { "local_contrast_after_sigma", c.localAfter },
                    { "local_contrast_before_blurred_sigma", c.localBeforeBlurred },
                    { "overlaps_earlier_lesions", c.overlapsEarlierLesions },
                    { "contiguous_earlier_lesions", c.earlierLesions },
                    { "new_part_volume_mm3", c.newVolume },
                    { "new_part_centroid_lps_mm", { c.newCentroid[0], c.newCentroid[1], c.newCentroid[2] } },
                    { "extension_mm", c.extensionMm },
                    { "accepted", c.accepted },
                    { "kind", c.kind },
                    { "reason", c.reason } });
  return out;
}

namespace
{
/// Voxel level of one direction: seeds where the signed difference `sign * d` exceeds kDiff and `bright` (the later
/// image for rising changes, the earlier one for falling changes) exceeds kBright, grown by hysteresis down to half
/// of both thresholds inside `m`; components of at least minVolume [mm^3].
LabelImage::Pointer
Candidates(const itk::ImageBase<3> * grid, const MaskImage::PixelType * m, const std::vector<float> & d, float sign,
           const std::vector<float> & bright, const ActivityParams & params, std::vector<seg::Component> & components)
{
  const std::size_t n = d.size();
  auto seed = NewMask(grid);
  auto grow = NewMask(grid);
  for (std::size_t i = 0; i < n; ++i)
  {
    if (!m[i])
      continue;
    const float s = sign * d[i];
    grow->GetBufferPointer()[i] = (s > 0.5 * params.kDiff && bright[i] > 0.5 * params.kBright) ? 1 : 0;
    seed->GetBufferPointer()[i] = (s > params.kDiff && bright[i] > params.kBright) ? 1 : 0;
  }
  const auto grown = seg::LabelComponents(grow, 1, 0.0, &components);
  std::set<int> seeded;
  for (std::size_t i = 0; i < n; ++i)
    if (seed->GetBufferPointer()[i] && grown->GetBufferPointer()[i])
      seeded.insert(grown->GetBufferPointer()[i]);
  for (std::size_t i = 0; i < n; ++i)
    grow->GetBufferPointer()[i] = seeded.count(grown->GetBufferPointer()[i]) ? 1 : 0;
  return seg::LabelComponents(grow, 3, params.minVolume, &components);
}

/// Lesion level of one candidate (label `label` of `cl`): mean of the earlier and later z images and of the
/// difference over it, and the medians of a shell shellInnerMm..shellOuterMm around it inside `m`, away from every
/// candidate (`anyCandidate`) and from the earlier lesions (`earlier`, null: none), using exact distances in the
/// candidate's bounding box plus a margin.
struct LocalStats
{
  double meanBefore = 0.0, meanAfter = 0.0, meanDiff = 0.0;
  double shellBefore = 0.0, shellAfter = 0.0;
  std::size_t shellVoxels = 0;
};

LocalStats
Local(const itk::ImageBase<3> * grid, const LabelImage::PixelType * cl, int label, const std::array<long, 6> & bb,
      const MaskImage::PixelType * m, const std::vector<std::uint8_t> & anyCandidate,
      const LabelImage::PixelType * earlier, const std::vector<float> & zb, const std::vector<float> & za,
      const std::vector<float> & d, const ActivityParams & params)
{
  const auto sp = grid->GetSpacing();
  const auto size = grid->GetLargestPossibleRegion().GetSize();
  std::array<long, 3> lo, hi;
  for (int k = 0; k < 3; ++k)
  {
    const long margin = long(std::ceil(params.shellOuterMm / sp[k]));
    lo[k] = std::max(0L, bb[k] - margin);
    hi[k] = std::min(long(size[k]) - 1, bb[k + 3] + margin);
  }
  // the candidate in its box, and the exact distance to it
  auto sub = MaskImage::New();
  MaskImage::IndexType start;
  for (int k = 0; k < 3; ++k)
    start[k] = lo[k];
  MaskImage::RegionType r;
  r.SetIndex({ { 0, 0, 0 } });
  r.SetSize({ { std::size_t(hi[0] - lo[0] + 1), std::size_t(hi[1] - lo[1] + 1), std::size_t(hi[2] - lo[2] + 1) } });
  PointType origin;
  grid->TransformIndexToPhysicalPoint(start, origin);
  sub->SetRegions(r);
  sub->SetSpacing(sp);
  sub->SetOrigin(origin);
  sub->SetDirection(grid->GetDirection());
  sub->Allocate(true);
  auto global = [&](long x, long y, long z) { return std::size_t(x) + size[0] * (std::size_t(y) + size[1] * z); };
  std::size_t j = 0;
  for (long z = lo[2]; z <= hi[2]; ++z)
    for (long y = lo[1]; y <= hi[1]; ++y)
      for (long x = lo[0]; x <= hi[0]; ++x, ++j)
        sub->GetBufferPointer()[j] = cl[global(x, y, z)] == label ? 1 : 0;
  const auto dist = seg::DistanceMap(sub);
  double sumA = 0, sumB = 0, sumD = 0;
  std::size_t count = 0;
  std::vector<float> shellA, shellB;
  j = 0;
  for (long z = lo[2]; z <= hi[2]; ++z)
    for (long y = lo[1]; y <= hi[1]; ++y)
      for (long x = lo[0]; x <= hi[0]; ++x, ++j)
      {
        const std::size_t g = global(x, y, z);
        if (sub->GetBufferPointer()[j])
        {
          sumA += za[g];
          sumB += zb[g];
          sumD += d[g];
          ++count;
        }
        else if (m[g] && !anyCandidate[g] && !(earlier && earlier[g]) &&
                 dist->GetBufferPointer()[j] > params.shellInnerMm &&
                 dist->GetBufferPointer()[j] <= params.shellOuterMm)
        {
          shellA.push_back(za[g]);
          shellB.push_back(zb[g]);
        }
      }
  LocalStats s;
  if (count)
  {
    s.meanAfter = sumA / double(count);
    s.meanBefore = sumB / double(count);
    s.meanDiff = sumD / double(count);
  }
  s.shellVoxels = shellA.size();
  s.shellAfter = Median(shellA);
  s.shellBefore = Median(shellB);
  return s;
}

/// A rising candidate's local contrast rose from `before` to `after` as a new lesion's does: by kLocal, at least
/// doubling.
bool
Rose(double before, double after, const ActivityParams & params)
{
  return after - before >= params.kLocal && after >= 2.0 * before;
}

/// A falling candidate's local contrast fell from `before` to `after` as a resolving lesion's does: by kLocal, at
/// least halving.
bool
Fell(double before, double after, const ActivityParams & params)
{
  return before - after >= params.kLocal && after <= 0.5 * before;
}

/// The smallest new lesion counted (MAGNIMS: a new T2 lesion is at least 3 mm across) [mm].
constexpr double kMinLesionMm = 3.0;

/// The block of voxels a new lesion of at least kMinLesionMm holds in the plane of `grid`'s two axes other than
/// `coarsest` (the acquisition's coarsest axis): it contains an axis-aligned square of side kMinLesionMm / sqrt(2), so
/// floor(side / spacing) voxel centres along each in-plane axis (one along the coarsest axis). All ones when the grid
/// is too coarse for the test (fewer than two centres along both in-plane axes): every candidate holds that block.
std::array<long, 3>
LesionBlock(const itk::ImageBase<3> * grid, int coarsest)
{
  const auto sp = grid->GetSpacing();
  std::array<long, 3> block{ 1, 1, 1 };
  for (int k = 0; k < 3; ++k)
    if (k != coarsest)
      block[k] = std::max(1L, long(std::floor(kMinLesionMm / std::sqrt(2.0) / sp[k] + 1e-9)));
  return block;
}

/// whether label `label` of `labels` (bounding box `bb`) holds a whole `block` of voxels
bool
HoldsBlock(const LabelImage * labels, int label, const std::array<long, 6> & bb, const std::array<long, 3> & block)
{
  const auto size = labels->GetLargestPossibleRegion().GetSize();
  const auto * cl = labels->GetBufferPointer();
  const auto at = [&](long x, long y, long z)
  { return cl[std::size_t(x) + size[0] * (std::size_t(y) + size[1] * std::size_t(z))]; };
  for (long z = bb[2]; z + block[2] - 1 <= bb[5]; ++z)
    for (long y = bb[1]; y + block[1] - 1 <= bb[4]; ++y)
      for (long x = bb[0]; x + block[0] - 1 <= bb[3]; ++x)
      {
        bool whole = true;
        for (long dz = 0; whole && dz < block[2]; ++dz)
          for (long dy = 0; whole && dy < block[1]; ++dy)
            for (long dx = 0; whole && dx < block[0]; ++dx)
              whole = at(x + dx, y + dy, z + dz) == label;
        if (whole)
          return true;
      }
  return false;
}

/// the part of a rising candidate outside the earlier lesions
struct NewPart
{
  std::size_t voxels = 0;
  std::array<double, 3> sum{ 0.0, 0.0, 0.0 }; ///< of the voxel centres, LPS [mm]
  std::vector<float> distances;               ///< of its voxels from the earlier lesions [mm]
};

/// per label of `cl`: bounding box (min xyz, max xyz) in voxel indices
std::map<int, std::array<long, 6>>
Boxes(const LabelImage * labels)
{
  const auto size = labels->GetLargestPossibleRegion().GetSize();
  const std::size_t n = labels->GetLargestPossibleRegion().GetNumberOfPixels();
  const auto * cl = labels->GetBufferPointer();
  std::map<int, std::array<long, 6>> box;
  for (std::size_t i = 0; i < n; ++i)
    if (cl[i])
    {
      const long x = long(i % size[0]), y = long((i / size[0]) % size[1]), z = long(i / (size[0] * size[1]));
      auto it = box.find(cl[i]);
      if (it == box.end())
        box[cl[i]] = { x, y, z, x, y, z };
      else
      {
        auto & bb = it->second;
        bb = { std::min(bb[0], x), std::min(bb[1], y), std::min(bb[2], z),
               std::max(bb[3], x), std::max(bb[4], y), std::max(bb[5], z) };
      }
    }
  return box;
}
} // namespace

LabelImage::Pointer
SubtractionActivity(const FloatImage * beforeRaw, const FloatImage * afterRaw, const MaskImage * brain,
                    const LabelImage * beforeLesions, const MaskImage * valid, const ActivityParams & params,
                    std::vector<ActivityCandidate> * candidates, const std::vector<const FloatImage *> & olderRaw,
                    FloatImage::Pointer * difference)
{
  for (const auto * o : olderRaw)
    if (!o || !seg::SameGrid(beforeRaw, o))
      ThrowInternal("lesion activity: the older images must share the grid");
  if (!seg::SameGrid(beforeRaw, afterRaw) || !seg::SameGrid(beforeRaw, brain) ||
      (valid && !seg::SameGrid(beforeRaw, valid)) || (beforeLesions && !seg::SameGrid(beforeRaw, beforeLesions)))
    ThrowInternal("lesion activity: images and masks must share one grid");
  // the grid as the earlier scan was acquired (a refined grid's spacing times its refinement): its thick slice axis
  auto acquired = FloatImage::New();
  acquired->CopyInformation(beforeRaw);
  {
    auto spacing = beforeRaw->GetSpacing();
    for (unsigned int k = 0; k < 3; ++k)
      spacing[k] *= double(std::max(1u, params.refinement[k]));
    acquired->SetSpacing(spacing);
  }
  const auto before = Smooth(beforeRaw, params.smoothingMm);
  const auto after = Smooth(afterRaw, params.smoothingMm);
  const std::size_t n = before->GetLargestPossibleRegion().GetNumberOfPixels();
  const float * b = before->GetBufferPointer();
  const float * a = after->GetBufferPointer();
  // the analysed region: the brain, where both acquisitions have data
  auto region = NewMask(before);
  auto * m = region->GetBufferPointer();
  for (std::size_t i = 0; i < n; ++i)
    m[i] = brain->GetBufferPointer()[i] && (!valid || valid->GetBufferPointer()[i]) ? 1 : 0;
  // each image normalised to its own brain: z = (I - median) / sigma
  const auto normalised = [&](const float * v)
  {
    const auto [med, sigma] = Robust(m, n, [&](std::size_t i) { return v[i]; });
    std::vector<float> z(n);
    for (std::size_t i = 0; i < n; ++i)
      z[i] = float((v[i] - med) / sigma);
    return z;
  };
  const auto zb = normalised(b), za = normalised(a);
  // the scans before the earlier one, normalised the same way: a new lesion is absent from every earlier scan
  std::vector<std::vector<float>> zo;
  for (const auto * o : olderRaw)
    zo.push_back(normalised(Smooth(o, params.smoothingMm)->GetBufferPointer()));
  // Thick slices: the later image, resampled onto the earlier grid across slices acquired at another angle, mixes
  // up to a quarter of each neighbouring slice into a voxel (the halfway point between two of its slices); the
  // earlier image blurred the same way along the slice axis (0.25, 0.5, 0.25) is what a thin bright structure of a
  // neighbouring slice (scalp fat, dura, a vessel) can look like in it. Empty for grids without a thick axis.
  // On a grid refined along the thick axis, a plane between two acquired slices of the earlier scan reads their
  // interpolation, which dilutes a thin structure of either slice (halfway, to half): the earlier image as each of
  // the two slices (the plane's voxels replaced by those of the acquired slice below it, and above it) is what it
  // can look like there. Empty unless refined.
  std::vector<float> zbBlurred;
  std::array<std::vector<float>, 2> zbSlices;
  {
    const auto size = before->GetLargestPossibleRegion().GetSize();
    const int axis = seg::ThickSliceAxis(acquired);
    const std::size_t step = axis >= 0 ? std::max(1u, params.refinement[axis]) : 1; // voxels between two slices
    if (axis >= 0 && size[axis] > 1)
    {
      const std::size_t plane = axis == 0 ? 1 : (axis == 1 ? size[0] : size[0] * size[1]);
      const std::size_t stride = plane * step;
      zbBlurred.resize(n);
      for (std::size_t i = 0; i < n; ++i)
      {
        const std::size_t c = (i / plane) % size[axis];
        const float below = zb[c >= step ? i - stride : i], above = zb[c + step < size[axis] ? i + stride : i];
        zbBlurred[i] = 0.25f * below + 0.5f * zb[i] + 0.25f * above;
      }
      if (step > 1)
        for (std::size_t side = 0; side < 2; ++side)
        {
          auto & z = zbSlices[side];
          z.resize(n);
          for (std::size_t i = 0; i < n; ++i)
          {
            const std::size_t c = (i / plane) % size[axis];
            const std::size_t lower = c - c % step; // the acquired slice at or below the voxel's plane
            const std::size_t at = side == 0 || c == lower || lower + step >= size[axis] ? lower : lower + step;
            z[i] = zb[i - (c - lower) * plane + (at - lower) * plane];
          }
        }
    }
  }
  std::vector<float> d(n);
  const auto [md, sd] = Robust(m, n, [&](std::size_t i) { return za[i] - zb[i]; });
  for (std::size_t i = 0; i < n; ++i)
    d[i] = float((za[i] - zb[i] - md) / sd);
  if (difference)
  {
    *difference = FloatImage::New();
    (*difference)->CopyInformation(before);
    (*difference)->SetRegions(before->GetLargestPossibleRegion());
    (*difference)->Allocate();
    float * out = (*difference)->GetBufferPointer();
    for (std::size_t i = 0; i < n; ++i)
      out[i] = m[i] ? d[i] : 0.0f;
  }

  // voxel level, per direction: rising (new/enlarging: bright later) and falling (shrinking/resolved: bright earlier)
  std::vector<seg::Component> risingComponents, fallingComponents;
  const auto rising = Candidates(before, m, d, 1.0f, za, params, risingComponents);
  LabelImage::Pointer falling;
  if (params.falling)
    falling = Candidates(before, m, d, -1.0f, zb, params, fallingComponents);
  std::vector<std::uint8_t> anyCandidate(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    anyCandidate[i] = rising->GetBufferPointer()[i] || (falling && falling->GetBufferPointer()[i]);

  // the earlier lesions: which candidates overlap them (falling: only an earlier lesion can shrink or resolve) or are
  // contiguous with them (rising: the grown part of an earlier lesion), and how far each rising candidate's new part
  // reaches beyond them
  const LabelImage::PixelType * earlier = beforeLesions ? beforeLesions->GetBufferPointer() : nullptr;
  std::set<int> fallingOverlapping;
  std::map<int, std::set<int>> contiguous; // rising label -> earlier lesion labels
  std::map<int, NewPart> newParts;         // rising label -> its voxels outside the earlier lesions
  if (earlier)
  {
    const auto size = before->GetLargestPossibleRegion().GetSize();
    FloatImage::Pointer distance; // to the earlier lesions [mm], only when a rising candidate has a new part
    for (std::size_t i = 0; i < n; ++i)
    {
      if (falling && earlier[i] && falling->GetBufferPointer()[i])
        fallingOverlapping.insert(falling->GetBufferPointer()[i]);
      const int label = rising->GetBufferPointer()[i];
      if (!label)
        continue;
      const long x = long(i % size[0]), y = long((i / size[0]) % size[1]), z = long(i / (size[0] * size[1]));
      for (long dz = -1; dz <= 1; ++dz)
        for (long dy = -1; dy <= 1; ++dy)
          for (long dx = -1; dx <= 1; ++dx)
          {
            const long xx = x + dx, yy = y + dy, zz = z + dz;
            if (xx < 0 || yy < 0 || zz < 0 || xx >= long(size[0]) || yy >= long(size[1]) || zz >= long(size[2]))
              continue;
            const auto e = earlier[std::size_t(xx) + size[0] * (std::size_t(yy) + size[1] * std::size_t(zz))];
            if (e)
              contiguous[label].insert(e);
          }
    }
    for (std::size_t i = 0; i < n; ++i)
    {
      const int label = rising->GetBufferPointer()[i];
      if (!label || earlier[i] || !contiguous.count(label))
        continue;
      if (!distance)
      {
        auto mask = NewMask(before);
        for (std::size_t v = 0; v < n; ++v)
          mask->GetBufferPointer()[v] = earlier[v] ? 1 : 0;
        distance = seg::DistanceMap(mask);
      }
      itk::Index<3> idx{ { long(i % size[0]), long((i / size[0]) % size[1]), long(i / (size[0] * size[1])) } };
      PointType p;
      before->TransformIndexToPhysicalPoint(idx, p);
      auto & part = newParts[label];
      ++part.voxels;
      for (int k = 0; k < 3; ++k)
        part.sum[k] += p[k];
      part.distances.push_back(distance->GetBufferPointer()[i]);
    }
  }
  const auto sp = before->GetSpacing();
  const double voxelVolume = sp[0] * sp[1] * sp[2];

  // lesion level: local contrast against a shell around each candidate, before and after
  std::map<int, std::uint16_t> risingCode, fallingCode; // accepted label -> change-map code
  const auto block = LesionBlock(before, seg::CoarsestAxis(acquired));
  std::vector<ActivityCandidate> described;
  for (const bool up : { true, false })
  {
    if (!up && !falling)
      continue;
    const LabelImage * labels = up ? rising.GetPointer() : falling.GetPointer();
    const auto box = Boxes(labels);
    for (const auto & c : up ? risingComponents : fallingComponents)
    {
      const auto s = Local(before, labels->GetBufferPointer(), c.label, box.at(c.label), m, anyCandidate, earlier, zb,
                           za, d, params);
      ActivityCandidate ac;
      ac.rising = up;
      ac.centroid = c.centroid;
      ac.volume = c.volume;
      ac.voxels = c.voxels;
      ac.newCentroid = c.centroid;
      if (up)
      {
        if (contiguous.count(c.label))
        {
          ac.earlierLesions.assign(contiguous.at(c.label).begin(), contiguous.at(c.label).end());
          const auto it = newParts.find(c.label);
          ac.overlapsEarlierLesions = it == newParts.end() || it->second.voxels < c.voxels;
          if (it != newParts.end())
          {
            ac.newVolume = double(it->second.voxels) * voxelVolume;
            for (int k = 0; k < 3; ++k)
              ac.newCentroid[k] = it->second.sum[k] / double(it->second.voxels);
            // 90th percentile: robust to the few voxels that the hysteresis adds on a neighbouring (thick) slice
            auto & dist = it->second.distances;
            const std::size_t k = std::min(dist.size() - 1, std::size_t(std::floor(0.9 * double(dist.size()))));
            std::nth_element(dist.begin(), dist.begin() + long(k), dist.end());
            ac.extensionMm = dist[k];
          }
        }
        else
          ac.newVolume = c.volume;
      }
      else
        ac.overlapsEarlierLesions = fallingOverlapping.count(c.label) > 0;
      ac.meanDiff = s.meanDiff;
      // the candidate's local contrast in another earlier image `z` (an older scan, or the earlier one blurred across
      // thick slices), when a test needs it
      auto contrastIn = [&](const std::vector<float> & z)
      {
        const auto so = Local(before, labels->GetBufferPointer(), c.label, box.at(c.label), m, anyCandidate, earlier, z,
                              za, d, params);
        return so.meanBefore - so.shellBefore;
      };
      auto blurredBefore = [&] { return ac.localBeforeBlurred = contrastIn(zbBlurred); };
      if (s.shellVoxels < 10)
        ac.reason = "no surrounding brain to compare with";
      else
      {
        ac.localAfter = s.meanAfter - s.shellAfter;
        ac.localBefore = s.meanBefore - s.shellBefore;
        if (up)
        {
          if (ac.localAfter < params.kLocal)
            ac.reason = "not brighter than its surroundings in the later image";
          else if (ac.localAfter - ac.localBefore < params.kLocal)
            ac.reason = "its contrast against the surroundings did not rise";
          else if (ac.localAfter < 2.0 * ac.localBefore)
            ac.reason = "it was already bright and its contrast less than doubled";
          else if (ac.earlierLesions.empty() && !HoldsBlock(labels, c.label, box.at(c.label), block))
            ac.reason = "thinner than a lesion: no block of " + std::to_string(block[0]) + " x " +
                        std::to_string(block[1]) + " x " + std::to_string(block[2]) +
                        " voxels, which a lesion 3 mm across holds (a line along an edge)";
          else if (ac.earlierLesions.empty() && std::any_of(zo.begin(), zo.end(),
                                                            [&](const std::vector<float> & z)
                                                            { return !Rose(contrastIn(z), ac.localAfter, params); }))
            ac.reason = "an older scan already had it (its contrast did not rise from that scan as from a new lesion)";
          else if (!zbBlurred.empty() && !Rose(blurredBefore(), ac.localAfter, params))
            ac.reason = "the earlier image's neighbouring slices explain it (its contrast did not rise and double from "
                        "the earlier image blurred across slices as the resampled later image is)";
          else if (std::any_of(zbSlices.begin(), zbSlices.end(),
                               [&](const std::vector<float> & z)
                               { return !z.empty() && !Rose(contrastIn(z), ac.localAfter, params); }))
            ac.reason = "one of the earlier scan's two slices it lies between had it (its contrast did not rise and "
                        "double from each)";
          else
          {
            ac.accepted = true;
            ac.kind = ac.earlierLesions.empty() ? "new" : "enlarging";
            risingCode[c.label] = ac.earlierLesions.empty() ? 1 : 2;
          }
        }
        else
        {
          if (!ac.overlapsEarlierLesions)
            ac.reason = "not part of an earlier lesion (nothing to shrink or resolve)";
          else if (ac.localBefore < params.kLocal)
            ac.reason = "not brighter than its surroundings in the earlier image";
          else if (ac.localBefore - ac.localAfter < params.kLocal)
            ac.reason = "its contrast against the surroundings did not fall";
          else if (ac.localAfter > 0.5 * ac.localBefore)
            ac.reason = "it kept more than half of its contrast against the surroundings";
          else if (!zbBlurred.empty() && !Fell(blurredBefore(), ac.localAfter, params))
            ac.reason = "resampling across slices explains it (its contrast did not fall by half from the earlier "
                        "image blurred across slices as the resampled later image is)";
          else
          {
            ac.accepted = true;
            ac.kind = ac.localAfter < params.kLocal ? "resolved" : "shrinking";
            fallingCode[c.label] = ac.localAfter < params.kLocal ? 3 : 4;
          }
        }
      }
      described.push_back(ac);
    }
  }
  if (candidates)
    *candidates = described;

  auto out = LabelImage::New();
  out->CopyInformation(before);
  out->SetRegions(before->GetLargestPossibleRegion());
  out->Allocate(true);
  for (std::size_t i = 0; i < n; ++i)
  {
    auto it = risingCode.find(rising->GetBufferPointer()[i]);
    if (it != risingCode.end())
      out->GetBufferPointer()[i] = it->second;
    else if (falling && (it = fallingCode.find(falling->GetBufferPointer()[i])) != fallingCode.end())
      out->GetBufferPointer()[i] = it->second;
  }
  return out;
}

MaskImage::Pointer
FieldOfViewMask(const itk::ImageBase<3> * image, const itk::ImageBase<3> * reference,
                const io::TransformType * referenceToImage, double marginVoxels)
{
  auto out = NewMask(reference);
  const auto size = reference->GetLargestPossibleRegion().GetSize();
  const auto imageSize = image->GetLargestPossibleRegion().GetSize();
  const auto imageStart = image->GetLargestPossibleRegion().GetIndex();
  auto * o = out->GetBufferPointer();
  std::size_t i = 0;
  itk::Index<3> idx;
  for (idx[2] = 0; idx[2] < long(size[2]); ++idx[2])
    for (idx[1] = 0; idx[1] < long(size[1]); ++idx[1])
      for (idx[0] = 0; idx[0] < long(size[0]); ++idx[0], ++i)
      {
        PointType p;
        reference->TransformIndexToPhysicalPoint(idx, p);
        if (referenceToImage)
          p = referenceToImage->TransformPoint(p);
        const auto ci = image->TransformPhysicalPointToContinuousIndex<double>(p);
        bool inside = true;
        for (int k = 0; k < 3 && inside; ++k)
          inside = ci[k] >= double(imageStart[k]) + marginVoxels &&
                   ci[k] <= double(imageStart[k]) + double(imageSize[k]) - 1.0 - marginVoxels;
        o[i] = inside ? 1 : 0;
      }
  return out;
}

} // namespace gw::followup::detail
