// Transform utilities, resampling, masks and QA helpers (light templates: resampling and interpolators only).
#include <algorithm>
#include <cmath>

#include <itkAffineTransform.h>
#include <itkBSplineInterpolateImageFunction.h>
#include <itkCompositeTransform.h>
#include <itkImageRegionConstIteratorWithIndex.h>
#include <itkImageRegionIterator.h>
#include <itkLabelImageGaussianInterpolateImageFunction.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkMatrixOffsetTransformBase.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkResampleImageFilter.h>
#include <itkVersorRigid3DTransform.h>
#include <vnl/algo/vnl_svd.h>
#include <vnl/vnl_det.h>
#include <vnl/vnl_inverse.h>
#include <vnl/vnl_matrix_fixed.h>

#include "gw/core/error.h"
#include "internal.h"

namespace gw::registration
{
namespace
{
using AffineType = itk::AffineTransform<double, 3>;
using LinearBase = itk::MatrixOffsetTransformBase<double, 3, 3>;
using CompositeType = itk::CompositeTransform<double, 3>;

template <typename TImage>
typename TImage::Pointer
ResampleImpl(const TImage * image, const itk::ImageBase<3> * reference, const TransformType * transform,
             Interpolation interpolation, typename TImage::PixelType defaultValue)
{
  if (!image || !reference || !transform)
    ThrowUsage("resampling needs an image, a reference grid and a transform");
  using FilterType = itk::ResampleImageFilter<TImage, TImage, double>;
  auto filter = FilterType::New();
  filter->SetInput(image);
  filter->SetTransform(transform);
  filter->SetOutputParametersFromImage(reference);
  filter->SetDefaultPixelValue(defaultValue);
  switch (interpolation)
  {
    case Interpolation::Linear:
      filter->SetInterpolator(itk::LinearInterpolateImageFunction<TImage, double>::New());
      break;
    case Interpolation::BSpline:
      filter->SetInterpolator(itk::BSplineInterpolateImageFunction<TImage, double, double>::New());
      break;
    case Interpolation::Nearest:
      filter->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<TImage, double>::New());
      break;
    case Interpolation::LabelGaussian:
    {
      auto interp = itk::LabelImageGaussianInterpolateImageFunction<TImage, double>::New();
      typename itk::LabelImageGaussianInterpolateImageFunction<TImage, double>::ArrayType sigma;
      for (unsigned int d = 0; d < 3; ++d)
        sigma[d] = 0.5 * image->GetSpacing()[d];
      interp->SetSigma(sigma);
      interp->SetAlpha(3.0);
      filter->SetInterpolator(interp);
      break;
    }
  }
  try
  {
    filter->Update();
  }
  catch (const itk::ExceptionObject & e)
  {
    ThrowProcessing("resampling failed: " + std::string(e.GetDescription()));
  }
  typename TImage::Pointer out = filter->GetOutput();
  out->DisconnectPipeline();
  return out;
}

const LinearBase *
AsLinear(const TransformType * t)
{
  if (const auto * c = dynamic_cast<const CompositeType *>(t))
  {
    if (c->GetNumberOfTransforms() != 1)
      return nullptr;
    return dynamic_cast<const LinearBase *>(c->GetNthTransformConstPointer(0));
  }
  return dynamic_cast<const LinearBase *>(t);
}

vnl_matrix_fixed<double, 3, 3>
Orthonormalize(const vnl_matrix_fixed<double, 3, 3> & m)
{
  vnl_svd<double> svd(m.as_ref());
  return vnl_matrix_fixed<double, 3, 3>((svd.U() * svd.V().transpose()).as_ref());
}
} // namespace

FloatImage::Pointer
Resample(const FloatImage * image, const itk::ImageBase<3> * reference, const TransformType * transform,
         Interpolation interpolation, float defaultValue)
{
  if (interpolation == Interpolation::LabelGaussian)
    ThrowUsage("label-Gaussian interpolation is for label maps, not intensities");
  return ResampleImpl<FloatImage>(image, reference, transform, interpolation, defaultValue);
}

