// The grid of the baseline space, refined where a later scan was acquired finer.
#include "analysis_grid.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <itkDiscreteGaussianImageFilter.h>

#include "gw/core/error.h"
#include "gw/registration/registration.h"

namespace gw::followup::detail
{
namespace reg = gw::registration;

double
ResolutionAlong(const itk::ImageBase<3> * image, const itk::Vector<double, 3> & u)
{
  const auto & d = image->GetDirection();
  const auto sp = image->GetSpacing();
  double r = 0.0;
  for (unsigned int k = 0; k < 3; ++k)
  {
    double dot = 0.0;
    for (unsigned int j = 0; j < 3; ++j)
      dot += u[j] * d(j, k);
    r = std::max(r, std::abs(dot) * sp[k]);
  }
  return r;
}

namespace
{
/// axis `a` of `grid` as `transform` carries it into the image's space, 1 mm either side of `centre` (unit; zero when
/// the transform collapses it)
itk::Vector<double, 3>
MappedAxis(const itk::ImageBase<3> * grid, unsigned int a, const io::TransformType * transform,
           const PointType & centre)
{
  itk::Vector<double, 3> axis;
  for (unsigned int j = 0; j < 3; ++j)
    axis[j] = grid->GetDirection()(j, a);
  if (!transform)
    return axis;
  auto u = transform->TransformPoint(centre + axis) - transform->TransformPoint(centre - axis);
  const double length = u.GetNorm();
  if (!(length > 1e-6) || !std::isfinite(length))
    return itk::Vector<double, 3>(0.0);
  return u / length;
}
} // namespace

std::array<double, 3>
ResolutionOnGrid(const itk::ImageBase<3> * grid, const itk::ImageBase<3> * image, const io::TransformType * transform)
{
  const PointType centre = reg::GridCenter(grid);
  std::array<double, 3> r{};
  for (unsigned int a = 0; a < 3; ++a)
    r[a] = ResolutionAlong(image, MappedAxis(grid, a, transform, centre));
  return r;
}

std::pair<std::array<double, 3>, std::array<double, 3>>
CommonResolution(const std::array<double, 3> & earlier, const std::array<double, 3> & later)
{
  auto te = earlier, tl = later;
  for (int k = 0; k < 3; ++k)
  {
    if (std::abs(earlier[k] - later[k]) <= 0.1 * std::max(earlier[k], later[k]))
      continue;
    if (later[k] < earlier[k])
      tl[k] = std::hypot(later[k], earlier[k]);
    else
      te[k] = later[k];
  }
  return { te, tl };
}

FloatImage::ConstPointer
BlurToResolution(const FloatImage * image, const std::array<double, 3> & resolution,
                 const std::array<double, 3> & target)
{
  const auto sp = image->GetSpacing();
  itk::FixedArray<double, 3> variance;
  bool any = false;
  for (unsigned int a = 0; a < 3; ++a)
  {
    variance[a] = std::max(0.0, target[a] * target[a] - resolution[a] * resolution[a]) / 12.0;
    any = any || std::sqrt(variance[a]) > 0.1 * sp[a];
  }
  if (!any)
    return image;
  using Filter = itk::DiscreteGaussianImageFilter<FloatImage, FloatImage>;
  auto filter = Filter::New();
  filter->SetInput(image);
  filter->SetVariance(variance); // mm^2 (image spacing used)
  filter->SetMaximumError(0.01);
  filter->SetMaximumKernelWidth(64);
  filter->Update();
  FloatImage::Pointer out = filter->GetOutput();
  out->DisconnectPipeline();
  return out;
}

AnalysisGrid
RefinedAnalysisGrid(const FloatImage * baseline,
                    const std::vector<std::pair<const itk::ImageBase<3> *, const io::TransformType *>> & acquisitions)
{
  if (!baseline)
    ThrowInternal("analysis grid: no baseline image");
  AnalysisGrid out;
  const auto sp = baseline->GetSpacing();
  const auto size = baseline->GetLargestPossibleRegion().GetSize();
  // the finest resolution of the scans along each axis (an axis a transform collapses does not count)
  std::array<double, 3> finest;
  finest.fill(std::numeric_limits<double>::infinity());
  for (const auto & [image, transform] : acquisitions)
  {
    if (!image)
      continue;
    const auto r = ResolutionOnGrid(baseline, image, transform);
    for (unsigned int a = 0; a < 3; ++a)
      if (r[a] > 0.0)
        finest[a] = std::min(finest[a], r[a]);
  }
  for (unsigned int a = 0; a < 3; ++a)
  {
    if (size[a] < 2 || !std::isfinite(finest[a]))
      continue;
    const double f = std::ceil(sp[a] / (kRefineRatio * finest[a]) - 1e-9);
    out.refinement[a] = static_cast<unsigned int>(std::clamp(f, 1.0, double(kMaxAxisRefinement)));
  }
  auto product = [&] { return out.refinement[0] * out.refinement[1] * out.refinement[2]; };
  while (product() > kMaxRefinement)
    --*std::max_element(out.refinement.begin(), out.refinement.end());
  out.grid = FloatImage::New();
  out.grid->CopyInformation(baseline);
  FloatImage::SpacingType spacing = sp;
  FloatImage::SizeType refinedSize = size;
  for (unsigned int a = 0; a < 3; ++a)
  {
    spacing[a] = sp[a] / double(out.refinement[a]);
    refinedSize[a] = (size[a] - 1) * out.refinement[a] + 1;
  }
  out.grid->SetSpacing(spacing);
  out.grid->SetRegions(FloatImage::RegionType(refinedSize));
  return out;
}
} // namespace gw::followup::detail
