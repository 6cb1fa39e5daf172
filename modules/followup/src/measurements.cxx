// Robust statistics and partial-volume measurements shared by the follow-up steps.
#include "measurements.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>

#include "gw/segmentation/anatomy.h"

namespace gw::followup::detail
{
double
Percentile(std::vector<float> & values, double q)
{
  if (values.empty())
    return std::numeric_limits<double>::quiet_NaN();
  const std::size_t k =
    std::min(values.size() - 1, static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * double(values.size() - 1) + 0.5));
  std::nth_element(values.begin(), values.begin() + k, values.end());
  return values[k];
}

double
Median(std::vector<float> & values)
{
  if (values.empty())
    return std::numeric_limits<double>::quiet_NaN();
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

double
InterquartileMean(std::vector<float> & values)
{
  if (values.empty())
    return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  const std::size_t lo = static_cast<std::size_t>(0.25 * double(n - 1) + 0.5);
  const std::size_t hi = static_cast<std::size_t>(0.75 * double(n - 1) + 0.5);
  double sum = 0.0;
  for (std::size_t i = lo; i <= hi; ++i)
    sum += values[i];
  return sum / double(hi - lo + 1);
}

std::pair<double, double>
MedianAndSigma(std::vector<float> & values)
{
  const double med = Median(values);
  for (float & x : values)
    x = std::abs(x - float(med));
  return { med, 1.4826 * Median(values) };
}

namespace
{
/// Linear index <-> voxel coordinates and the 26-neighbourhood of a grid.
struct Grid
{
  long nx, ny, nz;
  explicit Grid(const itk::ImageBase<3> * image)
  {
    const auto size = image->GetLargestPossibleRegion().GetSize();
    nx = long(size[0]);
    ny = long(size[1]);
    nz = long(size[2]);
  }
  std::array<long, 3> Coords(std::size_t v) const
  {
    return { long(v % std::size_t(nx)), long((v / std::size_t(nx)) % std::size_t(ny)), long(v / std::size_t(nx * ny)) };
  }
  /// visit(u, inside) for the 26 neighbours; inside = false for positions off the grid (u is then meaningless)
  template <typename Visit>
  void Neighbours(std::size_t v, Visit && visit) const
  {
    const auto c = Coords(v);
    for (long dz = -1; dz <= 1; ++dz)
      for (long dy = -1; dy <= 1; ++dy)
        for (long dx = -1; dx <= 1; ++dx)
        {
          if (!dx && !dy && !dz)
            continue;
          const long a = c[0] + dx, b = c[1] + dy, e = c[2] + dz;
          const bool on = a >= 0 && b >= 0 && e >= 0 && a < nx && b < ny && e < nz;
          visit(on ? std::size_t((e * ny + b) * nx + a) : std::size_t(0), on);
        }
  }
  /// visit(u, inside) for the 6 face neighbours
  template <typename Visit>
  void Faces(std::size_t v, Visit && visit) const
  {
    const auto c = Coords(v);
    static constexpr long offsets[6][3] = { { -1, 0, 0 }, { 1, 0, 0 },  { 0, -1, 0 },
                                            { 0, 1, 0 },  { 0, 0, -1 }, { 0, 0, 1 } };
    for (const auto & o : offsets)
    {
      const long a = c[0] + o[0], b = c[1] + o[1], e = c[2] + o[2];
      const bool on = a >= 0 && b >= 0 && e >= 0 && a < nx && b < ny && e < nz;
      visit(on ? std::size_t((e * ny + b) * nx + a) : std::size_t(0), on);
    }
  }
};

std::map<int, std::vector<std::size_t>>
Members(const LabelImage * labels)
{
  std::map<int, std::vector<std::size_t>> members;
  const auto * lab = labels->GetBufferPointer();
  const std::size_t n = labels->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t v = 0; v < n; ++v)
    if (lab[v])
      members[lab[v]].push_back(v);
  return members;
}
} // namespace

