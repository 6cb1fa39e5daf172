// Brain (MS-like) lesion activity between two co-registered timepoints: internal to the follow-up module.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/types.h"
#include "gw/io/transform_io.h"

namespace gw::followup::detail
{
/// Parameters of SubtractionActivity (intensities in robust sigmas of the brain, lengths in mm).
struct ActivityParams
{
  double minVolume = 3.0;    ///< smallest reported component [mm^3]
  double kDiff = 4.0;        ///< voxel seeds: the normalised difference rises (falls) by this many robust sigmas ...
  double kBright = 2.5;      ///< ... and the later (earlier) image is this many robust sigmas above the brain median
  double smoothingMm = 0.0;  ///< Gaussian sigma applied to both images before subtraction [mm] (0: none)
  double kLocal = 1.0;       ///< lesion level: mean above the surrounding shell, and its rise (fall) [sigmas]
  double shellInnerMm = 1.5; ///< the shell that serves as local reference: from this distance ...
  double shellOuterMm = 5.0; ///< ... to this one [mm]
  bool falling = true;       ///< also detect falling changes (shrinking and resolved lesions)
  /// how many times finer the grid is than the earlier scan's acquisition along each axis (the baseline grid refined
  /// for a finer later scan, see RefinedAnalysisGrid): the thick slice axis and its slices' spacing are the acquired
  /// ones
  std::array<unsigned int, 3> refinement{ { 1, 1, 1 } };
};

/// One candidate of SubtractionActivity and the lesion-level decision on it (for QA in summary.json).
struct ActivityCandidate
{
  bool rising = true;  ///< direction: rising (new/enlarging candidate) or falling (shrinking/resolved candidate)
  PointType centroid;  ///< LPS [mm]
  double volume = 0.0; ///< [mm^3]
  std::size_t voxels = 0;
  bool overlapsEarlierLesions = false; ///< overlaps the earlier timepoint's lesion mask
  /// Rising candidates: labels of the earlier lesions it is contiguous with (overlaps, or touches in the
  /// 26-neighbourhood); a rising candidate with any is an enlarging part of those lesions, otherwise a new lesion.
  std::vector<int> earlierLesions;
  double newVolume = 0.0;   ///< its voxels outside the earlier lesions (the new part) [mm^3]
  PointType newCentroid;    ///< centroid of the new part (of the candidate when it has none), LPS [mm]
  double extensionMm = 0.0; ///< how far the new part reaches beyond the earlier lesions: 90th percentile of the
                            ///< distances of its voxel centres from theirs [mm]
  double meanDiff = 0.0;    ///< mean normalised difference over the candidate [sigmas of the difference]
  double localBefore = 0.0; ///< earlier image: candidate mean minus shell median [brain sigmas]
  double localAfter = 0.0;  ///< later image: the same
  /// earlier image blurred along a thick slice axis (0.25, 0.5, 0.25), as resampling blurs the later one: the same
  /// (0 on grids without a thick axis, or when an earlier test decided)
  double localBeforeBlurred = 0.0;
  bool accepted = false;
  std::string kind;   ///< when accepted: "new", "enlarging", "shrinking" or "resolved"
  std::string reason; ///< why it was rejected (empty when accepted)
};
nlohmann::json ToJson(const std::vector<ActivityCandidate> & candidates);

/// Brain (MS-like) lesion activity by subtraction in the baseline space (the subtraction approach of longitudinal MS
/// lesion detection, e.g. Ganiler et al. 2014, Neuroradiology 56:363): both images (FLAIR, or the primary contrast)
/// are optionally smoothed (Gaussian, `smoothingMm`) and normalised to their own brain (z = (I - median) / 1.4826 MAD);
/// their difference (later minus earlier) is normalised the same way. The analysis runs in both directions with the
/// same thresholds, inside `valid` (voxels that both acquisitions cover away from their first and last slices; null
/// = everywhere):
/// - rising (new or enlarging lesions): voxels where the difference exceeds kDiff sigma and the later image is
///   hyperintense (z > kBright), grown by hysteresis down to half of both thresholds, components of at least
///   minVolume [mm^3]. A candidate is kept when, in the later image, it is brighter than its own surroundings (mean
///   over the candidate minus the median of a shell shellInnerMm..shellOuterMm around it, in the brain, away from
///   other candidates and from the earlier lesions: the surroundings of a lesion's grown part are the normal-appearing
///   brain around it, not the lesion it grew from, >= kLocal) and this local contrast rose by at least kLocal from the
///   earlier image, to at least twice its earlier value: a new or enlarging lesion is a focal hyperintensity that was
///   not there, while global contrast drift between sessions (grey matter, bias field), shifts of the CSF border and
///   the partial-volume changes of a structure that was already bright (vessels, fat, cortex seen through thick
///   slices cut at another angle) are not. The doubling mirrors the falling direction's halving.
/// - falling (shrinking or resolved lesions; `falling`): the mirror image, voxels where the difference is below
///   -kDiff sigma and the EARLIER image is hyperintense (z > kBright), the same hysteresis and minimum volume; kept
///   when it overlaps the earlier lesions (`beforeLesions`; as in gw::longitudinal::MatchComponents, only an earlier
///   lesion can shrink or resolve, so nothing is kept without that mask), its earlier local contrast is >= kLocal,
///   that contrast fell by at least kLocal and to at most half its earlier value (the voxels left the lesion by the
///   half-maximum boundary convention; a lesion that only dims with the session's contrast stays a lesion). It is
///   "resolved" when its later local contrast is below kLocal (back to the background), "shrinking" otherwise.
/// - thick slices (the thick slice axis of `before`'s grid as acquired: its spacing times `refinement`): the later
///   image, resampled onto the earlier grid from slices acquired at another angle, mixes up to a quarter of each
///   neighbouring slice into a voxel halfway between two of its own slices. A candidate is kept only when the same
///   tests also pass against the earlier image blurred along the slice axis by (0.25, 0.5, 0.25) at the acquired
///   slice spacing (voxels `refinement` apart along that axis): a thin bright
///   structure of the neighbouring slice (scalp fat and cortex at the vertex, dura, vessels, CSF at the skull base)
///   brightens or dims a voxel by resampling alone; a new lesion, or one that resolved, changes against both.
///   On a grid refined along that axis (`refinement` > 1), a plane between two acquired slices of the earlier image
///   holds their interpolation, which halves a thin structure of one of them: a rising candidate is also kept only
///   when its contrast rose and doubled against each of the two slices (the earlier image with each plane replaced
///   by the acquired slice below it, then above it).
/// - width: a new lesion (a rising candidate contiguous with no earlier lesion) is at least 3 mm across (MAGNIMS), so
///   on a grid fine enough in-plane it holds a block of floor(3 mm / sqrt(2) / spacing) voxels along each of the two
///   finest axes (2 x 2 on a 1 mm grid); a thinner candidate, a line one voxel wide, is an edge that moved between the
///   scans (cortex, the skull base, scalp beside the brain mask), not a lesion. No test on grids coarser than
///   1.06 mm in-plane (fewer than two voxels).
/// Returns a label map on the baseline grid with the codes of gw::longitudinal::ChangeMap: 1 new (not contiguous
/// with `beforeLesions`), 2 enlarging (contiguous with an earlier lesion: overlapping it or touching it in the
/// 26-neighbourhood, the "new part contiguous with a pre-existing lesion" of MS lesion-activity practice), 3
/// resolved, 4 shrinking (the voxels lost); fills `candidates` (rising first, then falling) when given.
/// `beforeLesions`: the earlier timepoint's lesions as a label map on the same grid (null: none).
/// `older`: the scans before `before` on the same grid (null-free). A rising candidate not contiguous with an
/// earlier lesion is new only when, against each of them too, its contrast rose by kLocal and at least doubled: a
/// new lesion is absent from every earlier scan, while a thin structure one follow-up cut poorly is not.
/// `difference` (when given): the normalised difference the voxel level thresholds (later minus earlier, in robust
/// sigmas of the difference over the analysed region; 0 outside that region), the subtraction image a reader checks.
LabelImage::Pointer SubtractionActivity(const FloatImage * before, const FloatImage * after, const MaskImage * brain,
                                        const LabelImage * beforeLesions, const MaskImage * valid,
                                        const ActivityParams & params,
                                        std::vector<ActivityCandidate> * candidates = nullptr,
                                        const std::vector<const FloatImage *> & older = {},
                                        FloatImage::Pointer * difference = nullptr);

/// Voxels of the `reference` grid whose points (mapped by `referenceToImage`, reference point -> image point; null
/// = identity) fall inside the field of view of `image` at least `marginVoxels` voxels from its border along every
/// axis. The outermost slices of a 2D multi-slice acquisition carry inflow and slice-profile artefacts (bright CSF
/// on FLAIR) and interpolation there lacks a neighbour.
MaskImage::Pointer FieldOfViewMask(const itk::ImageBase<3> * image, const itk::ImageBase<3> * reference,
                                   const io::TransformType * referenceToImage, double marginVoxels);
} // namespace gw::followup::detail