LabelImage::Pointer
Resample(const LabelImage * image, const itk::ImageBase<3> * reference, const TransformType * transform,
         Interpolation interpolation)
{
  if (interpolation != Interpolation::Nearest && interpolation != Interpolation::LabelGaussian)
    ThrowUsage("label maps are resampled with nearest or label-Gaussian interpolation only");
  return ResampleImpl<LabelImage>(image, reference, transform, interpolation, 0);
}

MaskImage::Pointer
Resample(const MaskImage * image, const itk::ImageBase<3> * reference, const TransformType * transform,
         Interpolation interpolation)
{
  if (interpolation != Interpolation::Nearest && interpolation != Interpolation::LabelGaussian)
    ThrowUsage("masks are resampled with nearest or label-Gaussian interpolation only");
  return ResampleImpl<MaskImage>(image, reference, transform, interpolation, 0);
}

PointDistance
TransformDistance(const TransformType * a, const TransformType * b, const itk::ImageBase<3> * region,
                  const MaskImage * mask, unsigned int stride)
{
  if (!a || !b || !region)
    ThrowUsage("transform distance needs two transforms and a region");
  if (mask && !internal::SameGrid(mask, region))
    ThrowInput("transform distance: the mask grid differs from the region grid");
  stride = std::max(1u, stride);
  const auto spacing = region->GetSpacing();
  const auto direction = region->GetDirection();
  PointDistance out;
  double sum = 0.0, sumVox = 0.0;
  const auto r = region->GetLargestPossibleRegion();
  const auto start = r.GetIndex();
  const auto size = r.GetSize();
  IndexType idx;
  for (itk::IndexValueType k = 0; k < static_cast<itk::IndexValueType>(size[2]); k += stride)
    for (itk::IndexValueType j = 0; j < static_cast<itk::IndexValueType>(size[1]); j += stride)
      for (itk::IndexValueType i = 0; i < static_cast<itk::IndexValueType>(size[0]); i += stride)
      {
        idx[0] = start[0] + i;
        idx[1] = start[1] + j;
        idx[2] = start[2] + k;
        if (mask && !mask->GetPixel(idx))
          continue;
        PointType p;
        region->TransformIndexToPhysicalPoint(idx, p);
        const auto e = a->TransformPoint(p) - b->TransformPoint(p);
        const double n = e.GetNorm();
        sum += n;
        out.max = std::max(out.max, n);
        double v2 = 0.0;
        for (unsigned int d = 0; d < 3; ++d)
        {
          double c = 0.0;
          for (unsigned int m = 0; m < 3; ++m)
            c += direction[m][d] * e[m];
          v2 += (c / spacing[d]) * (c / spacing[d]);
        }
        sumVox += std::sqrt(v2);
        ++out.count;
      }
  if (out.count == 0)
    ThrowInput("transform distance: no voxel in the mask");
  out.mean = sum / static_cast<double>(out.count);
  out.meanVoxels = sumVox / static_cast<double>(out.count);
  return out;
}

TransformPointer
MakeRigidTransform(const std::array<double, 3> & rotationDeg, const std::array<double, 3> & translationMm,
                   const PointType & center)
{
  const double k = std::acos(-1.0) / 180.0;
  const double ax = rotationDeg[0] * k, ay = rotationDeg[1] * k, az = rotationDeg[2] * k;
  vnl_matrix_fixed<double, 3, 3> rx, ry, rz;
  rx.set_identity();
  ry.set_identity();
  rz.set_identity();
  rx(1, 1) = std::cos(ax);
  rx(1, 2) = -std::sin(ax);
  rx(2, 1) = std::sin(ax);
  rx(2, 2) = std::cos(ax);
  ry(0, 0) = std::cos(ay);
  ry(0, 2) = std::sin(ay);
  ry(2, 0) = -std::sin(ay);
  ry(2, 2) = std::cos(ay);
  rz(0, 0) = std::cos(az);
  rz(0, 1) = -std::sin(az);
  rz(1, 0) = std::sin(az);
  rz(1, 1) = std::cos(az);
  auto rigid = itk::VersorRigid3DTransform<double>::New();
  rigid->SetCenter(center);
  itk::VersorRigid3DTransform<double>::MatrixType m;
  m = rz * ry * rx;
  rigid->SetMatrix(m);
  itk::VersorRigid3DTransform<double>::OutputVectorType t;
  for (unsigned int d = 0; d < 3; ++d)
    t[d] = translationMm[d];
  rigid->SetTranslation(t);
  return rigid.GetPointer();
}

