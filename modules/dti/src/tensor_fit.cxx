// Tensor fitting (OLS, iterated WLS, Levenberg-Marquardt NLLS on the log-Cholesky parametrisation, RESTORE-like
// robust fit), scalar maps, automatic mask and outputs. Eigen only here and in internal.h.
#include "gw/dti/tensor_fit.h"

#include <array>
#include <chrono>
#include <deque>
#include <limits>
#include <numeric>

#include <itkMetaDataObject.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/io/image_io.h"
#include "internal.h"

namespace gw::dti
{
namespace
{
using Vec7 = Eigen::Matrix<double, 7, 1>;
using Mat7 = Eigen::Matrix<double, 7, 7>;
using MatX7 = Eigen::Matrix<double, Eigen::Dynamic, 7>;

template <typename TImage>
typename TImage::Pointer
NewLike(const itk::ImageBase<3> * ref)
{
  auto image = TImage::New();
  image->SetRegions(ref->GetLargestPossibleRegion());
  image->SetSpacing(ref->GetSpacing());
  image->SetOrigin(ref->GetOrigin());
  image->SetDirection(ref->GetDirection());
  image->Allocate();
  typename TImage::PixelType zero;
  if constexpr (std::is_arithmetic_v<typename TImage::PixelType>)
    zero = 0;
  else
    zero.Fill(0);
  image->FillBuffer(zero);
  return image;
}

/// The log-linear design: row i = [1, -b gx^2, -b gy^2, -b gz^2, -2b gx gy, -2b gx gz, -2b gy gz];
/// parameters (ln S0, Dxx, Dyy, Dzz, Dxy, Dxz, Dyz).
struct Design
{
  MatX7 x;
  Eigen::Matrix<double, 7, Eigen::Dynamic> pinv;
  /// measurement after measurement (row i of x): the 28 products x_ia x_ib (a <= b, row-major upper triangle), then
  /// its 7 design entries; the data of the WLS normal equations in the order one pass over the measurements reads it
  std::vector<double> rows;
  std::vector<bool> isB0;
  std::size_t n = 0;
};

Design
MakeDesign(const io::GradientTable & table, double b0Threshold)
{
  if (table.frame != "lps")
    ThrowInternal("tensor fit needs an LPS gradient table (got frame '" + table.frame + "')");
  Design d;
  d.n = table.entries.size();
  d.x.resize(static_cast<Eigen::Index>(d.n), 7);
  d.isB0.resize(d.n);
  std::size_t b0 = 0;
  for (std::size_t i = 0; i < d.n; ++i)
  {
    const auto & e = table.entries[i];
    double b = e.bValue;
    std::array<double, 3> g = e.direction;
    const double norm = std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
    d.isB0[i] = b <= b0Threshold || norm < 1e-6;
    if (d.isB0[i])
    {
      b = 0.0;
      ++b0;
    }
    else
      for (double & c : g)
        c /= norm;
    const auto r = static_cast<Eigen::Index>(i);
    d.x(r, 0) = 1.0;
    d.x(r, 1) = -b * g[0] * g[0];
    d.x(r, 2) = -b * g[1] * g[1];
    d.x(r, 3) = -b * g[2] * g[2];
    d.x(r, 4) = -2.0 * b * g[0] * g[1];
    d.x(r, 5) = -2.0 * b * g[0] * g[2];
    d.x(r, 6) = -2.0 * b * g[1] * g[2];
  }
  Eigen::JacobiSVD<MatX7> svd(d.x);
  const auto & sv = svd.singularValues();
  // columns have very different scales (1 vs b ~ 1000): compare after column normalisation
  MatX7 xn = d.x;
  for (int c = 0; c < 7; ++c)
    if (xn.col(c).norm() > 0)
      xn.col(c) /= xn.col(c).norm();
  Eigen::JacobiSVD<MatX7> svdn(xn);
  const auto & svn = svdn.singularValues();
  if (d.n < 7 || svn(6) < 1e-6 * svn(0) || !(sv(0) > 0))
    ThrowInput("the gradient table does not determine a tensor: " + std::to_string(d.n) + " volumes, " +
               std::to_string(b0) + " b0; at least 6 non-collinear directions are needed");
  d.pinv = (d.x.transpose() * d.x).ldlt().solve(d.x.transpose());
  d.rows.reserve(d.n * 35);
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(d.n); ++i)
  {
    for (int a = 0; a < 7; ++a)
      for (int b = a; b < 7; ++b)
        d.rows.push_back(d.x(i, a) * d.x(i, b));
    for (int j = 0; j < 7; ++j)
      d.rows.push_back(d.x(i, j));
  }
  return d;
}

/// Solves the 7x7 normal equations a p = rhs (LDLT); false when a is singular or the solution is not finite (p is
/// left unchanged then).
/// Cholesky factorisation and solve of a 7x7 positive definite system in plain loops of fixed length (Eigen's LLT
/// runs its generic blocked code on a 7x7: half of the solve time); false when a pivot is not positive.
bool
CholeskySolve7(const Mat7 & a, const Vec7 & rhs, Vec7 & x)
{
  double l[7][7];
  double inv[7];
  for (int j = 0; j < 7; ++j)
  {
    double d = a(j, j);
    for (int k = 0; k < j; ++k)
      d -= l[j][k] * l[j][k];
    if (!(d > 0.0))
      return false;
    const double root = std::sqrt(d);
    l[j][j] = root;
    inv[j] = 1.0 / root;
    for (int i = j + 1; i < 7; ++i)
    {
      double t = a(i, j);
      for (int k = 0; k < j; ++k)
        t -= l[i][k] * l[j][k];
      l[i][j] = t * inv[j];
    }
  }
  double z[7];
  for (int i = 0; i < 7; ++i)
  {
    double t = rhs(i);
    for (int k = 0; k < i; ++k)
      t -= l[i][k] * z[k];
    z[i] = t * inv[i];
  }
  for (int i = 6; i >= 0; --i)
  {
    double t = z[i];
    for (int k = i + 1; k < 7; ++k)
      t -= l[k][i] * x(k);
    x(i) = t * inv[i];
  }
  return true;
}

bool
SolveNormalEquations(const Mat7 & a, const Vec7 & rhs, Vec7 & p)
{
  // Cholesky first (normal matrices of a full-rank design are positive definite; it is several times cheaper than
  // pivoted LDLT, which was a third of the fit time); LDLT for the semi-definite rest
  Vec7 sol;
  const bool cholesky = CholeskySolve7(a, rhs, sol);
  if (!cholesky || !sol.allFinite())
  {
    Eigen::LDLT<Mat7> ldlt(a);
    if (ldlt.info() != Eigen::Success)
      return false;
    sol = ldlt.solve(rhs);
  }
  if (!sol.allFinite())
    return false;
  p = sol;
  return true;
}

/// Solves the weighted log-linear problem from squared weights `w2` (a row with weight 0 is left out): weights =
/// predicted signal, squared in the normal equations, as MRtrix3 dwi2tensor and DIPY's WLS. One pass over the
/// measurements accumulates the 28 entries of the normal matrix and the 7 of the right-hand side.
bool
SolveNormal(const Design & d, const Eigen::VectorXd & y, const Eigen::VectorXd & w2, Vec7 & p)
{
  double u[28] = {}, b[7] = {};
  const double * row = d.rows.data();
  for (std::size_t i = 0; i < d.n; ++i, row += 35)
  {
    const double w = w2(static_cast<Eigen::Index>(i));
    const double wy = w * y(static_cast<Eigen::Index>(i));
    for (int k = 0; k < 28; ++k)
      u[k] += row[k] * w;
    for (int j = 0; j < 7; ++j)
      b[j] += row[28 + j] * wy;
  }
  const Vec7 rhs = Eigen::Map<const Vec7>(b);
  Mat7 a;
  Eigen::Index k = 0;
  for (int r = 0; r < 7; ++r)
    for (int c = r; c < 7; ++c)
      a(r, c) = a(c, r) = u[k++];
  return SolveNormalEquations(a, rhs, p);
}

/// Solves the weighted log-linear problem on the kept rows by row-wise accumulation (the robust fit's refits: the
/// accumulation order of the original implementation keeps its outlier decisions reproducible).
bool
SolveWeightedRows(const Design & d, const Eigen::VectorXd & y, const Eigen::VectorXd & w,
                  const std::vector<char> & keep, Vec7 & p)
{
  Mat7 a = Mat7::Zero();
  Vec7 rhs = Vec7::Zero();
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(d.n); ++i)
  {
    if (!keep[static_cast<std::size_t>(i)])
      continue;
    const double w2 = w(i) * w(i);
    const auto row = d.x.row(i);
    a.noalias() += w2 * row.transpose() * row;
    rhs.noalias() += w2 * y(i) * row.transpose();
  }
  return SolveNormalEquations(a, rhs, p);
}

