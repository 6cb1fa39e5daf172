// DWI motion correction on top of Register() (no registration templates here).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include <limits>

#include <itkMatrixOffsetTransformBase.h>
#include <itkVersorRigid3DTransform.h>

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

/// Geometry of the in-plane motion model: slice axis k (largest spacing), in-plane grid axes i < j.
struct SliceGeometry
{
  unsigned int i = 0, j = 1, k = 2;
  std::size_t ni = 0, nj = 0, nk = 0;
  std::size_t strideI = 1, strideJ = 1, strideK = 1;
  double si = 1, sj = 1;
  double ci = 0, cj = 0; ///< rotation centre (index units, in-plane): centroid of the mask
  PointType centre;      ///< the same centre in physical space (slice coordinate: grid centre)
  itk::Vector<double, 3> u, v, w;
};

SliceGeometry
MakeSliceGeometry(const FloatImage * image, const MaskImage * mask)
{
  SliceGeometry g;
  const auto sp = image->GetSpacing();
  const auto size = image->GetLargestPossibleRegion().GetSize();
  g.k = 2; // slice axis: largest spacing, ties → the last grid axis (the acquisition's slice axis)
  for (unsigned int d = 0; d < 2; ++d)
    if (sp[d] > sp[g.k])
      g.k = d;
  g.i = g.k == 0 ? 1 : 0;
  g.j = g.k == 2 ? 1 : 2;
  const std::size_t stride[3] = { 1, size[0], size[0] * size[1] };
  g.ni = size[g.i];
  g.nj = size[g.j];
  g.nk = size[g.k];
  g.strideI = stride[g.i];
  g.strideJ = stride[g.j];
  g.strideK = stride[g.k];
  g.si = sp[g.i];
  g.sj = sp[g.j];
  double sa = 0, sb = 0, n = 0;
  const auto * m = mask->GetBufferPointer();
  for (std::size_t c = 0; c < g.nk; ++c)
    for (std::size_t b = 0; b < g.nj; ++b)
      for (std::size_t a = 0; a < g.ni; ++a)
        if (m[a * g.strideI + b * g.strideJ + c * g.strideK])
        {
          sa += a;
          sb += b;
          n += 1;
        }
  g.ci = n > 0 ? sa / n : (g.ni - 1) / 2.0;
  g.cj = n > 0 ? sb / n : (g.nj - 1) / 2.0;
  itk::ContinuousIndex<double, 3> idx;
  idx[g.i] = g.ci;
  idx[g.j] = g.cj;
  idx[g.k] = (g.nk - 1) / 2.0;
  image->TransformContinuousIndexToPhysicalPoint(idx, g.centre);
  const auto D = image->GetDirection();
  for (unsigned int d = 0; d < 3; ++d)
  {
    g.u[d] = D[d][g.i];
    g.v[d] = D[d][g.j];
  }
  g.w = itk::CrossProduct(g.u, g.v);
  g.w.Normalize();
  return g;
}

/// In-plane rigid parameters: rotation θ [rad] about the slice normal through the centre, translation (tx, ty) [mm]
/// along the in-plane grid axes.
struct InPlaneMotion
{
  double theta = 0, tx = 0, ty = 0;
};

TransformPointer
ToTransform(const InPlaneMotion & p, const SliceGeometry & g)
{
  using Rigid = itk::VersorRigid3DTransform<double>;
  auto t = Rigid::New();
  t->SetCenter(g.centre);
  Rigid::AxisType axis;
  for (unsigned int d = 0; d < 3; ++d)
    axis[d] = g.w[d];
  t->SetRotation(axis, p.theta);
  Rigid::OutputVectorType tr = g.u * p.tx + g.v * p.ty;
  t->SetTranslation(tr);
  return t.GetPointer();
}

