// Cord: centerline (ring detector + dynamic programming + robust smoothing) and a per-slice star-shaped active
// contour (radial edge profiles + circular dynamic programming + median across slices).
#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/io/image_io.h"
#include "gw/segmentation/cord.h"
#include "internal.h"

namespace gw::segmentation
{
using namespace detail;

namespace
{
struct SlicePoint
{
  double u = 0, v = 0; // continuous indices along the LR and AP voxel axes
  double score = 0;
};

/// 2D slice (u fastest) of the volume at SI index w.
std::vector<float>
ExtractSlice(const float * img, const AxialView & av, std::size_t w)
{
  std::vector<float> s(av.nu * av.nv);
  for (std::size_t v = 0; v < av.nv; ++v)
    for (std::size_t u = 0; u < av.nu; ++u)
      s[u + av.nu * v] = img[av.Offset(u, v, w)];
  return s;
}

double
Bilinear(const std::vector<float> & s, std::size_t nu, std::size_t nv, double u, double v)
{
  u = std::clamp(u, 0.0, double(nu - 1));
  v = std::clamp(v, 0.0, double(nv - 1));
  const auto u0 = static_cast<std::size_t>(std::floor(u)), v0 = static_cast<std::size_t>(std::floor(v));
  const std::size_t u1 = std::min(u0 + 1, nu - 1), v1 = std::min(v0 + 1, nv - 1);
  const double fu = u - double(u0), fv = v - double(v0);
  return (1 - fu) * (1 - fv) * s[u0 + nu * v0] + fu * (1 - fv) * s[u1 + nu * v0] + (1 - fu) * fv * s[u0 + nu * v1] +
         fu * fv * s[u1 + nu * v1];
}

/// Ring detector candidates in one slice: local maxima of min(side means) - inner mean (T2) or the reverse (T1).
std::vector<SlicePoint>
RingCandidates(const std::vector<float> & s, const AxialView & av, const CordParams & p, double scale)
{
  const long nu = long(av.nu), nv = long(av.nv);
  // integral images of the intensity and of the voxels without data (exactly zero: the wedge that a resampled or
  // reformatted image has outside its source's field of view)
  std::vector<double> integ((av.nu + 1) * (av.nv + 1), 0.0), empty(integ.size(), 0.0);
  for (long v = 0; v < nv; ++v)
  {
    double row = 0, rowEmpty = 0;
    for (long u = 0; u < nu; ++u)
    {
      row += s[std::size_t(u + nu * v)];
      rowEmpty += s[std::size_t(u + nu * v)] == 0.0f ? 1.0 : 0.0;
      integ[std::size_t((u + 1) + (nu + 1) * (v + 1))] = integ[std::size_t((u + 1) + (nu + 1) * v)] + row;
      empty[std::size_t((u + 1) + (nu + 1) * (v + 1))] = empty[std::size_t((u + 1) + (nu + 1) * v)] + rowEmpty;
    }
  }
  auto boxMeanOf = [&](const std::vector<double> & table, long u0, long u1, long v0, long v1) -> double
  {
    u0 = std::max(u0, 0L);
    v0 = std::max(v0, 0L);
    u1 = std::min(u1, nu - 1);
    v1 = std::min(v1, nv - 1);
    if (u1 < u0 || v1 < v0)
      return std::numeric_limits<double>::quiet_NaN();
    const auto I = [&](long a, long b) { return table[std::size_t(a + (nu + 1) * b)]; };
    const double sum = I(u1 + 1, v1 + 1) - I(u0, v1 + 1) - I(u1 + 1, v0) + I(u0, v0);
    return sum / double((u1 - u0 + 1) * (v1 - v0 + 1));
  };
  auto boxMean = [&](long u0, long u1, long v0, long v1) { return boxMeanOf(integ, u0, u1, v0, v1); };
  // no cord where the probe's box holds no data in a tenth of its voxels: a dark wedge beside bright CSF is no cord
  auto emptyBox = [&](long u0, long u1, long v0, long v1) { return boxMeanOf(empty, u0, u1, v0, v1) > 0.1; };
  std::vector<double> best(av.nu * av.nv, -1e30);
  const double ring = 2.5; // CSF ring thickness probed [mm]
  for (double r = p.minRadius; r <= p.maxRadius + 1e-9; r += 1.0)
  {
    const long hu = std::max(1L, std::lround(1.25 * r / av.su)), hv = std::max(1L, std::lround(r / av.sv));
    const long tu = std::max(1L, std::lround(ring / av.su)), tv = std::max(1L, std::lround(ring / av.sv));
    for (long v = hv + tv; v < nv - hv - tv; ++v)
      for (long u = hu + tu; u < nu - hu - tu; ++u)
      {
        if (emptyBox(u - hu - tu, u + hu + tu, v - hv - tv, v + hv + tv))
          continue;
        const double in = boxMean(u - hu, u + hu, v - hv, v + hv);
        const double l = boxMean(u - hu - tu, u - hu - 1, v - hv, v + hv);
        const double rr = boxMean(u + hu + 1, u + hu + tu, v - hv, v + hv);
        const double a = boxMean(u - hu, u + hu, v - hv - tv, v - hv - 1);
        const double b = boxMean(u - hu, u + hu, v + hv + 1, v + hv + tv);
        double sc;
        if (p.contrast == CordContrast::T2)
          sc = std::min(std::min(l, rr), std::min(a, b)) - in;
        else
          sc = in - std::max(std::max(l, rr), std::max(a, b));
        sc /= scale;
        auto & bst = best[std::size_t(u + nu * v)];
        bst = std::max(bst, sc);
      }
  }
  std::vector<SlicePoint> cands;
  const long su = std::max(1L, std::lround(3.0 / av.su)), sv = std::max(1L, std::lround(3.0 / av.sv));
  for (long v = 0; v < nv; ++v)
    for (long u = 0; u < nu; ++u)
    {
      const double c = best[std::size_t(u + nu * v)];
      if (c <= 0.02)
        continue;
      bool isMax = true;
      for (long b = std::max(0L, v - sv); b <= std::min(nv - 1, v + sv) && isMax; ++b)
        for (long a = std::max(0L, u - su); a <= std::min(nu - 1, u + su); ++a)
        {
          const double o = best[std::size_t(a + nu * b)];
          if (o > c || (o == c && (b < v || (b == v && a < u))))
          {
            isMax = false;
            break;
          }
        }
      if (isMax)
        cands.push_back({ double(u), double(v), c });
    }
  std::sort(cands.begin(), cands.end(), [](const auto & x, const auto & y) { return x.score > y.score; });
  if (cands.size() > 25)
    cands.resize(25);
  return cands;
}

/// Robust smoothing of a sequence: running median (window 7) then running mean (window 5).
std::vector<double>
RobustSmooth(const std::vector<double> & x)
{
  const long n = long(x.size());
  std::vector<double> med(x.size()), out(x.size());
  for (long i = 0; i < n; ++i)
  {
    std::vector<double> w;
    for (long j = std::max(0L, i - 3); j <= std::min(n - 1, i + 3); ++j)
      w.push_back(x[std::size_t(j)]);
    std::nth_element(w.begin(), w.begin() + long(w.size() / 2), w.end());
    med[std::size_t(i)] = w[w.size() / 2];
  }
  for (long i = 0; i < n; ++i)
  {
    double s = 0;
    int c = 0;
    for (long j = std::max(0L, i - 2); j <= std::min(n - 1, i + 2); ++j, ++c)
      s += med[std::size_t(j)];
    out[std::size_t(i)] = s / c;
  }
  return out;
}

double
IntensityScale(const FloatImage * image)
{
  const std::size_t n = GridOf(image).Count();
  const auto * b = image->GetBufferPointer();
  std::vector<float> sample;
  const std::size_t step = std::max<std::size_t>(1, n / 200000);
  for (std::size_t i = 0; i < n; i += step)
    sample.push_back(b[i]);
  const double lo = Percentile(sample, 0.01), hi = Percentile(sample, 0.99);
  return hi > lo ? hi - lo : 1.0;
}

/// Centerline as (u, v) per SI index w (NaN where absent).
struct SliceCenters
{
  std::vector<double> u, v;
  std::vector<bool> valid;
};

SliceCenters
CentersFromPoints(const std::vector<PointType> & pts, const AxialView & av)
{
  SliceCenters c;
  c.u.assign(av.nw, 0);
  c.v.assign(av.nw, 0);
  c.valid.assign(av.nw, false);
  std::vector<std::array<double, 3>> uvw;
  for (const auto & p : pts)
    uvw.push_back(av.Uvw(p));
  std::sort(uvw.begin(), uvw.end(), [](const auto & a, const auto & b) { return a[2] < b[2]; });
  if (uvw.empty())
    return c;
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    const double z = double(w);
    if (z < uvw.front()[2] - 0.5 || z > uvw.back()[2] + 0.5)
      continue;
    std::size_t k = 0;
    while (k + 1 < uvw.size() && uvw[k + 1][2] < z)
      ++k;
    const auto & a = uvw[k];
    const auto & b = uvw[std::min(k + 1, uvw.size() - 1)];
    const double t = (b[2] - a[2]) > 1e-9 ? std::clamp((z - a[2]) / (b[2] - a[2]), 0.0, 1.0) : 0.0;
    c.u[w] = a[0] + t * (b[0] - a[0]);
    c.v[w] = a[1] + t * (b[1] - a[1]);
    c.valid[w] = true;
  }
  return c;
}

std::vector<PointType>
CentersToPoints(const SliceCenters & c, const AxialView & av)
{
  std::vector<std::pair<double, PointType>> pts;
  for (std::size_t w = 0; w < c.u.size(); ++w)
    if (c.valid[w])
    {
      const PointType p = av.Point(c.u[w], c.v[w], double(w));
      pts.push_back({ p[2], p });
    }
  std::sort(pts.begin(), pts.end(), [](const auto & a, const auto & b) { return a.first < b.first; });
  std::vector<PointType> out;
  for (const auto & p : pts)
    out.push_back(p.second);
  return out;
}
} // namespace

