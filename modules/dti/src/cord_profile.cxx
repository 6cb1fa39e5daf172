// DTI metrics along the spinal cord: per slice and per band relative to a lesion epicentre.
#include "gw/dti/cord_profile.h"

#include <iomanip>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "internal.h"

namespace gw::dti
{
namespace
{
struct Accumulator
{
  std::size_t n = 0;
  double fa = 0, md = 0, ad = 0, rd = 0, fa2 = 0;
  void Add(double f, double m, double a, double r)
  {
    ++n;
    fa += f;
    md += m;
    ad += a;
    rd += r;
    fa2 += f * f;
  }
  MetricSummary Summary() const
  {
    MetricSummary s;
    s.voxels = n;
    if (n == 0)
      return s;
    const double k = static_cast<double>(n);
    s.fa = fa / k;
    s.md = md / k;
    s.ad = ad / k;
    s.rd = rd / k;
    s.faSd = n > 1 ? std::sqrt(std::max(0.0, (fa2 - k * s.fa * s.fa) / (k - 1.0))) : 0.0;
    return s;
  }
};

nlohmann::json
ToJson(const MetricSummary & m)
{
  return {
    { "voxels", m.voxels }, { "FA", m.fa }, { "FA_sd", m.faSd }, { "MD", m.md }, { "AD", m.ad }, { "RD", m.rd }
  };
}
} // namespace

CordProfileResult
CordProfile(const ScalarMaps & maps, const MaskImage * cord, const PointType & epicentre, double bandMm)
{
  if (!maps.fa || !maps.md || !maps.ad || !maps.rd)
    ThrowInternal("CordProfile: incomplete scalar maps");
  if (!(bandMm > 0.0))
    ThrowUsage("the epicentre band must be positive [mm]");
  MaskImage::ConstPointer m = detail::MaskOnGrid(cord, maps.fa);
  const detail::Grid g(maps.fa);
  CordProfileResult r;
  r.epicentre = epicentre;
  r.bandMm = bandMm;
  // the slice axis: image axis closest to LPS superior
  const auto & dir = maps.fa->GetDirection();
  int axis = 2;
  double best = -1.0;
  for (int a = 0; a < 3; ++a)
    if (std::abs(dir(2, a)) > best)
    {
      best = std::abs(dir(2, a));
      axis = a;
    }
  r.sliceAxis = axis;
  const float *fa = maps.fa->GetBufferPointer(), *md = maps.md->GetBufferPointer(), *ad = maps.ad->GetBufferPointer(),
              *rd = maps.rd->GetBufferPointer();
  std::map<int, Accumulator> slices;
  std::map<int, double> sliceZ;
  Accumulator regions[3]; // epicentre, rostral, caudal
  const double half = 0.5 * bandMm;
  const auto start = maps.fa->GetLargestPossibleRegion().GetIndex();
  for (std::size_t k = 0; k < g.nz; ++k)
    for (std::size_t j = 0; j < g.ny; ++j)
      for (std::size_t i = 0; i < g.nx; ++i)
      {
        const std::size_t v = g.Linear(i, j, k);
        if (m ? !m->GetBufferPointer()[v] : !(md[v] != 0.0f))
          continue;
        IndexType idx{ { static_cast<itk::IndexValueType>(i) + start[0], static_cast<itk::IndexValueType>(j) + start[1],
                         static_cast<itk::IndexValueType>(k) + start[2] } };
        PointType p;
        maps.fa->TransformIndexToPhysicalPoint(idx, p);
        const double d = p[2] - epicentre[2];
        const int s = static_cast<int>(axis == 0 ? i : axis == 1 ? j : k);
        slices[s].Add(fa[v], md[v], ad[v], rd[v]);
        sliceZ[s] += d;
        if (std::abs(d) <= half)
          regions[0].Add(fa[v], md[v], ad[v], rd[v]);
        else if (d > half && d <= 3 * half)
          regions[1].Add(fa[v], md[v], ad[v], rd[v]);
        else if (d < -half && d >= -3 * half)
          regions[2].Add(fa[v], md[v], ad[v], rd[v]);
      }
  if (slices.empty())
    ThrowInput("no cord voxel with DTI values (is the cord mask on the DWI field of view?)");
  for (const auto & [s, acc] : slices)
  {
    SliceMetrics sm;
    sm.slice = s;
    sm.metrics = acc.Summary();
    sm.distanceMm = sliceZ[s] / static_cast<double>(acc.n);
    r.slices.push_back(sm);
  }
  const char * names[3] = { "epicentre", "rostral", "caudal" };
  const double from[3] = { -half, half, -3 * half }, to[3] = { half, 3 * half, -half };
  for (int i = 0; i < 3; ++i)
  {
    RegionMetrics rm;
    rm.name = names[i];
    rm.fromMm = from[i];
    rm.toMm = to[i];
    rm.metrics = regions[i].Summary();
    r.regions.push_back(rm);
  }
  return r;
}

void
WriteCordProfile(const CordProfileResult & profile, const std::filesystem::path & path, bool force)
{
  if (SplitExtension(path).second == ".json")
  {
    nlohmann::json j;
    j["coordinate_system"] = "LPS";
    j["units"] = { { "distance", "mm" }, { "FA", "1" }, { "MD", "mm^2/s" }, { "AD", "mm^2/s" }, { "RD", "mm^2/s" } };
    j["epicentre"] = { profile.epicentre[0], profile.epicentre[1], profile.epicentre[2] };
    j["band_mm"] = profile.bandMm;
    j["distance_definition"] = "signed superior distance from the epicentre (+ rostral)";
    j["slice_axis"] = profile.sliceAxis;
    nlohmann::json slices = nlohmann::json::array(), regions = nlohmann::json::array();
    for (const auto & s : profile.slices)
    {
      nlohmann::json row = ToJson(s.metrics);
      row["slice"] = s.slice;
      row["distance_mm"] = s.distanceMm;
      slices.push_back(row);
    }
    for (const auto & r : profile.regions)
    {
      nlohmann::json row = ToJson(r.metrics);
      row["region"] = r.name;
      row["from_mm"] = r.fromMm;
      row["to_mm"] = r.toMm;
      regions.push_back(row);
    }
    j["slices"] = slices;
    j["regions"] = regions;
    WriteTextFile(path, j.dump(2) + "\n", force);
    return;
  }
  std::ostringstream os;
  os << std::setprecision(8) << "kind\tname\tdistance_mm\tvoxels\tFA\tFA_sd\tMD\tAD\tRD\n";
  auto row = [&](const std::string & kind, const std::string & name, double d, const MetricSummary & m)
  {
    os << kind << '\t' << name << '\t' << d << '\t' << m.voxels << '\t' << m.fa << '\t' << m.faSd << '\t' << m.md
       << '\t' << m.ad << '\t' << m.rd << '\n';
  };
  for (const auto & s : profile.slices)
    row("slice", std::to_string(s.slice), s.distanceMm, s.metrics);
  for (const auto & r : profile.regions)
    row("region", r.name, 0.5 * (r.fromMm + r.toMm), r.metrics);
  WriteTextFile(path, os.str(), force);
}
} // namespace gw::dti