/// Per-thread scratch vectors of the voxel fits (no allocation per voxel).
struct Scratch
{
  Eigen::VectorXd w2;
};

Scratch &
ThreadScratch(std::size_t n)
{
  thread_local Scratch scratch;
  scratch.w2.resize(static_cast<Eigen::Index>(n));
  return scratch;
}

/// Weighted solve with weights = signal predicted by `p`.
bool
SolveWeightedByPrediction(const Design & d, const Eigen::VectorXd & y, const Vec7 & p, Vec7 & out)
{
  Scratch & sc = ThreadScratch(d.n);
  const double * row = d.rows.data() + 28;
  for (std::size_t i = 0; i < d.n; ++i, row += 35)
  {
    double z = 0.0;
    for (int j = 0; j < 7; ++j)
      z += row[j] * p(j);
    sc.w2(static_cast<Eigen::Index>(i)) = z;
  }
  sc.w2 = sc.w2.array().exp().square().matrix();
  return SolveNormal(d, y, sc.w2, out);
}

/// Log-Cholesky: theta = (ln S0, a1, a2, a3, l21, l31, l32), L = [[e^a1,0,0],[l21,e^a2,0],[l31,l32,e^a3]].
Vec7
ToLinearParams(const Vec7 & t, Eigen::Matrix<double, 6, 6> * jac)
{
  const double e1 = std::exp(t(1)), e2 = std::exp(t(2)), e3 = std::exp(t(3));
  const double l21 = t(4), l31 = t(5), l32 = t(6);
  Vec7 p;
  p(0) = t(0);
  p(1) = e1 * e1;                         // Dxx
  p(2) = l21 * l21 + e2 * e2;             // Dyy
  p(3) = l31 * l31 + l32 * l32 + e3 * e3; // Dzz
  p(4) = e1 * l21;                        // Dxy
  p(5) = e1 * l31;                        // Dxz
  p(6) = l21 * l31 + e2 * l32;            // Dyz
  if (jac)
  {
    auto & j = *jac; // rows: Dxx,Dyy,Dzz,Dxy,Dxz,Dyz; cols: a1,a2,a3,l21,l31,l32
    j.setZero();
    j(0, 0) = 2 * e1 * e1;
    j(1, 1) = 2 * e2 * e2;
    j(1, 3) = 2 * l21;
    j(2, 2) = 2 * e3 * e3;
    j(2, 4) = 2 * l31;
    j(2, 5) = 2 * l32;
    j(3, 0) = e1 * l21;
    j(3, 3) = e1;
    j(4, 0) = e1 * l31;
    j(4, 4) = e1;
    j(5, 1) = e2 * l32;
    j(5, 3) = l31;
    j(5, 4) = l21;
    j(5, 5) = e2;
  }
  return p;
}

Vec7
ToCholeskyParams(const Vec7 & p)
{
  Eigen::Matrix3d dm;
  dm << p(1), p(4), p(5), p(4), p(2), p(6), p(5), p(6), p(3);
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(dm);
  Eigen::Vector3d ev = es.eigenvalues();
  const double floor = std::max(1e-7, 1e-3 * std::max(0.0, ev.maxCoeff()));
  for (int i = 0; i < 3; ++i)
    ev(i) = std::max(ev(i), floor);
  const Eigen::Matrix3d pd = es.eigenvectors() * ev.asDiagonal() * es.eigenvectors().transpose();
  Eigen::LLT<Eigen::Matrix3d> llt(pd);
  const Eigen::Matrix3d l = llt.matrixL();
  Vec7 t;
  t << p(0), std::log(l(0, 0)), std::log(l(1, 1)), std::log(l(2, 2)), l(1, 0), l(2, 0), l(2, 1);
  return t;
}