std::vector<PointType>
DetectCenterline(const FloatImage * image, const CordParams & params)
{
  if (!image)
    ThrowInternal("DetectCenterline: null image");
  if (!params.centerline.empty())
    return params.centerline;
  const AxialView av(image);
  const double scale = IntensityScale(image);
  const float * img = image->GetBufferPointer();
  std::optional<std::array<double, 3>> seed;
  if (params.seed)
    seed = av.Uvw(*params.seed);

  std::vector<std::vector<SlicePoint>> cands(av.nw);
  double top = 0;
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    if (seed && std::lround((*seed)[2]) == long(w))
      cands[w] = { { (*seed)[0], (*seed)[1], -1.0 } };
    else
      cands[w] = RingCandidates(ExtractSlice(img, av, w), av, params, scale);
    for (const auto & c : cands[w])
      top = std::max(top, c.score);
  }
  if (top <= 0)
    ThrowProcessing("no cord-like structure (dark disc in bright CSF for T2, bright disc for T1) found");
  for (auto & cw : cands)
    for (auto & c : cw)
      c.score = c.score < 0 ? 1.5 : c.score / top; // the seed beats every candidate

  // Dynamic programming along SI over slices that have candidates.
  std::vector<std::size_t> slices;
  for (std::size_t w = 0; w < av.nw; ++w)
    if (!cands[w].empty())
      slices.push_back(w);
  const double lambda = 0.05;   // penalty per (mm shift / mm along SI)^2
  const double maxGapMm = 20.0; // the path bridges slices without a cord-like candidate over at most this [mm]
  std::vector<std::vector<double>> acc(slices.size());
  std::vector<std::vector<std::pair<int, int>>> from(slices.size()); // (slice position, candidate), or (-1, -1)
  for (std::size_t s = 0; s < slices.size(); ++s)
  {
    const auto & cw = cands[slices[s]];
    acc[s].assign(cw.size(), 0);
    from[s].assign(cw.size(), { -1, -1 });
    for (std::size_t b = 0; b < cw.size(); ++b)
    {
      acc[s][b] = cw[b].score;
      double bestVal = -1e30;
      std::pair<int, int> bestFrom{ -1, -1 };
      for (std::size_t q = s; q-- > 0;)
      {
        const double gap = double(slices[s] - slices[q]) * av.sw;
        if (gap > maxGapMm)
          break;
        const auto & cp = cands[slices[q]];
        const double maxShift = params.maxSlope * gap + 2.0;
        for (std::size_t a = 0; a < cp.size(); ++a)
        {
          const double du = (cw[b].u - cp[a].u) * av.su, dv = (cw[b].v - cp[a].v) * av.sv;
          const double d = std::hypot(du, dv);
          if (d > maxShift)
            continue;
          const double val = acc[q][a] - lambda * (d / gap) * (d / gap);
          if (val > bestVal)
          {
            bestVal = val;
            bestFrom = { int(q), int(a) };
          }
        }
      }
      if (bestFrom.first >= 0)
      {
        acc[s][b] += bestVal;
        from[s][b] = bestFrom;
      }
    }
  }
  // Best end state, then backtrack. Where the path started (no candidate within reach below it), it ends: the
  // slices beyond hold no cord-like candidate that continues it (a dark structure beside the cord is no cord).
  SliceCenters c;
  c.u.assign(av.nw, 0);
  c.v.assign(av.nw, 0);
  c.valid.assign(av.nw, false);
  std::vector<double> chosenScore(av.nw, 0);
  if (!slices.empty())
  {
    int s = int(slices.size()) - 1;
    // the path of highest total score, wherever it ends
    double bestTotal = -1e30;
    int idx = 0;
    for (std::size_t q = 0; q < slices.size(); ++q)
      for (std::size_t k = 0; k < acc[q].size(); ++k)
        if (acc[q][k] > bestTotal)
        {
          bestTotal = acc[q][k];
          s = int(q);
          idx = int(k);
        }
    while (s >= 0)
    {
      const auto & cc = cands[slices[std::size_t(s)]][std::size_t(idx)];
      c.u[slices[std::size_t(s)]] = cc.u;
      c.v[slices[std::size_t(s)]] = cc.v;
      c.valid[slices[std::size_t(s)]] = true;
      chosenScore[slices[std::size_t(s)]] = cc.score;
      const auto prev = from[std::size_t(s)][std::size_t(idx)];
      s = prev.first;
      idx = prev.second;
    }
  }
  // Trim weak ends (no cord there), fill interior gaps linearly, smooth robustly.
  std::vector<double> valid;
  for (std::size_t w = 0; w < av.nw; ++w)
    if (c.valid[w])
      valid.push_back(chosenScore[w]);
  std::vector<float> vs(valid.begin(), valid.end());
  const double medScore = Percentile(vs, 0.5);
  long first = 0, last = long(av.nw) - 1;
  while (first <= last && (!c.valid[std::size_t(first)] || chosenScore[std::size_t(first)] < 0.15 * medScore))
    ++first;
  while (last >= first && (!c.valid[std::size_t(last)] || chosenScore[std::size_t(last)] < 0.15 * medScore))
    --last;
  if (last - first + 1 < 3)
    ThrowProcessing("cord centerline too short");
  std::vector<double> us, vs2;
  for (long w = first; w <= last; ++w)
  {
    if (!c.valid[std::size_t(w)])
    {
      long a = w - 1, b = w + 1;
      while (!c.valid[std::size_t(b)])
        ++b;
      const double t = double(w - a) / double(b - a);
      c.u[std::size_t(w)] = c.u[std::size_t(a)] + t * (c.u[std::size_t(b)] - c.u[std::size_t(a)]);
      c.v[std::size_t(w)] = c.v[std::size_t(a)] + t * (c.v[std::size_t(b)] - c.v[std::size_t(a)]);
      c.valid[std::size_t(w)] = true;
    }
    us.push_back(c.u[std::size_t(w)]);
    vs2.push_back(c.v[std::size_t(w)]);
  }
  // Robust trend (LOESS, biweight): slices whose chosen candidate lies far from the trend (e.g. a bright lesion
  // inside the cord hides the dark disc on T2) take the nearest candidate close to the trend, or the trend itself.
  {
    std::vector<double> zs(us.size());
    std::vector<std::vector<double>> mm(2, std::vector<double>(us.size()));
    for (std::size_t i = 0; i < us.size(); ++i)
    {
      zs[i] = double(i) * av.sw;
      mm[0][i] = us[i] * av.su;
      mm[1][i] = vs2[i] * av.sv;
    }
    const double bandwidth = std::max(params.trendBandwidth, 6.0 * av.sw);
    const auto trend = RobustLoess(zs, mm, bandwidth, params.outlierDistance * 2.0, 4);
    for (std::size_t i = 0; i < us.size(); ++i)
    {
      const double du = mm[0][i] - trend[0][i], dv = mm[1][i] - trend[1][i];
      if (std::hypot(du, dv) <= params.outlierDistance)
        continue;
      const std::size_t w = std::size_t(first) + i;
      double bestD = params.outlierDistance;
      bool found = false;
      for (const auto & cand : cands[w])
      {
        const double d = std::hypot(cand.u * av.su - trend[0][i], cand.v * av.sv - trend[1][i]);
        if (d < bestD)
        {
          bestD = d;
          us[i] = cand.u;
          vs2[i] = cand.v;
          found = true;
        }
      }
      if (!found)
      {
        us[i] = trend[0][i] / av.su;
        vs2[i] = trend[1][i] / av.sv;
      }
    }
  }
  const auto su = RobustSmooth(us), sv = RobustSmooth(vs2);
  SliceCenters out;
  out.u.assign(av.nw, 0);
  out.v.assign(av.nw, 0);
  out.valid.assign(av.nw, false);
  for (long w = first; w <= last; ++w)
  {
    out.u[std::size_t(w)] = su[std::size_t(w - first)];
    out.v[std::size_t(w)] = sv[std::size_t(w - first)];
    out.valid[std::size_t(w)] = true;
  }
  if (seed)
  {
    const auto ws = std::size_t(std::lround((*seed)[2]));
    if (ws < av.nw)
    {
      out.u[ws] = (*seed)[0];
      out.v[ws] = (*seed)[1];
    }
  }
  return CentersToPoints(out, av);
}

