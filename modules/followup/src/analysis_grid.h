// The grid of the baseline space: the baseline's grid, refined where a later scan was acquired finer. Internal to
// the follow-up module.
#pragma once

#include <array>
#include <utility>
#include <vector>

#include "gw/core/types.h"
#include "gw/io/transform_io.h"

namespace gw::followup::detail
{
/// Resolution of `image` along the unit vector `u` (in its physical space) [mm]: the largest projection of its
/// voxel's edges on u, max_k |u . d_k| s_k (d_k its axes, s_k their spacing). Along an axis it is that axis'
/// spacing (the slice spacing along the slice normal); obliquely, the coarsest edge as seen along u.
double ResolutionAlong(const itk::ImageBase<3> * image, const itk::Vector<double, 3> & u);

/// A grid and how many times finer than the baseline's grid it is along each of its axes.
struct AnalysisGrid
{
  FloatImage::Pointer grid; ///< geometry only (no buffer)
  std::array<unsigned int, 3> refinement{ { 1, 1, 1 } };
};

/// Largest refinement along one axis, and of all three together (the number of voxels).
constexpr unsigned int kMaxAxisRefinement = 4;
constexpr unsigned int kMaxRefinement = 8;
/// An axis is refined when a scan resolves it this many times finer than the baseline's spacing along it.
constexpr double kRefineRatio = 1.25;

/// The grid every timepoint is resampled onto (the "baseline space"): the baseline's grid, refined by an integer
/// factor f along each axis where a scan (`acquisitions`: an image and its transform, baseline point -> image point;
/// null transform = identity) resolves that axis finer: f is the smallest integer with spacing / f <= kRefineRatio x
/// the finest resolution (ResolutionAlong, the axis mapped by the transform at the grid's centre), at most
/// kMaxAxisRefinement, the three together at most kMaxRefinement (the largest factor is lowered first). Resampling a
/// scan onto a coarser grid samples it between its slices and loses what a thin slice held: a lesion new on 3 mm
/// slices, read on the 4 mm grid of an earlier scan, falls partly or wholly between two of its voxels. The refined
/// grid keeps the baseline's origin and direction, and its voxels every f-th plane are the baseline's voxels
/// (size (N - 1) f + 1). Returns the baseline's own grid (refinement 1, 1, 1) when no axis is refined.
AnalysisGrid RefinedAnalysisGrid(
  const FloatImage * baseline,
  const std::vector<std::pair<const itk::ImageBase<3> *, const io::TransformType *>> & acquisitions);
/// The resolution (ResolutionAlong) of `image` along each axis of `grid`, the axes mapped by `transform` (grid point
/// -> image point; null = identity) at the grid's centre [mm].
std::array<double, 3> ResolutionOnGrid(const itk::ImageBase<3> * grid, const itk::ImageBase<3> * image,
                                       const io::TransformType * transform);

/// The resolutions an earlier and a later scan compared voxel by voxel are brought to, from theirs (`earlier`, `later`:
/// ResolutionOnGrid of each), along each axis where they differ by more than a tenth. Thin slices show thin
/// structures (a sinus, dura, cortex) sharper than thick ones, and their difference is not a change; the
/// later scan is never left the sharper one:
/// - a finer later scan gets the earlier one's slice profile on top of its own (as if acquired again in the earlier
///   slices: sqrt(later^2 + earlier^2)). Blurring it only to the earlier resolution (a Gaussian of the variance
///   difference) left a false new lesion on a null pair (a 3 mm FLAIR against itself as acquired in 4 mm slices): a
///   thin structure of one 3 mm slice stayed brighter than the 4 mm slices show it;
/// - a finer earlier scan is blurred to the later one's resolution (the variance difference).
std::pair<std::array<double, 3>, std::array<double, 3>> CommonResolution(const std::array<double, 3> & earlier,
                                                                         const std::array<double, 3> & later);

/// `image` (resampled onto a grid, where it resolves `resolution` along the grid's axes) blurred to the coarser
/// `target` resolution along each axis: a Gaussian of variance (target^2 - resolution^2) / 12, the difference of the
/// variances of two box slice profiles. The image itself when no axis needs more than a tenth of its spacing.
FloatImage::ConstPointer BlurToResolution(const FloatImage * image, const std::array<double, 3> & resolution,
                                          const std::array<double, 3> & target);
} // namespace gw::followup::detail