/// In-plane separable Gaussian (sigma in mm; 0: copy), slice by slice.
std::vector<float>
SmoothInPlane(const FloatImage * image, const SliceGeometry & g, double sigmaMm)
{
  const std::size_t n = image->GetBufferedRegion().GetNumberOfPixels();
  std::vector<float> out(image->GetBufferPointer(), image->GetBufferPointer() + n);
  if (sigmaMm <= 0)
    return out;
  auto pass = [&](std::size_t len, std::size_t stride, double sigmaVox, std::size_t otherLen, std::size_t otherStride)
  {
    const int r = static_cast<int>(std::ceil(3 * sigmaVox));
    std::vector<double> kernel(2 * r + 1);
    for (int t = -r; t <= r; ++t)
      kernel[t + r] = std::exp(-0.5 * t * t / (sigmaVox * sigmaVox));
    std::vector<double> line(len);
    for (std::size_t c = 0; c < g.nk; ++c)
      for (std::size_t o = 0; o < otherLen; ++o)
      {
        const std::size_t base = c * g.strideK + o * otherStride;
        for (std::size_t a = 0; a < len; ++a)
          line[a] = out[base + a * stride];
        for (std::size_t a = 0; a < len; ++a)
        {
          double s = 0, ws = 0; // truncated, renormalised kernel at the borders
          for (int t = -r; t <= r; ++t)
          {
            const long q = static_cast<long>(a) + t;
            if (q < 0 || q >= static_cast<long>(len))
              continue;
            s += kernel[t + r] * line[q];
            ws += kernel[t + r];
          }
          out[base + a * stride] = static_cast<float>(s / ws);
        }
      }
  };
  pass(g.ni, g.strideI, sigmaMm / g.si, g.nj, g.strideJ);
  pass(g.nj, g.strideJ, sigmaMm / g.sj, g.ni, g.strideI);
  return out;
}

/// In-plane dilation of a mask by a disk of `radiusMm`, slice by slice.
MaskImage::Pointer
DilateInPlane(const MaskImage * mask, const SliceGeometry & g, double radiusMm)
{
  auto out = MaskImage::New();
  out->CopyInformation(mask);
  out->SetRegions(mask->GetLargestPossibleRegion());
  out->Allocate();
  const std::size_t n = mask->GetBufferedRegion().GetNumberOfPixels();
  std::copy(mask->GetBufferPointer(), mask->GetBufferPointer() + n, out->GetBufferPointer());
  if (radiusMm <= 0)
    return out;
  const long ra = static_cast<long>(radiusMm / g.si), rb = static_cast<long>(radiusMm / g.sj);
  const auto * in = mask->GetBufferPointer();
  auto * o = out->GetBufferPointer();
  for (std::size_t c = 0; c < g.nk; ++c)
    for (long b = 0; b < static_cast<long>(g.nj); ++b)
      for (long a = 0; a < static_cast<long>(g.ni); ++a)
      {
        if (!in[a * g.strideI + b * g.strideJ + c * g.strideK])
          continue;
        for (long db = -rb; db <= rb; ++db)
          for (long da = -ra; da <= ra; ++da)
          {
            const long qa = a + da, qb = b + db;
            if (qa < 0 || qb < 0 || qa >= static_cast<long>(g.ni) || qb >= static_cast<long>(g.nj))
              continue;
            if ((da * g.si) * (da * g.si) + (db * g.sj) * (db * g.sj) <= radiusMm * radiusMm)
              o[qa * g.strideI + qb * g.strideJ + c * g.strideK] = 1;
          }
      }
  return out;
}

/// Solves A x = b (N x N, Gaussian elimination with partial pivoting); false when singular.
template <int N>
bool
SolveN(std::array<std::array<double, N>, N> A, std::array<double, N> b, std::array<double, N> & x)
{
  for (int col = 0; col < N; ++col)
  {
    int piv = col;
    for (int r = col + 1; r < N; ++r)
      if (std::abs(A[r][col]) > std::abs(A[piv][col]))
        piv = r;
    if (!(std::abs(A[piv][col]) > 1e-300))
      return false;
    std::swap(A[piv], A[col]);
    std::swap(b[piv], b[col]);
    for (int r = col + 1; r < N; ++r)
    {
      const double f = A[r][col] / A[col][col];
      for (int k = col; k < N; ++k)
        A[r][k] -= f * A[col][k];
      b[r] -= f * b[col];
    }
  }
  for (int r = N - 1; r >= 0; --r)
  {
    double s = b[r];
    for (int k = r + 1; k < N; ++k)
      s -= A[r][k] * x[k];
    x[r] = s / A[r][r];
  }
  return true;
}
using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

struct InPlaneFit
{
  InPlaneMotion motion;
  double correlation = 0; ///< sqrt of the variance fraction of the aligned volume explained by the template
};