std::map<int, double>
PartialVolumes(const FloatImage * image, const LabelImage * labels, const MaskImage * tissue,
               const std::function<double(int label)> & insideLevel, double outsideLevel, std::size_t nearest)
{
  nearest = std::max<std::size_t>(1, nearest);
  std::map<int, double> out;
  const Grid g(image);
  const auto sp = image->GetSpacing();
  const float * img = image->GetBufferPointer();
  const auto * lab = labels->GetBufferPointer();
  const auto * tis = tissue->GetBufferPointer();
  for (const auto & [label, vox] : Members(labels))
  {
    const double inside = insideLevel(label);
    std::set<std::size_t> layer1, seen;
    for (std::size_t v : vox)
      g.Neighbours(v,
                   [&](std::size_t u, bool on)
                   {
                     if (on && lab[u] != label && tis[u])
                       layer1.insert(u);
                   });
    std::vector<std::size_t> shell;
    for (std::size_t v : layer1)
      g.Neighbours(v,
                   [&](std::size_t u, bool on)
                   {
                     if (on && lab[u] != label && !layer1.count(u) && tis[u] && seen.insert(u).second)
                       shell.push_back(u);
                   });
    auto mm = [&](std::size_t v)
    {
      const auto c = g.Coords(v);
      return std::array<double, 3>{ c[0] * sp[0], c[1] * sp[1], c[2] * sp[2] };
    };
    std::vector<std::array<double, 3>> shellPos;
    for (std::size_t u : shell)
      shellPos.push_back(mm(u));
    auto fraction = [&](std::size_t v)
    {
      double b = outsideLevel;
      if (shell.size() >= nearest)
      {
        const auto p = mm(v);
        std::vector<std::pair<double, float>> near;
        for (std::size_t k = 0; k < shell.size(); ++k)
        {
          const double dx = shellPos[k][0] - p[0], dy = shellPos[k][1] - p[1], dz = shellPos[k][2] - p[2];
          near.emplace_back(dx * dx + dy * dy + dz * dz, img[shell[k]]);
        }
        std::partial_sort(near.begin(), near.begin() + std::ptrdiff_t(nearest), near.end(),
                          [](const auto & x, const auto & y) { return x.first < y.first; });
        std::vector<float> values;
        for (std::size_t k = 0; k < nearest; ++k)
          values.push_back(near[std::size_t(k)].second);
        b = Median(values);
      }
      return inside > b ? std::clamp((double(img[v]) - b) / (inside - b), 0.0, 1.0) : (lab[v] == label ? 1.0 : 0.0);
    };
    double volume = 0.0;
    for (std::size_t v : vox)
      volume += fraction(v);
    for (std::size_t v : layer1)
      volume += fraction(v);
    out[label] = volume * sp[0] * sp[1] * sp[2];
  }
  return out;
}

std::map<int, double>
IsoSurfaceVolumes(const FloatImage * image, const LabelImage * labels, const MaskImage * tissue,
                  const std::function<double(int label)> & threshold, int subsamples)
{
  std::map<int, double> out;
  const Grid g(image);
  const auto sp = image->GetSpacing();
  const float * img = image->GetBufferPointer();
  const auto * lab = labels->GetBufferPointer();
  const auto * tis = tissue->GetBufferPointer();
  const int k = std::max(1, subsamples);
  // trilinear interpolation in index space, clamped to the grid
  auto at = [&](long x, long y, long z)
  {
    x = std::clamp(x, 0L, g.nx - 1);
    y = std::clamp(y, 0L, g.ny - 1);
    z = std::clamp(z, 0L, g.nz - 1);
    return double(img[std::size_t((z * g.ny + y) * g.nx + x)]);
  };
  auto interpolate = [&](double x, double y, double z)
  {
    const long x0 = long(std::floor(x)), y0 = long(std::floor(y)), z0 = long(std::floor(z));
    const double fx = x - double(x0), fy = y - double(y0), fz = z - double(z0);
    double v = 0.0;
    for (int c = 0; c < 8; ++c)
    {
      const int dx = c & 1, dy = (c >> 1) & 1, dz = (c >> 2) & 1;
      v += (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz) * at(x0 + dx, y0 + dy, z0 + dz);
    }
    return v;
  };
  for (const auto & [label, vox] : Members(labels))
  {
    // the component, then two layers out (inside the tissue, in no other component)
    std::set<std::size_t> region(vox.begin(), vox.end());
    std::vector<std::size_t> front(vox);
    for (int layer = 0; layer < 2; ++layer)
    {
      std::vector<std::size_t> next;
      for (std::size_t v : front)
        g.Neighbours(v,
                     [&](std::size_t u, bool on)
                     {
                       if (on && !lab[u] && tis[u] && region.insert(u).second)
                         next.push_back(u);
                     });
      front = next;
    }
    const double level = threshold(label);
    std::size_t count = 0;
    for (std::size_t v : region)
    {
      const auto c = g.Coords(v);
      for (int a = 0; a < k; ++a)
        for (int bb = 0; bb < k; ++bb)
          for (int e = 0; e < k; ++e)
            if (interpolate(double(c[0]) - 0.5 + (a + 0.5) / k, double(c[1]) - 0.5 + (bb + 0.5) / k,
                            double(c[2]) - 0.5 + (e + 0.5) / k) >= level)
              ++count;
    }
    out[label] = double(count) / double(k * k * k) * sp[0] * sp[1] * sp[2];
  }
  return out;
}

