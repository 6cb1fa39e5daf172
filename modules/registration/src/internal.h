#pragma once
// Helpers shared by the registration sources (not installed).
#include <cstddef>
#include <string>

#include "gw/registration/registration.h"

namespace gw::registration::internal
{
/// Cost mask = include mask (or everything) minus exclude mask, on the image's grid (masks on another grid are
/// resampled by nearest neighbour in physical space). Null when neither mask is given. Error(Input) when empty.
MaskImage::Pointer CostMask(const FloatImage * image, const MaskImage * include, const MaskImage * exclude,
                            const std::string & role);
std::size_t CountNonZero(const MaskImage * mask);
/// Fraction of the fixed cost-mask voxels (all voxels when null) whose image under `transform` is inside `moving`.
double OverlapFraction(const FloatImage * fixed, const MaskImage * fixedCost, const FloatImage * moving,
                       const TransformType * transform);
/// Fills halfwayToMoving, halfwayToFixed and halfwayReference of `result` from result.linear.
void MakeHalfway(const FloatImage * fixed, const FloatImage * moving, RegistrationResult & result);
/// True when both grids coincide (size, and origin/spacing/direction within 1e-4 mm / 1e-6).
bool SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b);
} // namespace gw::registration::internal
