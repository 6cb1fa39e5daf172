#pragma once
// Helpers shared by the dti sources (not installed).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <thread>
#include <vector>

#include <Eigen/Dense>

#include "gw/core/error.h"
#include "gw/core/parallel.h"
#include "gw/core/types.h"
#include "gw/io/dwi_io.h"

namespace gw::dti::detail
{
using gw::ParallelFor;

/// 3x3 symmetric matrix from an ITK tensor pixel (upper-triangular xx,xy,xz,yy,yz,zz).
inline Eigen::Matrix3d
ToMatrix(const TensorPixel & t)
{
  Eigen::Matrix3d m;
  m << t[0], t[1], t[2], t[1], t[3], t[4], t[2], t[4], t[5];
  return m;
}

inline TensorPixel
ToPixel(const Eigen::Matrix3d & m)
{
  TensorPixel t;
  t[0] = static_cast<float>(m(0, 0));
  t[1] = static_cast<float>(m(0, 1));
  t[2] = static_cast<float>(m(0, 2));
  t[3] = static_cast<float>(m(1, 1));
  t[4] = static_cast<float>(m(1, 2));
  t[5] = static_cast<float>(m(2, 2));
  return t;
}

/// FA from eigenvalues (unclipped), clamped to [0,1].
inline double
FractionalAnisotropy(double l1, double l2, double l3)
{
  const double md = (l1 + l2 + l3) / 3.0;
  const double num = (l1 - md) * (l1 - md) + (l2 - md) * (l2 - md) + (l3 - md) * (l3 - md);
  const double den = l1 * l1 + l2 * l2 + l3 * l3;
  if (!(den > 0.0))
    return 0.0;
  return std::clamp(std::sqrt(1.5 * num / den), 0.0, 1.0);
}

/// Same grid (size, spacing, origin, direction within 1e-4 relative / 1e-3 mm).
bool SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b);

/// A mask sampled on the grid of `reference` (nearest neighbour at voxel centres); the same object when the grids
/// agree. Null stays null.
MaskImage::ConstPointer MaskOnGrid(const MaskImage * mask, const itk::ImageBase<3> * reference);

/// Linear index ↔ grid helpers on a buffered region starting at index 0.
struct Grid
{
  std::size_t nx = 0, ny = 0, nz = 0;
  explicit Grid(const itk::ImageBase<3> * image)
  {
    const auto size = image->GetBufferedRegion().GetSize();
    nx = size[0];
    ny = size[1];
    nz = size[2];
  }
  std::size_t Count() const { return nx * ny * nz; }
  std::size_t Linear(std::size_t i, std::size_t j, std::size_t k) const { return i + nx * (j + ny * k); }
};

/// Fits OLS tensors for the voxels listed, on a table already in the desired frame (used by the gradient check).
TensorImage::Pointer FitOlsQuick(const io::Dwi & dwi, const io::GradientTable & table, const MaskImage * mask,
                                 double b0Threshold, unsigned int threads);
} // namespace gw::dti::detail