/// Bounds of the log-Cholesky parameters (see FitNonLinear): |L_ij| <= 0.1 sqrt(mm^2/s).
constexpr double MaxCholeskyEntry = 0.1;
const double MaxLogCholeskyDiagonal = std::log(MaxCholeskyEntry);

/// Levenberg-Marquardt on sum (S_i - S0 exp(X_i d))^2 over kept rows; starts from the linear estimate p.
Vec7
FitNonLinear(const Design & d, const Eigen::VectorXd & s, const std::vector<char> * keep, const Vec7 & start,
             unsigned int iterations)
{
  Vec7 theta = ToCholeskyParams(start);
  for (int k = 1; k <= 3; ++k)
    theta(k) = std::clamp(theta(k), -14.0, MaxLogCholeskyDiagonal);
  for (int k = 4; k <= 6; ++k)
    theta(k) = std::clamp(theta(k), -MaxCholeskyEntry, MaxCholeskyEntry);
  const auto n = static_cast<Eigen::Index>(d.n);
  auto cost = [&](const Vec7 & t)
  {
    const Vec7 p = ToLinearParams(t, nullptr);
    double c = 0.0;
    for (Eigen::Index i = 0; i < n; ++i)
      if (!keep || (*keep)[static_cast<std::size_t>(i)])
      {
        const double r = s(i) - std::exp(d.x.row(i).dot(p));
        c += r * r;
      }
    return c;
  };
  double current = cost(theta);
  double lambda = 1e-3;
  Eigen::Matrix<double, 6, 6> dj;
  for (unsigned int it = 0; it < iterations; ++it)
  {
    const Vec7 p = ToLinearParams(theta, &dj);
    Mat7 jtj = Mat7::Zero();
    Vec7 jtr = Vec7::Zero();
    for (Eigen::Index i = 0; i < n; ++i)
    {
      if (keep && !(*keep)[static_cast<std::size_t>(i)])
        continue;
      const double pred = std::exp(d.x.row(i).dot(p));
      const double r = s(i) - pred;
      Vec7 g;
      g(0) = pred;
      const Eigen::Matrix<double, 1, 6> xd = d.x.row(i).tail<6>();
      g.tail<6>() = pred * (xd * dj).transpose();
      jtj.noalias() += g * g.transpose();
      jtr.noalias() += g * r;
    }
    bool improved = false;
    for (int attempt = 0; attempt < 12; ++attempt)
    {
      Mat7 a = jtj;
      for (int k = 0; k < 7; ++k)
        a(k, k) += lambda * std::max(jtj(k, k), 1e-12);
      const Vec7 step = a.ldlt().solve(jtr);
      if (!step.allFinite())
      {
        lambda *= 10.0;
        continue;
      }
      Vec7 trial = theta + step;
      // Keep the tensor physical: the Cholesky factor's entries are bounded by sqrt(0.01 mm^2/s) = 0.1, so every
      // diffusivity stays below 0.03 mm^2/s (free water at 37 degC is 0.003). Unbounded off-diagonal entries let
      // ill-conditioned voxels run away to diffusivities of 1e9 mm^2/s.
      for (int k = 1; k <= 3; ++k)
        trial(k) = std::clamp(trial(k), -14.0, MaxLogCholeskyDiagonal);
      for (int k = 4; k <= 6; ++k)
        trial(k) = std::clamp(trial(k), -MaxCholeskyEntry, MaxCholeskyEntry);
      const double c = cost(trial);
      if (c < current)
      {
        const double rel = (current - c) / std::max(current, 1e-300);
        theta = trial;
        current = c;
        lambda = std::max(lambda * 0.1, 1e-12);
        improved = true;
        if (rel < 1e-12 || step.norm() < 1e-12)
          return ToLinearParams(theta, nullptr);
        break;
      }
      lambda *= 10.0;
    }
    if (!improved)
      break;
  }
  return ToLinearParams(theta, nullptr);
}

Eigen::VectorXd
Predict(const Design & d, const Vec7 & p)
{
  return (d.x * p).array().exp().matrix();
}

struct VoxelFit
{
  Vec7 p = Vec7::Zero();
  std::size_t rejected = 0;
};

/// One voxel. `s` signals, `y` = ln(max(s, minSignal)).
VoxelFit
FitVoxel(const Design & d, const Eigen::VectorXd & s, const Eigen::VectorXd & y, const FitOptions & o, double sigma)
{
  VoxelFit f;
  f.p = d.pinv * y;
  if (o.method == FitMethod::OLS)
    return f;
  // The non-linear fits start from the WLS estimate and amplify its last-bit differences on ill-conditioned voxels:
  // they keep the row-wise accumulation they were validated with; WLS uses the faster matrix-vector form (results
  // identical in float on the reference data sets).
  const bool rowwise = o.method == FitMethod::NLLS || o.method == FitMethod::Robust;
  thread_local std::vector<char> all;
  all.assign(d.n, 1);
  if (!o.wlsStartFromOls)
  {
    // MRtrix3 dwi2tensor: the first solve is weighted by the measured signal (clipped like ln S)
    Vec7 first;
    Scratch & sc = ThreadScratch(d.n);
    if (rowwise)
    {
      if (SolveWeightedRows(d, y, y.array().exp().matrix(), all, first))
        f.p = first;
    }
    else
    {
      sc.w2 = y.array().exp().square().matrix();
      if (SolveNormal(d, y, sc.w2, first))
        f.p = first;
    }
  }
  const unsigned int wlsIterations = o.method == FitMethod::WLS ? o.wlsIterations : std::max(1u, o.wlsIterations);
  for (unsigned int it = 0; it < wlsIterations; ++it)
  {
    Vec7 next;
    if (!(rowwise ? SolveWeightedRows(d, y, Predict(d, f.p), all, next) : SolveWeightedByPrediction(d, y, f.p, next)))
      break;
    f.p = next;
  }
  if (o.method == FitMethod::WLS)
    return f;
  if (o.method == FitMethod::NLLS)
  {
    f.p = FitNonLinear(d, s, nullptr, f.p, o.nllsIterations);
    return f;
  }
  // Robust (RESTORE-like): reject the worst measurement while it deviates by more than k sigma, refit.
  std::vector<char> keep(d.n, 1);
  std::size_t kept = d.n;
  std::size_t keptB0 = static_cast<std::size_t>(std::count(d.isB0.begin(), d.isB0.end(), true));
  Vec7 p = f.p;
  const double limit = o.robustK * sigma;
  while (kept > 7 && sigma > 0.0)
  {
    const Eigen::VectorXd pred = Predict(d, p);
    double worst = 0.0;
    std::size_t worstIndex = d.n;
    for (std::size_t i = 0; i < d.n; ++i)
    {
      if (!keep[i])
        continue;
      if (d.isB0[i] && keptB0 <= 1)
        continue; // never drop the last b0: S0 would be extrapolated
      const double r = std::abs(s(static_cast<Eigen::Index>(i)) - pred(static_cast<Eigen::Index>(i)));
      if (r > worst)
      {
        worst = r;
        worstIndex = i;
      }
    }
    if (worstIndex == d.n || worst <= limit)
      break;
    keep[worstIndex] = 0;
    // the remaining rows must still determine the tensor
    Mat7 a = Mat7::Zero();
    for (std::size_t i = 0; i < d.n; ++i)
      if (keep[i])
      {
        Eigen::Matrix<double, 7, 1> r = d.x.row(static_cast<Eigen::Index>(i)).transpose();
        for (int c = 1; c < 7; ++c)
          r(c) *= 1e-3; // b ~ 1000: balance the columns before the conditioning test
        a.noalias() += r * r.transpose();
      }
    Eigen::SelfAdjointEigenSolver<Mat7> es(a, Eigen::EigenvaluesOnly);
    if (es.eigenvalues()(0) < 1e-8 * es.eigenvalues()(6))
    {
      keep[worstIndex] = 1;
      break;
    }
    --kept;
    if (d.isB0[worstIndex])
      --keptB0;
    ++f.rejected;
    Vec7 next;
    if (!SolveWeightedRows(d, y, Predict(d, p), keep, next))
      break;
    p = next;
  }
  f.p = FitNonLinear(d, s, f.rejected ? &keep : nullptr, p, o.nllsIterations);
  return f;
}