/// Sub-voxel radius of the cord edge along one ray near the contour radius r0: where the (bilinear) profile crosses
/// half-way between the cord inside (r0 - 1.5 voxels) and the CSF outside (its extreme within 2 voxels beyond r0);
/// the edge of the largest gradient sits at a midpoint between voxel centres whatever the partial volume, this
/// crossing moves with it. `sign` +1: the cord is darker than CSF (T2), -1: brighter (T1). r0 when no crossing.
double
HalfLevelRadius(const std::vector<float> & s, const AxialView & av, double u0, double v0, double th, double r0,
                double sign)
{
  const double voxel = std::max(av.su, av.sv), step = 0.05 * voxel;
  auto at = [&](double r)
  { return sign * Bilinear(s, av.nu, av.nv, u0 + r * std::cos(th) / av.su, v0 + r * std::sin(th) / av.sv); };
  const double inner = at(std::max(0.0, r0 - 1.5 * voxel));
  double outer = -std::numeric_limits<double>::infinity();
  for (double r = r0; r <= r0 + 2.0 * voxel + 1e-9; r += step)
    outer = std::max(outer, at(r));
  if (!(outer > inner))
    return r0;
  const double half = 0.5 * (inner + outer);
  double prev = at(std::max(0.0, r0 - 1.5 * voxel));
  for (double r = std::max(0.0, r0 - 1.5 * voxel) + step; r <= r0 + 2.0 * voxel + 1e-9; r += step)
  {
    const double cur = at(r);
    if (prev < half && cur >= half)
      return r - step + step * (half - prev) / (cur - prev);
    prev = cur;
  }
  return r0;
}