PointType
GridCenter(const itk::ImageBase<3> * image)
{
  const auto r = image->GetLargestPossibleRegion();
  itk::ContinuousIndex<double, 3> c;
  for (unsigned int d = 0; d < 3; ++d)
    c[d] = r.GetIndex()[d] + (static_cast<double>(r.GetSize()[d]) - 1.0) / 2.0;
  PointType p;
  image->TransformContinuousIndexToPhysicalPoint(c, p);
  return p;
}

TransformPointer
HalfTransform(const TransformType * linear)
{
  const LinearBase * lin = AsLinear(linear);
  if (!lin)
    ThrowUsage("halfway: the transform is not linear (rigid or affine)");
  vnl_matrix_fixed<double, 4, 4> m;
  m.set_identity();
  const auto a = lin->GetMatrix();
  const auto b = lin->GetOffset();
  for (unsigned int r = 0; r < 3; ++r)
  {
    for (unsigned int c = 0; c < 3; ++c)
      m(r, c) = a[r][c];
    m(r, 3) = b[r];
  }
  if (vnl_det(a.GetVnlMatrix()) <= 0.0)
    ThrowProcessing("halfway: the transform flips orientation and has no real square root");
  // Denman–Beavers: Y → sqrt(M), Z → sqrt(M)^-1.
  vnl_matrix_fixed<double, 4, 4> y = m, z;
  z.set_identity();
  for (int it = 0; it < 100; ++it)
  {
    const vnl_matrix_fixed<double, 4, 4> yi = vnl_inverse(y), zi = vnl_inverse(z);
    const vnl_matrix_fixed<double, 4, 4> yn = 0.5 * (y + zi);
    z = 0.5 * (z + yi);
    const double change = (yn - y).frobenius_norm();
    y = yn;
    if (change < 1e-14)
      break;
  }
  if ((y * y - m).frobenius_norm() > 1e-8 * std::max(1.0, m.frobenius_norm()))
    ThrowProcessing("halfway: matrix square root did not converge");
  auto half = AffineType::New();
  AffineType::MatrixType ha;
  AffineType::OutputVectorType ht;
  for (unsigned int r = 0; r < 3; ++r)
  {
    for (unsigned int c = 0; c < 3; ++c)
      ha[r][c] = y(r, c);
    ht[r] = y(r, 3);
  }
  half->SetMatrix(ha);
  half->SetOffset(ht);
  return half.GetPointer();
}

TransformPointer
CloneTransform(const TransformType * transform)
{
  if (!transform)
    return nullptr;
  return transform->Clone().GetPointer();
}

FloatImage::Pointer
Reposition(const FloatImage * image, const TransformType * rigid)
{
  using Linear = itk::MatrixOffsetTransformBase<double, 3, 3>;
  const auto * t = dynamic_cast<const Linear *>(Simplify(rigid).GetPointer());
  if (!image || !t)
    ThrowUsage("reposition: an image and a linear transform are required");
  const auto m = t->GetMatrix();
  const auto offset = t->GetOffset();
  // a rotation: M^T M = I and det M = +1
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned c = 0; c < 3; ++c)
    {
      double dot = 0.0;
      for (unsigned k = 0; k < 3; ++k)
        dot += m[k][r] * m[k][c];
      if (std::abs(dot - (r == c ? 1.0 : 0.0)) > 1e-4)
        ThrowUsage("reposition: the transform is not rigid");
    }
  if (vnl_det(m.GetVnlMatrix()) < 0)
    ThrowUsage("reposition: the transform is a reflection");
  // old physical q = D S i + o; new p = M^-1 (q - offset) = M^T D S i + M^T (o - offset)
  const auto mt = m.GetTranspose();
  itk::Matrix<double, 3, 3> mInv(mt);
  auto out = FloatImage::New();
  out->CopyInformation(image);
  out->SetRegions(image->GetLargestPossibleRegion());
  out->SetPixelContainer(const_cast<FloatImage *>(image)->GetPixelContainer());
  out->SetDirection(mInv * image->GetDirection());
  PointType origin;
  for (unsigned r = 0; r < 3; ++r)
  {
    origin[r] = 0.0;
    for (unsigned k = 0; k < 3; ++k)
      origin[r] += mInv[r][k] * (image->GetOrigin()[k] - offset[k]);
  }
  out->SetOrigin(origin);
  return out;
}

