#pragma once
/// \file tensor_fit.h
/// \brief Diffusion tensor estimation and scalar maps.
///
/// Conventions:
/// - Gradient directions and tensors are in the LPS world frame (ITK physical space), as delivered by
///   gw::io::ReadDwi. Rotation-invariant maps (FA, MD, AD, RD) do not depend on the frame; eigenvectors and colour FA
///   have LPS components (red = left-right, green = anterior-posterior, blue = superior-inferior).
/// - Diffusivities are in [mm^2/s] (b-values in [s/mm^2]).
/// - b-values at or below `b0Threshold` (default 50 s/mm^2) are b0 volumes: they enter the fit with b = 0 and are
///   averaged (arithmetic mean) into the mean-b0 image used for masking.
/// - The log-linear model ln S = ln S0 - b g^T D g is fitted with every volume as one observation (each b0
///   separately), as MRtrix3 dwi2tensor and DIPY do.
#include <filesystem>
#include <string>

#include "gw/core/types.h"
#include "gw/io/dwi_io.h"

namespace gw::dti
{
namespace fs = std::filesystem;

/// Tensor estimators.
enum class FitMethod
{
  OLS,  ///< ordinary least squares on ln S
  WLS,  ///< iterated weighted least squares on ln S, weights = fitted signal (MRtrix3 dwi2tensor -iter N, DIPY WLS)
  NLLS, ///< non-linear least squares on S (Levenberg-Marquardt, log-Cholesky parametrisation: always positive definite)
  Robust ///< RESTORE-like: WLS, then iterative rejection of the worst outlier |S - S_fit| > k sigma, refit
};

/// \brief "ols", "wls", "nlls", "robust" → FitMethod; throws Error(Usage) otherwise.
FitMethod ParseFitMethod(const std::string & name);
const char * ToString(FitMethod method);

struct FitOptions
{
  FitMethod method = FitMethod::WLS;
  /// How the WLS iterations start: MRtrix3 dwi2tensor weights the first solve by the measured signal, DIPY's "WLS"
  /// starts from an OLS fit. Every further solve is weighted by the signal predicted by the previous one.
  bool wlsStartFromOls = false;
  unsigned int wlsIterations = 2;   ///< reweighted solves after the start (MRtrix3 default -iter 2; DIPY: 1)
  double b0Threshold = 50.0;        ///< [s/mm^2]
  unsigned int nllsIterations = 50; ///< Levenberg-Marquardt iterations (NLLS and the robust final fit)
  double robustK = 3.0;             ///< outlier threshold in units of sigma (robust fit)
  double robustSigma = 0.0;         ///< noise sigma in signal units; 0 = estimated from WLS residuals in the mask
  unsigned int threads = 0;         ///< 0 = hardware concurrency
};

/// Rotation-invariant maps of a tensor field. MD/AD/RD in [mm^2/s]. Voxels outside the mask are 0.
struct ScalarMaps
{
  FloatImage::Pointer fa;
  FloatImage::Pointer md;
  FloatImage::Pointer ad; ///< axial diffusivity, largest eigenvalue
  FloatImage::Pointer rd; ///< radial diffusivity, mean of the two smallest eigenvalues
};

/// Everything a fit produces.
struct DtiResult
{
  TensorImage::Pointer tensor; ///< [mm^2/s], LPS frame, ITK upper-triangular order xx,xy,xz,yy,yz,zz
  ScalarMaps maps;
  FloatImage::Pointer s0;         ///< fitted non-diffusion-weighted signal
  FloatImage::Pointer meanB0;     ///< arithmetic mean of the b0 volumes
  VectorImage3::Pointer v1;       ///< principal eigenvector (unit, LPS components, sign arbitrary)
  VectorImage3::Pointer colourFa; ///< |v1| * FA per LPS axis, in [0,1]
  MaskImage::Pointer mask;        ///< voxels fitted (given or automatic)
  std::size_t fittedVoxels = 0;
  std::size_t nonPositiveVoxels = 0;    ///< voxels whose tensor has an eigenvalue <= 0
  std::size_t rejectedMeasurements = 0; ///< robust fit: measurements rejected as outliers (all voxels)
  double sigma = 0.0;                   ///< robust fit: noise sigma used
  double seconds = 0.0;                 ///< wall time of the fit
};

/// Rotation invariants of one tensor (eigenvalues descending, clipped FA in [0,1]).
struct TensorMetrics
{
  double fa = 0.0, md = 0.0, ad = 0.0, rd = 0.0;
  double lambda[3] = { 0.0, 0.0, 0.0 }; ///< descending [mm^2/s]
  double v1[3] = { 0.0, 0.0, 0.0 };     ///< principal eigenvector
};

/// \brief Eigen-decomposition and FA/MD/AD/RD of one tensor. FA = sqrt(3/2 sum (l_i - MD)^2 / sum l_i^2), from
/// the unclipped eigenvalues (as MRtrix3 tensor2metric), then clamped to [0,1].
TensorMetrics ComputeTensorMetrics(const TensorPixel & tensor);

/// \brief Arithmetic mean of the b0 volumes (b <= b0Threshold). Throws Error(Input) when there is none.
FloatImage::Pointer MeanB0(const io::Dwi & dwi, double b0Threshold = 50.0);
FloatImage::Pointer MeanB0(const io::DwiSeries & dwi, double b0Threshold = 50.0);

/// \brief Automatic tissue mask from a mean b0: Otsu threshold of the non-zero voxels, largest 6-connected
/// component, 3D hole filling. Throws Error(Processing) when the result is empty.
MaskImage::Pointer AutoMask(const FloatImage * meanB0);

/// \brief Fits tensors in `mask` (automatic mask when null) with `options`; multithreaded over voxel chunks.
/// Throws Error(Input) for unusable gradient tables (fewer than 6 non-collinear directions, no b0 and b-values
/// that do not allow S0 estimation) and for a mask on another grid.
DtiResult FitTensors(const io::Dwi & dwi, const MaskImage * mask = nullptr, const FitOptions & options = {});
/// \brief The same fit of samples as stored (a NIfTI series read by io::ReadDwiSeries: only the voxels of the mask
/// are converted); results identical to fitting the vector image.
DtiResult FitTensors(const io::DwiSeries & dwi, const MaskImage * mask = nullptr, const FitOptions & options = {});

/// \brief Scalar maps of a tensor image (non-zero tensors only; `mask` optional).
ScalarMaps ComputeScalarMaps(const TensorImage * tensor, const MaskImage * mask = nullptr);

/// \brief The maps WriteDtiResult can write, by name, in file order: "fa" (PREFIX_FA.nii.gz), "md" (_MD), "ad"
/// (_AD), "rd" (_RD), "s0" (_S0), "meanb0" (_meanb0), "mask" (_mask), "v1" (_V1, 3-vector), "colourfa" (_colourFA,
/// 3-vector), "tensor" (_tensor.nii.gz) and "tensor-nrrd" (_tensor.nrrd).
std::vector<std::string> DtiMapNames();

/// \brief The file names WriteDtiResult can write, as suffixes of the prefix ("_FA.nii.gz", ...), in the order of
/// DtiMapNames().
std::vector<std::string> DtiOutputSuffixes();

/// \brief Parses a comma-separated list of map names (case-insensitive; "all" = every map) into names of
/// DtiMapNames() order without duplicates. Throws Error(Usage) for an unknown name or an empty list.
std::vector<std::string> ParseDtiMaps(const std::string & list);

/// \brief Writes the maps named in `maps` (names of DtiMapNames(); empty = all): PREFIX_FA, _MD, _AD, _RD, _S0,
/// _meanb0, _mask (.nii.gz), _V1 and _colourFA (.nii.gz, 3-vector), the tensor as PREFIX_tensor.nii.gz (NIfTI-1
/// intent SYMMATRIX, stored lower triangle Dxx,Dxy,Dyy,Dxz,Dyz,Dzz as the NIfTI standard prescribes; ITK converts)
/// and as PREFIX_tensor.nrrd (NRRD 3D-symmetric-matrix, space LPS, identity measurement frame: 3D Slicer's DTI
/// volume). Every requested file is checked before any is written (refused when it exists unless `force`); each is
/// written atomically; independent files are written on `threads` threads (0 = hardware concurrency).
/// Returns the written paths in DtiMapNames() order. Throws Error(Usage) for an unknown map name.
std::vector<fs::path> WriteDtiResult(const DtiResult & result, const std::string & prefix, bool force,
                                     const std::vector<std::string> & maps = {}, unsigned int threads = 0);

/// \brief Reads a tensor image written by WriteDtiResult (or any NIfTI SYMMATRIX / NRRD tensor that ITK reads
/// into its upper-triangular order). Throws Error(Input) when the file does not hold 6 components per voxel.
TensorImage::Pointer ReadTensorImage(const fs::path & path);
} // namespace gw::dti
