#include "gw/longitudinal/matching.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>

#include <itkImageRegionConstIteratorWithIndex.h>
#include <itkImageRegionIterator.h>

#include "gw/core/error.h"
#include "gw/segmentation/anatomy.h"

namespace gw::longitudinal
{
const char *
ToString(ChangeKind kind)
{
  switch (kind)
  {
    case ChangeKind::New:
      return "new";
    case ChangeKind::Enlarging:
      return "enlarging";
    case ChangeKind::Shrinking:
      return "shrinking";
    case ChangeKind::Stable:
      return "stable";
    case ChangeKind::Resolved:
      return "resolved";
    case ChangeKind::Merged:
      return "merged";
    case ChangeKind::Split:
      return "split";
  }
  return "unknown";
}

namespace
{
bool
SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b)
{
  if (a->GetLargestPossibleRegion() != b->GetLargestPossibleRegion())
    return false;
  for (unsigned i = 0; i < 3; ++i)
  {
    if (std::abs(a->GetSpacing()[i] - b->GetSpacing()[i]) > 1e-6 ||
        std::abs(a->GetOrigin()[i] - b->GetOrigin()[i]) > 1e-4)
      return false;
    for (unsigned j = 0; j < 3; ++j)
      if (std::abs(a->GetDirection()[i][j] - b->GetDirection()[i][j]) > 1e-6)
        return false;
  }
  return true;
}
} // namespace

std::vector<Component>
LabelComponents(const MaskImage * mask, double minVolume, std::size_t minVoxels, LabelImage::Pointer & labels)
{
  // the segmentation module's labelling (26-connected, 1..N by decreasing volume); ITK's ConnectedComponentImageFilter
  // did the same with pointer arithmetic on a null buffer in its line offsets (UBSan)
  std::vector<segmentation::Component> found;
  labels = segmentation::LabelComponents(mask, std::max<std::size_t>(minVoxels, 1), minVolume, &found);
  std::vector<Component> comps;
  for (const auto & f : found)
  {
    Component c;
    c.label = f.label;
    c.voxels = f.voxels;
    c.volume = f.volume;
    c.centroid = f.centroid;
    comps.push_back(c);
  }
  // the voxel centre of each component nearest its centroid
  std::map<int, std::size_t> byLabel;
  for (std::size_t k = 0; k < comps.size(); ++k)
    byLabel[comps[k].label] = k;
  std::vector<double> bestDist(comps.size(), std::numeric_limits<double>::max());
  itk::ImageRegionConstIteratorWithIndex<LabelImage> it(labels, labels->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const int l = it.Get();
    if (l == 0)
      continue;
    const auto k = byLabel.find(l);
    if (k == byLabel.end())
      continue;
    PointType p;
    labels->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    const double d2 = p.SquaredEuclideanDistanceTo(comps[k->second].centroid);
    if (d2 < bestDist[k->second])
    {
      bestDist[k->second] = d2;
      comps[k->second].peak = p;
    }
  }
  return comps;
}

