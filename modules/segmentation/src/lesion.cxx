// Lesion, syrinx, enhancement and edema: robust statistics of normal tissue, hysteresis, components.
#include <algorithm>
#include <cmath>
#include <map>

#include "gw/core/error.h"
#include "gw/segmentation/lesion.h"
#include "internal.h"

namespace gw::segmentation
{
using namespace detail;

namespace
{
std::vector<std::uint8_t>
TissueOnGrid(const MaskImage * tissue, const FloatImage * image, double erosion, const char * what)
{
  if (!tissue)
    ThrowUsage(std::string(what) + ": a tissue mask is required");
  MaskImage::Pointer m = ResampleMaskNearest(tissue, image);
  if (erosion > 0)
    m = ErodeMm(m, erosion);
  const auto * b = m->GetBufferPointer();
  std::vector<std::uint8_t> out(b, b + GridOf(image).Count());
  if (std::none_of(out.begin(), out.end(), [](std::uint8_t v) { return v != 0; }))
    ThrowInput(std::string(what) + ": the tissue mask is empty on the image grid");
  return out;
}

RobustStats
StatsIn(const float * img, const std::vector<std::uint8_t> & m)
{
  std::vector<float> v;
  for (std::size_t i = 0; i < m.size(); ++i)
    if (m[i])
      v.push_back(img[i]);
  RobustStats s = Robust(v);
  if (s.sigma <= 0)
    s.sigma = std::max(1e-6, 1e-3 * std::abs(s.median));
  return s;
}

void
Finish(LesionResult & r, const std::vector<std::uint8_t> & mask, const itk::ImageBase<3> * ref, std::size_t minVoxels,
       double minVolume)
{
  const Grid g = GridOf(ref);
  r.labels = NewLabels(ref);
  r.mask = NewMask(ref);
  KeepComponents(mask, g, minVoxels, minVolume, r.labels, r.mask);
  r.components = DescribeLabels(r.labels);
}

/// Offset of the voxel nearest to a physical point, or npos when outside.
std::size_t
VoxelAt(const Grid & g, const PointType & p)
{
  const double x[3] = { p[0], p[1], p[2] };
  double idx[3];
  g.ToIndex(x, idx);
  long c[3];
  for (int d = 0; d < 3; ++d)
  {
    c[d] = std::lround(idx[d]);
    if (c[d] < 0 || c[d] >= long(g.n[d]))
      return std::size_t(-1);
  }
  return g.Offset(std::size_t(c[0]), std::size_t(c[1]), std::size_t(c[2]));
}
/// Clears from `mask` every voxel within `marginMm` of a voxel of `near` (nothing when `near` is empty).
void
ExcludeNear(std::vector<std::uint8_t> & mask, const std::vector<std::uint8_t> & near, const Grid & g, double marginMm)
{
  if (std::none_of(near.begin(), near.end(), [](std::uint8_t v) { return v != 0; }))
    return;
  const auto d = Distance(near.data(), g);
  for (std::size_t i = 0; i < mask.size(); ++i)
    if (d[i] <= marginMm)
      mask[i] = 0;
}
} // namespace

LesionResult
SegmentLesions(const FloatImage * image, const MaskImage * tissue, const LesionParams & p)
{
  if (!image)
    ThrowInternal("SegmentLesions: null image");
  const Grid g = GridOf(image);
  const float * img = image->GetBufferPointer();
  const auto t = TissueOnGrid(tissue, image, p.tissueErosion, "lesion");
  LesionResult r;
  const RobustStats s = StatsIn(img, t);
  r.tissueMedian = s.median;
  r.tissueSigma = s.sigma;
  const double dir = p.hypointense ? -1.0 : 1.0;
  r.seedThreshold = s.median + dir * p.kSeed * s.sigma;
  r.growThreshold = s.median + dir * p.kGrow * s.sigma;
  std::vector<std::uint8_t> seed(t.size(), 0), grow(t.size(), 0);
  for (std::size_t i = 0; i < t.size(); ++i)
  {
    if (!t[i])
      continue;
    const double z = dir * (img[i] - s.median) / s.sigma;
    seed[i] = z > p.kSeed;
    grow[i] = z > p.kGrow;
  }
  std::size_t seedVoxel = std::size_t(-1);
  if (p.seed)
  {
    seedVoxel = VoxelAt(g, *p.seed);
    if (seedVoxel == std::size_t(-1))
      ThrowInput("lesion seed point lies outside the image");
    std::fill(seed.begin(), seed.end(), 0);
    seed[seedVoxel] = 1;
    grow[seedVoxel] = 1;
  }
  auto mask = Hysteresis(seed, grow, g);
  if (p.halfMaxFraction > 0)
  {
    std::vector<std::size_t> sizes;
    const auto lab = Components(mask.data(), g, sizes);
    std::vector<std::vector<float>> vals(sizes.size());
    for (std::size_t i = 0; i < lab.size(); ++i)
      if (lab[i])
        vals[lab[i]].push_back(float(dir * img[i]));
    std::vector<double> thr(sizes.size(), 0);
    for (std::size_t l = 1; l < sizes.size(); ++l)
    {
      const double peak = Percentile(vals[l], 0.95);
      thr[l] = dir * s.median + p.halfMaxFraction * (peak - dir * s.median);
    }
    for (std::size_t i = 0; i < lab.size(); ++i)
      grow[i] = (lab[i] && dir * img[i] >= thr[lab[i]]) || i == seedVoxel;
    for (std::size_t i = 0; i < lab.size(); ++i)
      seed[i] = seed[i] && grow[i];
    mask = Hysteresis(seed, grow, g);
  }
  if (p.regularize)
    Regularize(mask, g, t);
  if (p.tissueErosion > 0 && p.borderGrowth)
  {
    // The eroded rim (partial volume with CSF) may hold the edge of a lesion: add rim voxels above the growth
    // threshold that touch the lesion (26-neighbourhood), one layer per eroded voxel.
    const auto full = TissueOnGrid(tissue, image, 0.0, "lesion");
    const double minSpacing = std::min({ g.spacing[0], g.spacing[1], g.spacing[2] });
    const int layers = std::max(1, int(std::ceil(p.tissueErosion / minSpacing)));
    const long nx = long(g.n[0]), ny = long(g.n[1]), nz = long(g.n[2]);
    for (int layer = 0; layer < layers; ++layer)
    {
      std::vector<std::uint8_t> add(mask.size(), 0);
      for (long z = 0; z < nz; ++z)
        for (long y = 0; y < ny; ++y)
          for (long x = 0; x < nx; ++x)
          {
            const auto i = std::size_t(x + nx * (y + ny * z));
            if (mask[i] || !full[i] || dir * (img[i] - s.median) / s.sigma <= p.kGrow)
              continue;
            bool touch = false;
            for (long c = -1; c <= 1 && !touch; ++c)
              for (long b = -1; b <= 1 && !touch; ++b)
                for (long a = -1; a <= 1 && !touch; ++a)
                {
                  const long xa = x + a, yb = y + b, zc = z + c;
                  if (xa >= 0 && yb >= 0 && zc >= 0 && xa < nx && yb < ny && zc < nz)
                    touch = mask[std::size_t(xa + nx * (yb + ny * zc))] != 0;
                }
            add[i] = touch;
          }
      for (std::size_t i = 0; i < mask.size(); ++i)
        mask[i] = mask[i] || add[i];
    }
  }
  Finish(r, mask, image, p.minVoxels, p.minVolume);
  return r;
}

LesionResult
SegmentSyrinx(const FloatImage * t2, const FloatImage * t1, const MaskImage * cord, const MaskImage * exclude,
              const SyrinxParams & p)
{
  return SegmentSyrinx(t2, t1, nullptr, cord, exclude, p);
}

LesionResult
SegmentSyrinx(const FloatImage * t2, const FloatImage * t1, const FloatImage * flair, const MaskImage * cord,
              const MaskImage * exclude, const SyrinxParams & p)
{
  if (!t2)
    ThrowInternal("SegmentSyrinx: null image");
  const AxialView av(t2);
  const Grid & g = av.grid;
  const float * img = t2->GetBufferPointer();
  const auto cordFull = TissueOnGrid(cord, t2, 0.0, "syrinx");
  const auto inside = p.cordErosion > 0 ? TissueOnGrid(cord, t2, p.cordErosion, "syrinx") : cordFull;
  std::vector<std::uint8_t> excl;
  if (exclude)
    excl = MaskOnGrid(exclude, t2);
  // CSF level in a shell around the cord
  std::vector<std::uint8_t> shell(cordFull.size(), 0);
  {
    const auto d = Distance(cordFull.data(), g);
    for (std::size_t i = 0; i < d.size(); ++i)
      shell[i] = !cordFull[i] && d[i] <= p.csfShell;
  }
  LesionResult r;
  const RobustStats s = StatsIn(img, cordFull);
  std::vector<float> sv;
  for (std::size_t i = 0; i < shell.size(); ++i)
    if (shell[i])
      sv.push_back(img[i]);
  const double csf = Percentile(sv, 0.8);
  if (csf <= s.median)
    ThrowProcessing("syrinx: CSF around the cord is not brighter than the cord (is this a T2 image?)");
  r.tissueMedian = s.median;
  r.tissueSigma = s.sigma;
  r.growThreshold = s.median + p.csfFraction * (csf - s.median);
  r.seedThreshold = std::max(r.growThreshold, s.median + p.kSeed * s.sigma);
  std::vector<std::uint8_t> t1ok;
  if (t1)
  {
    if (!SameGrid(t1, t2, 1e-3))
      ThrowInput("syrinx: the T1 image must be on the T2 grid (register/resample first)");
    const float * b1 = t1->GetBufferPointer();
    const RobustStats s1 = StatsIn(b1, cordFull);
    std::vector<float> v1;
    for (std::size_t i = 0; i < shell.size(); ++i)
      if (shell[i])
        v1.push_back(b1[i]);
    const double csf1 = Percentile(v1, 0.2);
    const double thr1 = s1.median + 0.5 * (csf1 - s1.median);
    t1ok.resize(shell.size());
    for (std::size_t i = 0; i < shell.size(); ++i)
      t1ok[i] = b1[i] < thr1;
  }
  double flairLevel = 0.0; // components with a median FLAIR below this are CSF-suppressed
  if (flair)
  {
    if (!SameGrid(flair, t2, 1e-3))
      ThrowInput("syrinx: the FLAIR image must be on the T2 grid (register/resample first)");
    const float * bf = flair->GetBufferPointer();
    const RobustStats sf = StatsIn(bf, cordFull);
    std::vector<float> vf;
    for (std::size_t i = 0; i < shell.size(); ++i)
      if (shell[i])
        vf.push_back(bf[i]);
    const double csfF = Percentile(vf, 0.2);
    if (!(csfF < sf.median))
      flair = nullptr; // CSF not suppressed: not a usable FLAIR
    else
      flairLevel = sf.median + p.flairDarkFraction * (csfF - sf.median);
  }
  std::vector<std::uint8_t> seed(inside.size(), 0), grow(inside.size(), 0);
  for (std::size_t i = 0; i < inside.size(); ++i)
  {
    if (!inside[i] || (!excl.empty() && excl[i]) || (!t1ok.empty() && !t1ok[i]))
      continue;
    grow[i] = img[i] > r.growThreshold;
    seed[i] = img[i] > r.seedThreshold;
  }
  auto mask = Hysteresis(seed, grow, g);
  // fill holes and closing only inside the allowed region
  std::vector<std::uint8_t> allowed = inside;
  if (!excl.empty())
    for (std::size_t i = 0; i < allowed.size(); ++i)
      allowed[i] = allowed[i] && !excl[i];
  Regularize(mask, g, allowed);
  // elongation filter: craniocaudal length / max axial equivalent diameter
  std::vector<std::size_t> sizes;
  const auto lab = Components(mask.data(), g, sizes);
  std::vector<std::map<std::size_t, std::size_t>> perSlice(sizes.size());
  std::vector<std::vector<float>> values(sizes.size()), flairValues(sizes.size());
  for (std::size_t i = 0; i < lab.size(); ++i)
    if (lab[i])
    {
      values[lab[i]].push_back(img[i]);
      if (flair)
        flairValues[lab[i]].push_back(flair->GetBufferPointer()[i]);
    }
  for (std::size_t w = 0; w < av.nw; ++w)
    for (std::size_t v = 0; v < av.nv; ++v)
      for (std::size_t u = 0; u < av.nu; ++u)
      {
        const auto o = av.Offset(u, v, w);
        if (lab[o])
          ++perSlice[lab[o]][w];
      }
  std::vector<std::uint8_t> keep(sizes.size(), 0);
  for (std::size_t l = 1; l < sizes.size(); ++l)
  {
    std::size_t maxArea = 0;
    for (const auto & kv : perSlice[l])
      maxArea = std::max(maxArea, kv.second);
    const double length = double(perSlice[l].rbegin()->first - perSlice[l].begin()->first + 1) * av.sw;
    const double diam = 2.0 * std::sqrt(double(maxArea) * av.axes.AxialPixelArea() / M_PI);
    // CSF-like: the component's median intensity is near the CSF level (a lesion is brighter than the cord
    // but clearly darker than CSF on T2), and the cavity is elongated along the cord.
    const double csfLike = s.median + p.csfLikeFraction * (csf - s.median);
    if (flair)
      keep[l] = length >= p.minElongation * diam && Percentile(values[l], p.corePercentile) >= csfLike &&
                Percentile(flairValues[l], 0.5) < flairLevel;
    else
      keep[l] = length >= p.minElongation * diam && Percentile(values[l], 0.5) >= csfLike;
  }
  for (std::size_t i = 0; i < mask.size(); ++i)
    mask[i] = lab[i] && keep[lab[i]];
  Finish(r, mask, t2, p.minVoxels, p.minVolume);
  return r;
}

EnhancementResult
SegmentEnhancement(const FloatImage * pre, const FloatImage * post, const MaskImage * tissue,
                   const EnhancementParams & p)
{
  if (!pre || !post)
    ThrowInternal("SegmentEnhancement: null image");
  if (!SameGrid(pre, post, 1e-3))
    ThrowInput("enhancement: T1 pre and post must be on the same grid (register first)");
  const Grid g = GridOf(pre);
  const float * a = pre->GetBufferPointer();
  const float * b = post->GetBufferPointer();
  std::vector<std::uint8_t> t;
  if (tissue)
    t = TissueOnGrid(tissue, pre, 0.0, "enhancement");
  else
  {
    std::vector<float> v(a, a + g.Count());
    const double thr = 0.1 * Percentile(v, 0.99);
    t.resize(g.Count());
    for (std::size_t i = 0; i < t.size(); ++i)
      t[i] = a[i] > thr;
  }
  // No data: a voxel where either image is exactly zero (outside what a resampled series covered, a zero-filled
  // wedge or slab end) and its neighbours within noDataMarginMm (interpolation spreads the edge) tell nothing of
  // enhancement; a post-contrast series aligned from another position covers tissue the pre-contrast one does not,
  // and against pre's zeros its signal reads as enhancement.
  {
    std::vector<std::uint8_t> none(g.Count(), 0);
    for (std::size_t i = 0; i < none.size(); ++i)
      none[i] = t[i] && (a[i] == 0.0f || b[i] == 0.0f);
    ExcludeNear(t, none, g, p.noDataMarginMm);
  }
  // Fat reaching in from outside the search region (a brain mask on thick slices takes orbit and scalp): bright
  // before contrast, its edges shift between the two series by a fraction of a voxel (and the fat itself by its
  // chemical shift), and the enhancing muscle, dura and vessels beside it move in and out of the region between
  // sessions. Fat connected to the outside and its margin are not searched; a T1-bright focus wholly inside the
  // region (haemorrhage, a graft's fat) is.
  if (p.outsideFatRatio > 0)
  {
    const double level = p.outsideFatRatio * StatsIn(a, t).median;
    std::vector<std::uint8_t> fat(g.Count(), 0);
    for (std::size_t i = 0; i < fat.size(); ++i)
      fat[i] = a[i] > level;
    std::vector<std::size_t> sizes;
    const auto lab = Components(fat.data(), g, sizes);
    std::vector<std::uint8_t> outside(sizes.size(), 0);
    for (std::size_t i = 0; i < lab.size(); ++i)
      if (lab[i] && !t[i])
        outside[lab[i]] = 1;
    for (std::size_t i = 0; i < fat.size(); ++i)
      fat[i] = lab[i] && outside[lab[i]];
    ExcludeNear(t, fat, g, p.fatMarginMm);
  }
  double ratio = 1.0;
  if (p.matchIntensity)
  {
    const RobustStats sa = StatsIn(a, t), sb = StatsIn(b, t);
    if (sb.median > 0 && sa.median > 0)
      ratio = sa.median / sb.median;
  }
  std::vector<float> diff(g.Count(), 0.0f);
  for (std::size_t i = 0; i < diff.size(); ++i)
    diff[i] = float(ratio * b[i] - a[i]);
  EnhancementResult r;
  {
    std::vector<float> dv;
    for (std::size_t i = 0; i < t.size(); ++i)
      if (t[i])
        dv.push_back(diff[i]);
    const RobustStats s = Robust(dv);
    r.tissueMedian = s.median;
    r.tissueSigma = s.sigma > 0 ? s.sigma : 1e-6;
  }
  r.zMap = NewFloat(pre);
  float * z = r.zMap->GetBufferPointer();
  std::vector<std::uint8_t> seed(t.size(), 0), grow(t.size(), 0);
  for (std::size_t i = 0; i < t.size(); ++i)
  {
    z[i] = float((diff[i] - r.tissueMedian) / r.tissueSigma);
    if (!t[i])
      continue;
    seed[i] = z[i] > p.kSeed;
    grow[i] = z[i] > p.kGrow;
  }
  r.seedThreshold = p.kSeed;
  r.growThreshold = p.kGrow;
  // a cluster above the grow level as large as a nodule a few millimetres across enhances without a seed voxel: thick
  // slices and resampling spread its contrast over its neighbours, below the seed level
  const double voxel = g.spacing[0] * g.spacing[1] * g.spacing[2];
  const std::size_t extentVoxels = p.extentMm3 > 0 ? std::size_t(std::ceil(p.extentMm3 / voxel - 1e-9)) : 0;
  const auto mask = Hysteresis(seed, grow, g, extentVoxels);
  Finish(r, mask, pre, p.minVoxels, p.minVolume);
  return r;
}

LesionResult
SegmentEdema(const FloatImage * image, const MaskImage * tissue, const MaskImage * lesion, const EdemaParams & p)
{
  if (!image)
    ThrowInternal("SegmentEdema: null image");
  if (!lesion)
    ThrowUsage("edema: a lesion or graft mask is required");
  const Grid g = GridOf(image);
  const float * img = image->GetBufferPointer();
  const auto les = MaskOnGrid(lesion, image);
  if (std::none_of(les.begin(), les.end(), [](std::uint8_t v) { return v != 0; }))
    ThrowInput("edema: the lesion/graft mask is empty on the image grid");
  std::vector<std::uint8_t> t = tissue ? MaskOnGrid(tissue, image) : std::vector<std::uint8_t>(g.Count(), 1);
  const auto d = Distance(les.data(), g);
  std::vector<std::uint8_t> band(t.size(), 0), normal(t.size(), 0);
  std::size_t nNormal = 0;
  for (std::size_t i = 0; i < t.size(); ++i)
  {
    band[i] = t[i] && !les[i] && d[i] <= p.distance;
    normal[i] = t[i] && d[i] > p.distance;
    nNormal += normal[i];
  }
  if (nNormal < 50)
    for (std::size_t i = 0; i < t.size(); ++i)
      normal[i] = t[i] && !les[i];
  LesionResult r;
  const RobustStats s = StatsIn(img, normal);
  r.tissueMedian = s.median;
  r.tissueSigma = s.sigma;
  r.seedThreshold = s.median + p.kSeed * s.sigma;
  r.growThreshold = s.median + p.kGrow * s.sigma;
  std::vector<std::uint8_t> seed(t.size(), 0), grow(t.size(), 0);
  const double touch = 1.5 * std::max({ g.spacing[0], g.spacing[1], g.spacing[2] });
  for (std::size_t i = 0; i < t.size(); ++i)
  {
    if (!band[i])
      continue;
    grow[i] = img[i] > r.growThreshold;
    seed[i] = img[i] > r.seedThreshold;
  }
  auto mask = Hysteresis(seed, grow, g);
  Regularize(mask, g, band);
  // keep components touching the lesion
  std::vector<std::size_t> sizes;
  const auto lab = Components(mask.data(), g, sizes);
  std::vector<std::uint8_t> touching(sizes.size(), 0);
  for (std::size_t i = 0; i < lab.size(); ++i)
    if (lab[i] && d[i] <= touch)
      touching[lab[i]] = 1;
  for (std::size_t i = 0; i < mask.size(); ++i)
    mask[i] = lab[i] && touching[lab[i]];
  Finish(r, mask, image, p.minVoxels, p.minVolume);
  return r;
}
} // namespace gw::segmentation
