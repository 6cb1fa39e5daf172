// Brain (MS-like) lesion activity between two co-registered timepoints: internal to the follow-up module.
#pragma once

#include "gw/core/types.h"

namespace gw::followup::detail
{
/// Brain (MS-like) lesion activity by subtraction in the baseline space, the approach of longitudinal MS lesion
/// detection: both FLAIR (or primary) images are normalised to their own brain (z = (I - median) / 1.4826 MAD),
/// the difference of the later minus the earlier is normalised the same way, and active voxels are those where
/// the difference exceeds kDiff sigma and the later image is hyperintense (z > kBright); hysteresis down to half
/// of both thresholds; components of at least minVolume [mm^3]. Returns a label map (1 new: no overlap with the
/// earlier lesions; 2 enlarging: overlapping them) on the baseline grid.
LabelImage::Pointer SubtractionActivity(const FloatImage * before, const FloatImage * after, const MaskImage * brain,
                                        const MaskImage * beforeLesions, double minVolume, double kDiff,
                                        double kBright);
} // namespace gw::followup::detail