TransformPointer
Simplify(const TransformType * transform)
{
  if (const auto * c = dynamic_cast<const CompositeType *>(transform))
    if (c->GetNumberOfTransforms() == 1)
      return const_cast<TransformType *>(c->GetNthTransformConstPointer(0));
  return const_cast<TransformType *>(transform);
}

nlohmann::json
ToJson(const QualityGate & gate)
{
  nlohmann::json j;
  j["passed"] = gate.passed;
  j["max_estimated_error_voxels"] = gate.maxEstimatedErrorVoxels;
  j["max_estimated_error_mm"] = gate.maxEstimatedErrorMm;
  j["min_overlap_fraction"] = gate.minOverlapFraction;
  j["failures"] = gate.failures;
  j["rule"] = "pass when the final metric is finite, estimated error (inverse-consistency error / sqrt(2)) <= "
              "max_estimated_error_voxels x geometric-mean fixed voxel size, and overlap >= min_overlap_fraction";
  return j;
}

nlohmann::json
ToJson(const RegistrationQa & qa)
{
  nlohmann::json j;
  j["metric"] = qa.metricName;
  j["initial_metric"] = qa.initialMetric;
  j["final_metric"] = qa.finalMetric;
  j["inverse_consistency_computed"] = qa.inverseConsistencyComputed;
  if (qa.inverseConsistencyComputed)
  {
    j["inverse_consistency_mean_mm"] = qa.inverseConsistencyMm;
    j["inverse_consistency_max_mm"] = qa.inverseConsistencyMaxMm;
    j["estimated_error_mm"] = qa.estimatedErrorMm;
    j["inverse_consistency_method"] =
      "an independent backward registration (moving image to fixed image) with the same stages, pyramid levels, "
      "iterations and settings, its own initialization (centres of the moving and fixed images) and its own metric "
      "samples drawn on the moving grid, never initialized from the forward result; error = mean and maximum of "
      "|B(F(x)) - x| over the fixed cost mask (every voxel, every 2nd or 3rd per axis above 0.3 M or 2 M voxels); "
      "estimated error of one registration = mean / sqrt(2)";
  }
  j["voxel_size_mm"] = qa.voxelSizeMm;
  j["overlap_fraction"] = qa.overlapFraction;
  j["seconds"] = qa.seconds;
  j["qa_seconds"] = qa.qaSeconds;
  j["stages"] = qa.stages;
  j["gate"] = ToJson(qa.gate);
  return j;
}

TransformKind
ParseTransformKind(const std::string & name)
{
  if (name == "rigid")
    return TransformKind::Rigid;
  if (name == "affine")
    return TransformKind::Affine;
  if (name == "bspline")
    return TransformKind::BSpline;
  ThrowUsage("unknown transform type '" + name + "' (rigid, affine, bspline)");
}

MetricKind
ParseMetricKind(const std::string & name)
{
  if (name == "mattes" || name == "mattes_mi" || name == "mi")
    return MetricKind::MattesMI;
  if (name == "correlation" || name == "cc")
    return MetricKind::Correlation;
  ThrowUsage("unknown metric '" + name + "' (mattes, correlation)");
}