CordResult
SegmentCord(const FloatImage * image, const CordParams & params)
{
  if (!image)
    ThrowInternal("SegmentCord: null image");
  const AxialView av(image);
  const float * img = image->GetBufferPointer();
  const auto centerline = DetectCenterline(image, params);
  const SliceCenters c = CentersFromPoints(centerline, av);

  const unsigned int nRays = std::max(16u, params.rays);
  const double dr = 0.25, rMin = 1.0, rMax = params.maxContourRadius;
  const std::size_t nr = std::size_t(rMax / dr) + 1;
  const double sign = params.contrast == CordContrast::T2 ? 1.0 : -1.0;
  // Edge strength per slice, ray and radius: outward derivative of the (smoothed) radial profile, dark→bright
  // for T2 (cord → CSF), bright→dark for T1; normalised by the slice maximum.
  std::vector<std::vector<double>> edges(av.nw);
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    if (!c.valid[w])
      continue;
    const auto s = ExtractSlice(img, av, w);
    std::vector<double> e(nRays * nr, 0.0), prof(nr), sm(nr);
    double eMax = 0;
    for (unsigned int k = 0; k < nRays; ++k)
    {
      const double th = 2 * M_PI * k / nRays;
      for (std::size_t j = 0; j < nr; ++j)
      {
        const double r = double(j) * dr;
        prof[j] = Bilinear(s, av.nu, av.nv, c.u[w] + r * std::cos(th) / av.su, c.v[w] + r * std::sin(th) / av.sv);
      }
      for (int pass = 0; pass < 2; ++pass)
      {
        for (std::size_t j = 0; j < nr; ++j)
          sm[j] = 0.25 * prof[j > 0 ? j - 1 : 0] + 0.5 * prof[j] + 0.25 * prof[std::min(j + 1, nr - 1)];
        prof.swap(sm);
      }
      for (std::size_t j = 1; j + 1 < nr; ++j)
      {
        const double r = double(j) * dr;
        if (r < rMin)
          continue;
        const double d = sign * (prof[j + 1] - prof[j - 1]) / (2 * dr);
        e[k * nr + j] = std::max(0.0, d);
        eMax = std::max(eMax, e[k * nr + j]);
      }
    }
    if (eMax <= 0)
      continue;
    for (auto & v : e)
      v /= eMax;
    edges[w] = std::move(e);
  }

  // Star-shaped contour of one slice: circular dynamic programming over rays (unrolled three times), smoothness
  // |dj| <= maxJump with a linear penalty; with a prior, radii away from it are penalised (capped quadratic).
  const int maxJump = std::max(1, int(std::ceil(2 * M_PI * rMax / nRays / dr * 0.35)));
  const double mu = 0.02, beta = 1.5;
  const auto contour = [&](const std::vector<double> & e, const std::vector<double> * prior)
  {
    const std::size_t total = 3 * nRays;
    std::vector<double> acc(total * nr, 0.0);
    std::vector<int> back(total * nr, 0);
    for (std::size_t t = 0; t < total; ++t)
    {
      const std::size_t k = t % nRays;
      for (std::size_t j = 0; j < nr; ++j)
      {
        double data = -e[k * nr + j];
        if (prior)
        {
          const double dev = (double(j) * dr - (*prior)[k]) / params.radiusTolerance;
          data += beta * std::min(1.0, dev * dev);
        }
        if (t == 0)
        {
          acc[j] = data;
          continue;
        }
        double best = 1e30;
        int bj = int(j);
        for (int dj = -maxJump; dj <= maxJump; ++dj)
        {
          const long jj = long(j) + dj;
          if (jj < 0 || jj >= long(nr))
            continue;
          const double val = acc[(t - 1) * nr + std::size_t(jj)] + mu * std::abs(dj);
          if (val < best)
          {
            best = val;
            bj = int(jj);
          }
        }
        acc[t * nr + j] = data + best;
        back[t * nr + j] = bj;
      }
    }
    std::vector<int> path(total);
    std::size_t t = total - 1;
    int j = int(std::min_element(acc.begin() + long(t * nr), acc.begin() + long((t + 1) * nr)) -
                (acc.begin() + long(t * nr)));
    while (true)
    {
      path[t] = j;
      if (t == 0)
        break;
      j = back[t * nr + std::size_t(j)];
      --t;
    }
    std::vector<double> r(nRays);
    for (unsigned int k = 0; k < nRays; ++k)
      r[k] = path[nRays + k] * dr;
    return r;
  };

  // Pass 1: edges only. Trend: robust LOESS of every ray's radius along SI (a lesion or a partial-volume slice
  // does not pull it). Pass 2: edges plus the trend prior. Finally a median across 5 slices per ray.
  std::vector<std::vector<double>> radii(av.nw); // per slice, per ray [mm]
  std::vector<std::size_t> ws;
  for (std::size_t w = 0; w < av.nw; ++w)
    if (!edges[w].empty())
    {
      radii[w] = contour(edges[w], nullptr);
      ws.push_back(w);
    }
  // pass 1, the edges alone, measures the AP diameter (CordResult::contour): the trend prior of pass 2 pulls a
  // local swelling back toward the cord above and below it (phantom: a 25% swelling measured as 15-20%)
  const std::vector<std::vector<double>> edgeRadii = radii;
  if (ws.size() >= 3)
  {
    std::vector<double> zs;
    for (const auto w : ws)
      zs.push_back(double(w) * av.sw);
    const double bandwidth = std::max(params.trendBandwidth, 6.0 * av.sw);
    std::vector<std::vector<double>> prior(av.nw, std::vector<double>(nRays, 0.0));
    for (unsigned int k = 0; k < nRays; ++k)
    {
      std::vector<std::vector<double>> y(1);
      for (const auto w : ws)
        y[0].push_back(radii[w][k]);
      const auto fit = RobustLoess(zs, y, bandwidth, 2.0 * params.radiusTolerance, 4);
      for (std::size_t i = 0; i < ws.size(); ++i)
        prior[ws[i]][k] = fit[0][i];
    }
    for (const auto w : ws)
      radii[w] = contour(edges[w], &prior[w]);
  }
  std::vector<std::vector<double>> smooth = radii;
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    if (radii[w].empty())
      continue;
    for (unsigned int k = 0; k < nRays; ++k)
    {
      std::vector<double> win;
      for (long ww = long(w) - 2; ww <= long(w) + 2; ++ww)
        if (ww >= 0 && ww < long(av.nw) && !radii[std::size_t(ww)].empty())
          win.push_back(radii[std::size_t(ww)][k]);
      std::nth_element(win.begin(), win.begin() + long(win.size() / 2), win.end());
      smooth[w][k] = win[win.size() / 2];
    }
  }
  CordResult res;
  res.mask = NewMask(image);
  auto * mb = res.mask->GetBufferPointer();
  std::vector<PointType> used;
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    if (smooth[w].empty())
      continue;
    const auto & R = smooth[w];
    double mean = 0;
    for (double r : R)
      mean += r;
    res.meanRadius.push_back(mean / nRays);
    used.push_back(av.Point(c.u[w], c.v[w], double(w)));
    double apLo = std::numeric_limits<double>::infinity(), apHi = -apLo;
    const auto slice = ExtractSlice(img, av, w);
    for (unsigned int k = 0; k < nRays; ++k)
    {
      const double th = 2 * M_PI * k / nRays;
      const double rk = HalfLevelRadius(slice, av, c.u[w], c.v[w], th, edgeRadii[w][k], sign);
      const PointType q = av.Point(c.u[w] + rk * std::cos(th) / av.su, c.v[w] + rk * std::sin(th) / av.sv, double(w));
      apLo = std::min(apLo, q[AP]);
      apHi = std::max(apHi, q[AP]);
    }
    res.contour.push_back({ used.back()[2], apHi - apLo });
    const long u0 = std::max(0L, long(std::floor(c.u[w] - rMax / av.su))),
               u1 = std::min(long(av.nu) - 1, long(std::ceil(c.u[w] + rMax / av.su)));
    const long v0 = std::max(0L, long(std::floor(c.v[w] - rMax / av.sv))),
               v1 = std::min(long(av.nv) - 1, long(std::ceil(c.v[w] + rMax / av.sv)));
    for (long v = v0; v <= v1; ++v)
      for (long u = u0; u <= u1; ++u)
      {
        const double dx = (double(u) - c.u[w]) * av.su, dy = (double(v) - c.v[w]) * av.sv;
        const double r = std::hypot(dx, dy);
        double th = std::atan2(dy, dx);
        if (th < 0)
          th += 2 * M_PI;
        const double f = th / (2 * M_PI) * nRays;
        const auto k0 = std::size_t(std::floor(f)) % nRays, k1 = (k0 + 1) % nRays;
        const double t = f - std::floor(f);
        if (r <= (1 - t) * R[k0] + t * R[k1])
          mb[av.Offset(std::size_t(u), std::size_t(v), w)] = 1;
      }
  }
  if (used.empty())
    ThrowProcessing("cord contour failed on every slice");
  std::sort(used.begin(), used.end(), [](const auto & a, const auto & b) { return a[2] < b[2]; });
  std::sort(res.contour.begin(), res.contour.end(), [](const auto & a, const auto & b) { return a.z < b.z; });
  res.centerline = used;
  res.centerlineMask = CenterlineToMask(res.centerline, image);
  return res;
}

