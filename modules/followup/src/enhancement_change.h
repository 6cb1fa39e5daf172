// Enhancement at a later scan that an earlier scan already had: internal to the follow-up module.
#pragma once

#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/types.h"
#include "gw/io/transform_io.h"
#include "gw/longitudinal/matching.h"
#include "gw/segmentation/lesion.h"

namespace gw::followup::detail
{
/// How far (along each axis, at least one voxel) a later enhancing focus looks for the earlier scan's enhancement
/// before it counts as new [mm]: one to two in-plane voxels, the registration gate's error bound and the
/// partial-volume shift of a thin structure. On a real exam (5.5 mm slices) re-imaged after a 3-4 degree turn, one
/// vessel focus of 3 voxels at the skull base was read as new with the next voxel only, none with 2 mm.
constexpr double kPreexistingReachMm = 2.0;

/// \brief Enhancement that an earlier scan already had: a later focus without an earlier cluster (`New` in `matches`)
/// whose voxels, at least half of them, already enhanced at the earlier scan (`earlier`, detail::EnhancingAnywhere),
/// or that was already there, fainter (see below). Such a focus fell short of a cluster before (no voxel above the
/// seed threshold, below the minimum size, or outside that day's search region); it is re-classified `Stable` and its
/// labels are added to `preexisting`.
/// Fainter: at least half of its voxels had a voxel of the earlier z map (`earlierEnhancement.zMap`) at or above the
/// grow threshold within the same reach, a lone one too, and the earlier z map's mean over the focus (the nearest voxel
/// of each) is at least half the grow threshold. A faint vessel whose z straddles the thresholds is that: on the TCGA
/// exam re-imaged with the patient moving during the injection, two 3-4 voxel foci (13 and 18 mm^3) had earlier means
/// of 2.5 and every voxel within reach of an earlier voxel of 3.5 or more (mostly lone ones, which EnhancingAnywhere
/// leaves out), and were flagged new. Noise is not: a lone voxel of noise at the grow level lies within reach of a
/// voxel with a probability of about 2 % (75 neighbours, p = 2.3e-4 each), and the mean of three voxels of noise
/// reaches half the grow level (3.0 of its sigmas) with about 0.1 %. A new focus planted in the exam had an earlier
/// mean of 0.2 and no earlier voxel at the grow level within reach.
/// The earlier enhancement is read on its own grid (`toEarlier` maps the common grid's points to its points): any
/// enhancing voxel within kPreexistingReachMm of the point's nearest voxel along each axis (at least the next
/// voxel). Thin enhancing structures (vessels, dura, the scalp's and the skull base's) are one or two voxels
/// across: resampled across thick slices onto the common grid their enhancement is diluted by the slices beside
/// them, and two scans' partial volumes of them differ by a voxel or more. Returns the record of every `New` focus
/// tested.
nlohmann::json PreexistingEnhancement(std::vector<longitudinal::Match> & matches, const LabelImage * after,
                                      const MaskImage * earlier,
                                      const segmentation::EnhancementResult & earlierEnhancement,
                                      const io::TransformType * toEarlier, std::set<int> & preexisting);
} // namespace gw::followup::detail
