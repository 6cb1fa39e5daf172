#pragma once
// Helpers shared by the registration sources (not installed).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <itkMatrixOffsetTransformBase.h>

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

using LinearTransformType = itk::MatrixOffsetTransformBase<double, 3, 3>;

/// Smoothed (recursive Gaussian, sigma in mm) and shrunk copies of an image, coarse to fine; a level with sigma 0
/// and shrink 1 is the image itself. Per axis the shrink factor is round(shrink x finest spacing / spacing), at
/// least 1 and leaving at least 8 voxels. Deterministic for any thread count.
struct PyramidImages
{
  std::vector<FloatImage::ConstPointer> levels;
};
PyramidImages MakePyramidImages(const FloatImage * image, const std::vector<unsigned int> & shrink,
                                const std::vector<double> & sigmasMm, unsigned int threads);

/// Settings of RegisterLinearMi, one entry per level where a vector.
struct LinearMiSettings
{
  unsigned int bins = 32;
  unsigned int finestBins = 0; ///< at the last level up to this many bins, sqrt(samples / 2) (0: `bins`)
  std::vector<unsigned int> samples;
  std::vector<unsigned int> iterations;
  std::vector<double> firstStepMm; ///< first step of each level [mm of largest point shift]
  double minimumStepMm = 0.001;
  double relaxation = 0.7;
  std::uint64_t seed = 121;
  unsigned int threads = 1;
};

/// Optimises `transform` in place (regular-step gradient ascent of Mattes mutual information, physical-shift
/// scaled) over the pyramid levels; samples are drawn on the fixed levels (jittered, seeded) inside `fixedCost`
/// (full-resolution fixed grid, null = everywhere); samples mapping outside the moving image or `movingCost` are
/// skipped. Bitwise identical for any `threads`. Appends one line per level to `lines`; returns the final
/// metric value (−MI at the finest level).
double RegisterLinearMi(const PyramidImages & fixed, const PyramidImages & moving, const MaskImage * fixedCost,
                        const MaskImage * movingCost, LinearTransformType * transform, const LinearMiSettings & s,
                        const std::string & stage, std::vector<std::string> & lines);
} // namespace gw::registration::internal
