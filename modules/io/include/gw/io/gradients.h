#pragma once
/// \file gradients.h
/// \brief Diffusion gradient tables: FSL bval/bvec files (dcm2niix conventions: bvec in the image voxel frame,
/// with the x component flipped when the NIfTI affine has a positive determinant), and NRRD DWMRI headers
/// (DWMRI_b-value, DWMRI_gradient_NNNN, measurement frame) as 3D Slicer writes and reads them.
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "gw/core/types.h"

namespace gw::io
{
namespace fs = std::filesystem;

/// One diffusion weighting: b [s/mm^2] and unit gradient direction (zero vector for b0).
struct GradientEntry
{
  double bValue = 0.0;
  std::array<double, 3> direction{ 0.0, 0.0, 0.0 };
};

/// A gradient table and the frame its directions are expressed in.
struct GradientTable
{
  std::vector<GradientEntry> entries;
  /// Directions are in this frame: "lps" (ITK physical/world, what the library works in) or "fsl" (bvec file
  /// convention relative to the image grid).
  std::string frame = "lps";
};

/// \brief Reads FSL bval + bvec (3 rows x N columns; also accepts N rows x 3 columns). Throws Error(Input) when
/// counts disagree or numbers are malformed. Returned frame is "fsl".
GradientTable ReadFslGradients(const fs::path & bval, const fs::path & bvec);

/// \brief Writes FSL bval + bvec (3 rows, 6 decimals as dcm2niix); atomic, refuses to overwrite unless `force`.
void WriteFslGradients(const GradientTable & table, const fs::path & bval, const fs::path & bvec, bool force);

/// \brief Converts between the FSL bvec frame of an image with `direction` (LPS direction cosines of the voxel
/// axes) and LPS world directions. FSL frame = voxel axes with x flipped when det(affine RAS) > 0.
GradientTable FslToLps(const GradientTable & fsl, const DirectionType & direction);
GradientTable LpsToFsl(const GradientTable & lps, const DirectionType & direction);

/// \brief b-values at or below this are treated as b0 [s/mm^2].
constexpr double B0Threshold = 50.0;

/// \brief Reads the DWMRI keys of a NRRD header (b-value, gradients scaled by sqrt(b/bmax), measurement frame).
/// Returned directions are in LPS (measurement frame applied). Throws Error(Input) when the keys are absent.
GradientTable ReadNrrdGradients(const fs::path & nrrd);
} // namespace gw::io