std::vector<PointType>
CenterlineFromMask(const MaskImage * mask)
{
  if (!mask)
    ThrowInternal("CenterlineFromMask: null mask");
  const AxialView av(mask);
  const auto * b = mask->GetBufferPointer();
  SliceCenters c;
  c.u.assign(av.nw, 0);
  c.v.assign(av.nw, 0);
  c.valid.assign(av.nw, false);
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    double su = 0, sv = 0, n = 0;
    for (std::size_t v = 0; v < av.nv; ++v)
      for (std::size_t u = 0; u < av.nu; ++u)
        if (b[av.Offset(u, v, w)])
        {
          su += double(u);
          sv += double(v);
          n += 1;
        }
    if (n > 0)
    {
      c.u[w] = su / n;
      c.v[w] = sv / n;
      c.valid[w] = true;
    }
  }
  return CentersToPoints(c, av);
}

MaskImage::Pointer
CenterlineToMask(const std::vector<PointType> & points, const itk::ImageBase<3> * reference)
{
  auto m = NewMask(reference);
  const Grid g = GridOf(reference);
  auto * b = m->GetBufferPointer();
  for (const auto & p : points)
  {
    const double x[3] = { p[0], p[1], p[2] };
    double idx[3];
    g.ToIndex(x, idx);
    long c[3];
    bool inside = true;
    for (int d = 0; d < 3; ++d)
    {
      c[d] = std::lround(idx[d]);
      inside = inside && c[d] >= 0 && c[d] < long(g.n[d]);
    }
    if (inside)
      b[g.Offset(std::size_t(c[0]), std::size_t(c[1]), std::size_t(c[2]))] = 1;
  }
  return m;
}