/// Smallest positive sample of the voxels (1e-3 when none), on `threads` threads (0: all).
double
MinPositiveSignal(const io::DwiSamples & samples, const std::vector<std::size_t> & voxels, unsigned int threads)
{
  constexpr std::size_t Chunk = 256;
  std::vector<double> minima((voxels.size() + Chunk - 1) / Chunk, std::numeric_limits<double>::max());
  ParallelFor(voxels.size(), threads, Chunk,
              [&](std::size_t begin, std::size_t end)
              {
                std::vector<float> buf(samples.Volumes());
                double m = std::numeric_limits<double>::max();
                for (std::size_t k = begin; k < end; ++k)
                {
                  samples.Load(voxels[k], buf.data());
                  for (const float value : buf)
                  {
                    const double s = value;
                    if (s > 0.0 && s < m)
                      m = s;
                  }
                }
                double & slot = minima[begin / Chunk];
                slot = std::min(slot, m);
              });
  const double m =
    minima.empty() ? std::numeric_limits<double>::max() : *std::min_element(minima.begin(), minima.end());
  return m == std::numeric_limits<double>::max() ? 1e-3 : m;
}

/// Signals `s` and ln(max(s, minSignal)) `y` of voxel `v`; `buf` is scratch of samples.Volumes() values.
void
LoadVoxel(const io::DwiSamples & samples, std::size_t v, double minSignal, std::vector<float> & buf,
          Eigen::VectorXd & s, Eigen::VectorXd & y)
{
  samples.Load(v, buf.data());
  for (std::size_t c = 0; c < buf.size(); ++c)
  {
    const double value = buf[c];
    s(static_cast<Eigen::Index>(c)) = value;
    y(static_cast<Eigen::Index>(c)) = std::log(std::max(value, minSignal));
  }
}

void
CheckDwi(const io::DwiSeries & dwi)
{
  if (!dwi.samples.Geometry())
    ThrowInput("no DWI image");
  if (dwi.samples.Volumes() != dwi.gradients.entries.size())
    ThrowInput("the DWI has " + std::to_string(dwi.samples.Volumes()) + " volumes but the gradient table " +
               std::to_string(dwi.gradients.entries.size()) + " entries");
}

/// The DWI's vector image as samples (shared, not copied).
io::DwiSeries
AsSeries(const io::Dwi & dwi)
{
  if (!dwi.image)
    ThrowInput("no DWI image");
  return { io::DwiSamples(dwi.image), dwi.gradients };
}

std::vector<std::size_t>
MaskVoxels(const MaskImage * mask)
{
  std::vector<std::size_t> voxels;
  const auto * m = mask->GetBufferPointer();
  const std::size_t count = mask->GetBufferedRegion().GetNumberOfPixels();
  for (std::size_t i = 0; i < count; ++i)
    if (m[i])
      voxels.push_back(i);
  return voxels;
}

/// Otsu threshold of positive values (256 bins).
double
OtsuThreshold(const std::vector<float> & values)
{
  const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  const double lo = *mn, hi = *mx;
  if (!(hi > lo)) // constant image: everything positive is foreground
    return std::nextafter(lo, -std::numeric_limits<double>::infinity());
  constexpr int Bins = 256;
  std::vector<double> hist(Bins, 0.0);
  for (const float v : values)
    hist[std::min(Bins - 1, static_cast<int>((v - lo) / (hi - lo) * Bins))] += 1.0;
  const double total = static_cast<double>(values.size());
  double sumAll = 0.0;
  for (int i = 0; i < Bins; ++i)
    sumAll += i * hist[i];
  double w0 = 0.0, sum0 = 0.0, best = -1.0;
  int bestBin = 0;
  for (int t = 0; t < Bins - 1; ++t)
  {
    w0 += hist[t];
    sum0 += t * hist[t];
    const double w1 = total - w0;
    if (w0 <= 0.0 || w1 <= 0.0)
      continue;
    const double m0 = sum0 / w0, m1 = (sumAll - sum0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best)
    {
      best = between;
      bestBin = t;
    }
  }
  return lo + (bestBin + 1) * (hi - lo) / Bins;
}
} // namespace

