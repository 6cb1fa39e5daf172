#pragma once
/// \file motion.h
/// \brief DWI motion correction: every volume rigidly registered to the mean b0 (masked), resampled onto the DWI
/// grid, b-vectors rotated by the rotation of its transform; per-volume motion and an outlier report.
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/io/dwi_io.h"
#include "gw/registration/registration.h"

namespace gw::registration
{
struct DwiMotionOptions
{
  /// Options of each volume-to-reference registration; type is forced to rigid, init to none (volumes start in
  /// the reference space), inverse consistency and halfway are off. Masks of this struct are ignored: use `mask`.
  RegistrationOptions registration;
  /// Cost mask on the DWI grid (brain or cord region). Null: Otsu threshold of the mean b0.
  const MaskImage * mask = nullptr;
  Interpolation interpolation = Interpolation::Linear;
  /// A volume is an outlier when its framewise displacement exceeds this many voxels (geometric-mean voxel
  /// size), or when its final metric is more than `outlierMetricZ` robust z-scores (median/1.4826 MAD) worse
  /// than the other volumes of its shell (b rounded to 100 s/mm^2; shells of at least 4 volumes).
  double outlierFdVoxels = 1.0;
  double outlierMetricZ = 5.0;
};

/// \brief Motion of one volume relative to the reference (mean b0).
struct VolumeMotion
{
  unsigned int index = 0;
  double bValue = 0.0;
  std::array<double, 3> translationMm{ { 0, 0, 0 } }; ///< about the grid centre, LPS [mm]
  std::array<double, 3> rotationDeg{ { 0, 0, 0 } };   ///< Euler x, y, z (R = Rz Ry Rx) [deg]
  double meanDisplacementMm = 0.0;                    ///< mean |T(x) − x| over the mask [mm]
  double framewiseDisplacementMm = 0.0; ///< Power FD to the previous volume: Σ|Δt| + 50 mm · Σ|Δθ| [mm]
  double metric = 0.0;                  ///< final metric (lower is better)
  bool outlier = false;
  std::string reason;
};

struct DwiMotionResult
{
  gw::io::Dwi corrected;                    ///< resampled volumes, gradients rotated (frame "lps")
  FloatImage::Pointer meanB0;               ///< reference: mean of the aligned b0 volumes
  MaskImage::Pointer mask;                  ///< cost mask used
  std::vector<TransformPointer> transforms; ///< per volume: reference point → volume point
  std::vector<VolumeMotion> volumes;
  double meanFdMm = 0.0;
  double maxFdMm = 0.0;
  unsigned int outliers = 0;
  double seconds = 0.0;
};

/// \brief Motion-corrects a DWI. Throws Error(Input) without a b0 volume (b ≤ gw::io::B0Threshold).
DwiMotionResult MotionCorrectDwi(const gw::io::Dwi & dwi, const DwiMotionOptions & options = {});

/// \brief Report: summary plus one entry per volume (JSON) or one row per volume (TSV with a header line).
nlohmann::json ToJson(const DwiMotionResult & result);
std::string ToTsv(const DwiMotionResult & result);
} // namespace gw::registration