/// Registers `moving` to `fixed` with the in-plane rigid model: least squares of M(W(x)) − a·F(x) − b over the mask
/// (a, b: intensity gain and offset per slice or per volume, so the metric is a normalized correlation),
/// Levenberg–Marquardt on (θ, tx, ty), coarse to fine over in-plane Gaussian smoothing levels.
InPlaneFit
RegisterInPlane(const FloatImage * fixed, const FloatImage * moving, const MaskImage * mask, const SliceGeometry & g,
                const std::vector<double> & sigmasMm, bool perSliceIntensity, InPlaneMotion start)
{
  const auto * m = mask->GetBufferPointer();
  struct Sample
  {
    std::size_t s, a, b, c;
  };
  std::vector<Sample> samples;
  const std::size_t n = fixed->GetBufferedRegion().GetNumberOfPixels();
  for (std::size_t c = 0; c < g.nk; ++c)
    for (std::size_t b = 0; b < g.nj; ++b)
      for (std::size_t a = 0; a < g.ni; ++a)
      {
        const std::size_t s = a * g.strideI + b * g.strideJ + c * g.strideK;
        if (m[s])
          samples.push_back({ s, a, b, c });
      }
  if (samples.size() < 10)
    ThrowInput("motion correction: the cost mask has fewer than 10 voxels");
  InPlaneMotion p = start;
  InPlaneFit fit;
  for (std::size_t level = 0; level < sigmasMm.size(); ++level)
  {
    const std::vector<float> F = SmoothInPlane(fixed, g, sigmasMm[level]);
    const std::vector<float> M = SmoothInPlane(moving, g, sigmasMm[level]);
    // in-plane physical gradient of M (central differences, one-sided at borders)
    std::vector<float> Ga(n), Gb(n);
    for (std::size_t c = 0; c < g.nk; ++c)
      for (std::size_t b = 0; b < g.nj; ++b)
        for (std::size_t a = 0; a < g.ni; ++a)
        {
          const std::size_t s = a * g.strideI + b * g.strideJ + c * g.strideK;
          const std::size_t a0 = a > 0 ? a - 1 : a, a1 = a + 1 < g.ni ? a + 1 : a;
          const std::size_t b0 = b > 0 ? b - 1 : b, b1 = b + 1 < g.nj ? b + 1 : b;
          const std::size_t base = b * g.strideJ + c * g.strideK, baseA = a * g.strideI + c * g.strideK;
          Ga[s] = static_cast<float>((M[a1 * g.strideI + base] - M[a0 * g.strideI + base]) / ((a1 - a0) * g.si));
          Gb[s] = static_cast<float>((M[b1 * g.strideJ + baseA] - M[b0 * g.strideJ + baseA]) / ((b1 - b0) * g.sj));
        }
    // Variable projection: for a motion q, the intensity gain and offset (per slice, or one pair for the volume)
    // are the least-squares regression of the warped moving image on the template; the cost is the mean squared
    // residual. Gauss–Newton normal equations of the 3 motion parameters with the intensity parameters held.
    const std::size_t bins = perSliceIntensity ? g.nk : 1;
    std::vector<double> warped(samples.size()), gxs(samples.size()), gys(samples.size());
    std::vector<char> inside(samples.size());
    auto evaluate = [&](const InPlaneMotion & q, Mat3 * H, Vec3 * grad, double * corr)
    {
      const double cs = std::cos(q.theta), sn = std::sin(q.theta);
      std::size_t used = 0;
      std::vector<std::array<double, 6>> sums(bins, std::array<double, 6>{}); // n, Σf, Σm, Σff, Σmm, Σfm
      for (std::size_t k = 0; k < samples.size(); ++k)
      {
        const Sample & smp = samples[k];
        const std::size_t a = smp.a, b = smp.b, c = smp.c;
        const double x = (a - g.ci) * g.si, y = (b - g.cj) * g.sj;
        const double wx = cs * x - sn * y + q.tx, wy = sn * x + cs * y + q.ty;
        const double fa = wx / g.si + g.ci, fb = wy / g.sj + g.cj;
        inside[k] = !(fa < 0 || fb < 0 || fa > g.ni - 1.0 || fb > g.nj - 1.0);
        if (!inside[k])
          continue;
        const std::size_t a0 = std::min<std::size_t>(static_cast<std::size_t>(fa), g.ni - 2);
        const std::size_t b0 = std::min<std::size_t>(static_cast<std::size_t>(fb), g.nj - 2);
        const double da = fa - a0, db = fb - b0;
        const std::size_t p00 = a0 * g.strideI + b0 * g.strideJ + c * g.strideK;
        const std::size_t p10 = p00 + g.strideI, p01 = p00 + g.strideJ, p11 = p01 + g.strideI;
        auto lerp = [&](const std::vector<float> & im) {
          return (1 - da) * (1 - db) * im[p00] + da * (1 - db) * im[p10] + (1 - da) * db * im[p01] + da * db * im[p11];
        };
        warped[k] = lerp(M);
        if (H)
        {
          gxs[k] = lerp(Ga);
          gys[k] = lerp(Gb);
        }
        const double fv = F[smp.s], mv = warped[k];
        auto & t = sums[perSliceIntensity ? c : 0];
        t[0] += 1;
        t[1] += fv;
        t[2] += mv;
        t[3] += fv * fv;
        t[4] += mv * mv;
        t[5] += fv * mv;
        ++used;
      }
      if (used <= samples.size() / 2)
        return std::numeric_limits<double>::infinity();
      std::vector<double> gain(bins, 0.0), offset(bins, 0.0);
      for (std::size_t z = 0; z < bins; ++z)
      {
        const auto & t = sums[z];
        if (t[0] < 1)
          continue;
        const double vf = t[3] - t[1] * t[1] / t[0];
        gain[z] = vf > 1e-12 * std::max(1.0, t[3]) ? (t[5] - t[1] * t[2] / t[0]) / vf : 0.0;
        offset[z] = (t[2] - gain[z] * t[1]) / t[0];
      }
      if (H)
      {
        *H = Mat3{};
        *grad = Vec3{};
      }
      double sum = 0.0, total = 0.0;
      for (std::size_t k = 0; k < samples.size(); ++k)
      {
        if (!inside[k])
          continue;
        const Sample & smp = samples[k];
        const std::size_t z = perSliceIntensity ? smp.c : 0;
        const double r = warped[k] - gain[z] * F[smp.s] - offset[z];
        sum += r * r;
        if (H)
        {
          const double x = (smp.a - g.ci) * g.si, y = (smp.b - g.cj) * g.sj;
          const double gx = gxs[k], gy = gys[k];
          const Vec3 J{ gx * (-sn * x - cs * y) + gy * (cs * x - sn * y), gx, gy };
          for (int u = 0; u < 3; ++u)
          {
            for (int v = 0; v < 3; ++v)
              (*H)[u][v] += J[u] * J[v];
            (*grad)[u] += J[u] * r;
          }
        }
      }
      if (corr)
      {
        // explained fraction of the moving variance: the (pooled) correlation of the intensity model
        double varM = 0.0;
        for (const auto & t : sums)
          if (t[0] >= 1)
            varM += t[4] - t[2] * t[2] / t[0];
        total = varM;
        *corr = total > 0 ? std::sqrt(std::max(0.0, 1.0 - sum / total)) : 0.0;
      }
      return sum / used;
    };
    double lambda = 1e-3;
    Mat3 H;
    Vec3 grad;
    double cost = evaluate(p, &H, &grad, nullptr);
    if (!std::isfinite(cost))
      ThrowProcessing("motion correction: the volume moved out of the cost mask");
    for (int it = 0; it < 100; ++it)
    {
      Mat3 A = H;
      Vec3 minus, delta{};
      for (int d = 0; d < 3; ++d)
      {
        A[d][d] += lambda * std::max(H[d][d], 1e-12);
        minus[d] = -grad[d];
      }
      if (!SolveN<3>(A, minus, delta))
        break;
      const InPlaneMotion q{ p.theta + delta[0], p.tx + delta[1], p.ty + delta[2] };
      Mat3 Hq;
      Vec3 gq;
      const double cq = evaluate(q, &Hq, &gq, nullptr);
      if (cq < cost)
      {
        p = q;
        const double shift = std::abs(delta[0]) * 50.0 + std::abs(delta[1]) + std::abs(delta[2]);
        const bool converged = cost - cq < 1e-9 * cost || shift < 1e-5;
        cost = cq;
        H = Hq;
        grad = gq;
        lambda = std::max(lambda / 10, 1e-7);
        if (converged)
          break;
      }
      else
      {
        lambda *= 10;
        if (lambda > 1e8)
          break;
      }
    }
    if (level + 1 == sigmasMm.size())
      evaluate(p, nullptr, nullptr, &fit.correlation);
  }
  fit.motion = p;
  return fit;
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

  const auto spacing = reference->GetSpacing();
  const double thickest = *std::max_element(spacing.Begin(), spacing.End());
  const double finest = *std::min_element(spacing.Begin(), spacing.End());
  const bool inPlane = options.model == MotionModel::InPlane ||
                       (options.model == MotionModel::Auto && thickest > options.thickSliceRatio * finest);
  out.model = inPlane ? MotionModel::InPlane : MotionModel::Rigid3D;
  std::vector<TransformPointer> transforms(count), linears(count);
  std::vector<double> metrics(count, 0.0);
  if (!inPlane)
  {
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
    // Pass 2: every volume to the reference (Mattes MI copes with the b0 / DW contrast difference).
    for (unsigned int c = 0; c < count; ++c)
    {
      const RegistrationResult r = Register(reference, volumes[c], ro);
      transforms[c] = r.transform;
      linears[c] = r.linear;
      metrics[c] = r.qa.finalMetric;
      ReportProgress(0.2 + 0.7 * (c + 1) / count, "motion correction");
    }
  }
  else
  {
    const SliceGeometry g0 = MakeSliceGeometry(reference, mask);
    if (!options.mask)
      mask = DilateInPlane(mask, g0, options.maskDilationMm);
    const SliceGeometry g = MakeSliceGeometry(reference, mask);
    std::vector<double> sigmas;
    for (double s : options.inPlaneSmoothingVoxels)
      sigmas.push_back(s * std::min(g.si, g.sj));
    if (sigmas.empty())
      sigmas.push_back(0.0);
    // Groups of volumes sharing a template: the b0 volumes, and each diffusion-weighted shell (b rounded to
    // 100 s/mm^2). Template = mean of the group, re-estimated from the aligned volumes `templateIterations` times.
    std::map<long, std::vector<unsigned int>> groups;
    for (unsigned int c = 0; c < count; ++c)
      groups[lps.entries[c].bValue <= gw::io::B0Threshold ? -1 : std::lround(lps.entries[c].bValue / 100.0)].push_back(
        c);
    std::vector<InPlaneMotion> motion(count);
    std::size_t done = 0;
    const std::size_t total = static_cast<std::size_t>(count) * (options.templateIterations + 1);
    for (const auto & [key, members] : groups)
    {
      std::vector<FloatImage::Pointer> current;
      for (unsigned int c : members)
        current.push_back(volumes[c]);
      for (unsigned int round = 0; round <= options.templateIterations; ++round)
      {
        // template: mean of the volumes as aligned in the previous round (raw volumes in round 0)
        const FloatImage::Pointer templ = MeanOf(current);
        for (unsigned int c : members)
        {
          const InPlaneFit fit =
            RegisterInPlane(templ, volumes[c], mask, g, sigmas, options.perSliceIntensity, motion[c]);
          motion[c] = fit.motion;
          metrics[c] = -fit.correlation;
          ReportProgress(0.9 * static_cast<double>(++done) / total, "motion correction");
        }
        for (std::size_t k = 0; k < members.size(); ++k)
          current[k] =
            Resample(volumes[members[k]], reference, ToTransform(motion[members[k]], g), options.interpolation);
      }
      if (key < 0)
        reference = MeanOf(current);
    }
    for (unsigned int c = 0; c < count; ++c)
      linears[c] = transforms[c] = ToTransform(motion[c], g);
  }
  out.meanB0 = reference;
  out.mask = mask;

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
  const double voxel = std::cbrt(spacing[0] * spacing[1] * spacing[2]);
  for (unsigned int c = 0; c < count; ++c)
  {
    RegistrationResult r;
    r.transform = transforms[c];
    r.linear = linears[c];
    r.qa.finalMetric = metrics[c];
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
    ReportProgress(0.9 + 0.1 * (c + 1) / count, "resampling");
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
  j["model"] = r.model == MotionModel::InPlane ? "in_plane" : "rigid_3d";
  j["gradient_frame"] = r.model == MotionModel::InPlane
                          ? "lps, rotated into the frame of the volume's template (mean b0 / mean of its shell)"
                          : "lps, rotated into the reference (mean b0) frame";
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
