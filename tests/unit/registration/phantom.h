#pragma once
// Analytic phantoms for the registration tests: a smooth, asymmetric sum of Gaussian blobs inside a soft
// ellipsoid, evaluated exactly at any physical point (so moved copies need no interpolation).
#include <cmath>
#include <functional>

#include <itkImageRegionIteratorWithIndex.h>

#include "gw/registration/registration.h"
#include "gw/testing/testing.h"

namespace gw::registration::test
{
struct Blob
{
  double c[3];
  double s[3];
  double amp;
};

/// Intensity of the phantom at physical point p (centre of the phantom at `centre`).
inline double
PhantomValue(const PointType & p, const PointType & centre)
{
  static const Blob blobs[] = { { { -12, 5, 3 }, { 8, 5, 6 }, 100 },
                                { { 10, -8, -6 }, { 4, 7, 5 }, 70 },
                                { { 3, 12, -10 }, { 3, 3, 3 }, 120 },
                                { { -5, -10, 12 }, { 6, 3, 3 }, 50 },
                                { { 14, 10, 8 }, { 3, 5, 2.5 }, 90 } };
  double v = 0.0;
  double r2 = 0.0;
  const double axes[3] = { 24, 20, 18 };
  for (unsigned int d = 0; d < 3; ++d)
    r2 += std::pow((p[d] - centre[d]) / axes[d], 2);
  v += 30.0 / (1.0 + std::exp((std::sqrt(r2) - 1.0) * 12.0));
  for (const auto & b : blobs)
  {
    double e = 0.0;
    for (unsigned int d = 0; d < 3; ++d)
      e += std::pow((p[d] - centre[d] - b.c[d]) / b.s[d], 2);
    v += b.amp * std::exp(-0.5 * e);
  }
  return v;
}

/// Fills an image on the given grid with f(point).
inline FloatImage::Pointer
Sample(const SizeType & size, double spacing, const std::function<double(const PointType &)> & f)
{
  SpacingType sp;
  sp.Fill(spacing);
  PointType origin;
  for (unsigned int d = 0; d < 3; ++d)
    origin[d] = -spacing * (static_cast<double>(size[d]) - 1.0) / 2.0;
  auto img = gw::testing::MakeImage(size, sp, origin);
  itk::ImageRegionIteratorWithIndex<FloatImage> it(img, img->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    img->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    it.Set(static_cast<float>(f(p)));
  }
  return img;
}

/// The moving image of a fixed phantom under `truth` (fixed point → moving point): moving(y) = fixed(truth^-1(y)).
inline FloatImage::Pointer
MovedPhantom(const SizeType & size, double spacing, const TransformType * truth,
             const std::function<double(const PointType &)> & fixedFunction)
{
  auto inverse = truth->GetInverseTransform();
  return Sample(size, spacing, [&](const PointType & y) { return fixedFunction(inverse->TransformPoint(y)); });
}
} // namespace gw::registration::test
