#pragma once
/// \file matching.h
/// \brief Lesion instances across timepoints: connected components, matching by overlap in a common space, and
/// the change classification new / enlarging / shrinking / stable / resolved / merged / split.
#include <string>
#include <vector>

#include "gw/core/types.h"

namespace gw::longitudinal
{
/// One connected component of a mask.
struct Component
{
  int label = 0; ///< 1..N in the label image
  std::size_t voxels = 0;
  double volume = 0.0; ///< [mm^3]
  PointType centroid;  ///< LPS [mm]
  PointType peak;      ///< a voxel centre inside the component nearest the centroid, LPS [mm]
};

/// \brief Labels the connected components (26-connectivity) of `mask`, drops those smaller than `minVolume`
/// [mm^3] or `minVoxels`, and relabels 1..N by decreasing volume. Returns the components; `labels` receives the
/// label image (same grid as the mask).
std::vector<Component> LabelComponents(const MaskImage * mask, double minVolume, std::size_t minVoxels,
                                       LabelImage::Pointer & labels);

enum class ChangeKind
{
  New,
  Enlarging,
  Shrinking,
  Stable,
  Resolved,
  Merged,
  Split
};
const char * ToString(ChangeKind kind);

struct MatchOptions
{
  double enlargingRelative = 0.5;  ///< volume increase ≥ 50% ...
  double enlargingAbsolute = 10.0; ///< ... and ≥ 10 mm^3 counts as enlarging (shrinking symmetric)
  std::size_t minOverlapVoxels = 1;
};

/// A group of components linked by overlap (a connected component of the bipartite overlap graph).
struct Match
{
  std::vector<int> before; ///< labels in the earlier label map
  std::vector<int> after;  ///< labels in the later label map
  ChangeKind kind = ChangeKind::Stable;
  double volumeBefore = 0.0; ///< [mm^3], summed over `before`
  double volumeAfter = 0.0;  ///< [mm^3], summed over `after`
  PointType location;        ///< LPS [mm]: peak of the largest `after` component (or `before` if resolved)
};

/// \brief Matches two label maps on the same grid (common space). Components that overlap by at least
/// `minOverlapVoxels` are linked; each linked group is classified: 0→1 new, 1→0 resolved, n→1 merged, 1→n split,
/// 1→1 enlarging/shrinking/stable by the volume change thresholds. Throws Error(Input) on different grids.
std::vector<Match> MatchComponents(const LabelImage * before, const std::vector<Component> & beforeComponents,
                                   const LabelImage * after, const std::vector<Component> & afterComponents,
                                   const MatchOptions & options = {});

/// \brief Change map on the common grid: 0 none, 1 new lesion voxels, 2 voxels added to an enlarging lesion,
/// 3 voxels of a resolved lesion, 4 voxels lost by a shrinking lesion, 5 unchanged lesion voxels.
LabelImage::Pointer ChangeMap(const LabelImage * before, const LabelImage * after, const std::vector<Match> & matches);
} // namespace gw::longitudinal
