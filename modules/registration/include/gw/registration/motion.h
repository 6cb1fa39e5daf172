#pragma once
/// \file motion.h
/// \brief DWI motion correction: every volume rigidly registered to a reference (masked), resampled onto the DWI
/// grid, b-vectors rotated by the rotation of its transform; per-volume motion and an outlier report.
///
/// Two motion models (DwiMotionOptions::model; Auto picks by voxel shape):
///  - Rigid3D (near-isotropic voxels, e.g. brain DWI): 6-parameter rigid, Mattes MI (copes with the b0 / DW
///    contrast difference), every volume to the mean of the aligned b0 volumes, through Register().
///  - InPlane (thick slices: largest spacing > thickSliceRatio x smallest, e.g. cord DWI at 0.9 x 0.9 x 5 mm; the
///    design of cord moco tools such as SCT's sct_dmri_moco): through-plane rotations and translations are poorly
///    determined by 3-15 thick slices and trade off against in-plane ones, so the motion is restricted to the slice
///    plane: translation along the two in-plane grid axes and rotation about the slice normal through the centroid
///    of the cost mask (3 parameters, one rigid transform per volume). Each volume is registered to a template of
///    its own contrast: the b0 volumes to the mean b0, each diffusion-weighted shell (b rounded to 100 s/mm^2) to
///    the mean of that shell (CSF is bright at b0 and dark at b=800, so DW-to-b0 matching is contrast-limited);
///    the template is rebuilt from the aligned volumes `templateIterations` times (mean → register → new mean).
///    Metric: least squares of M(T(x)) − a·F(x) − b over the mask with the gain a and offset b fitted per slice
///    (variable projection: slice-wise signal dropout from cord pulsation does not bias the motion), i.e. a per-slice
///    normalized correlation; Levenberg–Marquardt, coarse to fine over in-plane Gaussian smoothing levels. The
///    automatic cost mask (Otsu of the mean b0 — CSF and cord in a cord FOV, a near-circular structure that
///    leaves the in-plane rotation ill-determined at DW SNR) is dilated in-plane by `maskDilationMm` to take in the
///    surrounding tissue edges. Each shell template sits in the shells' mean pose; the b0 and DW templates are not
///    cross-registered (that would need a cross-contrast metric on low-SNR thick-slice data), so the DW frame
///    equals the b0 frame up to the mean DW motion relative to the b0 volumes.
///
/// Alternatives evaluated on sct_tutorial_dmri (tests/unit/registration/test_motion_external.cxx) and rejected:
/// 6-parameter MI to the mean b0 (mean displacement up to 5 mm on the original data, 1.2-6.5 mm error for added
/// 1 mm shifts); an undilated Otsu mask (one volume at 4.5 mm error: rotation of the round cord ill-determined);
/// per-volume templates predicted leave-one-out from the rest of the shell (2nd-order tensor/SH fit): contrast-
/// matched, but any motion pattern that is quadratic in the gradient direction is then unobservable (the model
/// absorbs it), which left 0.3-0.9 mm errors; grouping consecutive volumes (SCT) raises SNR but assumes motion is
/// constant within a group — not done: motion is estimated per volume.
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/io/dwi_io.h"
#include "gw/registration/registration.h"

namespace gw::registration
{
/// \brief Motion model of DWI motion correction.
enum class MotionModel
{
  Auto,    ///< InPlane when the thickest voxel axis exceeds `thickSliceRatio` x the finest, Rigid3D otherwise
  Rigid3D, ///< 6-parameter rigid, Mattes MI, every volume to the mean b0 (Register())
  InPlane  ///< 3-parameter in-plane rigid (see MotionCorrectDwi), normalized correlation, per-shell templates
};

struct DwiMotionOptions
{
  MotionModel model = MotionModel::Auto;
  /// Auto model: slices are "thick" when the largest spacing exceeds this multiple of the smallest one.
  double thickSliceRatio = 2.0;
  /// InPlane model: coarse-to-fine in-plane Gaussian smoothing levels, in units of the finest in-plane spacing
  /// (the last level at 0.5 pixel damps the noise of single DW volumes: 0.49 vs 0.53 mm worst error at 0).
  std::vector<double> inPlaneSmoothingVoxels{ 2.0, 1.0, 0.5 };
  /// InPlane model: how many times each template (mean of the b0s or of one shell) is rebuilt from the aligned
  /// volumes before the final registration round (0: the raw mean only).
  unsigned int templateIterations = 2;
  /// InPlane model: intensity gain and offset fitted per slice (true) or per volume (false).
  bool perSliceIntensity = true;
  /// InPlane model, automatic (Otsu) mask only: in-plane dilation [mm]. On sct_tutorial_dmri the worst error for
  /// added motion was 4.5 mm at 0, 3.96 at 2, 0.62 at 3, 0.49 at 4, 0.48 at 5 mm (run time grows with the area).
  double maskDilationMm = 4.0;
  /// Rigid3D model: options of each volume-to-reference registration; type is forced to rigid, init to none (volumes
  /// start in the reference space), inverse consistency and halfway are off. Masks of this struct are ignored: use
  /// `mask`.
  RegistrationOptions registration;
  /// Cost mask on the DWI grid (brain or cord region). Null: Otsu threshold of the mean b0 (InPlane: dilated).
  const MaskImage * mask = nullptr;
  Interpolation interpolation = Interpolation::Linear;
  /// A volume is an outlier when its framewise displacement exceeds this many voxels (geometric-mean voxel
  /// size), or when its final metric is more than `outlierMetricZ` robust z-scores (median/1.4826 MAD) worse
  /// than the other volumes of its shell (b rounded to 100 s/mm^2; shells of at least 4 volumes).
  double outlierFdVoxels = 1.0;
  double outlierMetricZ = 5.0;
};

/// \brief Motion of one volume relative to its template (InPlane) or to the mean b0 (Rigid3D).
struct VolumeMotion
{
  unsigned int index = 0;
  double bValue = 0.0;
  std::array<double, 3> translationMm{ { 0, 0, 0 } }; ///< about the rotation centre, LPS [mm]
  std::array<double, 3> rotationDeg{ { 0, 0, 0 } };   ///< Euler x, y, z (R = Rz Ry Rx) [deg]
  double meanDisplacementMm = 0.0;                    ///< mean |T(x) − x| over the mask [mm]
  double framewiseDisplacementMm = 0.0; ///< Power FD to the previous volume: Σ|Δt| + 50 mm · Σ|Δθ| [mm]
  double metric = 0.0;                  ///< final metric, lower is better (Rigid3D: Mattes MI; InPlane: −correlation)
  bool outlier = false;
  std::string reason;
};

struct DwiMotionResult
{
  gw::io::Dwi corrected;                    ///< resampled volumes, gradients rotated (frame "lps")
  FloatImage::Pointer meanB0;               ///< mean of the aligned b0 volumes
  MaskImage::Pointer mask;                  ///< cost mask used
  MotionModel model = MotionModel::Rigid3D; ///< model used (Auto resolved)
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