namespace detail
{
bool
SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b)
{
  if (a->GetLargestPossibleRegion().GetSize() != b->GetLargestPossibleRegion().GetSize())
    return false;
  for (unsigned int i = 0; i < 3; ++i)
  {
    if (std::abs(a->GetSpacing()[i] - b->GetSpacing()[i]) > 1e-4 * a->GetSpacing()[i])
      return false;
    if (std::abs(a->GetOrigin()[i] - b->GetOrigin()[i]) > 1e-3)
      return false;
    for (unsigned int j = 0; j < 3; ++j)
      if (std::abs(a->GetDirection()(i, j) - b->GetDirection()(i, j)) > 1e-4)
        return false;
  }
  return true;
}

MaskImage::ConstPointer
MaskOnGrid(const MaskImage * mask, const itk::ImageBase<3> * reference)
{
  if (!mask)
    return nullptr;
  if (SameGrid(mask, reference))
    return mask;
  auto out = NewLike<MaskImage>(reference);
  const Grid g(reference);
  const auto start = reference->GetLargestPossibleRegion().GetIndex();
  const auto region = mask->GetBufferedRegion();
  auto * o = out->GetBufferPointer();
  for (std::size_t k = 0; k < g.nz; ++k)
    for (std::size_t j = 0; j < g.ny; ++j)
      for (std::size_t i = 0; i < g.nx; ++i)
      {
        IndexType idx{ { static_cast<itk::IndexValueType>(i) + start[0], static_cast<itk::IndexValueType>(j) + start[1],
                         static_cast<itk::IndexValueType>(k) + start[2] } };
        PointType p;
        reference->TransformIndexToPhysicalPoint(idx, p);
        IndexType mi;
        if (mask->TransformPhysicalPointToIndex(p, mi) && region.IsInside(mi))
          o[g.Linear(i, j, k)] = mask->GetPixel(mi) ? 1 : 0;
      }
  return out.GetPointer();
}

TensorImage::Pointer
FitOlsQuick(const io::Dwi & dwi, const io::GradientTable & table, const MaskImage * mask, double b0Threshold,
            unsigned int threads)
{
  const Design d = MakeDesign(table, b0Threshold);
  const std::vector<std::size_t> voxels = MaskVoxels(mask);
  const io::DwiSamples samples(dwi.image);
  const double minSignal = MinPositiveSignal(samples, voxels, threads);
  auto tensor = NewLike<TensorImage>(dwi.image);
  TensorPixel * out = tensor->GetBufferPointer();
  ParallelFor(voxels.size(), threads, 512,
              [&](std::size_t begin, std::size_t end)
              {
                Eigen::VectorXd s(static_cast<Eigen::Index>(d.n)), y(static_cast<Eigen::Index>(d.n));
                std::vector<float> buf(d.n);
                for (std::size_t k = begin; k < end; ++k)
                {
                  LoadVoxel(samples, voxels[k], minSignal, buf, s, y);
                  const Vec7 p = d.pinv * y;
                  Eigen::Matrix3d m;
                  m << p(1), p(4), p(5), p(4), p(2), p(6), p(5), p(6), p(3);
                  out[voxels[k]] = ToPixel(m);
                }
              });
  return tensor;
}
} // namespace detail

FitMethod
ParseFitMethod(const std::string & name)
{
  if (name == "ols")
    return FitMethod::OLS;
  if (name == "wls")
    return FitMethod::WLS;
  if (name == "nlls")
    return FitMethod::NLLS;
  if (name == "robust")
    return FitMethod::Robust;
  ThrowUsage("unknown tensor fit '" + name + "' (ols, wls, nlls, robust)");
}

const char *
ToString(FitMethod method)
{
  switch (method)
  {
    case FitMethod::OLS:
      return "ols";
    case FitMethod::WLS:
      return "wls";
    case FitMethod::NLLS:
      return "nlls";
    case FitMethod::Robust:
      return "robust";
  }
  return "?";
}

TensorMetrics
ComputeTensorMetrics(const TensorPixel & tensor)
{
  TensorMetrics m;
  // closed form (Eigen's computeDirect: trigonometric eigenvalues, cross-product eigenvectors, on the matrix scaled
  // by its largest entry); about 4x faster than the iterative solver and within 1e-7 of it in FA
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es;
  es.computeDirect(detail::ToMatrix(tensor));
  const Eigen::Vector3d ev = es.eigenvalues(); // ascending
  m.lambda[0] = ev(2);
  m.lambda[1] = ev(1);
  m.lambda[2] = ev(0);
  m.md = (ev(0) + ev(1) + ev(2)) / 3.0;
  m.ad = ev(2);
  m.rd = 0.5 * (ev(0) + ev(1));
  m.fa = detail::FractionalAnisotropy(ev(2), ev(1), ev(0));
  const Eigen::Vector3d v = es.eigenvectors().col(2);
  for (int i = 0; i < 3; ++i)
    m.v1[i] = v(i);
  return m;
}

FloatImage::Pointer
MeanB0(const io::Dwi & dwi, double b0Threshold)
{
  return MeanB0(AsSeries(dwi), b0Threshold);
}

FloatImage::Pointer
MeanB0(const io::DwiSeries & dwi, double b0Threshold)
{
  CheckDwi(dwi);
  std::vector<unsigned int> b0;
  for (std::size_t i = 0; i < dwi.gradients.entries.size(); ++i)
    if (dwi.gradients.entries[i].bValue <= b0Threshold)
      b0.push_back(static_cast<unsigned int>(i));
  if (b0.empty())
    ThrowInput("the DWI has no b0 volume (b <= " + std::to_string(static_cast<int>(b0Threshold)) + " s/mm^2)");
  auto out = NewLike<FloatImage>(dwi.samples.Geometry());
  const std::size_t count = out->GetBufferedRegion().GetNumberOfPixels();
  std::vector<double> sum(count, 0.0);
  for (const unsigned int c : b0)
    dwi.samples.AddVolume(c, sum.data());
  float * o = out->GetBufferPointer();
  for (std::size_t v = 0; v < count; ++v)
    o[v] = static_cast<float>(sum[v] / static_cast<double>(b0.size()));
  return out;
}

