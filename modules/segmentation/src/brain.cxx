/// \file brain.cxx
/// \brief Brain extraction by BET's deformable surface (Smith 2002).
#include "gw/segmentation/brain.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "gw/core/error.h"
#include "gw/core/parallel.h"
#include "gw/segmentation/anatomy.h"
#include "internal.h"

namespace gw::segmentation
{
using detail::Percentile;

namespace
{
using Vec = std::array<double, 3>;

Vec
operator+(const Vec & a, const Vec & b)
{
  return { a[0] + b[0], a[1] + b[1], a[2] + b[2] };
}
Vec
operator-(const Vec & a, const Vec & b)
{
  return { a[0] - b[0], a[1] - b[1], a[2] - b[2] };
}
Vec
operator*(double s, const Vec & a)
{
  return { s * a[0], s * a[1], s * a[2] };
}
double
Dot(const Vec & a, const Vec & b)
{
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
Vec
Cross(const Vec & a, const Vec & b)
{
  return { a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0] };
}
double
Norm(const Vec & a)
{
  return std::sqrt(Dot(a, a));
}

/// A closed triangle mesh.
struct Mesh
{
  std::vector<Vec> vertices;
  std::vector<std::array<int, 3>> faces;
};

/// The unit icosphere: an icosahedron whose triangles are split in four `subdivisions` times, projected onto the
/// sphere; faces wound counter-clockwise seen from outside.
Mesh
Icosphere(int subdivisions)
{
  const double g = (1.0 + std::sqrt(5.0)) / 2.0;
  Mesh m;
  m.vertices = { { -1, g, 0 },  { 1, g, 0 },  { -1, -g, 0 }, { 1, -g, 0 }, { 0, -1, g },  { 0, 1, g },
                 { 0, -1, -g }, { 0, 1, -g }, { g, 0, -1 },  { g, 0, 1 },  { -g, 0, -1 }, { -g, 0, 1 } };
  m.faces = { { 0, 11, 5 },  { 0, 5, 1 },  { 0, 1, 7 },  { 0, 7, 10 }, { 0, 10, 11 }, { 1, 5, 9 }, { 5, 11, 4 },
              { 11, 10, 2 }, { 10, 7, 6 }, { 7, 1, 8 },  { 3, 9, 4 },  { 3, 4, 2 },   { 3, 2, 6 }, { 3, 6, 8 },
              { 3, 8, 9 },   { 4, 9, 5 },  { 2, 4, 11 }, { 6, 2, 10 }, { 8, 6, 7 },   { 9, 8, 1 } };
  for (auto & v : m.vertices)
    v = (1.0 / Norm(v)) * v;
  for (int s = 0; s < subdivisions; ++s)
  {
    std::map<std::pair<int, int>, int> midpoint;
    auto mid = [&](int a, int b)
    {
      const auto key = std::minmax(a, b);
      const auto it = midpoint.find(key);
      if (it != midpoint.end())
        return it->second;
      const Vec v = 0.5 * (m.vertices[a] + m.vertices[b]);
      m.vertices.push_back((1.0 / Norm(v)) * v);
      return midpoint[key] = int(m.vertices.size()) - 1;
    };
    std::vector<std::array<int, 3>> faces;
    faces.reserve(m.faces.size() * 4);
    for (const auto & f : m.faces)
    {
      const int a = mid(f[0], f[1]), b = mid(f[1], f[2]), c = mid(f[2], f[0]);
      faces.push_back({ f[0], a, c });
      faces.push_back({ f[1], b, a });
      faces.push_back({ f[2], c, b });
      faces.push_back({ a, b, c });
    }
    m.faces = std::move(faces);
  }
  // outward winding
  const auto & f = m.faces.front();
  const Vec n = Cross(m.vertices[f[1]] - m.vertices[f[0]], m.vertices[f[2]] - m.vertices[f[0]]);
  if (Dot(n, m.vertices[f[0]]) < 0)
    for (auto & face : m.faces)
      std::swap(face[1], face[2]);
  return m;
}

/// Trilinear sampling at physical points; 0 outside the grid of voxel centres.
class Sampler
{
public:
  explicit Sampler(const FloatImage * image)
    : m_Data(image->GetBufferPointer())
  {
    const auto size = image->GetLargestPossibleRegion().GetSize();
    for (unsigned k = 0; k < 3; ++k)
    {
      m_Size[k] = long(size[k]);
      m_Origin[k] = image->GetOrigin()[k];
    }
    // physical = origin + D S index  =>  index = (D S)^-1 (physical - origin)
    const auto d = image->GetDirection();
    const auto sp = image->GetSpacing();
    itk::Matrix<double, 3, 3> ds;
    for (unsigned r = 0; r < 3; ++r)
      for (unsigned c = 0; c < 3; ++c)
        ds[r][c] = d[r][c] * sp[c];
    const auto inv = ds.GetInverse();
    for (unsigned r = 0; r < 3; ++r)
      for (unsigned c = 0; c < 3; ++c)
        m_Inverse[r][c] = inv[r][c];
  }
  Vec Index(const Vec & p) const
  {
    const Vec q = p - m_Origin;
    return { Dot(m_Inverse[0], q), Dot(m_Inverse[1], q), Dot(m_Inverse[2], q) };
  }
  double operator()(const Vec & p) const
  {
    const Vec ci = Index(p);
    // per axis: the two neighbouring indices and their weights (the upper one clamped on a one-voxel axis)
    long lo[3], hi[3];
    double wLo[3], wHi[3];
    for (int k = 0; k < 3; ++k)
    {
      if (!(ci[k] >= 0.0 && ci[k] <= double(m_Size[k] - 1)))
        return 0.0;
      lo[k] = std::min(long(ci[k]), m_Size[k] - 2 < 0 ? 0 : m_Size[k] - 2);
      hi[k] = std::min(lo[k] + 1, m_Size[k] - 1);
      wHi[k] = m_Size[k] > 1 ? ci[k] - double(lo[k]) : 0.0;
      wLo[k] = 1.0 - wHi[k];
    }
    const long rowY[2] = { lo[1] * m_Size[0], hi[1] * m_Size[0] };
    const long sliceZ[2] = { lo[2] * m_Size[0] * m_Size[1], hi[2] * m_Size[0] * m_Size[1] };
    const long colX[2] = { lo[0], hi[0] };
    const double wx[2] = { wLo[0], wHi[0] }, wy[2] = { wLo[1], wHi[1] }, wz[2] = { wLo[2], wHi[2] };
    // the corners in the order x fastest, each weight the product of its axes' weights in axis order
    double v = 0.0;
    for (int c = 0; c < 8; ++c)
    {
      const int bx = c & 1, by = (c >> 1) & 1, bz = (c >> 2) & 1;
      const double weight = wx[bx] * wy[by] * wz[bz];
      if (weight > 0.0)
        v += weight * double(m_Data[sliceZ[bz] + rowY[by] + colX[bx]]);
    }
    return v;
  }

private:
  const float * m_Data;
  long m_Size[3] = { 0, 0, 0 };
  Vec m_Origin{};
  std::array<Vec, 3> m_Inverse{};
};

/// The voxel centres of `reference` inside the closed surface: crossings of each index row along axis 0 with the
/// triangles (in continuous index coordinates), signed by the triangle's side; inside where the winding number is
/// non-zero.
MaskImage::Pointer
Rasterize(const Mesh & mesh, const FloatImage * reference, const Sampler & sampler)
{
  const auto size = reference->GetLargestPossibleRegion().GetSize();
  const long nx = long(size[0]), ny = long(size[1]), nz = long(size[2]);
  std::vector<Vec> idx(mesh.vertices.size());
  for (std::size_t v = 0; v < idx.size(); ++v)
    idx[v] = sampler.Index(mesh.vertices[v]);
  std::vector<std::vector<std::pair<double, int>>> crossings(std::size_t(ny * nz));
  for (const auto & f : mesh.faces)
  {
    const Vec & a = idx[f[0]];
    const Vec & b = idx[f[1]];
    const Vec & c = idx[f[2]];
    const double det = (b[1] - a[1]) * (c[2] - a[2]) - (c[1] - a[1]) * (b[2] - a[2]);
    if (std::abs(det) < 1e-12)
      continue; // parallel to the rows
    const long j0 = std::max(0L, long(std::ceil(std::min({ a[1], b[1], c[1] }))));
    const long j1 = std::min(ny - 1, long(std::floor(std::max({ a[1], b[1], c[1] }))));
    const long k0 = std::max(0L, long(std::ceil(std::min({ a[2], b[2], c[2] }))));
    const long k1 = std::min(nz - 1, long(std::floor(std::max({ a[2], b[2], c[2] }))));
    for (long k = k0; k <= k1; ++k)
      for (long j = j0; j <= j1; ++j)
      {
        // the row's point, nudged off edges and vertices shared by neighbouring triangles
        const double pj = double(j) + 1.1e-7, pk = double(k) + 1.7e-7;
        const double u = ((pj - a[1]) * (c[2] - a[2]) - (c[1] - a[1]) * (pk - a[2])) / det;
        const double v = ((b[1] - a[1]) * (pk - a[2]) - (pj - a[1]) * (b[2] - a[2])) / det;
        if (u < 0.0 || v < 0.0 || u + v > 1.0)
          continue;
        // signed by the side the triangle faces along the row: entering and leaving the surface
        const double side = (b[1] - a[1]) * (c[2] - a[2]) - (b[2] - a[2]) * (c[1] - a[1]);
        crossings[std::size_t(k * ny + j)].push_back(
          { a[0] + u * (b[0] - a[0]) + v * (c[0] - a[0]), side > 0 ? 1 : -1 });
      }
  }
  auto mask = MaskImage::New();
  mask->CopyInformation(reference);
  mask->SetRegions(reference->GetLargestPossibleRegion());
  mask->Allocate(true);
  auto * m = mask->GetBufferPointer();
  for (long k = 0; k < nz; ++k)
    for (long j = 0; j < ny; ++j)
    {
      auto & c = crossings[std::size_t(k * ny + j)];
      std::sort(c.begin(), c.end());
      // non-zero winding: a fold of the surface (a few inverted triangles) stays inside instead of cutting a hole
      int winding = 0;
      for (std::size_t p = 0; p + 1 < c.size(); ++p)
      {
        winding += c[p].second;
        if (winding != 0)
          for (long i = std::max(0L, long(std::ceil(c[p].first)));
               i <= std::min(nx - 1, long(std::floor(c[p + 1].first))); ++i)
            m[(k * ny + j) * nx + i] = 1;
      }
    }
  return mask;
}
} // namespace

BrainResult
ExtractBrain(const FloatImage * image, const BrainParams & p)
{
  if (!image)
    ThrowInternal("ExtractBrain: null image");
  if (!(p.fractionalThreshold > 0.0 && p.fractionalThreshold < 1.0) || p.iterations < 1 || p.subdivisions < 1 ||
      p.subdivisions > 6 || !(p.searchInwardMm > 0.0) || !(p.minRadiusMm > 0.0 && p.maxRadiusMm > p.minRadiusMm))
    ThrowUsage("brain extraction: invalid parameters");
  BrainResult r;
  const auto region = image->GetLargestPossibleRegion();
  const std::size_t n = region.GetNumberOfPixels();
  const float * data = image->GetBufferPointer();
  std::vector<float> values;
  values.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(data[i]))
      values.push_back(data[i]);
  if (values.empty())
    ThrowInput("brain extraction: the image has no finite values");
  r.t2 = Percentile(values, 0.02);
  r.t98 = Percentile(values, 0.98);
  r.threshold = r.t2 + 0.1 * (r.t98 - r.t2);
  if (!(r.t98 > r.t2))
    ThrowInput("brain extraction: the image has no contrast (2nd and 98th percentiles equal)");

