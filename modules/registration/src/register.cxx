// All ITK v4 registration-method instantiations of GraftWatch live in this one translation unit (compile time):
// ImageRegistrationMethodv4 for VersorRigid3DTransform, AffineTransform and BSplineTransform over float 3D images.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <sstream>

#include <itkAffineTransform.h>
#include <itkBSplineTransform.h>
#include <itkBSplineTransformInitializer.h>
#include <itkCommand.h>
#include <itkCompositeTransform.h>
#include <itkConjugateGradientLineSearchOptimizerv4.h>
#include <itkCorrelationImageToImageMetricv4.h>
#include <itkImageMaskSpatialObject.h>
#include <itkImageRegionConstIteratorWithIndex.h>
#include <itkImageRegistrationMethodv4.h>
#include <itkLBFGSBOptimizerv4.h>
#include <itkMattesMutualInformationImageToImageMetricv4.h>
#include <itkMultiThreaderBase.h>
#include <itkRegistrationParameterScalesFromPhysicalShift.h>
#include <itkRegularStepGradientDescentOptimizerv4.h>
#include <itkVersorRigid3DTransform.h>

#include "gw/core/error.h"
#include "gw/registration/registration.h"
#include "internal.h"

namespace gw::registration
{
namespace
{
using RigidType = itk::VersorRigid3DTransform<double>;
using AffineType = itk::AffineTransform<double, 3>;
using BSplineType = itk::BSplineTransform<double, 3, 3>;
using CompositeType = itk::CompositeTransform<double, 3>;
using MetricType = itk::ImageToImageMetricv4<FloatImage, FloatImage, FloatImage, double>;
using MattesType = itk::MattesMutualInformationImageToImageMetricv4<FloatImage, FloatImage, FloatImage, double>;
using CorrelationType = itk::CorrelationImageToImageMetricv4<FloatImage, FloatImage, FloatImage, double>;
using MaskObjectType = itk::ImageMaskSpatialObject<3>;
using Clock = std::chrono::steady_clock;

/// Deterministic mode: ITK's global default thread count is 1 for the duration of the call (restored after), so
/// every filter, metric and optimizer created inside runs single-threaded; setting only the metric's work units
/// was not enough for bitwise-identical results (checked by the DeterministicModeIsBitwiseRepeatable test).
class SingleThreadGuard
{
public:
  explicit SingleThreadGuard(bool active)
    : m_Active(active)
  {
    if (m_Active)
    {
      m_Saved = itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads();
      itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(1);
    }
  }
  ~SingleThreadGuard()
  {
    if (m_Active)
      itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(m_Saved);
  }
  SingleThreadGuard(const SingleThreadGuard &) = delete;
  SingleThreadGuard & operator=(const SingleThreadGuard &) = delete;

private:
  bool m_Active;
  itk::ThreadIdType m_Saved = 1;
};

/// Images, cost masks and their statistics shared by the stages of one registration.
struct Inputs
{
  const FloatImage * fixed = nullptr;
  const FloatImage * moving = nullptr;
  MaskImage::Pointer fixedCost;  ///< null: whole image
  MaskImage::Pointer movingCost; ///< null: whole image
  MaskObjectType::Pointer fixedObject;
  MaskObjectType::Pointer movingObject;
  double fixedMaskFraction = 1.0; ///< cost-mask voxels / all voxels
  /// Smoothed/shrunk levels for the linear Mattes MI engine (null: ITK registration method for every stage).
  const internal::PyramidImages * fixedPyramid = nullptr;
  const internal::PyramidImages * movingPyramid = nullptr;
  unsigned int threads = 1; ///< threads of the linear Mattes MI engine (results do not depend on it)
};

MaskObjectType::Pointer
MakeMaskObject(const MaskImage * mask)
{
  if (!mask)
    return nullptr;
  auto object = MaskObjectType::New();
  object->SetImage(mask);
  object->Update();
  return object;
}

MetricType::Pointer
MakeMetric(const Inputs & in, const RegistrationOptions & o, unsigned int bins = 0)
{
  MetricType::Pointer metric;
  if (o.metric == MetricKind::MattesMI)
  {
    auto mattes = MattesType::New();
    mattes->SetNumberOfHistogramBins(bins > 0 ? bins : o.histogramBins);
    metric = mattes;
  }
  else
    metric = CorrelationType::New();
  metric->SetUseFixedImageGradientFilter(false);
  metric->SetUseMovingImageGradientFilter(false);
  if (in.fixedObject)
    metric->SetFixedImageMask(in.fixedObject);
  if (in.movingObject)
    metric->SetMovingImageMask(in.movingObject);
  if (o.deterministic)
    metric->SetMaximumNumberOfWorkUnits(1);
  return metric;
}

/// Per-axis shrink factors: an isotropic-equivalent factor `s` shrinks axis d by round(s * minSpacing / spacing_d)
/// (at least 1), and never below 8 voxels along an axis.
itk::ImageRegistrationMethodv4<FloatImage, FloatImage, RigidType>::ShrinkFactorsPerDimensionContainerType
AxisShrink(const FloatImage * image, unsigned int s)
{
  itk::ImageRegistrationMethodv4<FloatImage, FloatImage, RigidType>::ShrinkFactorsPerDimensionContainerType f;
  const auto spacing = image->GetSpacing();
  const auto size = image->GetLargestPossibleRegion().GetSize();
  const double minSpacing = std::min({ spacing[0], spacing[1], spacing[2] });
  for (unsigned int d = 0; d < 3; ++d)
  {
    unsigned int v = static_cast<unsigned int>(std::lround(s * minSpacing / spacing[d]));
    v = std::max(1u, v);
    while (v > 1 && size[d] / v < 8)
      --v;
    f[d] = v;
  }
  return f;
}

/// Records iterations, value and stop condition of every level.
class LevelLogger : public itk::Command
{
public:
  using Self = LevelLogger;
  using Pointer = itk::SmartPointer<Self>;
  itkNewMacro(Self) std::vector<std::string> * lines = nullptr;
  std::string stage;
  unsigned int level = 0;
  double lastValue = 0.0;
  Clock::time_point start = Clock::now();
  void Execute(itk::Object * caller, const itk::EventObject & event) override
  {
    Execute((const itk::Object *)caller, event);
  }
  void Execute(const itk::Object * caller, const itk::EventObject & event) override
  {
    if (!itk::EndEvent().CheckEvent(&event))
      return;
    const auto * opt = dynamic_cast<const itk::ObjectToObjectOptimizerBaseTemplate<double> *>(caller);
    if (!opt)
      return;
    lastValue = opt->GetCurrentMetricValue();
    std::ostringstream os;
    os << stage << " L" << level++ << ": " << opt->GetCurrentIteration() << " it, metric " << lastValue << ", "
       << opt->GetStopConditionDescription() << " (" << std::chrono::duration<double>(Clock::now() - start).count()
       << " s)";
    start = Clock::now();
    if (lines)
      lines->push_back(os.str());
  }
};

struct Pyramid
{
  std::vector<unsigned int> shrink;
  std::vector<double> sigmas;
};

/// The random sampling of one pyramid level: the fraction of the cost-mask voxels sampled (samplingPercentage,
/// raised to minimumSamples and capped at maximumSamples) and the number of samples it gives.
struct Sampling
{
  double fraction = 1.0;
  double samples = 1.0;
};

Sampling
LevelSampling(const Inputs & in, unsigned int shrink, const RegistrationOptions & o)
{
  const auto f = AxisShrink(in.fixed, shrink);
  const auto size = in.fixed->GetLargestPossibleRegion().GetSize();
  double voxels = 1.0;
  for (unsigned int d = 0; d < 3; ++d)
    voxels *= std::max<double>(1.0, std::floor(static_cast<double>(size[d]) / f[d]));
  const double inMask = std::max(1.0, voxels * in.fixedMaskFraction);
  const double wanted = std::min(std::max(o.samplingPercentage, o.minimumSamples / inMask), o.maximumSamples / inMask);
  Sampling s;
  s.fraction = std::clamp(wanted, 1e-5, 1.0);
  s.samples = s.fraction * inMask;
  return s;
}

/// Mattes MI bins for the finest level (the linear engine's rule): about two samples per bin of the joint
/// histogram along one axis squared, sqrt(samples / 2), clamped to [histogramBins, finestLevelHistogramBins].
unsigned int
FinestLevelBins(double samples, const RegistrationOptions & o)
{
  if (o.finestLevelHistogramBins <= o.histogramBins)
    return o.histogramBins;
  return std::clamp(static_cast<unsigned int>(std::lround(std::sqrt(samples / 2.0))), o.histogramBins,
                    o.finestLevelHistogramBins);
}

template <typename TTransform, typename TOptimizer>
double
RunStage(
  const Inputs & in, TTransform * transform, const TransformType * movingInitial, MetricType * metric,
  TOptimizer * optimizer, const Pyramid & pyramid, const RegistrationOptions & o, const std::string & stage,
  std::vector<std::string> & lines,
  const std::function<void(itk::ImageRegistrationMethodv4<FloatImage, FloatImage, TTransform> *)> & configure = {})
{
  using RegistrationType = itk::ImageRegistrationMethodv4<FloatImage, FloatImage, TTransform>;
  auto reg = RegistrationType::New();
  reg->SetFixedImage(in.fixed);
  reg->SetMovingImage(in.moving);
  reg->SetMetric(metric);
  reg->SetOptimizer(optimizer);
  reg->SetInitialTransform(transform);
  reg->InPlaceOn();
  if (movingInitial)
  {
    auto initial = CompositeType::New();
    initial->AddTransform(const_cast<TransformType *>(movingInitial));
    reg->SetMovingInitialTransform(initial);
  }
  const unsigned int levels = static_cast<unsigned int>(pyramid.shrink.size());
  reg->SetNumberOfLevels(levels);
  typename RegistrationType::SmoothingSigmasArrayType sigmas(levels);
  typename RegistrationType::MetricSamplingPercentageArrayType percent(levels);
  const auto spacing = in.fixed->GetSpacing();
  const double minSpacing = std::min({ spacing[0], spacing[1], spacing[2] });
  for (unsigned int l = 0; l < levels; ++l)
  {
    reg->SetShrinkFactorsPerDimension(l, AxisShrink(in.fixed, pyramid.shrink[l]));
    sigmas[l] = pyramid.sigmas[l] * minSpacing;
    percent[l] = LevelSampling(in, pyramid.shrink[l], o).fraction;
  }
  reg->SetSmoothingSigmasPerLevel(sigmas);
  reg->SetSmoothingSigmasAreSpecifiedInPhysicalUnits(true);
  reg->SetMetricSamplingStrategy(RegistrationType::MetricSamplingStrategyEnum::RANDOM);
  reg->SetMetricSamplingPercentagePerLevel(percent);
  reg->MetricSamplingReinitializeSeed(o.seed);
  if (o.deterministic)
    optimizer->SetNumberOfWorkUnits(1);
  if (configure)
    configure(reg);

  auto logger = LevelLogger::New();
  logger->lines = &lines;
  logger->stage = stage;
  optimizer->AddObserver(itk::EndEvent(), logger);
  try
  {
    reg->Update();
  }
  catch (const itk::ExceptionObject & e)
  {
    ThrowProcessing(stage + " registration failed: " + std::string(e.GetDescription()));
  }
  const double value = optimizer->GetCurrentMetricValue();
  if (!std::isfinite(value))
    ThrowProcessing(stage + " registration ended with a non-finite metric value");
  return value;
}

/// Parameter scales from the physical shift of the moving points, estimated when each level's optimization starts
/// (either linear optimizer).
template <typename TOptimizer>
void
UsePhysicalShiftScales(TOptimizer * opt, MetricType * metric)
{
  using ScalesType = itk::RegistrationParameterScalesFromPhysicalShift<MetricType>;
  auto scales = ScalesType::New();
  scales->SetMetric(metric);
  scales->SetTransformForward(true);
  opt->SetScalesEstimator(scales);
  opt->SetDoEstimateScales(true);
  opt->SetDoEstimateLearningRateOnce(false);
}

itk::RegularStepGradientDescentOptimizerv4<double>::Pointer
MakeLinearOptimizer(MetricType * metric, const RegistrationOptions & o)
{
  auto opt = itk::RegularStepGradientDescentOptimizerv4<double>::New();
  UsePhysicalShiftScales(opt.GetPointer(), metric);
  opt->SetDoEstimateLearningRateAtEachIteration(false);
  opt->SetLearningRate(o.maximumStepMm);
  opt->SetMinimumStepLength(o.minimumStepMm);
  opt->SetRelaxationFactor(o.relaxation);
  opt->SetGradientMagnitudeTolerance(1e-8);
  opt->SetNumberOfIterations(o.iterations);
  return opt;
}

/// Affine stage: conjugate gradient with a golden-section line search (better conditioned than regular-step
/// descent on the 12 coupled affine parameters), PhysicalShift scales, learning rate estimated at each iteration so
/// the largest point shift of a step is at most maximumStepMm; stops when the metric changed less than 1e-6 over a
/// window of 10 iterations.
itk::ConjugateGradientLineSearchOptimizerv4Template<double>::Pointer
MakeAffineOptimizer(MetricType * metric, const RegistrationOptions & o)
{
  auto opt = itk::ConjugateGradientLineSearchOptimizerv4Template<double>::New();
  UsePhysicalShiftScales(opt.GetPointer(), metric);
  opt->SetDoEstimateLearningRateAtEachIteration(true);
  opt->SetMaximumStepSizeInPhysicalUnits(o.maximumStepMm);
  opt->SetLowerLimit(0.0);
  opt->SetUpperLimit(2.0);
  opt->SetEpsilon(0.2);
  opt->SetMaximumLineSearchIterations(10);
  opt->SetNumberOfIterations(o.iterations);
  opt->SetMinimumConvergenceValue(1e-6);
  opt->SetConvergenceWindowSize(10);
  return opt;
}

/// Intensity centre of mass inside `mask` (non-negative intensities), or the grid/mask centre.
PointType
Centre(const FloatImage * image, const MaskImage * mask, bool moments)
{
  double sw = 0.0, sx[3] = { 0, 0, 0 };
  itk::ImageRegionConstIteratorWithIndex<FloatImage> it(image, image->GetLargestPossibleRegion());
  const bool useMask = mask != nullptr;
  for (; !it.IsAtEnd(); ++it)
  {
    if (useMask && !mask->GetPixel(it.GetIndex()))
      continue;
    const double w = moments ? std::max(0.0f, it.Get()) : 1.0;
    if (w <= 0.0)
      continue;
    PointType p;
    image->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    sw += w;
    for (unsigned int d = 0; d < 3; ++d)
      sx[d] += w * p[d];
  }
  if (sw <= 0.0)
    return GridCenter(image);
  PointType c;
  for (unsigned int d = 0; d < 3; ++d)
    c[d] = sx[d] / sw;
  return c;
}

/// Metric value of `transform` on a deterministic regular subsample (at most ~100000 points) of the fixed cost
/// mask at full resolution, so initial and final values are comparable.
double
EvaluateMetric(const Inputs & in, const TransformType * transform, const RegistrationOptions & o)
{
  auto metric = MakeMetric(in, o);
  using PointSetType = MetricType::FixedSampledPointSetType;
  auto points = PointSetType::New();
  const auto region = in.fixed->GetLargestPossibleRegion();
  const double inMask = static_cast<double>(region.GetNumberOfPixels()) * in.fixedMaskFraction;
  const unsigned int stride = std::max(1u, static_cast<unsigned int>(std::ceil(std::cbrt(inMask / 100000.0))));
  itk::ImageRegionConstIteratorWithIndex<FloatImage> it(in.fixed, region);
  unsigned long n = 0;
  for (; !it.IsAtEnd(); ++it)
  {
    const auto idx = it.GetIndex();
    if (idx[0] % stride || idx[1] % stride || idx[2] % stride)
      continue;
    if (in.fixedCost && !in.fixedCost->GetPixel(idx))
      continue;
    PointSetType::PointType p;
    in.fixed->TransformIndexToPhysicalPoint(idx, p);
    points->SetPoint(n++, p);
  }
  if (n == 0)
    ThrowInput("the fixed cost mask is empty");
  metric->SetFixedImage(in.fixed);
  metric->SetMovingImage(in.moving);
  metric->SetVirtualDomainFromImage(in.fixed);
  metric->SetMovingTransform(const_cast<TransformType *>(transform));
  metric->SetFixedSampledPointSet(points);
  metric->SetUseSampledPointSet(true);
  try
  {
    metric->Initialize();
    return metric->GetValue();
  }
  catch (const itk::ExceptionObject & e)
  {
    ThrowProcessing("metric evaluation failed: " + std::string(e.GetDescription()));
  }
}

double
GeometricMeanSpacing(const FloatImage * image)
{
  const auto s = image->GetSpacing();
  return std::cbrt(s[0] * s[1] * s[2]);
}

/// B-spline stage: cubic B-spline on the fixed image domain (control points every bsplineGridSpacingMm), composed
/// after the fixed linear transform (moving initial transform; only the B-spline is optimized), L-BFGS-B
/// (unbounded) at the finest pyramid level on `minimumSamples` random samples (capped by maximumSamples and the
/// cost-mask size). Mattes MI uses the finest-level bin rule of the rigid stage, sqrt(samples / 2) clamped to
/// [histogramBins, finestLevelHistogramBins]: with 32 bins the Parzen-smoothed joint histogram is too coarse for a
/// free-form deformation and the optimum drifts away from the truth (phantom with a known deformation, 0.40 mm
/// mean displacement: 0.47 mm error with 32 bins, 0.09–0.16 mm with 71–122 bins). The ITK Mattes derivative costs
/// bins² × parameters per evaluation, so samples (and with them bins) stay at the minimum count.
BSplineType::Pointer
RunBSplineStage(const Inputs & in, const TransformType * linear, const Pyramid & pyramid, const RegistrationOptions & o,
                std::vector<std::string> & lines, double & metricValue)
{
  using RegistrationType = itk::ImageRegistrationMethodv4<FloatImage, FloatImage, BSplineType>;
  const auto size = in.fixed->GetLargestPossibleRegion().GetSize();
  const auto spacing = in.fixed->GetSpacing();
  BSplineType::MeshSizeType mesh;
  for (unsigned int d = 0; d < 3; ++d)
    mesh[d] = std::max<itk::SizeValueType>(
      1, static_cast<itk::SizeValueType>(std::lround(size[d] * spacing[d] / o.bsplineGridSpacingMm)));
  auto bspline = BSplineType::New();
  auto initializer = itk::BSplineTransformInitializer<BSplineType, FloatImage>::New();
  initializer->SetTransform(bspline);
  initializer->SetImage(in.fixed);
  initializer->SetTransformDomainMeshSize(mesh);
  initializer->InitializeTransform();
  bspline->SetIdentity();

  auto opt = itk::LBFGSBOptimizerv4::New();
  const unsigned int n = bspline->GetNumberOfParameters();
  itk::LBFGSBOptimizerv4::BoundSelectionType select(n);
  itk::LBFGSBOptimizerv4::BoundValueType bound(n);
  select.Fill(0); // unbounded
  bound.Fill(0.0);
  opt->SetBoundSelection(select);
  opt->SetLowerBound(bound);
  opt->SetUpperBound(bound);
  opt->SetCostFunctionConvergenceFactor(1e7);
  opt->SetGradientConvergenceTolerance(1e-6);
  opt->SetNumberOfIterations(o.bsplineIterations);
  opt->SetMaximumNumberOfFunctionEvaluations(2 * o.bsplineIterations);
  opt->SetMaximumNumberOfCorrections(7);

  const Pyramid finest{ { pyramid.shrink.back() }, { pyramid.sigmas.back() } };
  const double voxels = static_cast<double>(in.fixed->GetLargestPossibleRegion().GetNumberOfPixels());
  const double inMask = std::max(1.0, voxels * in.fixedMaskFraction);
  const double samples =
    std::min({ static_cast<double>(o.minimumSamples), static_cast<double>(o.maximumSamples), inMask });
  auto metric = MakeMetric(in, o, FinestLevelBins(samples, o));
  auto configure = [&](RegistrationType * reg)
  {
    typename RegistrationType::MetricSamplingPercentageArrayType percent(1);
    percent[0] = std::clamp(samples / inMask, 1e-5, 1.0);
    reg->SetMetricSamplingPercentagePerLevel(percent);
  };
  metricValue =
    RunStage<BSplineType>(in, bspline, linear, metric, opt.GetPointer(), finest, o, "bspline", lines, configure);
  return bspline;
}

RegistrationResult
RegisterOneWay(const Inputs & in, const RegistrationOptions & o)
{
  const auto t0 = Clock::now();
  RegistrationResult result;
  auto & lines = result.qa.stages;

  // Initialization: the fixed centre maps to the moving centre.
  auto rigid = RigidType::New();
  rigid->SetIdentity();
  if (o.init != Initialization::None)
  {
    const bool moments = o.init == Initialization::Moments;
    const PointType cf = Centre(in.fixed, in.fixedCost, moments);
    const PointType cm = Centre(in.moving, in.movingCost, moments);
    rigid->SetCenter(cf);
    RigidType::OutputVectorType t;
    for (unsigned int d = 0; d < 3; ++d)
      t[d] = cm[d] - cf[d];
    rigid->SetTranslation(t);
  }
  else
    rigid->SetCenter(GridCenter(in.fixed));
  result.qa.initialMetric = EvaluateMetric(in, rigid, o);

  Pyramid pyramid{ o.shrinkFactors, o.smoothingSigmas };
  if (pyramid.shrink.empty() || pyramid.shrink.size() != pyramid.sigmas.size())
    ThrowUsage("registration needs as many shrink factors as smoothing sigmas (at least one level)");
  if (in.fixedPyramid && in.movingPyramid)
  {
    internal::LinearMiSettings s;
    s.bins = o.histogramBins;
    s.finestBins = o.finestLevelHistogramBins;
    s.minimumStepMm = o.minimumStepMm;
    s.relaxation = o.relaxation;
    s.seed = static_cast<std::uint64_t>(o.seed);
    s.threads = in.threads;
    for (std::size_t l = 0; l < pyramid.shrink.size(); ++l)
    {
      const double voxels =
        static_cast<double>(in.fixedPyramid->levels[l]->GetLargestPossibleRegion().GetNumberOfPixels());
      const double inMask = std::max(1.0, voxels * in.fixedMaskFraction);
      const double wanted = std::min(std::max(o.samplingPercentage * inMask, static_cast<double>(o.minimumSamples)),
                                     static_cast<double>(o.maximumSamples));
      s.samples.push_back(static_cast<unsigned int>(std::lround(std::min(wanted, inMask))));
      s.iterations.push_back(o.iterations);
      s.firstStepMm.push_back(o.maximumStepMm * std::pow(0.5, static_cast<double>(l)));
    }
    result.metricValue = internal::RegisterLinearMi(*in.fixedPyramid, *in.movingPyramid, in.fixedCost, in.movingCost,
                                                    rigid, s, "rigid", lines);
  }
  else
  {
    auto metric = MakeMetric(in, o);
    auto opt = MakeLinearOptimizer(metric, o);
    result.metricValue = RunStage<RigidType>(in, rigid, nullptr, metric, opt.GetPointer(), pyramid, o, "rigid", lines);
  }
  TransformPointer linear = rigid.GetPointer();
  if (o.type != TransformKind::Rigid)
  {
    auto affine = AffineType::New();
    affine->SetCenter(rigid->GetCenter());
    affine->SetMatrix(rigid->GetMatrix());
    affine->SetTranslation(rigid->GetTranslation());
    Pyramid fine = pyramid;
    if (fine.shrink.size() > 1) // rigid already aligned the coarse structure
    {
      fine.shrink.erase(fine.shrink.begin());
      fine.sigmas.erase(fine.sigmas.begin());
    }
    // the coarse levels with histogramBins, the finest level with the rigid engine's finest-level bin rule (a new
    // metric: ITK's Mattes metric cannot change its bins between levels): with 32 bins the affine optimum drifted
    // (0.29 mm TRE on the affine phantom)
    const Pyramid last{ { fine.shrink.back() }, { fine.sigmas.back() } };
    fine.shrink.pop_back();
    fine.sigmas.pop_back();
    if (!fine.shrink.empty())
    {
      auto metric = MakeMetric(in, o);
      auto opt = MakeAffineOptimizer(metric, o);
      RunStage<AffineType>(in, affine, nullptr, metric, opt.GetPointer(), fine, o, "affine", lines);
    }
    auto metric = MakeMetric(in, o, FinestLevelBins(LevelSampling(in, last.shrink.front(), o).samples, o));
    auto opt = MakeAffineOptimizer(metric, o);
    result.metricValue =
      RunStage<AffineType>(in, affine, nullptr, metric, opt.GetPointer(), last, o, "affine finest", lines);
    linear = affine.GetPointer();
  }
  auto composite = CompositeType::New();
  composite->AddTransform(linear);
  if (o.type == TransformKind::BSpline)
    composite->AddTransform(RunBSplineStage(in, linear, pyramid, o, lines, result.metricValue));
  result.transform = composite.GetPointer();
  result.linear = linear;
  result.qa.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  result.qa.finalMetric = EvaluateMetric(in, result.transform, o);
  result.qa.metricName = o.metric == MetricKind::MattesMI ? "mattes_mi" : "correlation";
  return result;
}

Inputs
MakeInputs(const FloatImage * fixed, const FloatImage * moving, const MaskImage * fixedMask,
           const MaskImage * movingMask, const MaskImage * fixedExclude, const MaskImage * movingExclude)
{
  Inputs in;
  in.fixed = fixed;
  in.moving = moving;
  in.fixedCost = internal::CostMask(fixed, fixedMask, fixedExclude, "fixed");
  in.movingCost = internal::CostMask(moving, movingMask, movingExclude, "moving");
  in.fixedObject = MakeMaskObject(in.fixedCost);
  in.movingObject = MakeMaskObject(in.movingCost);
  if (in.fixedCost)
    in.fixedMaskFraction = static_cast<double>(internal::CountNonZero(in.fixedCost)) /
                           static_cast<double>(fixed->GetLargestPossibleRegion().GetNumberOfPixels());
  return in;
}
} // namespace

RegistrationResult
Register(const FloatImage * fixed, const FloatImage * moving, const RegistrationOptions & options)
{
  if (!fixed || !moving)
    ThrowUsage("registration needs a fixed and a moving image");
  if (options.halfway && options.type == TransformKind::BSpline)
    ThrowUsage("halfway space needs a rigid or affine transform (B-spline has no closed-form square root)");
  const unsigned int threads =
    options.threads > 0
      ? options.threads
      : std::max(1u, static_cast<unsigned int>(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads()));
  // Mattes MI: the rigid stage runs on the deterministic multi-threaded engine over pyramids shared by the forward
  // and backward registrations (built before the single-thread guard: smoothing is deterministic at any count).
  internal::PyramidImages fixedPyramid, movingPyramid;
  const bool engine = options.metric == MetricKind::MattesMI;
  if (engine)
  {
    if (options.shrinkFactors.empty() || options.shrinkFactors.size() != options.smoothingSigmas.size())
      ThrowUsage("registration needs as many shrink factors as smoothing sigmas (at least one level)");
    const auto sp = fixed->GetSpacing();
    const double minSpacing = std::min({ sp[0], sp[1], sp[2] });
    std::vector<double> sigmasMm;
    for (double v : options.smoothingSigmas)
      sigmasMm.push_back(v * minSpacing);
    fixedPyramid = internal::MakePyramidImages(fixed, options.shrinkFactors, sigmasMm, threads);
    movingPyramid = internal::MakePyramidImages(moving, options.shrinkFactors, sigmasMm, threads);
  }
  const SingleThreadGuard guard(options.deterministic);
  Inputs forward = MakeInputs(fixed, moving, options.fixedMask, options.movingMask, options.fixedExcludeMask,
                              options.movingExcludeMask);
  forward.threads = threads;
  if (engine)
  {
    forward.fixedPyramid = &fixedPyramid;
    forward.movingPyramid = &movingPyramid;
  }
  RegistrationResult result = RegisterOneWay(forward, options);
  RegistrationQa & qa = result.qa;
  qa.voxelSizeMm = GeometricMeanSpacing(fixed);
  qa.overlapFraction = internal::OverlapFraction(fixed, forward.fixedCost, moving, result.transform);

  if (options.inverseConsistency)
  {
    const auto t0 = Clock::now();
    Inputs backward = MakeInputs(moving, fixed, options.movingMask, options.fixedMask, options.movingExcludeMask,
                                 options.fixedExcludeMask);
    backward.threads = threads;
    if (engine)
    {
      backward.fixedPyramid = &movingPyramid;
      backward.movingPyramid = &fixedPyramid;
    }
    RegistrationResult back = RegisterOneWay(backward, options);
    // B(F(x)) should be x for every fixed point x.
    auto roundTrip = CompositeType::New();
    roundTrip->AddTransform(back.transform);   // applied second
    roundTrip->AddTransform(result.transform); // applied first
    auto identity = AffineType::New();
    identity->SetIdentity();
    const std::size_t voxels = fixed->GetLargestPossibleRegion().GetNumberOfPixels();
    const unsigned int stride = voxels > 2000000 ? 3 : (voxels > 300000 ? 2 : 1);
    const PointDistance d = TransformDistance(roundTrip, identity, fixed, forward.fixedCost, stride);
    qa.inverseConsistencyComputed = true;
    qa.inverseConsistencyMm = d.mean;
    qa.inverseConsistencyMaxMm = d.max;
    qa.estimatedErrorMm = d.mean / std::sqrt(2.0);
    for (const auto & s : back.qa.stages)
      qa.stages.push_back("backward " + s);
    qa.qaSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  QualityGate & gate = qa.gate;
  gate.maxEstimatedErrorVoxels = options.maxEstimatedErrorVoxels;
  gate.maxEstimatedErrorMm = options.maxEstimatedErrorVoxels * qa.voxelSizeMm;
  gate.minOverlapFraction = options.minOverlapFraction;
  if (!std::isfinite(qa.finalMetric))
    gate.failures.push_back("final metric is not finite");
  if (qa.inverseConsistencyComputed && !(qa.estimatedErrorMm <= gate.maxEstimatedErrorMm))
  {
    std::ostringstream os;
    os << "estimated error " << qa.estimatedErrorMm << " mm exceeds " << gate.maxEstimatedErrorVoxels << " voxel ("
       << gate.maxEstimatedErrorMm << " mm)";
    gate.failures.push_back(os.str());
  }
  if (!(qa.overlapFraction >= gate.minOverlapFraction))
  {
    std::ostringstream os;
    os << "only " << qa.overlapFraction << " of the fixed cost mask maps inside the moving image (minimum "
       << gate.minOverlapFraction << ")";
    gate.failures.push_back(os.str());
  }
  gate.passed = gate.failures.empty();

  if (options.halfway)
    internal::MakeHalfway(fixed, moving, result);
  return result;
}
} // namespace gw::registration