MaskImage::Pointer
AutoMask(const FloatImage * meanB0)
{
  if (!meanB0)
    ThrowInternal("AutoMask: null image");
  const detail::Grid g(meanB0);
  const float * b0 = meanB0->GetBufferPointer();
  std::vector<float> positive;
  for (std::size_t i = 0; i < g.Count(); ++i)
    if (b0[i] > 0.0f && std::isfinite(b0[i]))
      positive.push_back(b0[i]);
  if (positive.empty())
    ThrowProcessing("automatic mask: the mean b0 image has no positive voxel");
  const double threshold = OtsuThreshold(positive);
  auto mask = NewLike<MaskImage>(meanB0);
  auto * m = mask->GetBufferPointer();
  std::vector<int> label(g.Count(), 0);
  // largest 6-connected component above the threshold
  int best = 0, current = 0;
  std::size_t bestSize = 0;
  std::deque<std::size_t> queue;
  auto neighbours = [&](std::size_t v, auto && visit)
  {
    const std::size_t i = v % g.nx, j = (v / g.nx) % g.ny, k = v / (g.nx * g.ny);
    if (i > 0)
      visit(v - 1);
    if (i + 1 < g.nx)
      visit(v + 1);
    if (j > 0)
      visit(v - g.nx);
    if (j + 1 < g.ny)
      visit(v + g.nx);
    if (k > 0)
      visit(v - g.nx * g.ny);
    if (k + 1 < g.nz)
      visit(v + g.nx * g.ny);
  };
  for (std::size_t v = 0; v < g.Count(); ++v)
  {
    if (label[v] || !(b0[v] > threshold))
      continue;
    ++current;
    std::size_t size = 0;
    label[v] = current;
    queue.push_back(v);
    while (!queue.empty())
    {
      const std::size_t u = queue.front();
      queue.pop_front();
      ++size;
      neighbours(u,
                 [&](std::size_t w)
                 {
                   if (!label[w] && b0[w] > threshold)
                   {
                     label[w] = current;
                     queue.push_back(w);
                   }
                 });
    }
    if (size > bestSize)
    {
      bestSize = size;
      best = current;
    }
  }
  if (best == 0)
    ThrowProcessing("automatic mask: nothing above the Otsu threshold");
  for (std::size_t v = 0; v < g.Count(); ++v)
    m[v] = label[v] == best ? 1 : 0;
  // hole filling, slice by slice along each axis-k plane: background not connected to the slice border is filled
  std::vector<char> outside(g.nx * g.ny);
  for (std::size_t k = 0; k < g.nz; ++k)
  {
    std::fill(outside.begin(), outside.end(), 0);
    std::deque<std::size_t> q;
    auto seed = [&](std::size_t i, std::size_t j)
    {
      const std::size_t p = i + g.nx * j;
      if (!outside[p] && !m[p + g.nx * g.ny * k])
      {
        outside[p] = 1;
        q.push_back(p);
      }
    };
    for (std::size_t i = 0; i < g.nx; ++i)
    {
      seed(i, 0);
      seed(i, g.ny - 1);
    }
    for (std::size_t j = 0; j < g.ny; ++j)
    {
      seed(0, j);
      seed(g.nx - 1, j);
    }
    while (!q.empty())
    {
      const std::size_t p = q.front();
      q.pop_front();
      const std::size_t i = p % g.nx, j = p / g.nx;
      if (i > 0)
        seed(i - 1, j);
      if (i + 1 < g.nx)
        seed(i + 1, j);
      if (j > 0)
        seed(i, j - 1);
      if (j + 1 < g.ny)
        seed(i, j + 1);
    }
    for (std::size_t p = 0; p < g.nx * g.ny; ++p)
      if (!outside[p])
        m[p + g.nx * g.ny * k] = 1;
  }
  return mask;
}

DtiResult
FitTensors(const io::Dwi & dwi, const MaskImage * mask, const FitOptions & options)
{
  return FitTensors(AsSeries(dwi), mask, options);
}

