// DWI motion correction on top of Register() (no registration templates here).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include <itkImageRegionIterator.h>
#include <itkMatrixOffsetTransformBase.h>

#include "gw/core/error.h"
#include "gw/core/progress.h"
#include "gw/io/image_io.h"
#include "gw/registration/motion.h"

namespace gw::registration
{
namespace
{
using LinearBase = itk::MatrixOffsetTransformBase<double, 3, 3>;

FloatImage::Pointer
MeanOf(const std::vector<FloatImage::Pointer> & images)
{
  auto mean = FloatImage::New();
  mean->CopyInformation(images.front());
  mean->SetRegions(images.front()->GetLargestPossibleRegion());
  mean->Allocate();
  mean->FillBuffer(0.0f);
  const std::size_t n = mean->GetBufferedRegion().GetNumberOfPixels();
  auto * m = mean->GetBufferPointer();
  for (const auto & img : images)
  {
    const auto * p = img->GetBufferPointer();
    for (std::size_t i = 0; i < n; ++i)
      m[i] += p[i] / static_cast<float>(images.size());
  }
  return mean;
}

/// Otsu threshold (256 bins between min and max) of the image; voxels above → 1.
MaskImage::Pointer
OtsuMask(const FloatImage * image)
{
  const std::size_t n = image->GetBufferedRegion().GetNumberOfPixels();
  const float * p = image->GetBufferPointer();
  const auto [mnIt, mxIt] = std::minmax_element(p, p + n);
  const double mn = *mnIt, mx = *mxIt;
  if (!(mx > mn))
    ThrowInput("motion correction: the mean b0 is constant; give a mask");
  constexpr int Bins = 256;
  std::vector<double> hist(Bins, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    hist[std::min(Bins - 1, static_cast<int>((p[i] - mn) / (mx - mn) * Bins))] += 1.0;
  double total = static_cast<double>(n), sumAll = 0.0;
  for (int b = 0; b < Bins; ++b)
    sumAll += b * hist[b];
  double w0 = 0.0, sum0 = 0.0, best = -1.0;
  int bestBin = 0;
  for (int b = 0; b < Bins; ++b)
  {
    w0 += hist[b];
    sum0 += b * hist[b];
    const double w1 = total - w0;
    if (w0 <= 0 || w1 <= 0)
      continue;
    const double m0 = sum0 / w0, m1 = (sumAll - sum0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best)
    {
      best = between;
      bestBin = b;
    }
  }
  const double threshold = mn + (bestBin + 1.0) * (mx - mn) / Bins;
  auto mask = MaskImage::New();
  mask->CopyInformation(image);
  mask->SetRegions(image->GetLargestPossibleRegion());
  mask->Allocate();
  auto * q = mask->GetBufferPointer();
  for (std::size_t i = 0; i < n; ++i)
    q[i] = p[i] > threshold;
  return mask;
}

double
Median(std::vector<double> v)
{
  if (v.empty())
    return 0.0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}
} // namespace

DwiMotionResult
MotionCorrectDwi(const gw::io::Dwi & dwi, const DwiMotionOptions & options)
{
  const auto t0 = std::chrono::steady_clock::now();
  if (!dwi.image)
    ThrowUsage("motion correction needs a DWI image");
  const unsigned int count = dwi.image->GetNumberOfComponentsPerPixel();
  if (dwi.gradients.entries.size() != count)
    ThrowInput("motion correction: " + std::to_string(count) + " volumes but " +
               std::to_string(dwi.gradients.entries.size()) + " gradient entries");
  gw::io::GradientTable lps = dwi.gradients;
  if (lps.frame == "fsl")
    lps = gw::io::FslToLps(dwi.gradients, dwi.image->GetDirection());
  else if (lps.frame != "lps")
    ThrowInput("motion correction: unknown gradient frame '" + lps.frame + "'");

  std::vector<FloatImage::Pointer> volumes(count);
  std::vector<unsigned int> b0;
  for (unsigned int c = 0; c < count; ++c)
  {
    volumes[c] = gw::io::ExtractComponent(dwi.image, c);
    if (lps.entries[c].bValue <= gw::io::B0Threshold)
      b0.push_back(c);
  }
  if (b0.empty())
    ThrowInput("motion correction: no b0 volume (b <= " + std::to_string(gw::io::B0Threshold) + " s/mm^2)");

  RegistrationOptions ro = options.registration;
  ro.type = TransformKind::Rigid;
  ro.init = Initialization::None;
  ro.inverseConsistency = false;
  ro.halfway = false;
  ro.fixedExcludeMask = ro.movingExcludeMask = ro.movingMask = nullptr;

  DwiMotionResult out;
  std::vector<FloatImage::Pointer> b0s;
  for (unsigned int c : b0)
    b0s.push_back(volumes[c]);
  FloatImage::Pointer reference = MeanOf(b0s);
  MaskImage::Pointer mask;
  if (options.mask)
    mask = const_cast<MaskImage *>(options.mask);
  else
    mask = OtsuMask(reference);
  ro.fixedMask = mask;
  // Pass 1: b0 volumes to their raw mean; the reference becomes the mean of the aligned b0 volumes.
  if (b0.size() > 1)
  {
    std::vector<FloatImage::Pointer> aligned;
    for (std::size_t k = 0; k < b0.size(); ++k)
    {
      const RegistrationResult r = Register(reference, b0s[k], ro);
      aligned.push_back(Resample(b0s[k], reference, r.transform, options.interpolation));
      ReportProgress(0.2 * (k + 1) / b0.size(), "b0 reference");
    }
    reference = MeanOf(aligned);
  }
  out.meanB0 = reference;
  out.mask = mask;

  // Pass 2: every volume to the reference.
  auto corrected = DwiImage::New();
  corrected->CopyInformation(dwi.image);
  corrected->SetRegions(dwi.image->GetLargestPossibleRegion());
  corrected->SetNumberOfComponentsPerPixel(count);
  corrected->Allocate();
  const std::size_t voxels = corrected->GetBufferedRegion().GetNumberOfPixels();
  float * dst = corrected->GetBufferPointer();
  out.corrected.gradients = lps;
  out.corrected.gradients.frame = "lps";
  const double rad = 180.0 / std::acos(-1.0);
  const auto spacing = reference->GetSpacing();
  const double voxel = std::cbrt(spacing[0] * spacing[1] * spacing[2]);
  for (unsigned int c = 0; c < count; ++c)
  {
    const RegistrationResult r = Register(reference, volumes[c], ro);
    const auto * lin = dynamic_cast<const LinearBase *>(r.linear.GetPointer());
    if (!lin)
      ThrowInternal("motion correction: rigid stage did not return a linear transform");
    const FloatImage::Pointer res = Resample(volumes[c], reference, r.transform, options.interpolation);
    const float * src = res->GetBufferPointer();
    for (std::size_t i = 0; i < voxels; ++i)
      dst[i * count + c] = src[i];
    out.transforms.push_back(r.transform);

    VolumeMotion m;
    m.index = c;
    m.bValue = lps.entries[c].bValue;
    const auto R = lin->GetMatrix();
    const auto t = lin->GetTranslation();
    for (unsigned int d = 0; d < 3; ++d)
      m.translationMm[d] = t[d];
    m.rotationDeg[0] = std::atan2(R[2][1], R[2][2]) * rad;
    m.rotationDeg[1] = std::asin(std::clamp(-R[2][0], -1.0, 1.0)) * rad;
    m.rotationDeg[2] = std::atan2(R[1][0], R[0][0]) * rad;
    auto identity = itk::MatrixOffsetTransformBase<double, 3, 3>::New();
    identity->SetIdentity();
    m.meanDisplacementMm = TransformDistance(r.transform, identity, reference, mask, 2).mean;
    m.metric = r.qa.finalMetric;
    // Rotate the gradient direction into the reference frame: g' = R^T g.
    auto & g = out.corrected.gradients.entries[c].direction;
    const std::array<double, 3> old = g;
    for (unsigned int i = 0; i < 3; ++i)
      g[i] = R[0][i] * old[0] + R[1][i] * old[1] + R[2][i] * old[2];
    if (c > 0)
    {
      const VolumeMotion & p = out.volumes.back();
      double fd = 0.0;
      for (unsigned int d = 0; d < 3; ++d)
        fd += std::abs(m.translationMm[d] - p.translationMm[d]) +
              50.0 * std::abs(m.rotationDeg[d] - p.rotationDeg[d]) / rad;
      m.framewiseDisplacementMm = fd;
    }
    out.volumes.push_back(m);
    ReportProgress(0.2 + 0.8 * (c + 1) / count, "motion correction");
  }
  out.corrected.image = corrected;

  // Outliers.
  std::map<long, std::vector<double>> shells;
  for (const auto & v : out.volumes)
    shells[std::lround(v.bValue / 100.0)].push_back(v.metric);
  for (auto & v : out.volumes)
  {
    std::ostringstream why;
    if (v.framewiseDisplacementMm > options.outlierFdVoxels * voxel)
      why << "framewise displacement " << v.framewiseDisplacementMm << " mm > " << options.outlierFdVoxels << " voxel ("
          << options.outlierFdVoxels * voxel << " mm)";
    const auto & shell = shells[std::lround(v.bValue / 100.0)];
    if (shell.size() >= 4)
    {
      const double med = Median(shell);
      std::vector<double> dev;
      for (double x : shell)
        dev.push_back(std::abs(x - med));
      const double mad = 1.4826 * Median(dev);
      const double z = mad > 0 ? (v.metric - med) / mad : 0.0;
      if (z > options.outlierMetricZ)
        why << (why.tellp() > 0 ? "; " : "") << "metric " << z << " robust SD worse than its shell";
    }
    v.reason = why.str();
    v.outlier = !v.reason.empty();
    out.outliers += v.outlier;
    out.maxFdMm = std::max(out.maxFdMm, v.framewiseDisplacementMm);
    out.meanFdMm += v.framewiseDisplacementMm / std::max<std::size_t>(1, out.volumes.size() - 1);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

nlohmann::json
ToJson(const DwiMotionResult & r)
{
  nlohmann::json j;
  j["volumes"] = r.volumes.size();
  j["mean_framewise_displacement_mm"] = r.meanFdMm;
  j["max_framewise_displacement_mm"] = r.maxFdMm;
  j["outliers"] = r.outliers;
  j["seconds"] = r.seconds;
  j["gradient_frame"] = "lps, rotated into the reference (mean b0) frame";
  nlohmann::json per = nlohmann::json::array();
  for (const auto & v : r.volumes)
  {
    nlohmann::json e;
    e["index"] = v.index;
    e["b_value"] = v.bValue;
    e["translation_mm"] = v.translationMm;
    e["rotation_deg"] = v.rotationDeg;
    e["mean_displacement_mm"] = v.meanDisplacementMm;
    e["framewise_displacement_mm"] = v.framewiseDisplacementMm;
    e["metric"] = v.metric;
    e["outlier"] = v.outlier;
    if (v.outlier)
      e["reason"] = v.reason;
    per.push_back(e);
  }
  j["per_volume"] = per;
  return j;
}

std::string
ToTsv(const DwiMotionResult & r)
{
  std::ostringstream os;
  os << "index\tb_value\ttx_mm\tty_mm\ttz_mm\trx_deg\try_deg\trz_deg\tmean_displacement_mm\tfd_mm\tmetric\toutlier\n";
  for (const auto & v : r.volumes)
    os << v.index << '\t' << v.bValue << '\t' << v.translationMm[0] << '\t' << v.translationMm[1] << '\t'
       << v.translationMm[2] << '\t' << v.rotationDeg[0] << '\t' << v.rotationDeg[1] << '\t' << v.rotationDeg[2] << '\t'
       << v.meanDisplacementMm << '\t' << v.framewiseDisplacementMm << '\t' << v.metric << '\t' << (v.outlier ? 1 : 0)
       << '\n';
  return os.str();
}
} // namespace gw::registration