Initialization
ParseInitialization(const std::string & name)
{
  if (name == "geometry")
    return Initialization::Geometry;
  if (name == "moments")
    return Initialization::Moments;
  if (name == "none")
    return Initialization::None;
  ThrowUsage("unknown initialization '" + name + "' (geometry, moments, none)");
}

Interpolation
ParseInterpolation(const std::string & name)
{
  if (name == "linear")
    return Interpolation::Linear;
  if (name == "bspline")
    return Interpolation::BSpline;
  if (name == "nearest")
    return Interpolation::Nearest;
  if (name == "label-gaussian" || name == "labelGaussian")
    return Interpolation::LabelGaussian;
  ThrowUsage("unknown interpolation '" + name + "' (linear, bspline, nearest, label-gaussian)");
}

const char *
ToString(TransformKind kind)
{
  switch (kind)
  {
    case TransformKind::Rigid:
      return "rigid";
    case TransformKind::Affine:
      return "affine";
    case TransformKind::BSpline:
      return "bspline";
  }
  return "?";
}

const char *
ToString(MetricKind kind)
{
  return kind == MetricKind::MattesMI ? "mattes" : "correlation";
}

namespace internal
{
bool
SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b)
{
  if (a->GetLargestPossibleRegion() != b->GetLargestPossibleRegion())
    return false;
  for (unsigned int d = 0; d < 3; ++d)
  {
    if (std::abs(a->GetOrigin()[d] - b->GetOrigin()[d]) > 1e-4 ||
        std::abs(a->GetSpacing()[d] - b->GetSpacing()[d]) > 1e-6)
      return false;
    for (unsigned int e = 0; e < 3; ++e)
      if (std::abs(a->GetDirection()[d][e] - b->GetDirection()[d][e]) > 1e-6)
        return false;
  }
  return true;
}

std::size_t
CountNonZero(const MaskImage * mask)
{
  std::size_t n = 0;
  const auto * p = mask->GetBufferPointer();
  const std::size_t total = mask->GetBufferedRegion().GetNumberOfPixels();
  for (std::size_t i = 0; i < total; ++i)
    n += p[i] != 0;
  return n;
}

MaskImage::Pointer
CostMask(const FloatImage * image, const MaskImage * include, const MaskImage * exclude, const std::string & role)
{
  if (!include && !exclude)
    return nullptr;
  auto identity = AffineType::New();
  identity->SetIdentity();
  auto onGrid = [&](const MaskImage * m) -> MaskImage::ConstPointer
  {
    if (SameGrid(m, image))
      return m;
    return Resample(m, image, identity.GetPointer(), Interpolation::Nearest).GetPointer();
  };
  auto cost = MaskImage::New();
  cost->CopyInformation(image);
  cost->SetRegions(image->GetLargestPossibleRegion());
  cost->Allocate();
  cost->FillBuffer(1);
  const std::size_t total = cost->GetBufferedRegion().GetNumberOfPixels();
  auto * c = cost->GetBufferPointer();
  if (include)
  {
    const auto in = onGrid(include);
    const auto * p = in->GetBufferPointer();
    for (std::size_t i = 0; i < total; ++i)
      c[i] = p[i] != 0;
  }
  if (exclude)
  {
    const auto ex = onGrid(exclude);
    const auto * p = ex->GetBufferPointer();
    for (std::size_t i = 0; i < total; ++i)
      if (p[i])
        c[i] = 0;
  }
  if (CountNonZero(cost) == 0)
    ThrowInput("the " + role + " cost mask is empty (mask minus excluded region)");
  return cost;
}