DtiResult
FitTensors(const io::DwiSeries & dwi, const MaskImage * mask, const FitOptions & options)
{
  const auto t0 = std::chrono::steady_clock::now();
  CheckDwi(dwi);
  const Design d = MakeDesign(dwi.gradients, options.b0Threshold);
  const DwiImage * grid = dwi.samples.Geometry();
  DtiResult r;
  r.meanB0 = MeanB0(dwi, options.b0Threshold);
  if (mask)
  {
    MaskImage::ConstPointer onGrid = detail::MaskOnGrid(mask, grid);
    auto copy = NewLike<MaskImage>(grid);
    std::copy_n(onGrid->GetBufferPointer(), copy->GetBufferedRegion().GetNumberOfPixels(), copy->GetBufferPointer());
    r.mask = copy;
  }
  else
    r.mask = AutoMask(r.meanB0);
  const std::vector<std::size_t> voxels = MaskVoxels(r.mask);
  if (voxels.empty())
    ThrowInput("the mask is empty on the DWI grid");
  const io::DwiSamples & samples = dwi.samples;
  const double minSignal = MinPositiveSignal(samples, voxels, options.threads);
  const std::size_t n = d.n;

  // robust fit: noise sigma = 1.4826 MAD of the residuals (corrected for the 7 fitted parameters), first of a WLS
  // fit, then of the measurements a robust fit with that first sigma keeps (outliers inflate the WLS residuals)
  double sigma = options.robustSigma;
  if (options.method == FitMethod::Robust && !(sigma > 0.0))
  {
    auto estimate = [&](const FitOptions & o, double s0)
    {
      std::vector<float> residuals(voxels.size() * n, std::numeric_limits<float>::quiet_NaN());
      detail::ParallelFor(voxels.size(), options.threads, 256,
                          [&](std::size_t begin, std::size_t end)
                          {
                            Eigen::VectorXd s(static_cast<Eigen::Index>(n)), y(static_cast<Eigen::Index>(n));
                            std::vector<float> buf(n);
                            for (std::size_t k = begin; k < end; ++k)
                            {
                              LoadVoxel(samples, voxels[k], minSignal, buf, s, y);
                              const VoxelFit f = FitVoxel(d, s, y, o, s0);
                              const Eigen::VectorXd pred = Predict(d, f.p);
                              for (std::size_t c = 0; c < n; ++c)
                              {
                                const auto i = static_cast<Eigen::Index>(c);
                                const double res = std::abs(s(i) - pred(i));
                                if (o.method != FitMethod::Robust || res <= o.robustK * s0)
                                  residuals[k * n + c] = static_cast<float>(res);
                              }
                            }
                          });
      residuals.erase(std::remove_if(residuals.begin(), residuals.end(), [](float v) { return std::isnan(v); }),
                      residuals.end());
      if (residuals.empty())
        return 0.0;
      auto mid = residuals.begin() + static_cast<std::ptrdiff_t>(residuals.size() / 2);
      std::nth_element(residuals.begin(), mid, residuals.end());
      const double dof = static_cast<double>(n) / static_cast<double>(n > 7 ? n - 7 : 1);
      return 1.4826 * static_cast<double>(*mid) * std::sqrt(dof);
    };
    FitOptions wls = options;
    wls.method = FitMethod::WLS;
    sigma = estimate(wls, 0.0);
    if (sigma > 0.0)
      sigma = estimate(options, sigma);
    if (!(sigma > 0.0))
      sigma = 0.0;
  }
  r.sigma = sigma;

  r.tensor = NewLike<TensorImage>(grid);
  r.s0 = NewLike<FloatImage>(grid);
  r.maps.fa = NewLike<FloatImage>(grid);
  r.maps.md = NewLike<FloatImage>(grid);
  r.maps.ad = NewLike<FloatImage>(grid);
  r.maps.rd = NewLike<FloatImage>(grid);
  r.v1 = NewLike<VectorImage3>(grid);
  r.colourFa = NewLike<VectorImage3>(grid);
  TensorPixel * tensorOut = r.tensor->GetBufferPointer();
  float *s0 = r.s0->GetBufferPointer(), *fa = r.maps.fa->GetBufferPointer(), *md = r.maps.md->GetBufferPointer(),
        *ad = r.maps.ad->GetBufferPointer(), *rd = r.maps.rd->GetBufferPointer();
  VectorPixel *v1 = r.v1->GetBufferPointer(), *cfa = r.colourFa->GetBufferPointer();
  std::atomic<std::size_t> rejected{ 0 }, nonPositive{ 0 }, done{ 0 };
  const ProgressRange progress(0.0, 1.0, "fitting tensors");
  detail::ParallelFor(voxels.size(), options.threads, 256,
                      [&](std::size_t begin, std::size_t end)
                      {
                        Eigen::VectorXd s(static_cast<Eigen::Index>(n)), y(static_cast<Eigen::Index>(n));
                        std::vector<float> buf(n);
                        std::size_t localRejected = 0, localNonPositive = 0;
                        for (std::size_t k = begin; k < end; ++k)
                        {
                          const std::size_t v = voxels[k];
                          LoadVoxel(samples, v, minSignal, buf, s, y);
                          const VoxelFit f = FitVoxel(d, s, y, options, sigma);
                          localRejected += f.rejected;
                          Eigen::Matrix3d m;
                          m << f.p(1), f.p(4), f.p(5), f.p(4), f.p(2), f.p(6), f.p(5), f.p(6), f.p(3);
                          if (!m.allFinite())
                            continue;
                          const TensorPixel t = detail::ToPixel(m);
                          tensorOut[v] = t;
                          s0[v] = static_cast<float>(std::exp(std::min(f.p(0), 80.0)));
                          const TensorMetrics tm = ComputeTensorMetrics(t);
                          if (tm.lambda[2] <= 0.0)
                            ++localNonPositive;
                          fa[v] = static_cast<float>(tm.fa);
                          md[v] = static_cast<float>(tm.md);
                          ad[v] = static_cast<float>(tm.ad);
                          rd[v] = static_cast<float>(tm.rd);
                          for (unsigned int c = 0; c < 3; ++c)
                          {
                            v1[v][c] = static_cast<float>(tm.v1[c]);
                            cfa[v][c] = static_cast<float>(std::abs(tm.v1[c]) * tm.fa);
                          }
                        }
                        rejected += localRejected;
                        nonPositive += localNonPositive;
                        const std::size_t total = done += end - begin;
                        progress.Report(static_cast<double>(total) / static_cast<double>(voxels.size()));
                      });
  r.fittedVoxels = voxels.size();
  r.rejectedMeasurements = rejected;
  r.nonPositiveVoxels = nonPositive;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.nonPositiveVoxels > 0)
    log::Info(log::Cat(r.nonPositiveVoxels, " of ", r.fittedVoxels, " voxels have a non-positive eigenvalue"));
  return r;
}

ScalarMaps
ComputeScalarMaps(const TensorImage * tensor, const MaskImage * mask)
{
  if (!tensor)
    ThrowInternal("ComputeScalarMaps: null tensor image");
  MaskImage::ConstPointer m = detail::MaskOnGrid(mask, tensor);
  ScalarMaps maps;
  maps.fa = NewLike<FloatImage>(tensor);
  maps.md = NewLike<FloatImage>(tensor);
  maps.ad = NewLike<FloatImage>(tensor);
  maps.rd = NewLike<FloatImage>(tensor);
  const std::size_t count = tensor->GetBufferedRegion().GetNumberOfPixels();
  const TensorPixel * t = tensor->GetBufferPointer();
  for (std::size_t v = 0; v < count; ++v)
  {
    if (m && !m->GetBufferPointer()[v])
      continue;
    bool zero = true;
    for (unsigned int c = 0; c < 6; ++c)
      zero = zero && t[v][c] == 0.0f;
    if (zero)
      continue;
    const TensorMetrics tm = ComputeTensorMetrics(t[v]);
    maps.fa->GetBufferPointer()[v] = static_cast<float>(tm.fa);
    maps.md->GetBufferPointer()[v] = static_cast<float>(tm.md);
    maps.ad->GetBufferPointer()[v] = static_cast<float>(tm.ad);
    maps.rd->GetBufferPointer()[v] = static_cast<float>(tm.rd);
  }
  return maps;
}

namespace
{
/// Every map WriteDtiResult can write, in the order of DtiMapNames(): name and file suffix.
struct MapFile
{
  const char * name;
  const char * suffix;
};
constexpr std::array<MapFile, 11> MapFiles{ { { "fa", "_FA.nii.gz" },
                                              { "md", "_MD.nii.gz" },
                                              { "ad", "_AD.nii.gz" },
                                              { "rd", "_RD.nii.gz" },
                                              { "s0", "_S0.nii.gz" },
                                              { "meanb0", "_meanb0.nii.gz" },
                                              { "mask", "_mask.nii.gz" },
                                              { "v1", "_V1.nii.gz" },
                                              { "colourfa", "_colourFA.nii.gz" },
                                              { "tensor", "_tensor.nii.gz" },
                                              { "tensor-nrrd", "_tensor.nrrd" } } };
} // namespace

