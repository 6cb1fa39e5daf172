#include "gw/report/snapshot.h"

#include <algorithm>
#include <cmath>

#include <itkImageFileWriter.h>
#include <itkPNGImageIO.h>
#include <itkRGBPixel.h>

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::report
{
namespace
{
using RgbImage = itk::Image<itk::RGBPixel<unsigned char>, 2>;

/// Trilinear sample in physical space; NaN outside.
template <typename TImage>
double
Sample(const TImage * image, const PointType & p)
{
  itk::ContinuousIndex<double, 3> ci;
  image->TransformPhysicalPointToContinuousIndex(p, ci);
  const auto size = image->GetLargestPossibleRegion().GetSize();
  IndexType base;
  double frac[3];
  for (unsigned d = 0; d < 3; ++d)
  {
    if (ci[d] < -0.5 || ci[d] > static_cast<double>(size[d]) - 0.5)
      return std::nan("");
    const double c = std::clamp(ci[d], 0.0, static_cast<double>(size[d]) - 1.0);
    base[d] = static_cast<itk::IndexValueType>(std::floor(c));
    if (base[d] >= static_cast<itk::IndexValueType>(size[d]) - 1)
      base[d] = std::max<itk::IndexValueType>(0, static_cast<itk::IndexValueType>(size[d]) - 2);
    frac[d] = size[d] > 1 ? c - static_cast<double>(base[d]) : 0.0;
  }
  double value = 0.0;
  for (int corner = 0; corner < 8; ++corner)
  {
    IndexType idx = base;
    double w = 1.0;
    for (unsigned d = 0; d < 3; ++d)
    {
      const int bit = (corner >> d) & 1;
      if (bit && size[d] > 1)
        ++idx[d];
      w *= bit ? frac[d] : 1.0 - frac[d];
    }
    if (w > 0)
      value += w * static_cast<double>(image->GetPixel(idx));
  }
  return value;
}

/// In-plane axes (right-going u, down-going v) and the normal, in LPS, for radiological display.
void
PlaneAxes(Plane plane, itk::Vector<double, 3> & u, itk::Vector<double, 3> & v)
{
  u.Fill(0);
  v.Fill(0);
  switch (plane)
  {
    case Plane::Axial: // picture right = patient left (+L), picture down = posterior (+P)
      u[0] = 1;
      v[1] = 1;
      break;
    case Plane::Sagittal: // picture right = posterior (+P), down = inferior (-S)
      u[1] = 1;
      v[2] = -1;
      break;
    case Plane::Coronal: // picture right = patient left (+L), down = inferior
      u[0] = 1;
      v[2] = -1;
      break;
  }
}
} // namespace

PointType
ImageCenter(const itk::ImageBase<3> * image)
{
  const auto size = image->GetLargestPossibleRegion().GetSize();
  itk::ContinuousIndex<double, 3> ci;
  for (unsigned d = 0; d < 3; ++d)
    ci[d] = (static_cast<double>(size[d]) - 1.0) / 2.0;
  PointType p;
  image->TransformContinuousIndexToPhysicalPoint(ci, p);
  return p;
}

void
WriteSnapshot(const FloatImage * image, const std::vector<Overlay> & overlays, const PointType & center, Plane plane,
              const std::filesystem::path & png, bool force, const SnapshotOptions & options)
{
  itk::Vector<double, 3> u, v;
  PlaneAxes(plane, u, v);
  const auto spacing = image->GetSpacing();
  double pixel = options.pixelSize > 0 ? options.pixelSize : std::min({ spacing[0], spacing[1], spacing[2] });
  // extent of the image along u and v
  double fov = options.fieldOfView;
  if (fov <= 0)
  {
    const auto size = image->GetLargestPossibleRegion().GetSize();
    double lo[2] = { 1e30, 1e30 }, hi[2] = { -1e30, -1e30 };
    for (int corner = 0; corner < 8; ++corner)
    {
      IndexType idx;
      for (unsigned d = 0; d < 3; ++d)
        idx[d] = ((corner >> d) & 1) ? static_cast<itk::IndexValueType>(size[d]) - 1 : 0;
      PointType p;
      image->TransformIndexToPhysicalPoint(idx, p);
      const auto dp = p - center;
      const double a = dp * u, b = dp * v;
      lo[0] = std::min(lo[0], a);
      hi[0] = std::max(hi[0], a);
      lo[1] = std::min(lo[1], b);
      hi[1] = std::max(hi[1], b);
    }
    fov = std::max({ 2 * std::abs(lo[0]), 2 * std::abs(hi[0]), 2 * std::abs(lo[1]), 2 * std::abs(hi[1]) }) + pixel;
  }
  int n = static_cast<int>(std::ceil(fov / pixel));
  if (n > options.maxPixels)
  {
    n = options.maxPixels;
    pixel = fov / n;
  }
  n = std::max(n, 8);
  std::vector<double> values(static_cast<std::size_t>(n) * n);
  std::vector<std::vector<unsigned char>> inside(overlays.size(), std::vector<unsigned char>(values.size(), 0));
  std::vector<double> finite;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c)
    {
      const double a = (c - (n - 1) / 2.0) * pixel, b = (r - (n - 1) / 2.0) * pixel;
      PointType p = center + u * a + v * b;
      const double val = Sample(image, p);
      values[r * n + c] = val;
      if (std::isfinite(val))
        finite.push_back(val);
      for (std::size_t k = 0; k < overlays.size(); ++k)
      {
        if (!overlays[k].mask)
          continue;
        const double m = Sample(overlays[k].mask, p);
        inside[k][r * n + c] = std::isfinite(m) && m >= 0.5;
      }
    }
  double lo = 0, hi = 1;
  if (!finite.empty())
  {
    auto pct = [&](double q)
    {
      const std::size_t i =
        std::min(finite.size() - 1, static_cast<std::size_t>(q / 100.0 * static_cast<double>(finite.size() - 1)));
      std::nth_element(finite.begin(), finite.begin() + static_cast<std::ptrdiff_t>(i), finite.end());
      return finite[i];
    };
    lo = pct(options.lowPercentile);
    hi = pct(options.highPercentile);
    if (hi <= lo)
      hi = lo + 1;
  }
  if (options.window)
  {
    lo = (*options.window)[0];
    hi = std::max((*options.window)[1], lo + 1e-6);
  }
  auto rgb = RgbImage::New();
  RgbImage::SizeType sz;
  sz[0] = static_cast<itk::SizeValueType>(n);
  sz[1] = static_cast<itk::SizeValueType>(n);
  rgb->SetRegions(RgbImage::RegionType(sz));
  rgb->Allocate();
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c)
    {
      const double val = values[r * n + c];
      const unsigned char g =
        std::isfinite(val)
          ? static_cast<unsigned char>(std::lround(255.0 * std::clamp((val - lo) / (hi - lo), 0.0, 1.0)))
          : 0;
      itk::RGBPixel<unsigned char> px;
      px.Set(g, g, g);
      for (std::size_t k = 0; k < overlays.size(); ++k)
      {
        if (!inside[k][r * n + c])
          continue;
        // contour: inside with a 4-neighbour outside
        const bool edge = r == 0 || c == 0 || r == n - 1 || c == n - 1 || !inside[k][(r - 1) * n + c] ||
                          !inside[k][(r + 1) * n + c] || !inside[k][r * n + c - 1] || !inside[k][r * n + c + 1];
        if (edge)
          px.Set(overlays[k].rgb[0], overlays[k].rgb[1], overlays[k].rgb[2]);
      }
      if (options.crosshair && ((r == n / 2 && std::abs(c - n / 2) > 3 && std::abs(c - n / 2) < 10) ||
                                (c == n / 2 && std::abs(r - n / 2) > 3 && std::abs(r - n / 2) < 10)))
        px.Set(255, 255, 0);
      RgbImage::IndexType idx;
      idx[0] = c;
      idx[1] = r;
      rgb->SetPixel(idx, px);
    }
  WriteAtomically(png, force,
                  [&](const std::filesystem::path & tmp)
                  {
                    auto writer = itk::ImageFileWriter<RgbImage>::New();
                    writer->SetImageIO(itk::PNGImageIO::New());
                    writer->SetFileName(tmp.string());
                    writer->SetInput(rgb);
                    WithContext(
                      "while writing " + png.string(), [&] { writer->Update(); }, ErrorKind::Output);
                  });
}
} // namespace gw::report