std::vector<Match>
MatchComponents(const LabelImage * before, const std::vector<Component> & beforeComponents, const LabelImage * after,
                const std::vector<Component> & afterComponents, const MatchOptions & options)
{
  if (!SameGrid(before, after))
    ThrowInput("lesion maps of two timepoints are not on the same grid (register them to a common space first)");
  const std::size_t nb = beforeComponents.size(), na = afterComponents.size();
  // overlap counts between before-label i and after-label j
  std::map<std::pair<int, int>, std::size_t> overlap;
  itk::ImageRegionConstIterator<LabelImage> ib(before, before->GetLargestPossibleRegion());
  itk::ImageRegionConstIterator<LabelImage> ia(after, after->GetLargestPossibleRegion());
  for (; !ib.IsAtEnd(); ++ib, ++ia)
  {
    const int b = ib.Get(), a = ia.Get();
    if (b > 0 && a > 0 && static_cast<std::size_t>(b) <= nb && static_cast<std::size_t>(a) <= na)
      ++overlap[{ b, a }];
  }
  // union-find over nodes: before 0..nb-1, after nb..nb+na-1
  std::vector<std::size_t> parent(nb + na);
  std::iota(parent.begin(), parent.end(), 0);
  std::function<std::size_t(std::size_t)> find = [&](std::size_t x)
  {
    while (parent[x] != x)
      x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const auto & [key, n] : overlap)
    if (n >= options.minOverlapVoxels)
      parent[find(key.first - 1)] = find(nb + key.second - 1);

  std::map<std::size_t, Match> groups;
  for (std::size_t i = 0; i < nb; ++i)
  {
    auto & m = groups[find(i)];
    m.before.push_back(beforeComponents[i].label);
    m.volumeBefore += beforeComponents[i].volume;
  }
  for (std::size_t j = 0; j < na; ++j)
  {
    auto & m = groups[find(nb + j)];
    m.after.push_back(afterComponents[j].label);
    m.volumeAfter += afterComponents[j].volume;
  }
  std::vector<Match> matches;
  for (auto & [root, m] : groups)
  {
    if (m.before.empty())
      m.kind = ChangeKind::New;
    else if (m.after.empty())
      m.kind = ChangeKind::Resolved;
    else if (m.before.size() > 1 && m.after.size() == 1)
      m.kind = ChangeKind::Merged;
    else if (m.before.size() == 1 && m.after.size() > 1)
      m.kind = ChangeKind::Split;
    else if (m.before.size() > 1)
      m.kind = ChangeKind::Merged;
    else
    {
      const double dv = m.volumeAfter - m.volumeBefore;
      const double rel = m.volumeBefore > 0 ? dv / m.volumeBefore : 0.0;
      if (dv >= options.enlargingAbsolute && rel >= options.enlargingRelative)
        m.kind = ChangeKind::Enlarging;
      else if (-dv >= options.enlargingAbsolute &&
               -rel >= options.enlargingRelative / (1.0 + options.enlargingRelative))
        m.kind = ChangeKind::Shrinking;
      else
        m.kind = ChangeKind::Stable;
    }
    // location: the largest component of the later timepoint, else of the earlier
    const Component * best = nullptr;
    for (int l : m.after)
      if (!best || afterComponents[l - 1].volume > best->volume)
        best = &afterComponents[l - 1];
    if (!best)
      for (int l : m.before)
        if (!best || beforeComponents[l - 1].volume > best->volume)
          best = &beforeComponents[l - 1];
    if (best)
      m.location = best->peak;
    matches.push_back(m);
  }
  std::stable_sort(matches.begin(), matches.end(),
                   [](const Match & a, const Match & b) { return a.volumeAfter > b.volumeAfter; });
  return matches;
}

LabelImage::Pointer
ChangeMap(const LabelImage * before, const LabelImage * after, const std::vector<Match> & matches)
{
  if (!SameGrid(before, after))
    ThrowInput("change map: label maps are not on the same grid");
  std::map<int, ChangeKind> kindAfter, kindBefore;
  for (const auto & m : matches)
  {
    for (int l : m.after)
      kindAfter[l] = m.kind;
    for (int l : m.before)
      kindBefore[l] = m.kind;
  }
  auto out = LabelImage::New();
  out->CopyInformation(after);
  out->SetRegions(after->GetLargestPossibleRegion());
  out->Allocate();
  itk::ImageRegionConstIterator<LabelImage> ib(before, before->GetLargestPossibleRegion());
  itk::ImageRegionConstIterator<LabelImage> ia(after, after->GetLargestPossibleRegion());
  itk::ImageRegionIterator<LabelImage> io(out, out->GetLargestPossibleRegion());
  for (; !ib.IsAtEnd(); ++ib, ++ia, ++io)
  {
    const int b = ib.Get(), a = ia.Get();
    std::uint16_t code = 0;
    if (a > 0)
    {
      const auto k = kindAfter.count(a) ? kindAfter[a] : ChangeKind::New;
      if (k == ChangeKind::New)
        code = 1;
      else if (b == 0)
        code = 2; // voxels added to an existing lesion
      else
        code = 5;
    }
    else if (b > 0)
    {
      const auto k = kindBefore.count(b) ? kindBefore[b] : ChangeKind::Resolved;
      code = k == ChangeKind::Resolved ? 3 : 4;
    }
    io.Set(code);
  }
  return out;
}
} // namespace gw::longitudinal
