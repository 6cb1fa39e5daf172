#pragma once
/// \file registration.h
/// \brief Intensity-based registration of two 3D images (ITK v4 framework): rigid (versor) → affine → optional
/// B-spline, multi-resolution, Mattes mutual information or normalized correlation, cost-function masks with
/// excluded regions (lesion, graft, syrinx), deterministic mode, halfway (symmetric) space, resampling and a QA
/// gate based on inverse consistency.
///
/// Transform convention (ITK, 3D Slicer "from parent" resampling transform): the transform maps points of the
/// FIXED image's physical space to points of the MOVING image's physical space (LPS, mm). Resampling the moving
/// image onto the fixed grid uses it directly.
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/types.h"
#include "gw/io/transform_io.h"

namespace gw::registration
{
using TransformType = gw::io::TransformType; ///< itk::Transform<double, 3, 3>
using TransformPointer = TransformType::Pointer;

enum class TransformKind
{
  Rigid,  ///< versor rigid (6 parameters)
  Affine, ///< rigid, then 12-parameter affine
  BSpline ///< rigid, affine, then a cubic B-spline free-form deformation in fixed space
};

enum class MetricKind
{
  MattesMI,   ///< Mattes mutual information (any contrast pair)
  Correlation ///< normalized cross-correlation (same contrast)
};

enum class Initialization
{
  Geometry, ///< centres of the (masked) image grids coincide
  Moments,  ///< intensity centres of mass (inside the masks) coincide
  None      ///< identity (images already in the same physical space)
};

/// \brief Registration options. Defaults suit brain/cord MRI at ~1 mm.
struct RegistrationOptions
{
  TransformKind type = TransformKind::Rigid;
  MetricKind metric = MetricKind::MattesMI;
  Initialization init = Initialization::Moments;
  /// Cost-function masks (voxels != 0 count). Fixed mask on the fixed grid, moving mask on the moving grid.
  const MaskImage * fixedMask = nullptr;
  const MaskImage * movingMask = nullptr;
  /// Regions removed from the cost function (lesion/graft/syrinx) on the fixed grid and on the moving grid.
  const MaskImage * fixedExcludeMask = nullptr;
  const MaskImage * movingExcludeMask = nullptr;
  /// Multi-resolution pyramid, coarse to fine: isotropic-equivalent shrink factors (per axis the factor is reduced
  /// so a shrunk voxel is never coarser than shrink x the finest spacing) and Gaussian sigmas in units of the
  /// finest fixed spacing (2 → 2 x 0.72 mm on a 0.72 x 0.72 x 4 mm FLAIR).
  std::vector<unsigned int> shrinkFactors{ 4, 2, 1 };
  std::vector<double> smoothingSigmas{ 2.0, 1.0, 0.0 };
  /// Fraction of the fixed grid voxels sampled per level (random, with `seed`), raised when needed so that at
  /// least `minimumSamples` and at most `maximumSamples` fall inside the fixed mask.
  double samplingPercentage = 0.15;
  unsigned int minimumSamples = 20000;
  unsigned int maximumSamples = 30000; ///< cap per level (large images: 0.72 x 0.72 x 4 mm FLAIR has 3.7 M voxels)
  unsigned int histogramBins = 32;     ///< Mattes MI
  /// Mattes MI bins at the last (finest) level of the rigid stage: sqrt(samples / 2) clamped to [histogramBins,
  /// this] (30000 samples → 122 bins; a 3000-sample cord mask keeps 38). Finer bins sharpen the optimum once the
  /// images are close: on the benchmark pairs (sct T2, MS FLAIR, known rigid motions; also with 1–3 % noise) the
  /// mean TRE fell from 0.039–0.047 mm (32 bins) to 0.025–0.029 mm (64) and 0.017–0.022 mm (128) over three
  /// sampling seeds at the same run time. 0 or ≤ histogramBins: histogramBins at every level.
  unsigned int finestLevelHistogramBins = 128;
  unsigned int iterations = 200; ///< per level and stage (rigid/affine)
  /// Optimizer (regular-step gradient descent, PhysicalShift scales): first step and stop step, in mm of the
  /// largest point shift the step causes.
  double maximumStepMm = 2.0;
  double minimumStepMm = 0.001;
  double relaxation = 0.7; ///< step multiplier when the gradient direction reverses
  /// B-spline stage: control point spacing [mm], iterations per level (L-BFGS-B).
  double bsplineGridSpacingMm = 40.0;
  unsigned int bsplineIterations = 100;
  /// Deterministic: the Mattes MI rigid stage (GraftWatch's own engine: seeded jittered samples, fixed-size sample
  /// chunks reduced in order) is bitwise identical for a given seed whatever this flag and the thread count. For the
  /// stages that run on ITK's registration framework (affine, B-spline, and rigid with the correlation metric) this
  /// flag makes ITK single-threaded (the global default thread count is set to 1 during those stages and restored
  /// after; do not run other ITK work concurrently in that process), because ITK's multi-threaded metric sums differ
  /// in the last bits with scheduling. When false those stages use all threads.
  bool deterministic = true;
  int seed = 121;
  /// Threads of the Mattes MI rigid stage (0: ITK's global default). That stage is bitwise identical for any
  /// thread count (fixed-size sample chunks reduced in order), deterministic or not.
  unsigned int threads = 0;
  /// Halfway: after registration, the transform T is split into H with H∘H = T (matrix square root) so both
  /// images can be resampled once into a space midway between them. Rigid and affine only.
  bool halfway = false;
  /// QA: also register moving → fixed, independently (own initialization and samples, same settings; the image
  /// pyramids are shared with the forward run), to measure inverse consistency. Adds roughly a third to the run time
  /// of a rigid Mattes MI registration (whole gw_register command on a 3.7 M voxel FLAIR).
  bool inverseConsistency = true;
  /// Gate thresholds (see QualityGate).
  double maxEstimatedErrorVoxels = 1.0;
  double minOverlapFraction = 0.5;
};

/// \brief Pass/fail decision on a registration. Passes when ALL hold:
///  - the optimisation finished with a finite metric value;
///  - estimatedErrorMm ≤ maxEstimatedErrorVoxels × voxelSizeMm, where voxelSizeMm is the geometric mean of the
///    fixed spacing and estimatedErrorMm = inverse-consistency error / √2 (two independent registrations with
///    errors of equal size compose to √2 × one error); skipped when inverse consistency was not computed;
///  - overlapFraction ≥ minOverlapFraction (fraction of the fixed cost mask that maps inside the moving image).
struct QualityGate
{
  bool passed = false;
  double maxEstimatedErrorVoxels = 1.0;
  double maxEstimatedErrorMm = 0.0;
  double minOverlapFraction = 0.5;
  std::vector<std::string> failures; ///< one line per failed criterion
};

/// \brief Quality measures of one registration.
struct RegistrationQa
{
  std::string metricName;     ///< "mattes_mi" or "correlation" (lower is better for both)
  double finalMetric = 0.0;   ///< at full resolution, last stage
  double initialMetric = 0.0; ///< after initialization, full resolution
  bool inverseConsistencyComputed = false;
  double inverseConsistencyMm = 0.0;    ///< mean |B(F(x)) − x| over the fixed cost mask [mm]
  double inverseConsistencyMaxMm = 0.0; ///< maximum over the mask [mm]
  double estimatedErrorMm = 0.0;        ///< inverseConsistencyMm / √2 [mm]
  double voxelSizeMm = 0.0;             ///< geometric mean of the fixed spacing [mm]
  double overlapFraction = 0.0;         ///< fixed cost mask voxels that map inside the moving image
  double seconds = 0.0;                 ///< wall time of the forward registration [s]
  double qaSeconds = 0.0;               ///< wall time of the QA (backward registration) [s]
  std::vector<std::string> stages;      ///< per stage and level: "rigid L0: 37 it, metric -0.41, step too small"
  QualityGate gate;
};

/// \brief Outcome of Register().
struct RegistrationResult
{
  /// Fixed → moving composite (rigid/affine first, B-spline last in ITK's stack order).
  TransformPointer transform;
  /// The linear part alone (versor rigid or affine) as a MatrixOffsetTransformBase-derived transform.
  TransformPointer linear;
  /// Halfway mode: H with H∘H ≈ transform (maps halfway points to moving points; its inverse maps halfway
  /// points to fixed points) and the halfway reference grid (fixed grid moved by H).
  TransformPointer halfwayToMoving;
  TransformPointer halfwayToFixed;
  FloatImage::Pointer halfwayReference; ///< empty image carrying the halfway grid
  double metricValue = 0.0;
  RegistrationQa qa;
};

/// \brief Registers `moving` to `fixed`. Throws Error(Input) for bad inputs (empty mask, mask grid differing from
/// its image) and Error(Processing) when the optimisation fails (ITK exception, non-finite metric).
RegistrationResult Register(const FloatImage * fixed, const FloatImage * moving, const RegistrationOptions & options);

enum class Interpolation
{
  Linear,
  BSpline,      ///< cubic B-spline (intensities; may overshoot)
  Nearest,      ///< labels and masks
  LabelGaussian ///< label-Gaussian (smooth label boundaries, labels kept)
};

/// \brief Resamples `image` onto the grid of `reference` through `transform` (reference point → image point).
/// Points outside the image get `defaultValue`. Label-Gaussian is not allowed for intensities.
FloatImage::Pointer Resample(const FloatImage * image, const itk::ImageBase<3> * reference,
                             const TransformType * transform, Interpolation interpolation = Interpolation::Linear,
                             float defaultValue = 0.0f);
/// \brief Label maps: Nearest or LabelGaussian only (Error(Usage) otherwise).
LabelImage::Pointer Resample(const LabelImage * image, const itk::ImageBase<3> * reference,
                             const TransformType * transform, Interpolation interpolation = Interpolation::Nearest);
/// \brief Masks: Nearest or LabelGaussian only.
MaskImage::Pointer Resample(const MaskImage * image, const itk::ImageBase<3> * reference,
                            const TransformType * transform, Interpolation interpolation = Interpolation::Nearest);

/// \brief Mean and maximum of |a(x) − b(x)| [mm] over the voxels of `region` that are non-zero in `mask` (all voxels
/// of `region` when mask is null), visiting every `stride`-th voxel per axis. This is the target registration
/// error when `a` is an estimate and `b` the truth.
struct PointDistance
{
  double mean = 0.0;
  double max = 0.0;
  double meanVoxels = 0.0; ///< mean of the error vector expressed in voxels of `region` (|diag(1/spacing)·D^T e|)
  std::size_t count = 0;
};
PointDistance TransformDistance(const TransformType * a, const TransformType * b, const itk::ImageBase<3> * region,
                                const MaskImage * mask = nullptr, unsigned int stride = 1);

/// \brief Versor rigid transform from rotation angles about x, y, z [deg] (applied in that order) and translation
/// [mm], rotating about `center` (LPS mm). Used by tests and benchmarks to make known motions.
TransformPointer MakeRigidTransform(const std::array<double, 3> & rotationDeg,
                                    const std::array<double, 3> & translationMm, const PointType & center);

/// \brief Physical centre of an image grid (LPS mm).
PointType GridCenter(const itk::ImageBase<3> * image);

/// \brief Square root of a linear (matrix + offset) transform: H with H∘H = T (Denman–Beavers iteration on the
/// homogeneous 4x4 matrix). Throws Error(Processing) if T has no real square root (e.g. a reflection).
TransformPointer HalfTransform(const TransformType * linear);

/// \brief Copies a transform into a new independent object (deep copy of parameters).
TransformPointer CloneTransform(const TransformType * transform);

/// \brief The image re-positioned by a rigid transform, without resampling: a copy sharing `image`'s pixels whose
/// origin and direction are moved so that the voxel that lay at physical point rigid(p) now lies at p. After a rigid
/// registration fixed → image (`rigid` maps fixed points to image points), the copy lies in the fixed image's space.
/// Error(Usage) when `rigid` is not a rotation plus translation (within 1e-4).
FloatImage::Pointer Reposition(const FloatImage * image, const TransformType * rigid);

/// \brief Flattens a composite with a single element into that element (for plain .tfm/.h5 files); otherwise
/// returns the transform unchanged.
TransformPointer Simplify(const TransformType * transform);

/// \brief JSON of the QA (the gate included) and of the gate alone.
nlohmann::json ToJson(const QualityGate & gate);
nlohmann::json ToJson(const RegistrationQa & qa);

/// \brief Name strings ("rigid", "mattes", "moments", "linear", ...) and parsing (Error(Usage) on unknown names).
TransformKind ParseTransformKind(const std::string & name);
MetricKind ParseMetricKind(const std::string & name);
Initialization ParseInitialization(const std::string & name);
Interpolation ParseInterpolation(const std::string & name);
const char * ToString(TransformKind kind);
const char * ToString(MetricKind kind);
} // namespace gw::registration