std::vector<std::string>
DtiMapNames()
{
  std::vector<std::string> names;
  for (const auto & m : MapFiles)
    names.emplace_back(m.name);
  return names;
}

std::vector<std::string>
DtiOutputSuffixes()
{
  std::vector<std::string> suffixes;
  for (const auto & m : MapFiles)
    suffixes.emplace_back(m.suffix);
  return suffixes;
}

std::vector<std::string>
ParseDtiMaps(const std::string & list)
{
  std::vector<bool> wanted(MapFiles.size(), false);
  std::size_t begin = 0;
  bool any = false;
  while (begin <= list.size())
  {
    std::size_t end = list.find(',', begin);
    if (end == std::string::npos)
      end = list.size();
    std::string item = list.substr(begin, end - begin);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    std::transform(item.begin(), item.end(), item.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    begin = end + 1;
    if (item.empty())
      continue;
    any = true;
    if (item == "all")
    {
      std::fill(wanted.begin(), wanted.end(), true);
      continue;
    }
    bool known = false;
    for (std::size_t i = 0; i < MapFiles.size(); ++i)
      if (item == MapFiles[i].name)
      {
        wanted[i] = true;
        known = true;
      }
    if (!known)
    {
      std::string names;
      for (const auto & m : MapFiles)
        names += std::string(names.empty() ? "" : ", ") + m.name;
      ThrowUsage("unknown DTI map '" + item + "' (maps: all, " + names + ")");
    }
  }
  if (!any)
    ThrowUsage("no DTI map requested (give a comma-separated list, e.g. fa,md,ad,rd, or all)");
  std::vector<std::string> maps;
  for (std::size_t i = 0; i < MapFiles.size(); ++i)
    if (wanted[i])
      maps.emplace_back(MapFiles[i].name);
  return maps;
}

std::vector<fs::path>
WriteDtiResult(const DtiResult & r, const std::string & prefix, bool force, const std::vector<std::string> & maps,
               unsigned int threads)
{
  if (!r.tensor || !r.maps.fa || !r.maps.md || !r.maps.ad || !r.maps.rd || !r.s0 || !r.meanB0 || !r.mask || !r.v1 ||
      !r.colourFa)
    ThrowInternal("WriteDtiResult: incomplete result");
  std::vector<bool> wanted(MapFiles.size(), maps.empty());
  for (const auto & name : maps)
  {
    const auto it = std::find_if(MapFiles.begin(), MapFiles.end(), [&](const MapFile & m) { return name == m.name; });
    if (it == MapFiles.end())
      ThrowUsage("unknown DTI map '" + name + "'");
    wanted[static_cast<std::size_t>(it - MapFiles.begin())] = true;
  }
  std::vector<fs::path> written;
  for (std::size_t i = 0; i < MapFiles.size(); ++i)
    if (wanted[i])
      written.emplace_back(prefix + MapFiles[i].suffix);
  // refuse before writing anything when one of the outputs exists (and create the output directory once)
  for (const auto & p : written)
    PrepareOutput(p, force);
  if (wanted[10])
  {
    // NRRD for 3D Slicer: tensor components are in the image space (LPS); say so with an identity measurement frame.
    const std::vector<std::vector<double>> frame{ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
    itk::EncapsulateMetaData<std::vector<std::vector<double>>>(r.tensor->GetMetaDataDictionary(),
                                                               "NRRD_measurement frame", frame);
  }
  // One task per image object (the tensor's two files in one task: an ITK writer updates its input's requested
  // region), largest first; the files are independent, zlib and the ITK writers are reentrant.
  const auto file = [&](std::size_t i) { return fs::path(prefix + MapFiles[i].suffix); };
  std::vector<std::function<void()>> tasks;
  if (wanted[9] || wanted[10])
    tasks.emplace_back(
      [&]()
      {
        if (wanted[9])
          io::WriteImage(r.tensor.GetPointer(), file(9), force);
        if (wanted[10])
          io::WriteImage(r.tensor.GetPointer(), file(10), force);
      });
  const std::array<const VectorImage3 *, 2> vectors{ r.v1.GetPointer(), r.colourFa.GetPointer() };
  for (std::size_t i : { 7, 8 })
    if (wanted[i])
      tasks.emplace_back([&, i]() { io::WriteImage(vectors[i - 7], file(i), force); });
  const std::array<const FloatImage *, 6> scalars{ r.maps.fa.GetPointer(), r.maps.md.GetPointer(),
                                                   r.maps.ad.GetPointer(), r.maps.rd.GetPointer(),
                                                   r.s0.GetPointer(),      r.meanB0.GetPointer() };
  for (std::size_t i : { 5, 0, 1, 2, 3, 4 })
    if (wanted[i])
      tasks.emplace_back([&, i]() { io::WriteImage(scalars[i], file(i), force); });
  if (wanted[6])
    tasks.emplace_back([&]() { io::WriteImage(r.mask.GetPointer(), file(6), force); });
  detail::ParallelFor(tasks.size(), threads, 1,
                      [&](std::size_t begin, std::size_t end)
                      {
                        for (std::size_t t = begin; t < end; ++t)
                          tasks[t]();
                      });
  return written;
}

TensorImage::Pointer
ReadTensorImage(const fs::path & path)
{
  const io::ImageInfo info = io::ReadImageInfo(path);
  if (info.components != 6 || info.pixelType != "symmetric_second_rank_tensor")
    ThrowInput(path.filename().string() + " is not a diffusion tensor image (expected a NIfTI SYMMATRIX or NRRD " +
               "tensor as written by gw_dti; found " + std::to_string(info.components) + " component(s), " +
               info.pixelType + ")");
  DwiImage::Pointer v = io::ReadVectorImage(path);
  if (v->GetNumberOfComponentsPerPixel() != 6)
    ThrowInput(path.filename().string() + ": expected 6 tensor components per voxel");
  auto t = NewLike<TensorImage>(v);
  const std::size_t count = t->GetBufferedRegion().GetNumberOfPixels();
  const float * in = v->GetBufferPointer();
  TensorPixel * out = t->GetBufferPointer();
  for (std::size_t i = 0; i < count; ++i)
    for (unsigned int c = 0; c < 6; ++c)
      out[i][c] = in[i * 6 + c];
  return t;
}
} // namespace gw::dti
