#pragma once
// Internal helpers of gw::segmentation (not installed): raw-buffer grids, robust statistics, slices in anatomical
// order. Algorithms work on buffers directly to keep ITK template instantiation (and compile time) small.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gw/core/types.h"
#include "gw/segmentation/anatomy.h"

namespace gw::segmentation::detail
{
/// Geometry of a grid: physical = origin + M index, M = direction * diag(spacing).
struct Grid
{
  std::array<std::size_t, 3> n{ { 0, 0, 0 } };
  std::array<double, 3> spacing{ { 1, 1, 1 } };
  double origin[3] = { 0, 0, 0 };
  double m[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
  double inv[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };

  std::size_t Count() const { return n[0] * n[1] * n[2]; }
  std::size_t Offset(std::size_t i, std::size_t j, std::size_t k) const { return i + n[0] * (j + n[1] * k); }
  void ToPhysical(const double idx[3], double p[3]) const;
  void ToIndex(const double p[3], double idx[3]) const;
  double VoxelVolume() const { return spacing[0] * spacing[1] * spacing[2]; }
};

Grid GridOf(const itk::ImageBase<3> * image);

/// Axial view of a grid: (u, v, w) = indices along the voxel axes of LR, AP and SI.
struct AxialView
{
  Grid grid;
  AnatomicalAxes axes;
  std::size_t nu = 0, nv = 0, nw = 0;
  double su = 1, sv = 1, sw = 1; // spacing [mm]
  explicit AxialView(const itk::ImageBase<3> * image);
  std::size_t Offset(std::size_t u, std::size_t v, std::size_t w) const
  {
    std::size_t idx[3];
    idx[axes.axis[LR]] = u;
    idx[axes.axis[AP]] = v;
    idx[axes.axis[SI]] = w;
    return grid.Offset(idx[0], idx[1], idx[2]);
  }
  /// Physical point of continuous (u, v, w).
  PointType Point(double u, double v, double w) const;
  /// Continuous (u, v, w) of a physical point.
  std::array<double, 3> Uvw(const PointType & p) const;
};

MaskImage::Pointer NewMask(const itk::ImageBase<3> * reference);
LabelImage::Pointer NewLabels(const itk::ImageBase<3> * reference);
FloatImage::Pointer NewFloat(const itk::ImageBase<3> * reference);

struct RobustStats
{
  double median = 0.0;
  double sigma = 0.0; // 1.4826 MAD
};
/// Median and 1.4826 MAD (values reordered).
RobustStats Robust(std::vector<float> & values);
/// q in [0,1] (values reordered).
double Percentile(std::vector<float> & values, double q);

/// 26-connected components of buf != 0; returns label per voxel (0 background) and sizes[label].
std::vector<std::uint32_t> Components(const std::uint8_t * buf, const Grid & g, std::vector<std::size_t> & sizes,
                                      bool full = true);

/// Distance [mm] to the nearest voxel with buf != 0 (huge when none).
std::vector<float> Distance(const std::uint8_t * buf, const Grid & g);

/// Hysteresis: components of (grow or seed) that contain at least one (seed) voxel, or at least `extentVoxels` voxels
/// (0: no such rule); returns a 0/1 buffer.
std::vector<std::uint8_t> Hysteresis(const std::vector<std::uint8_t> & seed, const std::vector<std::uint8_t> & grow,
                                     const Grid & g, std::size_t extentVoxels = 0);

/// Closing with the 6-neighbourhood, per-component hole filling (3D, from the border), and a majority rim
/// (voxels with >= 10 of 27 neighbourhood voxels set are added), all limited to `allowed` (may be empty).
void Regularize(std::vector<std::uint8_t> & mask, const Grid & g, const std::vector<std::uint8_t> & allowed);

/// Keeps components with >= minVoxels and >= minVolume; writes labels (by decreasing size) to `labels`.
void KeepComponents(const std::vector<std::uint8_t> & mask, const Grid & g, std::size_t minVoxels, double minVolume,
                    LabelImage * labels, MaskImage * out);

/// Robust local-linear regression (LOESS with tricube kernel of half-width `bandwidth`, Tukey biweight with
/// constant `c` on the residual norm over all series, `iterations` reweighting passes). `x` are positions, each
/// series in `ys` is smoothed jointly (one weight per sample). Returns the fitted series and the final weights.
std::vector<std::vector<double>> RobustLoess(const std::vector<double> & x, const std::vector<std::vector<double>> & ys,
                                             double bandwidth, double c, int iterations,
                                             std::vector<double> * weights = nullptr);

/// Mask on the grid of reference (resampled nearest when needed), as a 0/1 buffer.
std::vector<std::uint8_t> MaskOnGrid(const MaskImage * mask, const itk::ImageBase<3> * reference);
} // namespace gw::segmentation::detail