  // every voxel above the threshold with its physical point
  const auto size = region.GetSize();
  auto forHead = [&](const auto & visit)
  {
    itk::Index<3> index;
    std::size_t i = 0;
    for (index[2] = 0; index[2] < long(size[2]); ++index[2])
      for (index[1] = 0; index[1] < long(size[1]); ++index[1])
        for (index[0] = 0; index[0] < long(size[0]); ++index[0], ++i)
          if (data[i] > r.threshold)
          {
            PointType pt;
            image->TransformIndexToPhysicalPoint(index, pt);
            visit(Vec{ pt[0], pt[1], pt[2] }, double(data[i]));
          }
  };
  // centre of gravity and volume of the head (intensities above the threshold, clamped at t98)
  const auto spacing = image->GetSpacing();
  const double voxelVolume = spacing[0] * spacing[1] * spacing[2];
  Vec cog{ 0, 0, 0 };
  double weight = 0.0;
  std::size_t headVoxels = 0;
  forHead(
    [&](const Vec & pt, double value)
    {
      const double w = std::min(value, r.t98);
      cog = cog + w * pt;
      weight += w;
      ++headVoxels;
    });
  if (headVoxels == 0 || !(weight > 0.0))
    ThrowInput("brain extraction: nothing above the brain/background threshold");
  cog = (1.0 / weight) * cog;
  for (unsigned k = 0; k < 3; ++k)
    r.centre[k] = cog[k];
  r.initialRadius = std::cbrt(3.0 * double(headVoxels) * voxelVolume / (4.0 * M_PI));

