// Anatomical axes, grids, resampling, components, distance maps, morphology (buffer-level, few templates).
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

#include "gw/core/error.h"
#include "gw/segmentation/anatomy.h"
#include "internal.h"

namespace gw::segmentation
{
namespace detail
{
void
Grid::ToPhysical(const double idx[3], double p[3]) const
{
  for (int r = 0; r < 3; ++r)
    p[r] = origin[r] + m[r][0] * idx[0] + m[r][1] * idx[1] + m[r][2] * idx[2];
}

void
Grid::ToIndex(const double p[3], double idx[3]) const
{
  const double d[3] = { p[0] - origin[0], p[1] - origin[1], p[2] - origin[2] };
  for (int r = 0; r < 3; ++r)
    idx[r] = inv[r][0] * d[0] + inv[r][1] * d[1] + inv[r][2] * d[2];
}

Grid
GridOf(const itk::ImageBase<3> * image)
{
  if (!image)
    ThrowInternal("null image");
  Grid g;
  const auto size = image->GetLargestPossibleRegion().GetSize();
  const auto & sp = image->GetSpacing();
  const auto & dir = image->GetDirection();
  for (int i = 0; i < 3; ++i)
  {
    g.n[i] = size[i];
    g.spacing[i] = sp[i];
    g.origin[i] = image->GetOrigin()[i];
  }
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      g.m[r][c] = dir(r, c) * sp[c];
  const double(&a)[3][3] = g.m;
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                     a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (std::abs(det) < 1e-12)
    ThrowInput("degenerate image direction/spacing");
  g.inv[0][0] = (a[1][1] * a[2][2] - a[1][2] * a[2][1]) / det;
  g.inv[0][1] = (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det;
  g.inv[0][2] = (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det;
  g.inv[1][0] = (a[1][2] * a[2][0] - a[1][0] * a[2][2]) / det;
  g.inv[1][1] = (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det;
  g.inv[1][2] = (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det;
  g.inv[2][0] = (a[1][0] * a[2][1] - a[1][1] * a[2][0]) / det;
  g.inv[2][1] = (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det;
  g.inv[2][2] = (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det;
  return g;
}

AxialView::AxialView(const itk::ImageBase<3> * image)
  : grid(GridOf(image))
  , axes(GetAnatomicalAxes(image))
{
  nu = grid.n[axes.axis[LR]];
  nv = grid.n[axes.axis[AP]];
  nw = grid.n[axes.axis[SI]];
  su = axes.spacing[LR];
  sv = axes.spacing[AP];
  sw = axes.spacing[SI];
}

PointType
AxialView::Point(double u, double v, double w) const
{
  double idx[3], p[3];
  idx[axes.axis[LR]] = u;
  idx[axes.axis[AP]] = v;
  idx[axes.axis[SI]] = w;
  grid.ToPhysical(idx, p);
  PointType pt;
  pt[0] = p[0];
  pt[1] = p[1];
  pt[2] = p[2];
  return pt;
}

std::array<double, 3>
AxialView::Uvw(const PointType & pt) const
{
  const double p[3] = { pt[0], pt[1], pt[2] };
  double idx[3];
  grid.ToIndex(p, idx);
  return { { idx[axes.axis[LR]], idx[axes.axis[AP]], idx[axes.axis[SI]] } };
}

template <typename TImage>
typename TImage::Pointer
NewImage(const itk::ImageBase<3> * reference)
{
  auto img = TImage::New();
  img->SetRegions(reference->GetLargestPossibleRegion());
  img->SetSpacing(reference->GetSpacing());
  img->SetOrigin(reference->GetOrigin());
  img->SetDirection(reference->GetDirection());
  img->Allocate(true);
  return img;
}

MaskImage::Pointer
NewMask(const itk::ImageBase<3> * reference)
{
  return NewImage<MaskImage>(reference);
}
LabelImage::Pointer
NewLabels(const itk::ImageBase<3> * reference)
{
  return NewImage<LabelImage>(reference);
}
FloatImage::Pointer
NewFloat(const itk::ImageBase<3> * reference)
{
  return NewImage<FloatImage>(reference);
}

double
Percentile(std::vector<float> & values, double q)
{
  if (values.empty())
    return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  const auto k = static_cast<std::size_t>(std::lround(q * static_cast<double>(values.size() - 1)));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

RobustStats
Robust(std::vector<float> & values)
{
  RobustStats s;
  if (values.empty())
    return s;
  s.median = Percentile(values, 0.5);
  for (auto & v : values)
    v = static_cast<float>(std::abs(v - s.median));
  s.sigma = 1.4826 * Percentile(values, 0.5);
  return s;
}

namespace
{
struct Neighbours
{
  std::vector<std::array<int, 3>> d;
  explicit Neighbours(bool full)
  {
    for (int k = -1; k <= 1; ++k)
      for (int j = -1; j <= 1; ++j)
        for (int i = -1; i <= 1; ++i)
        {
          const int nz = (i != 0) + (j != 0) + (k != 0);
          if (nz == 0 || (!full && nz > 1))
            continue;
          d.push_back({ { i, j, k } });
        }
  }
};
} // namespace

std::vector<std::uint32_t>
Components(const std::uint8_t * buf, const Grid & g, std::vector<std::size_t> & sizes, bool full)
{
  const Neighbours nb(full);
  std::vector<std::uint32_t> lab(g.Count(), 0);
  sizes.assign(1, 0);
  std::vector<std::size_t> stack;
  const long nx = static_cast<long>(g.n[0]), ny = static_cast<long>(g.n[1]), nz = static_cast<long>(g.n[2]);
  for (std::size_t s = 0; s < lab.size(); ++s)
  {
    if (!buf[s] || lab[s])
      continue;
    const auto l = static_cast<std::uint32_t>(sizes.size());
    sizes.push_back(0);
    lab[s] = l;
    stack.assign(1, s);
    while (!stack.empty())
    {
      const std::size_t c = stack.back();
      stack.pop_back();
      ++sizes[l];
      const long x = static_cast<long>(c % g.n[0]), y = static_cast<long>((c / g.n[0]) % g.n[1]),
                 z = static_cast<long>(c / (g.n[0] * g.n[1]));
      for (const auto & d : nb.d)
      {
        const long a = x + d[0], b = y + d[1], e = z + d[2];
        if (a < 0 || b < 0 || e < 0 || a >= nx || b >= ny || e >= nz)
          continue;
        const std::size_t o = static_cast<std::size_t>(a + nx * (b + ny * e));
        if (buf[o] && !lab[o])
        {
          lab[o] = l;
          stack.push_back(o);
        }
      }
    }
  }
  return lab;
}

namespace
{
// 1D squared distance transform (Felzenszwalb & Huttenlocher) with sample spacing h.
void
Edt1D(const double * f, double * d, std::size_t n, double h, std::vector<int> & v, std::vector<double> & z)
{
  const double inf = std::numeric_limits<double>::infinity();
  v.resize(n);
  z.resize(n + 1);
  int k = -1;
  for (std::size_t q = 0; q < n; ++q)
  {
    if (!std::isfinite(f[q]))
      continue;
    const double xq = static_cast<double>(q) * h;
    while (k >= 0)
    {
      const double xv = static_cast<double>(v[k]) * h;
      const double s = ((f[q] + xq * xq) - (f[v[k]] + xv * xv)) / (2 * (xq - xv));
      if (s <= z[k])
        --k;
      else
      {
        ++k;
        v[k] = static_cast<int>(q);
        z[k] = s;
        z[k + 1] = inf;
        break;
      }
    }
    if (k < 0)
    {
      k = 0;
      v[0] = static_cast<int>(q);
      z[0] = -inf;
      z[1] = inf;
    }
  }
  if (k < 0)
  {
    for (std::size_t q = 0; q < n; ++q)
      d[q] = inf;
    return;
  }
  int j = 0;
  for (std::size_t q = 0; q < n; ++q)
  {
    const double xq = static_cast<double>(q) * h;
    while (z[j + 1] < xq)
      ++j;
    const double dx = xq - static_cast<double>(v[j]) * h;
    d[q] = dx * dx + f[v[j]];
  }
}
} // namespace

std::vector<float>
Distance(const std::uint8_t * buf, const Grid & g)
{
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> f(g.Count());
  for (std::size_t i = 0; i < f.size(); ++i)
    f[i] = buf[i] ? 0.0 : inf;
  std::vector<double> line, out;
  std::vector<int> v;
  std::vector<double> z;
  for (int axis = 0; axis < 3; ++axis)
  {
    const std::size_t n = g.n[axis];
    const std::size_t stride = axis == 0 ? 1 : (axis == 1 ? g.n[0] : g.n[0] * g.n[1]);
    line.resize(n);
    out.resize(n);
    const std::size_t lines = g.Count() / n;
    for (std::size_t l = 0; l < lines; ++l)
    {
      // base offset of line l along `axis`
      std::size_t base;
      if (axis == 0)
        base = l * g.n[0];
      else if (axis == 1)
        base = (l % g.n[0]) + (l / g.n[0]) * g.n[0] * g.n[1];
      else
        base = l;
      for (std::size_t q = 0; q < n; ++q)
        line[q] = f[base + q * stride];
      Edt1D(line.data(), out.data(), n, g.spacing[axis], v, z);
      for (std::size_t q = 0; q < n; ++q)
        f[base + q * stride] = out[q];
    }
  }
  std::vector<float> d(f.size());
  for (std::size_t i = 0; i < f.size(); ++i)
    d[i] = std::isfinite(f[i]) ? static_cast<float>(std::sqrt(f[i])) : std::numeric_limits<float>::max();
  return d;
}

std::vector<std::uint8_t>
Hysteresis(const std::vector<std::uint8_t> & seed, const std::vector<std::uint8_t> & grow, const Grid & g,
           std::size_t extentVoxels)
{
  std::vector<std::uint8_t> both(grow.size());
  for (std::size_t i = 0; i < both.size(); ++i)
    both[i] = (grow[i] || seed[i]) ? 1 : 0;
  std::vector<std::size_t> sizes;
  const auto lab = Components(both.data(), g, sizes);
  std::vector<std::uint8_t> keep(sizes.size(), 0);
  for (std::size_t l = 1; extentVoxels > 0 && l < sizes.size(); ++l)
    keep[l] = sizes[l] >= extentVoxels;
  for (std::size_t i = 0; i < both.size(); ++i)
    if (seed[i])
      keep[lab[i]] = 1;
  for (std::size_t i = 0; i < both.size(); ++i)
    both[i] = (lab[i] && keep[lab[i]]) ? 1 : 0;
  return both;
}

void
Regularize(std::vector<std::uint8_t> & mask, const Grid & g, const std::vector<std::uint8_t> & allowed)
{
  const long nx = static_cast<long>(g.n[0]), ny = static_cast<long>(g.n[1]), nz = static_cast<long>(g.n[2]);
  auto at = [&](const std::vector<std::uint8_t> & b, long x, long y, long z) -> int
  {
    if (x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz)
      return 0;
    return b[static_cast<std::size_t>(x + nx * (y + ny * z))];
  };
  const auto ok = [&](std::size_t i) { return allowed.empty() || allowed[i]; };
  static const int d6[6][3] = { { 1, 0, 0 }, { -1, 0, 0 }, { 0, 1, 0 }, { 0, -1, 0 }, { 0, 0, 1 }, { 0, 0, -1 } };
  // closing: dilate then erode (6-neighbourhood)
  std::vector<std::uint8_t> dil(mask.size(), 0), ero(mask.size(), 0);
  for (long z = 0; z < nz; ++z)
    for (long y = 0; y < ny; ++y)
      for (long x = 0; x < nx; ++x)
      {
        const auto i = static_cast<std::size_t>(x + nx * (y + ny * z));
        int v = mask[i];
        for (int k = 0; k < 6 && !v; ++k)
          v = at(mask, x + d6[k][0], y + d6[k][1], z + d6[k][2]);
        dil[i] = static_cast<std::uint8_t>(v ? 1 : 0);
      }
  for (long z = 0; z < nz; ++z)
    for (long y = 0; y < ny; ++y)
      for (long x = 0; x < nx; ++x)
      {
        const auto i = static_cast<std::size_t>(x + nx * (y + ny * z));
        int v = dil[i];
        for (int k = 0; k < 6 && v; ++k)
        {
          const long a = x + d6[k][0], b = y + d6[k][1], c = z + d6[k][2];
          if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz)
            continue; // the border does not erode
          v = at(dil, a, b, c);
        }
        ero[i] = static_cast<std::uint8_t>((v && ok(i)) || mask[i] ? 1 : 0);
      }
  // hole filling: background not connected (6) to the border becomes foreground
  {
    std::vector<std::uint8_t> outside(mask.size(), 0);
    std::vector<std::size_t> stack;
    for (long z = 0; z < nz; ++z)
      for (long y = 0; y < ny; ++y)
        for (long x = 0; x < nx; ++x)
          if (x == 0 || y == 0 || z == 0 || x == nx - 1 || y == ny - 1 || z == nz - 1)
          {
            const auto i = static_cast<std::size_t>(x + nx * (y + ny * z));
            if (!ero[i] && !outside[i])
            {
              outside[i] = 1;
              stack.push_back(i);
            }
          }
    while (!stack.empty())
    {
      const std::size_t c = stack.back();
      stack.pop_back();
      const long x = static_cast<long>(c % g.n[0]), y = static_cast<long>((c / g.n[0]) % g.n[1]),
                 z = static_cast<long>(c / (g.n[0] * g.n[1]));
      for (const auto & d : d6)
      {
        const long a = x + d[0], b = y + d[1], e = z + d[2];
        if (a < 0 || b < 0 || e < 0 || a >= nx || b >= ny || e >= nz)
          continue;
        const auto o = static_cast<std::size_t>(a + nx * (b + ny * e));
        if (!ero[o] && !outside[o])
        {
          outside[o] = 1;
          stack.push_back(o);
        }
      }
    }
    for (std::size_t i = 0; i < ero.size(); ++i)
      if (!outside[i] && ok(i))
        ero[i] = 1;
  }
  // majority rim
  mask = ero;
  for (long z = 0; z < nz; ++z)
    for (long y = 0; y < ny; ++y)
      for (long x = 0; x < nx; ++x)
      {
        const auto i = static_cast<std::size_t>(x + nx * (y + ny * z));
        if (ero[i] || !ok(i))
          continue;
        int count = 0;
        for (int c = -1; c <= 1; ++c)
          for (int b = -1; b <= 1; ++b)
            for (int a = -1; a <= 1; ++a)
              count += at(ero, x + a, y + b, z + c);
        if (count >= 10)
          mask[i] = 1;
      }
}

void
KeepComponents(const std::vector<std::uint8_t> & mask, const Grid & g, std::size_t minVoxels, double minVolume,
               LabelImage * labels, MaskImage * out)
{
  std::vector<std::size_t> sizes;
  const auto lab = Components(mask.data(), g, sizes);
  std::vector<std::pair<std::size_t, std::uint32_t>> order;
  for (std::uint32_t l = 1; l < sizes.size(); ++l)
    if (sizes[l] >= minVoxels && static_cast<double>(sizes[l]) * g.VoxelVolume() >= minVolume - 1e-9)
      order.push_back({ sizes[l], l });
  std::stable_sort(order.begin(), order.end(), [](const auto & a, const auto & b) { return a.first > b.first; });
  if (order.size() > 65535)
    order.resize(65535);
  std::vector<std::uint16_t> map(sizes.size(), 0);
  for (std::size_t r = 0; r < order.size(); ++r)
    map[order[r].second] = static_cast<std::uint16_t>(r + 1);
  auto * lb = labels ? labels->GetBufferPointer() : nullptr;
  auto * ob = out ? out->GetBufferPointer() : nullptr;
  for (std::size_t i = 0; i < lab.size(); ++i)
  {
    const std::uint16_t v = lab[i] ? map[lab[i]] : 0;
    if (lb)
      lb[i] = v;
    if (ob)
      ob[i] = v ? 1 : 0;
  }
}

std::vector<std::vector<double>>
RobustLoess(const std::vector<double> & x, const std::vector<std::vector<double>> & ys, double bandwidth, double c,
            int iterations, std::vector<double> * weights)
{
  const std::size_t n = x.size();
  std::vector<double> robust(n, 1.0);
  std::vector<std::vector<double>> fit(ys.size(), std::vector<double>(n, 0.0));
  for (int it = 0; it <= iterations; ++it)
  {
    for (std::size_t i = 0; i < n; ++i)
    {
      // weighted local linear fit around x[i]
      double sw = 0, sx = 0, sxx = 0;
      std::vector<double> sy(ys.size(), 0.0), sxy(ys.size(), 0.0);
      for (std::size_t j = 0; j < n; ++j)
      {
        const double d = std::abs(x[j] - x[i]) / bandwidth;
        if (d >= 1.0)
          continue;
        const double t = 1 - d * d * d;
        const double wj = t * t * t * robust[j];
        if (wj <= 0)
          continue;
        const double dx = x[j] - x[i];
        sw += wj;
        sx += wj * dx;
        sxx += wj * dx * dx;
        for (std::size_t s = 0; s < ys.size(); ++s)
        {
          sy[s] += wj * ys[s][j];
          sxy[s] += wj * dx * ys[s][j];
        }
      }
      const double det = sw * sxx - sx * sx;
      for (std::size_t s = 0; s < ys.size(); ++s)
      {
        if (sw <= 0)
          fit[s][i] = ys[s][i];
        else if (std::abs(det) > 1e-12 * std::max(1.0, sw * sxx))
          fit[s][i] = (sxx * sy[s] - sx * sxy[s]) / det; // intercept at dx = 0
        else
          fit[s][i] = sy[s] / sw;
      }
    }
    if (it == iterations)
      break;
    for (std::size_t i = 0; i < n; ++i)
    {
      double r2 = 0;
      for (std::size_t s = 0; s < ys.size(); ++s)
        r2 += (ys[s][i] - fit[s][i]) * (ys[s][i] - fit[s][i]);
      const double u = std::sqrt(r2) / c;
      robust[i] = u < 1 ? (1 - u * u) * (1 - u * u) : 0.0;
    }
  }
  if (weights)
    *weights = robust;
  return fit;
}

std::vector<std::uint8_t>
MaskOnGrid(const MaskImage * mask, const itk::ImageBase<3> * reference)
{
  if (!mask)
    return {};
  const auto m = ResampleMaskNearest(mask, reference);
  const auto * b = m->GetBufferPointer();
  return std::vector<std::uint8_t>(b, b + GridOf(reference).Count());
}
} // namespace detail

using namespace detail;

AnatomicalAxes
GetAnatomicalAxes(const itk::ImageBase<3> * image)
{
  if (!image)
    ThrowInternal("GetAnatomicalAxes: null image");
  const auto & dir = image->GetDirection();
  AnatomicalAxes a;
  std::array<bool, 3> colUsed{ { false, false, false } }, rowDone{ { false, false, false } };
  double worst = 0.0;
  // Greedy by the largest |cosine| overall, so each voxel axis is used once (robust for oblique grids).
  for (int round = 0; round < 3; ++round)
  {
    double best = -1;
    int br = -1, bc = -1;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c)
        if (!rowDone[r] && !colUsed[c] && std::abs(dir(r, c)) > best)
        {
          best = std::abs(dir(r, c));
          br = r;
          bc = c;
        }
    if (br < 0 || best < 1e-6)
      ThrowInput("degenerate image direction cosines");
    colUsed[bc] = true;
    rowDone[br] = true;
    a.axis[br] = static_cast<unsigned>(bc);
    a.sign[br] = dir(br, bc) >= 0 ? 1 : -1;
    worst = std::max(worst, std::acos(std::min(1.0, best)) * 180.0 / M_PI);
  }
  for (int r = 0; r < 3; ++r)
    a.spacing[r] = image->GetSpacing()[a.axis[r]];
  a.obliquityDeg = worst;
  return a;
}

int
CoarsestAxis(const itk::ImageBase<3> * grid)
{
  const auto sp = grid->GetSpacing();
  int axis = 0;
  for (int k = 1; k < 3; ++k)
    if (sp[k] > sp[axis])
      axis = k;
  return axis;
}

int
ThickSliceAxis(const itk::ImageBase<3> * grid)
{
  const auto sp = grid->GetSpacing();
  const int axis = CoarsestAxis(grid);
  return sp[axis] > kThickSliceRatio * std::min({ sp[0], sp[1], sp[2] }) ? axis : -1;
}

bool
SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b, double tolerance)
{
  if (!a || !b)
    return false;
  if (a->GetLargestPossibleRegion().GetSize() != b->GetLargestPossibleRegion().GetSize())
    return false;
  for (int i = 0; i < 3; ++i)
  {
    if (std::abs(a->GetSpacing()[i] - b->GetSpacing()[i]) > tolerance ||
        std::abs(a->GetOrigin()[i] - b->GetOrigin()[i]) > tolerance)
      return false;
    for (int j = 0; j < 3; ++j)
      if (std::abs(a->GetDirection()(i, j) - b->GetDirection()(i, j)) > tolerance)
        return false;
  }
  return true;
}

namespace
{
template <typename TImage>
typename TImage::Pointer
ResampleNearest(const TImage * in, const itk::ImageBase<3> * reference)
{
  if (!in || !reference)
    ThrowInternal("ResampleNearest: null image");
  auto out = TImage::New();
  out->SetRegions(reference->GetLargestPossibleRegion());
  out->SetSpacing(reference->GetSpacing());
  out->SetOrigin(reference->GetOrigin());
  out->SetDirection(reference->GetDirection());
  out->Allocate(true);
  const Grid gr = GridOf(reference), gi = GridOf(in);
  const auto * src = in->GetBufferPointer();
  auto * dst = out->GetBufferPointer();
  if (SameGrid(in, reference))
  {
    std::copy(src, src + gi.Count(), dst);
    return out;
  }
  for (std::size_t k = 0; k < gr.n[2]; ++k)
    for (std::size_t j = 0; j < gr.n[1]; ++j)
      for (std::size_t i = 0; i < gr.n[0]; ++i)
      {
        const double idx[3] = { double(i), double(j), double(k) };
        double p[3], q[3];
        gr.ToPhysical(idx, p);
        gi.ToIndex(p, q);
        long c[3];
        bool inside = true;
        for (int d = 0; d < 3; ++d)
        {
          c[d] = std::lround(q[d]);
          inside = inside && c[d] >= 0 && c[d] < static_cast<long>(gi.n[d]);
        }
        if (inside)
          dst[gr.Offset(i, j, k)] = src[gi.Offset(std::size_t(c[0]), std::size_t(c[1]), std::size_t(c[2]))];
      }
  return out;
}
} // namespace

MaskImage::Pointer
ResampleMaskNearest(const MaskImage * mask, const itk::ImageBase<3> * reference)
{
  auto out = ResampleNearest<MaskImage>(mask, reference);
  auto * b = out->GetBufferPointer();
  const std::size_t n = GridOf(reference).Count();
  for (std::size_t i = 0; i < n; ++i)
    b[i] = b[i] ? 1 : 0;
  return out;
}

LabelImage::Pointer
ResampleLabelsNearest(const LabelImage * labels, const itk::ImageBase<3> * reference)
{
  return ResampleNearest<LabelImage>(labels, reference);
}

LabelImage::Pointer
LabelComponents(const MaskImage * mask, std::size_t minVoxels, double minVolume, std::vector<Component> * components)
{
  if (!mask)
    ThrowInternal("LabelComponents: null mask");
  const Grid g = GridOf(mask);
  const auto * b = mask->GetBufferPointer();
  std::vector<std::uint8_t> m(b, b + g.Count());
  auto labels = NewLabels(mask);
  KeepComponents(m, g, minVoxels, minVolume, labels, nullptr);
  if (components)
    *components = DescribeLabels(labels);
  return labels;
}

MaskImage::Pointer
HysteresisMask(const FloatImage * map, double seed, double grow, std::size_t extentVoxels)
{
  if (!map)
    ThrowInternal("HysteresisMask: null map");
  const Grid g = GridOf(map);
  const float * v = map->GetBufferPointer();
  std::vector<std::uint8_t> s(g.Count()), gr(g.Count());
  for (std::size_t i = 0; i < g.Count(); ++i)
  {
    s[i] = v[i] > seed;
    gr[i] = v[i] > grow;
  }
  const auto kept = Hysteresis(s, gr, g, extentVoxels);
  auto out = NewMask(map);
  std::copy(kept.begin(), kept.end(), out->GetBufferPointer());
  return out;
}

std::vector<Component>
DescribeLabels(const LabelImage * labels)
{
  const Grid g = GridOf(labels);
  const auto * b = labels->GetBufferPointer();
  std::vector<std::array<double, 4>> acc(65536, { { 0, 0, 0, 0 } });
  std::uint16_t maxLabel = 0;
  for (std::size_t k = 0; k < g.n[2]; ++k)
    for (std::size_t j = 0; j < g.n[1]; ++j)
      for (std::size_t i = 0; i < g.n[0]; ++i)
      {
        const std::uint16_t l = b[g.Offset(i, j, k)];
        if (!l)
          continue;
        auto & a = acc[l];
        a[0] += 1;
        a[1] += double(i);
        a[2] += double(j);
        a[3] += double(k);
        maxLabel = std::max(maxLabel, l);
      }
  std::vector<Component> out;
  for (std::uint32_t l = 1; l <= maxLabel; ++l)
  {
    const auto & a = acc[l];
    if (a[0] == 0)
      continue;
    Component c;
    c.label = static_cast<std::uint16_t>(l);
    c.voxels = static_cast<std::size_t>(a[0]);
    c.volume = a[0] * g.VoxelVolume();
    const double idx[3] = { a[1] / a[0], a[2] / a[0], a[3] / a[0] };
    double p[3];
    g.ToPhysical(idx, p);
    for (int d = 0; d < 3; ++d)
      c.centroid[d] = p[d];
    out.push_back(c);
  }
  return out;
}

MaskImage::Pointer
LabelsToMask(const LabelImage * labels)
{
  auto m = NewMask(labels);
  const std::size_t n = GridOf(labels).Count();
  const auto * s = labels->GetBufferPointer();
  auto * d = m->GetBufferPointer();
  for (std::size_t i = 0; i < n; ++i)
    d[i] = s[i] ? 1 : 0;
  return m;
}

FloatImage::Pointer
DistanceMap(const MaskImage * mask)
{
  const Grid g = GridOf(mask);
  const auto d = Distance(mask->GetBufferPointer(), g);
  auto out = NewFloat(mask);
  std::copy(d.begin(), d.end(), out->GetBufferPointer());
  return out;
}

MaskImage::Pointer
DilateMm(const MaskImage * mask, double radius)
{
  const Grid g = GridOf(mask);
  const auto d = Distance(mask->GetBufferPointer(), g);
  auto out = NewMask(mask);
  auto * o = out->GetBufferPointer();
  for (std::size_t i = 0; i < d.size(); ++i)
    o[i] = d[i] <= radius + 1e-6 ? 1 : 0;
  return out;
}

MaskImage::Pointer
ErodeMm(const MaskImage * mask, double radius)
{
  const Grid g = GridOf(mask);
  const auto * b = mask->GetBufferPointer();
  std::vector<std::uint8_t> bg(g.Count());
  for (std::size_t i = 0; i < bg.size(); ++i)
    bg[i] = b[i] ? 0 : 1;
  const auto d = Distance(bg.data(), g);
  auto out = NewMask(mask);
  auto * o = out->GetBufferPointer();
  for (std::size_t i = 0; i < d.size(); ++i)
    o[i] = (b[i] && d[i] > radius + 1e-6) ? 1 : 0;
  return out;
}

std::size_t
CountNonZero(const MaskImage * mask)
{
  const std::size_t n = GridOf(mask).Count();
  const auto * b = mask->GetBufferPointer();
  return static_cast<std::size_t>(std::count_if(b, b + n, [](std::uint8_t v) { return v != 0; }));
}
} // namespace gw::segmentation
