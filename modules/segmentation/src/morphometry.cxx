// Morphometry of components and cord in anatomical (LPS) terms; JSON and TSV with SCT-compatible names.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "gw/core/error.h"
#include "gw/segmentation/morphometry.h"
#include "internal.h"

namespace gw::segmentation
{
using namespace detail;

namespace
{
constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

struct Pixel
{
  long u, v;
};

/// Physical extent along LPS axis `axis` of a set of pixels of one axial slice, voxel size included [mm].
double
Extent(const AxialView & av, const std::vector<Pixel> & px, std::size_t w, int axis)
{
  if (px.empty())
    return 0.0;
  double lo = 1e30, hi = -1e30;
  for (const auto & p : px)
  {
    const PointType q = av.Point(double(p.u), double(p.v), double(w));
    lo = std::min(lo, q[axis]);
    hi = std::max(hi, q[axis]);
  }
  const double voxel = std::abs(av.grid.m[axis][av.axes.axis[LR]]) + std::abs(av.grid.m[axis][av.axes.axis[AP]]);
  return hi - lo + voxel;
}

/// Longest diameter and the extent perpendicular to it, in the slice plane [mm] (pixel size included).
std::pair<double, double>
Rano(const AxialView & av, const std::vector<Pixel> & px)
{
  if (px.empty())
    return { 0.0, 0.0 };
  std::map<std::pair<long, long>, bool> in;
  for (const auto & p : px)
    in[{ p.u, p.v }] = true;
  std::vector<std::pair<double, double>> edge, all;
  for (const auto & p : px)
  {
    const double x = double(p.u) * av.su, y = double(p.v) * av.sv;
    all.push_back({ x, y });
    if (!in.count({ p.u + 1, p.v }) || !in.count({ p.u - 1, p.v }) || !in.count({ p.u, p.v + 1 }) ||
        !in.count({ p.u, p.v - 1 }))
      edge.push_back({ x, y });
  }
  double best = -1;
  double dx = 1, dy = 0;
  for (std::size_t i = 0; i < edge.size(); ++i)
    for (std::size_t j = i; j < edge.size(); ++j)
    {
      const double ex = edge[j].first - edge[i].first, ey = edge[j].second - edge[i].second;
      const double d = std::hypot(ex, ey);
      if (d > best)
      {
        best = d;
        if (d > 0)
        {
          dx = ex / d;
          dy = ey / d;
        }
      }
    }
  const double nx = -dy, ny = dx;
  double lo = 1e30, hi = -1e30;
  for (const auto & q : all)
  {
    const double t = q.first * nx + q.second * ny;
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  const double longest = best + std::abs(dx) * av.su + std::abs(dy) * av.sv;
  const double perp = hi - lo + std::abs(nx) * av.su + std::abs(ny) * av.sv;
  return { longest, perp };
}

nlohmann::json
JNum(double v)
{
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string
TNum(double v)
{
  if (!std::isfinite(v))
    return "n/a";
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}
} // namespace

std::vector<CordSliceMorphometry>
ComputeCordMorphometry(const MaskImage * cord)
{
  if (!cord)
    ThrowInternal("ComputeCordMorphometry: null mask");
  const AxialView av(cord);
  const auto * b = cord->GetBufferPointer();
  std::vector<CordSliceMorphometry> out;
  std::vector<PointType> centroids;
  for (std::size_t w = 0; w < av.nw; ++w)
  {
    std::vector<Pixel> px;
    double su = 0, sv = 0;
    for (std::size_t v = 0; v < av.nv; ++v)
      for (std::size_t u = 0; u < av.nu; ++u)
        if (b[av.Offset(u, v, w)])
        {
          px.push_back({ long(u), long(v) });
          su += double(u);
          sv += double(v);
        }
    if (px.empty())
      continue;
    CordSliceMorphometry s;
    s.slice = int(w);
    const PointType c = av.Point(su / double(px.size()), sv / double(px.size()), double(w));
    s.z = c[2];
    s.areaRaw = double(px.size()) * av.axes.AxialPixelArea();
    s.apDiameter = Extent(av, px, w, AP);
    s.lrDiameter = Extent(av, px, w, LR);
    out.push_back(s);
    centroids.push_back(c);
  }
  // slice normal: physical direction of the SI voxel axis
  double nrm[3];
  for (int r = 0; r < 3; ++r)
    nrm[r] = av.grid.m[r][av.axes.axis[SI]] / av.sw;
  // Centerline tangent: least-squares line through the centroids within +-halfWindow along the slice normal
  // (at least two slices each side); the cross-sectional area is the in-slice area times cos(angle).
  const double halfWindow = std::max(5.0, 2.0 * av.sw);
  std::vector<double> sPos(out.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    sPos[i] = centroids[i][0] * nrm[0] + centroids[i][1] * nrm[1] + centroids[i][2] * nrm[2];
  for (std::size_t i = 0; i < out.size(); ++i)
  {
    double ms = 0, mc[3] = { 0, 0, 0 }, n = 0;
    for (std::size_t j = 0; j < out.size(); ++j)
      if (std::abs(sPos[j] - sPos[i]) <= halfWindow + 1e-9)
      {
        ms += sPos[j];
        for (int r = 0; r < 3; ++r)
          mc[r] += centroids[j][r];
        n += 1;
      }
    double cosA = 1.0;
    if (n >= 3)
    {
      ms /= n;
      for (auto & v : mc)
        v /= n;
      double sss = 0, t[3] = { 0, 0, 0 };
      for (std::size_t j = 0; j < out.size(); ++j)
        if (std::abs(sPos[j] - sPos[i]) <= halfWindow + 1e-9)
        {
          const double ds = sPos[j] - ms;
          sss += ds * ds;
          for (int r = 0; r < 3; ++r)
            t[r] += ds * (centroids[j][r] - mc[r]);
        }
      if (sss > 0)
      {
        const double len = std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]) / sss;
        if (len > 0)
          cosA = std::clamp(1.0 / len, 0.0, 1.0);
      }
    }
    out[i].angleDeg = std::acos(cosA) * 180.0 / M_PI;
    out[i].area = out[i].areaRaw * cosA;
  }
  return out;
}

Morphometry
ComputeMorphometry(const LabelImage * labels, const MaskImage * cord, const std::string & kind)
{
  if (!labels)
    ThrowInternal("ComputeMorphometry: null labels");
  const AxialView av(labels);
  Morphometry m;
  m.kind = kind;
  m.axes = av.axes;
  MaskImage::Pointer cordOnGrid;
  if (cord)
  {
    cordOnGrid = ResampleMaskNearest(cord, labels);
    m.cord = ComputeCordMorphometry(cordOnGrid);
  }
  const auto * lb = labels->GetBufferPointer();
  const auto * cb = cordOnGrid ? cordOnGrid->GetBufferPointer() : nullptr;
  // pixels per label per slice
  std::map<std::uint16_t, std::map<std::size_t, std::vector<Pixel>>> px;
  for (std::size_t w = 0; w < av.nw; ++w)
    for (std::size_t v = 0; v < av.nv; ++v)
      for (std::size_t u = 0; u < av.nu; ++u)
      {
        const auto l = lb[av.Offset(u, v, w)];
        if (l)
          px[l][w].push_back({ long(u), long(v) });
      }
  std::map<std::size_t, const CordSliceMorphometry *> cordSlice;
  for (const auto & s : m.cord)
    cordSlice[std::size_t(s.slice)] = &s;
  const auto comps = DescribeLabels(labels);
  const bool vTowardsPosterior = av.axes.sign[AP] > 0;
  for (const auto & comp : comps)
  {
    ComponentMorphometry c;
    c.label = comp.label;
    c.voxels = comp.voxels;
    c.volume = comp.volume;
    c.centroid = comp.centroid;
    const auto & slices = px[comp.label];
    c.length = double(slices.rbegin()->first - slices.begin()->first + 1) * av.sw;
    c.maxAxialDamageRatio = cb ? 0.0 : NaN;
    c.apRatio = cb ? 0.0 : NaN;
    std::size_t bestArea = 0;
    for (const auto & [w, p] : slices)
    {
      const double area = double(p.size()) * av.axes.AxialPixelArea();
      c.maxEquivalentDiameter = std::max(c.maxEquivalentDiameter, 2.0 * std::sqrt(area / M_PI));
      const double ap = Extent(av, p, w, AP), lr = Extent(av, p, w, LR);
      c.maxApDiameter = std::max(c.maxApDiameter, ap);
      c.maxLrDiameter = std::max(c.maxLrDiameter, lr);
      if (cb)
      {
        const auto it = cordSlice.find(w);
        if (it != cordSlice.end())
        {
          c.maxAxialDamageRatio = std::max(c.maxAxialDamageRatio, area / it->second->areaRaw);
          c.apRatio = std::max(c.apRatio, ap / it->second->apDiameter);
        }
      }
      if (p.size() > bestArea)
      {
        bestArea = p.size();
        c.ranoSlice = int(w);
      }
    }
    const auto rano = Rano(av, slices.at(std::size_t(c.ranoSlice)));
    c.ranoLongest = rano.first;
    c.ranoPerpendicular = rano.second;
    // midsagittal tissue bridges
    c.dorsalBridge = NaN;
    c.ventralBridge = NaN;
    if (cb)
    {
      double su = 0, n = 0;
      for (const auto & [w, p] : slices)
        for (std::size_t v = 0; v < av.nv; ++v)
          for (std::size_t u = 0; u < av.nu; ++u)
            if (cb[av.Offset(u, v, w)])
            {
              su += double(u);
              n += 1;
            }
      if (n > 0)
      {
        const auto um = std::size_t(std::lround(su / n));
        for (const auto & [w, p] : slices)
        {
          long lo = long(av.nv), hi = -1;
          for (const auto & q : p)
            if (std::size_t(q.u) == um)
            {
              lo = std::min(lo, q.v);
              hi = std::max(hi, q.v);
            }
          if (hi < 0)
            continue;
          double below = 0, above = 0; // cord (not component) voxels with v < lo, v > hi
          for (long v = 0; v < long(av.nv); ++v)
          {
            const auto o = av.Offset(um, std::size_t(v), w);
            if (!cb[o] || lb[o] == comp.label)
              continue;
            if (v < lo)
              below += av.sv;
            else if (v > hi)
              above += av.sv;
          }
          const double dorsal = vTowardsPosterior ? above : below, ventral = vTowardsPosterior ? below : above;
          c.dorsalBridge = std::isfinite(c.dorsalBridge) ? std::min(c.dorsalBridge, dorsal) : dorsal;
          c.ventralBridge = std::isfinite(c.ventralBridge) ? std::min(c.ventralBridge, ventral) : ventral;
        }
      }
    }
    m.components.push_back(c);
  }
  return m;
}

nlohmann::json
ToJson(const Morphometry & m)
{
  nlohmann::json j;
  j["kind"] = m.kind;
  j["axes"] = { { "lr_voxel_axis", m.axes.axis[LR] },
                { "ap_voxel_axis", m.axes.axis[AP] },
                { "si_voxel_axis", m.axes.axis[SI] },
                { "obliquity [deg]", m.axes.obliquityDeg } };
  j["components"] = nlohmann::json::array();
  for (const auto & c : m.components)
  {
    nlohmann::json o;
    o["label"] = c.label;
    o["voxels"] = c.voxels;
    o["volume [mm3]"] = JNum(c.volume);
    o["length [mm]"] = JNum(c.length);
    o["max_equivalent_diameter [mm]"] = JNum(c.maxEquivalentDiameter);
    o["max_axial_damage_ratio []"] = JNum(c.maxAxialDamageRatio);
    o["dorsal_bridge_width [mm]"] = JNum(c.dorsalBridge);
    o["ventral_bridge_width [mm]"] = JNum(c.ventralBridge);
    o["max_ap_diameter [mm]"] = JNum(c.maxApDiameter);
    o["max_lr_diameter [mm]"] = JNum(c.maxLrDiameter);
    o["ap_ratio_to_cord []"] = JNum(c.apRatio);
    o["rano_longest_diameter [mm]"] = JNum(c.ranoLongest);
    o["rano_perpendicular_diameter [mm]"] = JNum(c.ranoPerpendicular);
    o["rano_slice"] = c.ranoSlice;
    o["centroid_lps [mm]"] = { c.centroid[0], c.centroid[1], c.centroid[2] };
    j["components"].push_back(o);
  }
  j["cord"] = nlohmann::json::array();
  for (const auto & s : m.cord)
    j["cord"].push_back({ { "slice", s.slice },
                          { "z [mm]", JNum(s.z) },
                          { "csa [mm2]", JNum(s.area) },
                          { "csa_in_slice [mm2]", JNum(s.areaRaw) },
                          { "ap_diameter [mm]", JNum(s.apDiameter) },
                          { "lr_diameter [mm]", JNum(s.lrDiameter) },
                          { "angle [deg]", JNum(s.angleDeg) } });
  return j;
}

std::string
ComponentsToTsv(const Morphometry & m)
{
  std::ostringstream os;
  os << "label\tvoxels\tvolume [mm3]\tlength [mm]\tmax_equivalent_diameter [mm]\tmax_axial_damage_ratio []\t"
        "dorsal_bridge_width [mm]\tventral_bridge_width [mm]\tmax_ap_diameter [mm]\tmax_lr_diameter [mm]\t"
        "ap_ratio_to_cord []\trano_longest_diameter [mm]\trano_perpendicular_diameter [mm]\trano_slice\n";
  for (const auto & c : m.components)
    os << c.label << '\t' << c.voxels << '\t' << TNum(c.volume) << '\t' << TNum(c.length) << '\t'
       << TNum(c.maxEquivalentDiameter) << '\t' << TNum(c.maxAxialDamageRatio) << '\t' << TNum(c.dorsalBridge) << '\t'
       << TNum(c.ventralBridge) << '\t' << TNum(c.maxApDiameter) << '\t' << TNum(c.maxLrDiameter) << '\t'
       << TNum(c.apRatio) << '\t' << TNum(c.ranoLongest) << '\t' << TNum(c.ranoPerpendicular) << '\t' << c.ranoSlice
       << '\n';
  return os.str();
}

std::string
CordToTsv(const Morphometry & m)
{
  std::ostringstream os;
  os << "slice\tz [mm]\tcsa [mm2]\tcsa_in_slice [mm2]\tap_diameter [mm]\tlr_diameter [mm]\tangle [deg]\n";
  for (const auto & s : m.cord)
    os << s.slice << '\t' << TNum(s.z) << '\t' << TNum(s.area) << '\t' << TNum(s.areaRaw) << '\t' << TNum(s.apDiameter)
       << '\t' << TNum(s.lrDiameter) << '\t' << TNum(s.angleDeg) << '\n';
  return os.str();
}
} // namespace gw::segmentation