  // tm: median above the threshold inside the sphere of that radius
  {
    std::vector<float> inside;
    forHead(
      [&](const Vec & pt, double value)
      {
        if (Norm(pt - cog) <= r.initialRadius)
          inside.push_back(float(value));
      });
    if (inside.empty())
      ThrowInput("brain extraction: nothing above the threshold near the head's centre");
    r.tissueMedian = Percentile(inside, 0.5);
  }

  // the surface
  Mesh mesh = Icosphere(p.subdivisions);
  for (auto & v : mesh.vertices)
    v = cog + (0.5 * r.initialRadius) * v;
  const std::size_t nv = mesh.vertices.size();
  r.vertices = nv;
  std::vector<std::vector<int>> neighbours(nv);
  std::vector<std::vector<int>> facesOf(nv);
  for (std::size_t f = 0; f < mesh.faces.size(); ++f)
    for (int e = 0; e < 3; ++e)
    {
      const int a = mesh.faces[f][e], b = mesh.faces[f][(e + 1) % 3];
      neighbours[std::size_t(a)].push_back(b);
      facesOf[std::size_t(a)].push_back(int(f));
    }
  for (auto & nb : neighbours)
  {
    std::sort(nb.begin(), nb.end());
    nb.erase(std::unique(nb.begin(), nb.end()), nb.end());
  }
  const Sampler sample(image);
  // the slice axis of a thick-slice acquisition (spacing over kThickSliceRatio times the in-plane spacing)
  const int thickAxis = ThickSliceAxis(image);
  const bool thick = thickAxis >= 0;
  const auto direction = image->GetDirection();
  const Vec sliceAxis =
    thick ? Vec{ direction[0][thickAxis], direction[1][thickAxis], direction[2][thickAxis] } : Vec{ 0.0, 0.0, 0.0 };
  const double e = 0.5 * (1.0 / p.minRadiusMm + 1.0 / p.maxRadiusMm);
  const double fCurv = 6.0 / (1.0 / p.minRadiusMm - 1.0 / p.maxRadiusMm);
  const double d1 = p.searchInwardMm, d2 = 0.5 * p.searchInwardMm;
  const double tm = r.tissueMedian, t2 = r.t2, t = r.threshold, bt = p.fractionalThreshold;
  std::vector<Vec> normals(nv), update(nv);
  std::vector<Vec> faceNormals(mesh.faces.size());
  for (int it = 0; it < p.iterations; ++it)
  {
    for (std::size_t f = 0; f < mesh.faces.size(); ++f)
    {
      const auto & fc = mesh.faces[f];
      faceNormals[f] = Cross(mesh.vertices[std::size_t(fc[1])] - mesh.vertices[std::size_t(fc[0])],
                             mesh.vertices[std::size_t(fc[2])] - mesh.vertices[std::size_t(fc[0])]);
    }
    double edgeSum = 0.0;
    std::size_t edges = 0;
    for (std::size_t v = 0; v < nv; ++v)
    {
      Vec nsum{ 0, 0, 0 };
      for (int f : facesOf[v])
        nsum = nsum + faceNormals[std::size_t(f)];
      const double len = Norm(nsum);
      normals[v] = len > 0 ? (1.0 / len) * nsum : Vec{ 0, 0, 0 };
      for (int b : neighbours[v])
      {
        edgeSum += Norm(mesh.vertices[std::size_t(b)] - mesh.vertices[v]);
        ++edges;
      }
    }
    const double l = edges ? edgeSum / double(edges) : 1.0;
    ParallelFor(nv, 0, 256,
                [&](std::size_t begin, std::size_t end)
                {
                  for (std::size_t v = begin; v < end; ++v)
                  {
                    const Vec & x = mesh.vertices[v];
                    const Vec & nrm = normals[v];
                    Vec mean{ 0, 0, 0 };
                    for (int b : neighbours[v])
                      mean = mean + mesh.vertices[std::size_t(b)];
                    mean = (1.0 / double(neighbours[v].size())) * mean;
                    const Vec s = mean - x;
                    const Vec sn = Dot(s, nrm) * nrm;
                    const Vec st = s - sn;
                    // smoothness: curvature 1/r = 2 |s_n| / l^2
                    const double invR = 2.0 * Norm(sn) / (l * l);
                    const double f2 = 0.5 * (1.0 + std::tanh(fCurv * (invR - e)));
                    // intensity term along the inward normal
                    double iMin = tm, iMax = t;
                    for (double d = 0.0; d <= d1 + 1e-9; d += 1.0)
                    {
                      const double value = sample(x - d * nrm);
                      iMin = std::min(iMin, value);
                      if (d <= d2 + 1e-9)
                        iMax = std::max(iMax, value);
                    }
                    // thick slices: a dark skull crossed obliquely is averaged away between slices several millimetres
                    // apart; the in-plane direction of the normal sees it at the in-plane resolution
                    if (thick)
                    {
                      const Vec inPlane = nrm - Dot(nrm, sliceAxis) * sliceAxis;
                      const double len = Norm(inPlane);
                      if (len > 0.2)
                        for (double d = 1.0; d <= d1 + 1e-9; d += 1.0)
                          iMin = std::min(iMin, sample(x - (d / len) * inPlane));
                    }
                    iMin = std::max(t2, iMin);
                    iMax = std::min(tm, iMax);
                    const double tl = (iMax - t2) * bt + t2;
                    const double f3 = iMax > t2 ? 2.0 * (iMin - tl) / (iMax - t2) : -1.0;
                    update[v] = 0.5 * st + f2 * sn + (0.05 * f3 * l) * nrm;
                  }
                });
    for (std::size_t v = 0; v < nv; ++v)
      mesh.vertices[v] = mesh.vertices[v] + update[v];
  }
  r.mask = Rasterize(mesh, image, sample);
  const std::size_t count = CountNonZero(r.mask);
  r.volume = double(count) * voxelVolume;
  if (count < std::max<std::size_t>(1, headVoxels / 100))
    ThrowInput("brain extraction: the surface collapsed (" + std::to_string(count) + " voxels inside)");
  return r;
}
} // namespace gw::segmentation
