// Linear (rigid/affine) registration with Mattes mutual information: a deterministic multi-threaded engine.
//
// Why not ITK's MattesMutualInformationImageToImageMetricv4 here: for global transforms it accumulates the joint-PDF
// derivatives of its threads into one shared buffer under try-locks, so the summation order (and the last bits of
// every result) depend on thread scheduling; GraftWatch then had to run it single-threaded. This engine splits the
// samples into chunks whose number depends only on the sample count, accumulates per chunk and reduces the chunks
// in order, so results are bitwise identical for any thread count. Per sample it needs one trilinear fetch of an
// interleaved (value, gradient) image and no per-sample Jacobian: the transform is affine in the point, so the
// parameter derivative follows from 12 accumulated moments.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

#include <itkImageRegionConstIteratorWithIndex.h>
#include <itkShrinkImageFilter.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>

#include "gw/core/error.h"
#include "gw/core/parallel.h"
#include "gw/core/random.h"
#include "internal.h"

namespace gw::registration::internal
{
namespace
{
constexpr int Padding = 2; ///< histogram bins left empty at each end (B-spline Parzen window support)

inline double
BSpline3(double u)
{
  const double a = std::abs(u);
  if (a < 1.0)
    return (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0;
  if (a < 2.0)
  {
    const double b = 2.0 - a;
    return b * b * b / 6.0;
  }
  return 0.0;
}

inline double
BSpline3Derivative(double u)
{
  const double a = std::abs(u);
  if (a < 1.0)
    return -2.0 * u + 1.5 * u * a;
  if (a < 2.0)
  {
    const double b = 2.0 - a;
    return u > 0 ? -0.5 * b * b : 0.5 * b * b;
  }
  return 0.0;
}

/// Index ↔ physical mapping of a grid as plain arrays: point = origin + M index, index = Minv (point − origin).
struct Grid
{
  double origin[3];
  double m[3][3];
  double minv[3][3];
  long size[3];
  explicit Grid(const itk::ImageBase<3> * image)
  {
    const auto d = image->GetDirection();
    const auto s = image->GetSpacing();
    const auto o = image->GetOrigin();
    const auto n = image->GetLargestPossibleRegion().GetSize();
    const auto inv = image->GetInverseDirection();
    for (unsigned int r = 0; r < 3; ++r)
    {
      origin[r] = o[r];
      size[r] = static_cast<long>(n[r]);
      for (unsigned int c = 0; c < 3; ++c)
      {
        m[r][c] = d[r][c] * s[c];
        minv[r][c] = inv[r][c] / s[r];
      }
    }
  }
  void ToIndex(const double p[3], double c[3]) const
  {
    const double q[3] = { p[0] - origin[0], p[1] - origin[1], p[2] - origin[2] };
    for (unsigned int r = 0; r < 3; ++r)
      c[r] = minv[r][0] * q[0] + minv[r][1] * q[1] + minv[r][2] * q[2];
  }
  void ToPoint(const double c[3], double p[3]) const
  {
    for (unsigned int r = 0; r < 3; ++r)
      p[r] = origin[r] + m[r][0] * c[0] + m[r][1] * c[1] + m[r][2] * c[2];
  }
  /// Offset of the nearest voxel, or -1 outside.
  long Nearest(const double p[3]) const
  {
    double c[3];
    ToIndex(p, c);
    long i[3];
    for (unsigned int d = 0; d < 3; ++d)
    {
      i[d] = std::lround(c[d]);
      if (i[d] < 0 || i[d] >= size[d])
        return -1;
    }
    return i[0] + size[0] * (i[1] + size[1] * i[2]);
  }
};

/// Trilinear weights and base offset at continuous index c; false outside [0, size − 1].
struct Trilinear
{
  long base = 0;
  long step[3] = { 0, 0, 0 };
  double f[3] = { 0, 0, 0 };
  bool Set(const Grid & g, const double c[3])
  {
    long i[3];
    for (unsigned int d = 0; d < 3; ++d)
    {
      if (!(c[d] >= 0.0) || c[d] > static_cast<double>(g.size[d] - 1))
        return false;
      i[d] = static_cast<long>(c[d]);
      if (i[d] >= g.size[d] - 1)
        i[d] = std::max(0L, g.size[d] - 2);
      f[d] = c[d] - static_cast<double>(i[d]);
    }
    step[0] = g.size[0] > 1 ? 1 : 0;
    step[1] = g.size[1] > 1 ? g.size[0] : 0;
    step[2] = g.size[2] > 1 ? g.size[0] * g.size[1] : 0;
    base = i[0] + g.size[0] * (i[1] + g.size[1] * i[2]);
    return true;
  }
  /// Value and index-space gradient of the trilinear interpolant (the exact derivative of what is evaluated, so
  /// values and derivatives agree, which the trust-region optimizer relies on).
  double ValueAndGradient(const float * data, double gradient[3]) const
  {
    const float * v = data + base;
    const double c000 = v[0], c100 = v[step[0]], c010 = v[step[1]], c110 = v[step[0] + step[1]];
    const double c001 = v[step[2]], c101 = v[step[0] + step[2]], c011 = v[step[1] + step[2]];
    const double c111 = v[step[0] + step[1] + step[2]];
    const double fx = f[0], fy = f[1], fz = f[2];
    // along x
    const double a00 = c000 + fx * (c100 - c000), a10 = c010 + fx * (c110 - c010);
    const double a01 = c001 + fx * (c101 - c001), a11 = c011 + fx * (c111 - c011);
    const double b0 = a00 + fy * (a10 - a00), b1 = a01 + fy * (a11 - a01);
    const double dx00 = c100 - c000, dx10 = c110 - c010, dx01 = c101 - c001, dx11 = c111 - c011;
    const double dx0 = dx00 + fy * (dx10 - dx00), dx1 = dx01 + fy * (dx11 - dx01);
    gradient[0] = dx0 + fz * (dx1 - dx0);
    gradient[1] = (a10 - a00) + fz * ((a11 - a01) - (a10 - a00));
    gradient[2] = b1 - b0;
    return b0 + fz * (b1 - b0);
  }
  template <unsigned int N>
  void Interpolate(const float * data, double out[N]) const
  {
    for (unsigned int k = 0; k < N; ++k)
      out[k] = 0.0;
    for (unsigned int corner = 0; corner < 8; ++corner)
    {
      double w = 1.0;
      long o = base;
      for (unsigned int d = 0; d < 3; ++d)
      {
        const bool up = (corner >> d) & 1u;
        w *= up ? f[d] : 1.0 - f[d];
        o += up ? step[d] : 0;
      }
      if (w == 0.0)
        continue;
      const float * v = data + N * o;
      for (unsigned int k = 0; k < N; ++k)
        out[k] += w * v[k];
    }
  }
};

/// Runs fn(chunk) for every chunk on `threads` threads; chunks write only their own results.
template <typename F>
void
ForEachChunk(std::size_t chunks, unsigned int threads, const F & fn)
{
  ParallelFor(chunks, std::max(1u, threads), 1,
              [&](std::size_t begin, std::size_t end)
              {
                for (std::size_t c = begin; c < end; ++c)
                  fn(c);
              });
}

constexpr std::size_t ChunkSize = 2048; ///< samples per chunk: fixes the summation order

struct Sample
{
  double u[3]; ///< point − reference point (mm)
  int fixedBin;
};

struct Cache
{
  double xi = -1.0; ///< moving Parzen position (bins); negative: sample not valid
  double g[3] = { 0, 0, 0 };
};

struct ChunkSums
{
  std::vector<double> hist;
  std::size_t valid = 0;
  double su[3][3] = { { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } };
  double s1[3] = { 0, 0, 0 };
};

/// One pyramid level: fixed samples, moving image data and the MI value/derivative of the current transform.
class LevelMetric
{
public:
  LevelMetric(const FloatImage * fixed, const FloatImage * moving, const MaskImage * fixedCost,
              const MaskImage * movingCost, unsigned int samples, unsigned int bins, unsigned int maxBins,
              std::uint64_t seed, unsigned int threads)
    : m_MovingGrid(moving)
    , m_Bins(static_cast<int>(bins))
    , m_Threads(threads)
  {
    if (bins < 2 * Padding + 2)
      ThrowUsage("mutual information needs at least " + std::to_string(2 * Padding + 2) + " histogram bins");
    m_Moving = moving->GetBufferPointer();
    m_MovingMinimum = std::numeric_limits<double>::max();
    double movingMaximum = std::numeric_limits<double>::lowest();
    {
      const float * v = moving->GetBufferPointer();
      const std::size_t n = moving->GetBufferedRegion().GetNumberOfPixels();
      if (movingCost)
        m_MovingCost.emplace(movingCost);
      for (std::size_t i = 0; i < n; ++i)
      {
        m_MovingMinimum = std::min<double>(m_MovingMinimum, v[i]);
        movingMaximum = std::max<double>(movingMaximum, v[i]);
      }
    }
    m_MovingCostImage = movingCost;
    if (!(movingMaximum > m_MovingMinimum))
      ThrowInput("the moving image is constant; mutual information is undefined");

    // Fixed samples: Bernoulli selection of the level voxels inside the cost mask, each moved by a uniform jitter
    // of up to half a level voxel (off-grid samples, as elastix's random-coordinate sampler) and interpolated.
    const Grid fg(fixed);
    std::optional<Grid> costGrid;
    if (fixedCost)
      costGrid.emplace(fixedCost);
    const unsigned char * cost = fixedCost ? fixedCost->GetBufferPointer() : nullptr;
    std::size_t inMask = 0;
    const std::size_t voxels = fixed->GetBufferedRegion().GetNumberOfPixels();
    std::vector<unsigned char> inside(voxels, 1);
    if (cost)
    {
      for (long z = 0; z < fg.size[2]; ++z)
        for (long y = 0; y < fg.size[1]; ++y)
          for (long x = 0; x < fg.size[0]; ++x)
          {
            const double c[3] = { double(x), double(y), double(z) };
            double p[3];
            fg.ToPoint(c, p);
            const long o = costGrid->Nearest(p);
            inside[x + fg.size[0] * (y + fg.size[1] * z)] = o >= 0 && cost[o];
          }
    }
    for (unsigned char b : inside)
      inMask += b;
    if (inMask == 0)
      ThrowInput("the fixed cost mask is empty at this resolution");
    const double keep = std::min(1.0, static_cast<double>(samples) / static_cast<double>(inMask));
    Random rng(seed);
    std::vector<std::array<double, 3>> points;
    std::vector<double> values;
    points.reserve(static_cast<std::size_t>(samples * 1.1) + 16);
    const float * fv = fixed->GetBufferPointer();
    for (long z = 0; z < fg.size[2]; ++z)
      for (long y = 0; y < fg.size[1]; ++y)
        for (long x = 0; x < fg.size[0]; ++x)
        {
          if (!inside[x + fg.size[0] * (y + fg.size[1] * z)])
            continue;
          const double r = rng.Uniform();
          double c[3] = { double(x), double(y), double(z) };
          double j[3];
          for (double & v : j)
            v = rng.Uniform() - 0.5;
          if (r >= keep)
            continue;
          // jittered points outside the grid are dropped, not clamped: clamping would stack samples exactly on
          // the border planes, where the smallest motion moves them all out of the moving image at once (a jump
          // in the metric)
          bool out = false;
          for (unsigned int d = 0; d < 3; ++d)
          {
            c[d] += fg.size[d] > 1 ? j[d] : 0.0;
            out = out || c[d] < 0.0 || c[d] > static_cast<double>(fg.size[d] - 1);
          }
          if (out)
            continue;
          double p[3];
          fg.ToPoint(c, p);
          if (cost)
          {
            const long o = costGrid->Nearest(p);
            if (o < 0 || !cost[o])
              continue;
          }
          Trilinear t;
          if (!t.Set(fg, c))
            continue;
          double value[1];
          t.Interpolate<1>(fv, value);
          points.push_back({ p[0], p[1], p[2] });
          values.push_back(value[0]);
        }
    if (points.size() < 16)
      ThrowInput("too few fixed samples inside the cost mask (" + std::to_string(points.size()) + ")");
    for (unsigned int d = 0; d < 3; ++d)
    {
      double s = 0.0;
      for (const auto & p : points)
        s += p[d];
      m_Reference[d] = s / static_cast<double>(points.size());
    }
    // More bins (up to maxBins) when there are enough samples: about two samples per bin of the joint histogram
    // along one axis squared, i.e. bins = sqrt(samples / 2), never below `bins`.
    if (maxBins > bins)
      m_Bins = static_cast<int>(std::clamp<long>(std::lround(std::sqrt(points.size() / 2.0)), bins, maxBins));
    m_MovingBinWidth = (movingMaximum - m_MovingMinimum) / (m_Bins - 2 * Padding);
    const auto [fmin, fmax] = std::minmax_element(values.begin(), values.end());
    const double fixedMinimum = *fmin;
    const double fixedBinWidth = (*fmax - *fmin) / (m_Bins - 2 * Padding);
    m_Samples.resize(points.size());
    for (std::size_t i = 0; i < points.size(); ++i)
    {
      for (unsigned int d = 0; d < 3; ++d)
        m_Samples[i].u[d] = points[i][d] - m_Reference[d];
      int b = fixedBinWidth > 0.0 ? static_cast<int>(std::floor((values[i] - fixedMinimum) / fixedBinWidth)) + Padding
                                  : m_Bins / 2;
      m_Samples[i].fixedBin = std::clamp(b, Padding, m_Bins - Padding - 1);
    }
    for (unsigned int d = 0; d < 3; ++d)
    {
      m_Low[d] = std::numeric_limits<double>::max();
      m_High[d] = std::numeric_limits<double>::lowest();
      for (const auto & s : m_Samples)
      {
        m_Low[d] = std::min(m_Low[d], s.u[d]);
        m_High[d] = std::max(m_High[d], s.u[d]);
      }
    }
    m_Cache.resize(m_Samples.size());
    m_Chunks.resize((m_Samples.size() + ChunkSize - 1) / ChunkSize);
    for (auto & c : m_Chunks)
      c.hist.assign(static_cast<std::size_t>(m_Bins * m_Bins), 0.0);
    m_Log.assign(static_cast<std::size_t>(m_Bins * m_Bins), 0.0);
  }

  std::size_t NumberOfSamples() const { return m_Samples.size(); }
  const double * Reference() const { return m_Reference; }
  /// Corners of the bounding box of the samples (relative to the reference point).
  std::array<std::array<double, 3>, 8> Corners() const
  {
    std::array<std::array<double, 3>, 8> c{};
    for (unsigned int k = 0; k < 8; ++k)
      for (unsigned int d = 0; d < 3; ++d)
        c[k][d] = ((k >> d) & 1u) ? m_High[d] : m_Low[d];
    return c;
  }

  /// Mutual information of T(x) = A x + b (A, b for points relative to the reference point: T(ref + u) = A u + t)
  /// and its derivative moments: dMI/dA = su, dMI/dt = s1. Returns the number of valid samples.
  std::size_t Evaluate(const double a[3][3], const double t[3], double & mi, double su[3][3], double s1[3])
  {
    const float * mc = m_Moving;
    const auto & minv = m_MovingGrid.minv;
    // pass 1: Parzen joint histogram
    ForEachChunk(m_Chunks.size(), m_Threads,
                 [&](std::size_t chunk)
                 {
                   ChunkSums & cs = m_Chunks[chunk];
                   std::fill(cs.hist.begin(), cs.hist.end(), 0.0);
                   cs.valid = 0;
                   const std::size_t end = std::min(m_Samples.size(), (chunk + 1) * ChunkSize);
                   for (std::size_t i = chunk * ChunkSize; i < end; ++i)
                   {
                     const Sample & s = m_Samples[i];
                     Cache & k = m_Cache[i];
                     k.xi = -1.0;
                     double y[3];
                     for (unsigned int r = 0; r < 3; ++r)
                       y[r] = a[r][0] * s.u[0] + a[r][1] * s.u[1] + a[r][2] * s.u[2] + t[r];
                     if (m_MovingCost)
                     {
                       const long o = m_MovingCost->Nearest(y);
                       if (o < 0 || !m_MovingCostImage->GetBufferPointer()[o])
                         continue;
                     }
                     double c[3];
                     m_MovingGrid.ToIndex(y, c);
                     Trilinear tl;
                     if (!tl.Set(m_MovingGrid, c))
                       continue;
                     double gi[3];
                     const double value = tl.ValueAndGradient(mc, gi);
                     const double xi = std::clamp((value - m_MovingMinimum) / m_MovingBinWidth + Padding,
                                                  double(Padding), double(m_Bins - Padding));
                     k.xi = xi;
                     for (unsigned int r = 0; r < 3; ++r) // physical gradient = Minv^T (index gradient)
                       k.g[r] = minv[0][r] * gi[0] + minv[1][r] * gi[1] + minv[2][r] * gi[2];
                     const int k0 = std::clamp(static_cast<int>(std::floor(xi)) - 1, 0, m_Bins - 4);
                     double * row = cs.hist.data() + static_cast<std::size_t>(s.fixedBin * m_Bins);
                     for (int m = k0; m < k0 + 4; ++m)
                       row[m] += BSpline3(m - xi);
                     ++cs.valid;
                   }
                 });
    std::size_t valid = 0;
    std::vector<double> joint(static_cast<std::size_t>(m_Bins * m_Bins), 0.0);
    for (const auto & cs : m_Chunks)
    {
      valid += cs.valid;
      for (std::size_t i = 0; i < joint.size(); ++i)
        joint[i] += cs.hist[i];
    }
    mi = 0.0;
    for (unsigned int r = 0; r < 3; ++r)
    {
      s1[r] = 0.0;
      for (unsigned int c = 0; c < 3; ++c)
        su[r][c] = 0.0;
    }
    if (valid == 0)
      return 0;
    double total = 0.0;
    for (double v : joint)
      total += v;
    std::vector<double> pf(m_Bins, 0.0), pm(m_Bins, 0.0);
    for (int f = 0; f < m_Bins; ++f)
      for (int m = 0; m < m_Bins; ++m)
      {
        const double p = joint[f * m_Bins + m] / total;
        joint[f * m_Bins + m] = p;
        pf[f] += p;
        pm[m] += p;
      }
    for (int f = 0; f < m_Bins; ++f)
      for (int m = 0; m < m_Bins; ++m)
      {
        const double p = joint[f * m_Bins + m];
        if (p > 1e-16 && pm[m] > 1e-16)
        {
          mi += p * std::log(p / (pf[f] * pm[m]));
          m_Log[f * m_Bins + m] = std::log(p / pm[m]);
        }
        else
          m_Log[f * m_Bins + m] = 0.0;
      }
    // pass 2: dMI/dxi_i = −(1/N) Σ_m β3'(m − xi_i) log(p(f_i, m) / pm(m)); dxi/dy = ∇M / binwidth
    const double scale = -1.0 / (total * m_MovingBinWidth);
    ForEachChunk(m_Chunks.size(), m_Threads,
                 [&](std::size_t chunk)
                 {
                   ChunkSums & cs = m_Chunks[chunk];
                   for (unsigned int r = 0; r < 3; ++r)
                   {
                     cs.s1[r] = 0.0;
                     for (unsigned int c = 0; c < 3; ++c)
                       cs.su[r][c] = 0.0;
                   }
                   const std::size_t end = std::min(m_Samples.size(), (chunk + 1) * ChunkSize);
                   for (std::size_t i = chunk * ChunkSize; i < end; ++i)
                   {
                     const Cache & k = m_Cache[i];
                     if (k.xi < 0.0)
                       continue;
                     const Sample & s = m_Samples[i];
                     const int k0 = std::clamp(static_cast<int>(std::floor(k.xi)) - 1, 0, m_Bins - 4);
                     const double * row = m_Log.data() + static_cast<std::size_t>(s.fixedBin * m_Bins);
                     double w = 0.0;
                     for (int m = k0; m < k0 + 4; ++m)
                       w += BSpline3Derivative(m - k.xi) * row[m];
                     w *= scale;
                     for (unsigned int r = 0; r < 3; ++r)
                     {
                       const double wg = w * k.g[r];
                       cs.s1[r] += wg;
                       for (unsigned int c = 0; c < 3; ++c)
                         cs.su[r][c] += wg * s.u[c];
                     }
                   }
                 });
    for (const auto & cs : m_Chunks)
      for (unsigned int r = 0; r < 3; ++r)
      {
        s1[r] += cs.s1[r];
        for (unsigned int c = 0; c < 3; ++c)
          su[r][c] += cs.su[r][c];
      }
    return valid;
  }

private:
  Grid m_MovingGrid;
  std::optional<Grid> m_MovingCost;
  const MaskImage * m_MovingCostImage = nullptr;
  const float * m_Moving = nullptr;
  double m_MovingMinimum = 0.0, m_MovingBinWidth = 1.0;
  int m_Bins;
  unsigned int m_Threads;
  std::vector<Sample> m_Samples;
  std::vector<Cache> m_Cache;
  std::vector<ChunkSums> m_Chunks;
  std::vector<double> m_Log;
  double m_Reference[3] = { 0, 0, 0 };
  double m_Low[3] = { 0, 0, 0 }, m_High[3] = { 0, 0, 0 };
};

/// A and t of T(ref + u) = A u + t for a matrix-offset transform.
void
Affine(const LinearTransformType * transform, const double ref[3], double a[3][3], double t[3])
{
  const auto m = transform->GetMatrix();
  const auto off = transform->GetOffset();
  for (unsigned int r = 0; r < 3; ++r)
  {
    t[r] = off[r];
    for (unsigned int c = 0; c < 3; ++c)
    {
      a[r][c] = m[r][c];
      t[r] += m[r][c] * ref[c];
    }
  }
}

/// Derivatives of the transformed point with respect to the transform's UPDATE (what UpdateTransformParameters
/// adds; for versors it composes a rotation, which differs from the parameter Jacobian by a factor and a frame):
/// d T(ref + u) / dδ_k = E_k u + e_k, by central differences (exact up to rounding: the transform stays affine in the
/// point). e: 3 per parameter, ee: 9 per parameter (row-major E_k).
void
ParameterDerivatives(const LinearTransformType * transform, const double ref[3], std::vector<double> & e,
                     std::vector<double> & ee)
{
  const unsigned int n = transform->GetNumberOfParameters();
  e.assign(3 * n, 0.0);
  ee.assign(9 * n, 0.0);
  constexpr double h = 1e-5;
  for (unsigned int k = 0; k < n; ++k)
  {
    double ap[3][3], tp[3], am[3][3], tm[3];
    for (int sign = -1; sign <= 1; sign += 2)
    {
      auto copy = transform->CreateAnother();
      auto * c = static_cast<LinearTransformType *>(copy.GetPointer());
      c->SetFixedParameters(transform->GetFixedParameters());
      c->SetParameters(transform->GetParameters());
      LinearTransformType::DerivativeType d(n);
      d.Fill(0.0);
      d[k] = sign * h;
      c->UpdateTransformParameters(d, 1.0);
      Affine(c, ref, sign > 0 ? ap : am, sign > 0 ? tp : tm);
    }
    for (unsigned int r = 0; r < 3; ++r)
    {
      e[3 * k + r] = (tp[r] - tm[r]) / (2 * h);
      for (unsigned int c = 0; c < 3; ++c)
        ee[9 * k + 3 * r + c] = (ap[r][c] - am[r][c]) / (2 * h);
    }
  }
}
} // namespace

PyramidImages
MakePyramidImages(const FloatImage * image, const std::vector<unsigned int> & shrink,
                  const std::vector<double> & sigmasMm, unsigned int threads)
{
  PyramidImages out;
  const auto spacing = image->GetSpacing();
  const auto size = image->GetLargestPossibleRegion().GetSize();
  const double minSpacing = std::min({ spacing[0], spacing[1], spacing[2] });
  for (std::size_t l = 0; l < shrink.size(); ++l)
  {
    FloatImage::ConstPointer level = image;
    try
    {
      if (sigmasMm[l] > 0.0)
      {
        auto smooth = itk::SmoothingRecursiveGaussianImageFilter<FloatImage, FloatImage>::New();
        smooth->SetInput(image);
        smooth->SetSigma(sigmasMm[l]);
        smooth->SetNumberOfWorkUnits(std::max(1u, threads));
        smooth->Update();
        FloatImage::Pointer s = smooth->GetOutput();
        s->DisconnectPipeline();
        level = s;
      }
      itk::FixedArray<unsigned int, 3> f;
      bool any = false;
      for (unsigned int d = 0; d < 3; ++d)
      {
        unsigned int v = std::max(1u, static_cast<unsigned int>(std::lround(shrink[l] * minSpacing / spacing[d])));
        while (v > 1 && size[d] / v < 8)
          --v;
        f[d] = v;
        any = any || v > 1;
      }
      if (any)
      {
        auto shrinker = itk::ShrinkImageFilter<FloatImage, FloatImage>::New();
        shrinker->SetInput(level);
        shrinker->SetShrinkFactors(f);
        shrinker->SetNumberOfWorkUnits(std::max(1u, threads));
        shrinker->Update();
        FloatImage::Pointer s = shrinker->GetOutput();
        s->DisconnectPipeline();
        level = s;
      }
    }
    catch (const itk::ExceptionObject & e)
    {
      ThrowProcessing("image pyramid failed: " + std::string(e.GetDescription()));
    }
    out.levels.push_back(level);
  }
  return out;
}

double
RegisterLinearMi(const PyramidImages & fixed, const PyramidImages & moving, const MaskImage * fixedCost,
                 const MaskImage * movingCost, LinearTransformType * transform, const LinearMiSettings & s,
                 const std::string & stage, std::vector<std::string> & lines)
{
  const std::size_t levels = fixed.levels.size();
  if (levels == 0 || moving.levels.size() != levels || s.samples.size() != levels || s.iterations.size() != levels ||
      s.firstStepMm.size() != levels)
    ThrowInternal("linear MI registration: inconsistent level settings");
  const unsigned int n = transform->GetNumberOfParameters();
  double value = 0.0;
  for (std::size_t l = 0; l < levels; ++l)
  {
    LevelMetric metric(fixed.levels[l], moving.levels[l], fixedCost, movingCost, s.samples[l], s.bins,
                       l + 1 == levels ? s.finestBins : 0, s.seed + 0x1000193ull * (l + 1), s.threads);
    const double * ref = metric.Reference();
    std::vector<double> e, ee;
    ParameterDerivatives(transform, ref, e, ee);
    // Physical-shift scales: the largest displacement of a sample bounding-box corner per unit parameter [mm].
    std::vector<double> shift(n, 0.0);
    for (const auto & c : metric.Corners())
      for (unsigned int k = 0; k < n; ++k)
      {
        double d2 = 0.0;
        for (unsigned int r = 0; r < 3; ++r)
        {
          const double v =
            ee[9 * k + 3 * r] * c[0] + ee[9 * k + 3 * r + 1] * c[1] + ee[9 * k + 3 * r + 2] * c[2] + e[3 * k + r];
          d2 += v * v;
        }
        shift[k] = std::max(shift[k], std::sqrt(d2));
      }
    for (double & v : shift)
      v = std::max(v, 1e-12);

    // Trust-region quasi-Newton ascent (BFGS on the inverse Hessian) in normalized parameters q_k = shift_k x
    // update_k, so a unit of q moves the samples by about 1 mm: a step is accepted only when MI increases; the trust
    // radius starts at firstStepMm, doubles (up to that) after a full accepted step and shrinks by `relaxation`
    // after a rejected one. Stops when the radius or the proposed step falls below minimumStepMm.
    double radius = s.firstStepMm[l];
    double a[3][3], t[3], su[3][3], s1[3];
    auto evaluate = [&](double & mi, std::vector<double> & g)
    {
      Affine(transform, ref, a, t);
      const std::size_t valid = metric.Evaluate(a, t, mi, su, s1);
      if (valid < std::max<std::size_t>(16, metric.NumberOfSamples() / 20))
        ThrowProcessing(stage + ": only " + std::to_string(valid) + " of " + std::to_string(metric.NumberOfSamples()) +
                        " samples map inside the moving image (the images do not overlap)");
      ParameterDerivatives(transform, ref, e, ee);
      for (unsigned int k = 0; k < n; ++k)
      {
        double d = 0.0;
        for (unsigned int r = 0; r < 3; ++r)
        {
          d += e[3 * k + r] * s1[r];
          for (unsigned int c = 0; c < 3; ++c)
            d += ee[9 * k + 3 * r + c] * su[r][c];
        }
        g[k] = d / shift[k];
      }
      if (!std::isfinite(mi))
        ThrowProcessing(stage + ": the metric became non-finite");
      for (double v : g)
        if (!std::isfinite(v))
          ThrowProcessing(stage + ": the metric derivative became non-finite");
    };
    std::vector<double> g0(n), g1(n), p(n), h(n * n, 0.0);
    bool haveH = false;
    double f0 = 0.0, f1 = 0.0;
    evaluate(f0, g0);
    unsigned int it = 1;
    std::string stop = "maximum number of iterations";
    for (; it < s.iterations[l]; ++it)
    {
      double gg = 0.0, pg = 0.0, len = 0.0;
      for (double v : g0)
        gg += v * v;
      if (gg <= 0.0)
      {
        stop = "zero gradient";
        break;
      }
      if (haveH)
      {
        for (unsigned int i = 0; i < n; ++i)
        {
          p[i] = 0.0;
          for (unsigned int j = 0; j < n; ++j)
            p[i] += h[i * n + j] * g0[j];
          pg += p[i] * g0[i];
        }
      }
      if (!haveH || !(pg > 0.0))
      {
        haveH = false;
        for (unsigned int i = 0; i < n; ++i)
          p[i] = g0[i] * radius / std::sqrt(gg);
      }
      for (double v : p)
        len += v * v;
      len = std::sqrt(len);
      if (len > radius)
      {
        for (double & v : p)
          v *= radius / len;
        len = radius;
      }
      if (len < s.minimumStepMm)
      {
        stop = "converged (proposed step below minimum)";
        break;
      }
      const auto saved = transform->GetParameters();
      LinearTransformType::DerivativeType d(n);
      for (unsigned int k = 0; k < n; ++k)
        d[k] = p[k] / shift[k];
      transform->UpdateTransformParameters(d, 1.0);
      evaluate(f1, g1);
      if (f1 > f0)
      {
        // BFGS on F = −MI: s = p, y = ∇F1 − ∇F0 = g0 − g1
        std::vector<double> y(n);
        double sy = 0.0, yy = 0.0;
        for (unsigned int i = 0; i < n; ++i)
        {
          y[i] = g0[i] - g1[i];
          sy += p[i] * y[i];
          yy += y[i] * y[i];
        }
        if (sy > 1e-12 * std::sqrt(yy) * len)
        {
          if (!haveH)
          {
            std::fill(h.begin(), h.end(), 0.0);
            for (unsigned int i = 0; i < n; ++i)
              h[i * n + i] = sy / yy;
            haveH = true;
          }
          const double rho = 1.0 / sy;
          std::vector<double> hy(n, 0.0);
          double yhy = 0.0;
          for (unsigned int i = 0; i < n; ++i)
          {
            for (unsigned int j = 0; j < n; ++j)
              hy[i] += h[i * n + j] * y[j];
            yhy += y[i] * hy[i];
          }
          for (unsigned int i = 0; i < n; ++i)
            for (unsigned int j = 0; j < n; ++j)
              h[i * n + j] += -rho * (hy[i] * p[j] + p[i] * hy[j]) + (rho * rho * yhy + rho) * p[i] * p[j];
        }
        if (len >= radius * (1.0 - 1e-9))
          radius = std::min(2.0 * radius, s.firstStepMm[l]);
        f0 = f1;
        g0 = g1;
      }
      else
      {
        transform->SetParameters(saved);
        radius = len * s.relaxation;
        if (radius < s.minimumStepMm)
        {
          stop = "step below minimum";
          ++it;
          break;
        }
      }
    }
    value = -f0;
    std::ostringstream os;
    os << stage << " L" << l << ": " << it << " it, metric " << value << ", " << metric.NumberOfSamples()
       << " samples, " << stop;
    lines.push_back(os.str());
  }
  return value;
}
} // namespace gw::registration::internal