double
OverlapFraction(const FloatImage * fixed, const MaskImage * fixedCost, const FloatImage * moving,
                const TransformType * transform)
{
  const auto region = moving->GetLargestPossibleRegion();
  std::size_t inside = 0, total = 0;
  const std::size_t voxels = fixed->GetLargestPossibleRegion().GetNumberOfPixels();
  const itk::IndexValueType stride = voxels > 1000000 ? 2 : 1;
  itk::ImageRegionConstIteratorWithIndex<FloatImage> it(fixed, fixed->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    if (idx[0] % stride || idx[1] % stride || idx[2] % stride)
      continue;
    if (fixedCost && !fixedCost->GetPixel(idx))
      continue;
    PointType p;
    fixed->TransformIndexToPhysicalPoint(idx, p);
    const PointType q = transform->TransformPoint(p);
    itk::ContinuousIndex<double, 3> ci;
    moving->TransformPhysicalPointToContinuousIndex(q, ci);
    bool in = true;
    for (unsigned int d = 0; d < 3; ++d)
      in = in && ci[d] >= region.GetIndex()[d] - 0.5 &&
           ci[d] <= region.GetIndex()[d] + static_cast<double>(region.GetSize()[d]) - 0.5;
    inside += in;
    ++total;
  }
  return total ? static_cast<double>(inside) / static_cast<double>(total) : 0.0;
}

void
MakeHalfway(const FloatImage * fixed, const FloatImage * moving, RegistrationResult & result)
{
  const TransformPointer half = HalfTransform(result.linear);
  const auto * h = dynamic_cast<const AffineType *>(half.GetPointer());
  auto hinv = AffineType::New();
  if (!h->GetInverse(hinv))
    ThrowProcessing("halfway: the half transform is not invertible");
  result.halfwayToMoving = half;
  result.halfwayToFixed = hinv.GetPointer();

  // Fixed axes pushed into halfway space by H (fixed → halfway) and moving axes pulled by H^-1 (moving → halfway).
  const vnl_matrix_fixed<double, 3, 3> a = h->GetMatrix().GetVnlMatrix();
  const vnl_matrix_fixed<double, 3, 3> ainv = hinv->GetMatrix().GetVnlMatrix();
  const vnl_matrix_fixed<double, 3, 3> pf = Orthonormalize(a * fixed->GetDirection().GetVnlMatrix());
  const vnl_matrix_fixed<double, 3, 3> pm = Orthonormalize(ainv * moving->GetDirection().GetVnlMatrix());
  bool correspond = true; // same voxel axis ordering and sense (within 45 degrees)
  for (unsigned int c = 0; c < 3; ++c)
  {
    double dot = 0.0;
    for (unsigned int r = 0; r < 3; ++r)
      dot += pf(r, c) * pm(r, c);
    correspond = correspond && dot > std::cos(std::acos(-1.0) / 4.0);
  }
  const vnl_matrix_fixed<double, 3, 3> dir = correspond ? Orthonormalize(pf + pm) : pf;
  SpacingType spacing = fixed->GetSpacing();
  if (correspond)
    for (unsigned int d = 0; d < 3; ++d)
      spacing[d] = 0.5 * (fixed->GetSpacing()[d] + moving->GetSpacing()[d]);
  SizeType size;
  for (unsigned int d = 0; d < 3; ++d)
    size[d] = static_cast<itk::SizeValueType>(
      std::ceil(fixed->GetLargestPossibleRegion().GetSize()[d] * fixed->GetSpacing()[d] / spacing[d] - 1e-6));
  const PointType cf = h->TransformPoint(GridCenter(fixed));
  const PointType cm = hinv->TransformPoint(GridCenter(moving));
  PointType origin;
  for (unsigned int r = 0; r < 3; ++r)
  {
    double o = 0.5 * (cf[r] + cm[r]);
    for (unsigned int c = 0; c < 3; ++c)
      o -= dir(r, c) * spacing[c] * (static_cast<double>(size[c]) - 1.0) / 2.0;
    origin[r] = o;
  }
  auto ref = FloatImage::New();
  DirectionType direction;
  for (unsigned int r = 0; r < 3; ++r)
    for (unsigned int c = 0; c < 3; ++c)
      direction[r][c] = dir(r, c);
  ref->SetRegions(RegionType(size));
  ref->SetSpacing(spacing);
  ref->SetOrigin(origin);
  ref->SetDirection(direction);
  result.halfwayReference = ref;
}
} // namespace internal
} // namespace gw::registration