std::map<int, double>
InteriorLevels(const FloatImage * image, const LabelImage * labels, std::size_t minInterior)
{
  std::map<int, double> out;
  const Grid g(image);
  const float * img = image->GetBufferPointer();
  const auto * lab = labels->GetBufferPointer();
  for (const auto & [label, vox] : Members(labels))
  {
    std::vector<float> all, interior;
    for (std::size_t v : vox)
    {
      all.push_back(img[v]);
      bool inner = true;
      g.Faces(v, [&](std::size_t u, bool on) { inner = inner && on && lab[u] == label; });
      if (inner)
        interior.push_back(img[v]);
    }
    out[label] = interior.size() >= minInterior ? InterquartileMean(interior) : Percentile(all, 0.95);
  }
  return out;
}
FloatImage::Pointer
CoveredFraction(const MaskImage * mask, const itk::ImageBase<3> * reference, const MaskImage * where, int subsamples)
{
  auto out = FloatImage::New();
  out->CopyInformation(reference);
  out->SetRegions(reference->GetLargestPossibleRegion());
  out->Allocate(true);
  const Grid g(reference);
  const int k = std::max(1, subsamples);
  const auto * w = where->GetBufferPointer();
  float * f = out->GetBufferPointer();
  const auto start = reference->GetLargestPossibleRegion().GetIndex();
  const std::size_t n = reference->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t v = 0; v < n; ++v)
  {
    if (!w[v])
      continue;
    const auto c = g.Coords(v);
    std::size_t inside = 0;
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b)
        for (int e = 0; e < k; ++e)
        {
          itk::ContinuousIndex<double, 3> ci;
          ci[0] = double(start[0] + c[0]) - 0.5 + (a + 0.5) / k;
          ci[1] = double(start[1] + c[1]) - 0.5 + (b + 0.5) / k;
          ci[2] = double(start[2] + c[2]) - 0.5 + (e + 0.5) / k;
          PointType p;
          reference->TransformContinuousIndexToPhysicalPoint(ci, p);
          itk::Index<3> mi;
          if (mask->TransformPhysicalPointToIndex(p, mi) && mask->GetPixel(mi))
            ++inside;
        }
    f[v] = float(double(inside) / double(k * k * k));
  }
  return out;
}

FloatImage::Pointer
CorrectBorderFa(const dti::ScalarMaps & maps, const MaskImage * cordMask, const MaskImage * roi,
                BorderFaCorrection * info, const MaskImage * edemaMask)
{
  const FloatImage * fa = maps.fa;
  const FloatImage * md = maps.md;
  auto out = FloatImage::New();
  out->CopyInformation(fa);
  out->SetRegions(fa->GetLargestPossibleRegion());
  out->Allocate();
  const std::size_t n = fa->GetLargestPossibleRegion().GetNumberOfPixels();
  std::copy(fa->GetBufferPointer(), fa->GetBufferPointer() + n, out->GetBufferPointer());
  BorderFaCorrection result;
  const auto fraction = CoveredFraction(cordMask, fa, roi);
  const auto edemaFraction = edemaMask ? CoveredFraction(edemaMask, fa, roi) : nullptr;
  const float * fr = fraction->GetBufferPointer();
  const float * ef = edemaFraction ? edemaFraction->GetBufferPointer() : nullptr;
  const float * m = md->GetBufferPointer();
  const auto * r = roi->GetBufferPointer();
  std::vector<char> candidate(n, 0);
  std::vector<float> interior;
  for (std::size_t v = 0; v < n; ++v)
  {
    if (!r[v])
      continue;
    if (ef && ef[v] > 0.0f)
    {
      ++result.edema;
      candidate[v] = 1;
    }
    else if (fr[v] >= 1.0f && m[v] > 0.0f)
      interior.push_back(m[v]);
    else
    {
      ++result.border;
      candidate[v] = 1;
    }
  }
  result.interior = interior.size();
  if (interior.size() >= 10)
  {
    const double ref = Median(interior);
    result.referenceMd = ref;
    float * f = out->GetBufferPointer();
    for (std::size_t v = 0; v < n; ++v)
      if (candidate[v] && double(m[v]) > ref)
      {
        const double a = std::min(double(f[v]), 1.0), d = double(m[v]);
        const double dev2 = 3.0 * d * d * a * a / (1.5 - a * a);
        f[v] = float(std::sqrt(1.5 * dev2 / (dev2 + 3.0 * ref * ref)));
        ++result.corrected;
      }
  }
  if (info)
    *info = result;
  return out;
}
MaskImage::Pointer
EnhancingAnywhere(const segmentation::EnhancementResult & e)
{
  return segmentation::HysteresisMask(e.zMap, e.seedThreshold, e.growThreshold, kEarlierEnhancementMinVoxels);
}
} // namespace gw::followup::detail