void
WriteCenterlineJson(const std::vector<PointType> & points, const std::filesystem::path & path, bool force)
{
  nlohmann::json j;
  j["coordinate_system"] = "LPS";
  j["units"] = "mm";
  j["points"] = nlohmann::json::array();
  for (const auto & p : points)
    j["points"].push_back({ p[0], p[1], p[2] });
  WriteTextFile(path, j.dump(2) + "\n", force);
}

std::vector<PointType>
ReadCenterline(const std::filesystem::path & path)
{
  const std::string ext = SplitExtension(path).second;
  if (ext == ".json")
  {
    nlohmann::json j;
    try
    {
      j = nlohmann::json::parse(ReadFile(path));
    }
    catch (const nlohmann::json::exception & e)
    {
      ThrowInput("centerline " + path.string() + ": " + e.what());
    }
    const nlohmann::json & pts = j.is_object() ? j.value("points", nlohmann::json::array()) : j;
    if (j.is_object() && j.value("coordinate_system", "LPS") != "LPS")
      ThrowInput("centerline " + path.string() + ": only LPS coordinates are supported");
    std::vector<PointType> out;
    for (const auto & p : pts)
    {
      if (!p.is_array() || p.size() != 3)
        ThrowInput("centerline " + path.string() + ": points must be [x, y, z]");
      PointType q;
      for (unsigned d = 0; d < 3; ++d)
        q[d] = p[d].get<double>();
      out.push_back(q);
    }
    if (out.empty())
      ThrowInput("centerline " + path.string() + ": no points");
    return out;
  }
  const auto mask = io::ReadMask(path);
  auto pts = CenterlineFromMask(mask);
  if (pts.empty())
    ThrowInput("centerline image " + path.string() + " is empty");
  return pts;
}
} // namespace gw::segmentation
