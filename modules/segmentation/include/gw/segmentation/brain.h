#pragma once
/// \file brain.h
/// \brief Brain extraction: the intracranial region of a head image, by the deformable surface of BET (Smith 2002,
/// "Fast robust automated brain extraction", Hum Brain Mapp 17:143). Works on T1w, T2w and FLAIR, thick 2D slices
/// included, without an atlas.
#include "gw/core/types.h"

namespace gw::segmentation
{
/// \brief Parameters of ExtractBrain (the defaults are BET's).
struct BrainParams
{
  double fractionalThreshold = 0.5; ///< BET's f (0..1): the local brain/background level between the local minimum
                                    ///< and maximum; smaller gives a larger brain
  int iterations = 1000;            ///< surface update steps
  int subdivisions = 4;             ///< of the icosahedron: 2562 vertices
  double searchInwardMm = 20.0;     ///< d1: the local minimum is searched this far inside the surface; the local
                                    ///< maximum over half of it
  double minRadiusMm = 3.33;        ///< smoothness: curvature radii below this are smoothed fully ...
  double maxRadiusMm = 10.0;        ///< ... above this hardly (the tanh ramp of BET in between)
};

/// \brief What ExtractBrain found.
struct BrainResult
{
  MaskImage::Pointer mask;    ///< inside the final surface, on the image grid
  PointType centre;           ///< centre of gravity of the head (LPS [mm]), where the surface started
  double initialRadius = 0.0; ///< radius of the sphere of the head's volume [mm]; the surface starts at half
  double t2 = 0.0, t98 = 0.0; ///< robust range: 2nd and 98th percentiles of the image
  double threshold = 0.0;     ///< brain/background level t2 + 10% of the range
  double tissueMedian = 0.0;  ///< median above the threshold inside the initial sphere (tm)
  double volume = 0.0;        ///< of the mask [mm^3]
  std::size_t vertices = 0;   ///< of the surface
};

/// \brief Brain extraction by BET's surface model: a tessellated sphere started at the head's centre of gravity
/// (half the radius of the head's volume) moves each vertex by a tangential term (even spacing), a curvature term
/// (smoothness) and an intensity term along its normal: outwards where the minimum along the inward normal (up to
/// searchInwardMm) is above the local threshold t_l = t2 + f (Imax - t2), inwards where it is below, Imax being the
/// maximum over the first half of the search (clamped to the median tissue intensity). The surface stops at the
/// dark skull/CSF boundary around the brain. Points outside the image read as 0. The mask holds the voxel centres
/// inside the final surface. Throws Error(Input) for an image without a head (nothing above the threshold, or a
/// surface that collapsed to under 1% of the head's volume).
BrainResult ExtractBrain(const FloatImage * image, const BrainParams & params = {});
} // namespace gw::segmentation
