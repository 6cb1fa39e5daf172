// Deterministic tensor tractography (RK4 on the principal eigenvector of the trilinearly interpolated tensor),
// gradient-table check, tractogram IO (.tck, .vtk) and along-tract profiles.
#include "gw/dti/tractography.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/random.h"
#include "gw/dti/gradient_check.h"
#include "internal.h"

namespace gw::dti
{
namespace
{
using Vec3 = Eigen::Vector3d;

/// Physical point ↔ continuous index of an image (buffer starting at the largest region's index).
struct Frame
{
  Eigen::Matrix3d toIndex;    // (D S)^-1
  Eigen::Matrix3d toPhysical; // D S
  Vec3 origin;
  Vec3 start; // region start index
  explicit Frame(const itk::ImageBase<3> * image)
  {
    Eigen::Matrix3d ds;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c)
        ds(r, c) = image->GetDirection()(r, c) * image->GetSpacing()[c];
    toPhysical = ds;
    toIndex = ds.inverse();
    const auto idx = image->GetLargestPossibleRegion().GetIndex();
    for (int i = 0; i < 3; ++i)
    {
      origin(i) = image->GetOrigin()[i];
      start(i) = static_cast<double>(idx[i]);
    }
  }
  Vec3 Index(const Vec3 & p) const { return toIndex * (p - origin) - start; }
  Vec3 Physical(const Vec3 & ci) const { return toPhysical * (ci + start) + origin; }
};

Vec3
ToVec(const PointType & p)
{
  return Vec3(p[0], p[1], p[2]);
}
PointType
ToPoint(const Vec3 & v)
{
  PointType p;
  p[0] = v(0);
  p[1] = v(1);
  p[2] = v(2);
  return p;
}

/// Trilinear weights at continuous index `ci` (buffer coordinates); false outside [0, n-1].
struct Trilinear
{
  std::size_t offset[8];
  double weight[8];
  bool Set(const detail::Grid & g, const Vec3 & ci)
  {
    const double lim[3] = { static_cast<double>(g.nx - 1), static_cast<double>(g.ny - 1),
                            static_cast<double>(g.nz - 1) };
    std::size_t base[3];
    double frac[3];
    for (int a = 0; a < 3; ++a)
    {
      if (!(ci(a) >= -1e-9 && ci(a) <= lim[a] + 1e-9))
        return false;
      const double c = std::clamp(ci(a), 0.0, lim[a]);
      double f = std::floor(c);
      if (f >= lim[a] && lim[a] > 0)
        f = lim[a] - 1;
      base[a] = static_cast<std::size_t>(std::max(0.0, f));
      frac[a] = lim[a] > 0 ? c - f : 0.0;
    }
    int n = 0;
    for (int dz = 0; dz < 2; ++dz)
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx)
        {
          const std::size_t x = std::min(base[0] + dx, g.nx - 1), y = std::min(base[1] + dy, g.ny - 1),
                            z = std::min(base[2] + dz, g.nz - 1);
          offset[n] = g.Linear(x, y, z);
          weight[n] = (dx ? frac[0] : 1 - frac[0]) * (dy ? frac[1] : 1 - frac[1]) * (dz ? frac[2] : 1 - frac[2]);
          ++n;
        }
    return true;
  }
};

double
SampleScalar(const FloatImage * image, const Frame & f, const detail::Grid & g, const Vec3 & p, bool & ok)
{
  Trilinear t;
  ok = t.Set(g, f.Index(p));
  if (!ok)
    return 0.0;
  const float * b = image->GetBufferPointer();
  double v = 0.0;
  for (int i = 0; i < 8; ++i)
    v += t.weight[i] * b[t.offset[i]];
  return v;
}

/// The tracking engine on one tensor field.
class Tracker
{
public:
  Tracker(const TensorImage * tensor, const MaskImage * stop, const TrackingOptions & o)
    : m_Tensor(tensor->GetBufferPointer())
    , m_Grid(tensor)
    , m_Frame(tensor)
    , m_Stop(stop ? stop->GetBufferPointer() : nullptr)
    , m_Options(o)
  {
    m_Step = o.stepMm;
    if (!(m_Step > 0.0))
    {
      const auto sp = tensor->GetSpacing();
      m_Step = 0.5 * std::min({ sp[0], sp[1], sp[2] });
    }
    m_CosAngle = std::cos(o.angleDegrees * 3.14159265358979323846 / 180.0);
  }

  double Step() const { return m_Step; }

  /// Principal direction at p, sign-aligned with `prev` (when non-zero); false when outside/below FA/stopped.
  bool Direction(const Vec3 & p, const Vec3 & prev, Vec3 & dir) const
  {
    const Vec3 ci = m_Frame.Index(p);
    Trilinear t;
    if (!t.Set(m_Grid, ci))
      return false;
    if (m_Stop)
    {
      const auto r = [](double v) { return static_cast<std::size_t>(std::llround(std::max(0.0, v))); };
      const std::size_t x = std::min(r(ci(0)), m_Grid.nx - 1), y = std::min(r(ci(1)), m_Grid.ny - 1),
                        z = std::min(r(ci(2)), m_Grid.nz - 1);
      if (!m_Stop[m_Grid.Linear(x, y, z)])
        return false;
    }
    double c[6] = { 0, 0, 0, 0, 0, 0 };
    for (int i = 0; i < 8; ++i)
    {
      if (t.weight[i] == 0.0)
        continue;
      const TensorPixel & tp = m_Tensor[t.offset[i]];
      for (int k = 0; k < 6; ++k)
        c[k] += t.weight[i] * tp[k];
    }
    Eigen::Matrix3d m;
    m << c[0], c[1], c[2], c[1], c[3], c[4], c[2], c[4], c[5];
    Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es;
    es.computeDirect(m);
    const Vec3 ev = es.eigenvalues();
    if (!(ev(2) > 0.0) || detail::FractionalAnisotropy(ev(2), ev(1), ev(0)) < m_Options.faThreshold)
      return false;
    dir = es.eigenvectors().col(2).normalized();
    if (prev.dot(dir) < 0.0)
      dir = -dir;
    return dir.allFinite();
  }

  /// One half streamline from `seed` along `initial`, not including the seed; stops at `maxLength`.
  void Half(const Vec3 & seed, const Vec3 & initial, double maxLength, std::vector<Vec3> & out) const
  {
    Vec3 p = seed, prev = initial, k1 = initial;
    double length = 0.0;
    const double h = m_Step;
    while (length + h <= maxLength + 1e-9)
    {
      Vec3 k2, k3, k4;
      if (!Direction(p + 0.5 * h * k1, k1, k2) || !Direction(p + 0.5 * h * k2, k1, k3) ||
          !Direction(p + h * k3, k1, k4))
        return;
      Vec3 d = (k1 + 2.0 * k2 + 2.0 * k3 + k4);
      if (!(d.norm() > 0.0))
        return;
      d.normalize();
      if (d.dot(prev) < m_CosAngle)
        return;
      const Vec3 next = p + h * d;
      Vec3 nextDir;
      if (!Direction(next, d, nextDir))
        return;
      if (nextDir.dot(d) < m_CosAngle)
        return;
      out.push_back(next);
      length += h;
      p = next;
      prev = d;
      k1 = nextDir;
    }
  }

  /// Full streamline through `seed` (empty when the seed is not trackable).
  std::vector<Vec3> Track(const Vec3 & seed) const
  {
    Vec3 d0;
    if (!Direction(seed, Vec3::Zero(), d0))
      return {};
    std::vector<Vec3> forward, backward;
    Half(seed, d0, m_Options.maxLengthMm, forward);
    const double used = m_Step * static_cast<double>(forward.size());
    Half(seed, -d0, m_Options.maxLengthMm - used, backward);
    std::vector<Vec3> line(backward.rbegin(), backward.rend());
    line.push_back(seed);
    line.insert(line.end(), forward.begin(), forward.end());
    return line;
  }

  const Frame & GetFrame() const { return m_Frame; }

private:
  const TensorPixel * m_Tensor;
  detail::Grid m_Grid;
  Frame m_Frame;
  const MaskImage::PixelType * m_Stop;
  TrackingOptions m_Options;
  double m_Step = 0.5;
  double m_CosAngle = 0.7;
};

double
Length(const std::vector<Vec3> & line)
{
  double l = 0.0;
  for (std::size_t i = 1; i < line.size(); ++i)
    l += (line[i] - line[i - 1]).norm();
  return l;
}

bool
LittleEndianHost()
{
  const std::uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

template <typename T>
void
AppendRaw(std::string & out, T value, bool littleEndian)
{
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  if (LittleEndianHost() != littleEndian)
    std::reverse(bytes, bytes + sizeof(T));
  out.append(reinterpret_cast<const char *>(bytes), sizeof(T));
}

/// Resamples a polyline to `n` points equally spaced along its arc length.
std::vector<Vec3>
Resample(const std::vector<Vec3> & line, unsigned int n)
{
  std::vector<double> cum(line.size(), 0.0);
  for (std::size_t i = 1; i < line.size(); ++i)
    cum[i] = cum[i - 1] + (line[i] - line[i - 1]).norm();
  const double total = cum.back();
  std::vector<Vec3> out(n);
  std::size_t seg = 0;
  for (unsigned int k = 0; k < n; ++k)
  {
    const double s = n == 1 ? 0.0 : total * k / (n - 1);
    while (seg + 2 < line.size() && cum[seg + 1] < s)
      ++seg;
    const double len = cum[seg + 1] - cum[seg];
    const double t = len > 0 ? std::clamp((s - cum[seg]) / len, 0.0, 1.0) : 0.0;
    out[k] = line[seg] + t * (line[seg + 1] - line[seg]);
  }
  return out;
}
} // namespace

Tractogram
TrackTensors(const TensorImage * tensor, const TrackingRegions & regions, const TrackingOptions & options)
{
  if (!tensor)
    ThrowInternal("TrackTensors: null tensor image");
  if (!regions.seeds)
    ThrowInput("tractography needs a seed mask");
  if (options.seedsPerVoxel == 0)
    ThrowUsage("seeds per voxel must be at least 1");
  if (!(options.maxLengthMm > 0.0) || options.minLengthMm > options.maxLengthMm)
    ThrowUsage("invalid streamline length limits");
  MaskImage::ConstPointer seeds = detail::MaskOnGrid(regions.seeds, tensor);
  MaskImage::ConstPointer stop = detail::MaskOnGrid(regions.stopMask, tensor);
  std::vector<MaskImage::ConstPointer> include, exclude;
  for (const MaskImage * m : regions.include)
    include.push_back(detail::MaskOnGrid(m, tensor));
  for (const MaskImage * m : regions.exclude)
    exclude.push_back(detail::MaskOnGrid(m, tensor));

  const Tracker tracker(tensor, stop.GetPointer(), options);
  const detail::Grid g(tensor);
  std::vector<Vec3> seedPoints;
  const auto * s = seeds->GetBufferPointer();
  for (std::size_t k = 0; k < g.nz; ++k)
    for (std::size_t j = 0; j < g.ny; ++j)
      for (std::size_t i = 0; i < g.nx; ++i)
      {
        const std::size_t v = g.Linear(i, j, k);
        if (!s[v])
          continue;
        for (unsigned int n = 0; n < options.seedsPerVoxel; ++n)
        {
          Vec3 ci(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
          if (options.seedsPerVoxel > 1)
          {
            Random jitter(options.seed * 0x100000001B3ull ^ (v * 1315423911ull + n));
            for (int a = 0; a < 3; ++a)
              ci(a) += jitter.Uniform() - 0.5;
          }
          seedPoints.push_back(tracker.GetFrame().Physical(ci));
        }
      }
  if (seedPoints.empty())
    ThrowInput("the seed mask is empty on the tensor grid");

  auto inside = [&](const MaskImage * m, const Vec3 & p)
  {
    const Vec3 ci = tracker.GetFrame().Index(p);
    for (int a = 0; a < 3; ++a)
      if (ci(a) < -0.5 || ci(a) > (a == 0 ? g.nx : a == 1 ? g.ny : g.nz) - 0.5)
        return false;
    const auto r = [](double v) { return static_cast<std::size_t>(std::llround(std::max(0.0, v))); };
    return m->GetBufferPointer()[g.Linear(std::min(r(ci(0)), g.nx - 1), std::min(r(ci(1)), g.ny - 1),
                                          std::min(r(ci(2)), g.nz - 1))] != 0;
  };
  std::vector<std::vector<Vec3>> lines(seedPoints.size());
  detail::ParallelFor(seedPoints.size(), options.threads, 64,
                      [&](std::size_t begin, std::size_t end)
                      {
                        for (std::size_t k = begin; k < end; ++k)
                        {
                          std::vector<Vec3> line = tracker.Track(seedPoints[k]);
                          if (line.size() < 2 || Length(line) + 1e-9 < options.minLengthMm)
                            continue;
                          bool keep = true;
                          for (const auto & m : exclude)
                            for (const Vec3 & p : line)
                              if (inside(m, p))
                              {
                                keep = false;
                                break;
                              }
                          for (const auto & m : include)
                          {
                            if (!keep)
                              break;
                            keep = std::any_of(line.begin(), line.end(), [&](const Vec3 & p) { return inside(m, p); });
                          }
                          if (keep)
                            lines[k] = std::move(line);
                        }
                      });
  Tractogram t;
  for (const auto & line : lines)
  {
    if (line.empty())
      continue;
    Streamline sl;
    sl.reserve(line.size());
    for (const Vec3 & p : line)
      sl.push_back(ToPoint(p));
    t.streamlines.push_back(std::move(sl));
  }
  return t;
}

double
StreamlineLength(const Streamline & s)
{
  double l = 0.0;
  for (std::size_t i = 1; i < s.size(); ++i)
    l += s[i].EuclideanDistanceTo(s[i - 1]);
  return l;
}

TractogramStats
ComputeStats(const Tractogram & tractogram)
{
  TractogramStats st;
  st.count = tractogram.streamlines.size();
  if (st.count == 0)
    return st;
  std::vector<double> lengths;
  for (const auto & s : tractogram.streamlines)
    lengths.push_back(StreamlineLength(s));
  std::sort(lengths.begin(), lengths.end());
  st.minLengthMm = lengths.front();
  st.maxLengthMm = lengths.back();
  const std::size_t n = lengths.size();
  st.medianLengthMm = n % 2 ? lengths[n / 2] : 0.5 * (lengths[n / 2 - 1] + lengths[n / 2]);
  st.meanLengthMm = std::accumulate(lengths.begin(), lengths.end(), 0.0) / static_cast<double>(n);
  double ss = 0.0;
  for (const double l : lengths)
    ss += (l - st.meanLengthMm) * (l - st.meanLengthMm);
  st.sdLengthMm = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;
  return st;
}

void
WriteTck(const Tractogram & tractogram, const fs::path & path, bool force)
{
  std::string data;
  for (const auto & s : tractogram.streamlines)
  {
    for (const auto & p : s)
    {
      AppendRaw<float>(data, static_cast<float>(-p[0]), true); // LPS → RAS
      AppendRaw<float>(data, static_cast<float>(-p[1]), true);
      AppendRaw<float>(data, static_cast<float>(p[2]), true);
    }
    for (int i = 0; i < 3; ++i)
      AppendRaw<float>(data, std::numeric_limits<float>::quiet_NaN(), true);
  }
  for (int i = 0; i < 3; ++i)
    AppendRaw<float>(data, std::numeric_limits<float>::infinity(), true);
  std::ostringstream head;
  head << "mrtrix tracks\n"
       << "datatype: Float32LE\n"
       << "count: " << tractogram.streamlines.size() << "\n"
       << "total_count: " << tractogram.streamlines.size() << "\n"
       << "generator: GraftWatch gw::dti (deterministic tensor RK4)\n";
  const std::string base = head.str();
  std::size_t offset = base.size() + 16;
  std::string header;
  for (int it = 0; it < 4; ++it)
  {
    header = base + "file: . " + std::to_string(offset) + "\nEND\n";
    if (header.size() <= offset)
      break;
    offset = header.size();
  }
  header.resize(offset, '\0');
  WriteTextFile(path, header + data, force);
}

Tractogram
ReadTck(const fs::path & path)
{
  const std::string bytes = ReadFile(path);
  if (bytes.rfind("mrtrix tracks\n", 0) != 0)
    ThrowInput(path.filename().string() + " is not an MRtrix .tck file");
  std::istringstream in(bytes);
  std::string line, datatype;
  std::size_t offset = 0;
  bool end = false;
  while (std::getline(in, line))
  {
    if (line == "END")
    {
      end = true;
      break;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    const std::string key = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    if (key == "datatype")
      datatype = value;
    else if (key == "file")
    {
      std::istringstream f(value);
      std::string dot;
      f >> dot >> offset;
      if (dot != ".")
        ThrowInput(path.filename().string() + ": external .tck data files are not supported");
    }
  }
  if (!end || offset == 0 || offset > bytes.size())
    ThrowInput(path.filename().string() + ": malformed .tck header");
  const bool f64 = datatype.rfind("Float64", 0) == 0;
  if (!f64 && datatype.rfind("Float32", 0) != 0)
    ThrowInput(path.filename().string() + ": unsupported .tck datatype '" + datatype + "'");
  const bool le = datatype.size() >= 2 && datatype.substr(datatype.size() - 2) == "LE";
  const std::size_t width = f64 ? 8 : 4;
  auto read = [&](std::size_t pos)
  {
    unsigned char b[8];
    std::memcpy(b, bytes.data() + pos, width);
    if (LittleEndianHost() != le)
      std::reverse(b, b + width);
    if (f64)
    {
      double d;
      std::memcpy(&d, b, 8);
      return d;
    }
    float f;
    std::memcpy(&f, b, 4);
    return static_cast<double>(f);
  };
  Tractogram t;
  Streamline current;
  for (std::size_t pos = offset; pos + 3 * width <= bytes.size(); pos += 3 * width)
  {
    const double x = read(pos), y = read(pos + width), z = read(pos + 2 * width);
    if (std::isinf(x))
      break;
    if (std::isnan(x))
    {
      t.streamlines.push_back(std::move(current));
      current.clear();
      continue;
    }
    PointType p;
    p[0] = -x;
    p[1] = -y;
    p[2] = z;
    current.push_back(p);
  }
  if (!current.empty())
    t.streamlines.push_back(std::move(current));
  return t;
}

void
WriteVtk(const Tractogram & tractogram, const fs::path & path, bool force, bool lps, const FloatImage * fa)
{
  std::size_t points = 0;
  for (const auto & s : tractogram.streamlines)
    points += s.size();
  std::string out = "# vtk DataFile Version 3.0\nGraftWatch tractogram SPACE=";
  out += lps ? "LPS" : "RAS";
  out += "\nBINARY\nDATASET POLYDATA\nPOINTS " + std::to_string(points) + " float\n";
  std::vector<float> faValues;
  std::unique_ptr<Frame> frame;
  std::unique_ptr<detail::Grid> grid;
  if (fa)
  {
    frame = std::make_unique<Frame>(fa);
    grid = std::make_unique<detail::Grid>(fa);
  }
  for (const auto & s : tractogram.streamlines)
    for (const auto & p : s)
    {
      AppendRaw<float>(out, static_cast<float>(lps ? p[0] : -p[0]), false);
      AppendRaw<float>(out, static_cast<float>(lps ? p[1] : -p[1]), false);
      AppendRaw<float>(out, static_cast<float>(p[2]), false);
      if (fa)
      {
        bool ok = false;
        const double v = SampleScalar(fa, *frame, *grid, ToVec(p), ok);
        faValues.push_back(ok ? static_cast<float>(v) : 0.0f);
      }
    }
  out += "\nLINES " + std::to_string(tractogram.streamlines.size()) + " " +
         std::to_string(points + tractogram.streamlines.size()) + "\n";
  std::int32_t index = 0;
  for (const auto & s : tractogram.streamlines)
  {
    AppendRaw<std::int32_t>(out, static_cast<std::int32_t>(s.size()), false);
    for (std::size_t i = 0; i < s.size(); ++i)
      AppendRaw<std::int32_t>(out, index++, false);
  }
  out += "\n";
  if (fa && points > 0)
  {
    out += "POINT_DATA " + std::to_string(points) + "\nSCALARS FA float 1\nLOOKUP_TABLE default\n";
    for (const float v : faValues)
      AppendRaw<float>(out, v, false);
    out += "\n";
  }
  WriteTextFile(path, out, force);
}

TractProfile
AlongTractProfile(const Tractogram & tractogram, const ScalarMaps & maps, unsigned int nodes)
{
  if (nodes < 2)
    ThrowUsage("an along-tract profile needs at least 2 nodes");
  if (!maps.fa || !maps.md || !maps.ad || !maps.rd)
    ThrowInternal("AlongTractProfile: incomplete scalar maps");
  TractProfile prof;
  prof.nodes = nodes;
  prof.names = { "FA", "MD", "AD", "RD" };
  prof.mean.assign(4, std::vector<double>(nodes, 0.0));
  prof.sd.assign(4, std::vector<double>(nodes, 0.0));
  prof.meanPosition.assign(nodes, PointType());
  std::vector<std::vector<Vec3>> resampled;
  std::size_t longest = 0;
  double longestLength = -1.0;
  for (const auto & s : tractogram.streamlines)
  {
    if (s.size() < 2)
      continue;
    std::vector<Vec3> line;
    for (const auto & p : s)
      line.push_back(ToVec(p));
    const double l = Length(line);
    if (l > longestLength)
    {
      longestLength = l;
      longest = resampled.size();
    }
    resampled.push_back(Resample(line, nodes));
  }
  prof.streamlines = resampled.size();
  if (resampled.empty())
    return prof;
  const std::vector<Vec3> reference = resampled[longest];
  for (auto & r : resampled)
  {
    double direct = 0.0, flipped = 0.0;
    for (unsigned int k = 0; k < nodes; ++k)
    {
      direct += (r[k] - reference[k]).norm();
      flipped += (r[nodes - 1 - k] - reference[k]).norm();
    }
    if (flipped < direct)
      std::reverse(r.begin(), r.end());
  }
  const FloatImage * images[4] = { maps.fa, maps.md, maps.ad, maps.rd };
  const Frame frame(maps.fa);
  const detail::Grid grid(maps.fa);
  for (unsigned int k = 0; k < nodes; ++k)
  {
    Vec3 pos = Vec3::Zero();
    for (const auto & r : resampled)
      pos += r[k];
    prof.meanPosition[k] = ToPoint(pos / static_cast<double>(resampled.size()));
    for (int m = 0; m < 4; ++m)
    {
      double sum = 0.0, sum2 = 0.0;
      std::size_t count = 0;
      for (const auto & r : resampled)
      {
        bool ok = false;
        const double v = SampleScalar(images[m], frame, grid, r[k], ok);
        if (!ok)
          continue;
        sum += v;
        sum2 += v * v;
        ++count;
      }
      if (count > 0)
      {
        const double mean = sum / static_cast<double>(count);
        prof.mean[m][k] = mean;
        prof.sd[m][k] = count > 1 ? std::sqrt(std::max(0.0, (sum2 - count * mean * mean) / (count - 1.0))) : 0.0;
      }
    }
  }
  return prof;
}

void
WriteTractProfile(const TractProfile & profile, const fs::path & path, bool force)
{
  const std::string ext = SplitExtension(path).second;
  if (ext == ".json")
  {
    nlohmann::json j;
    j["nodes"] = profile.nodes;
    j["streamlines"] = profile.streamlines;
    j["coordinate_system"] = "LPS";
    j["units"] = { { "position", "mm" }, { "FA", "1" }, { "MD", "mm^2/s" }, { "AD", "mm^2/s" }, { "RD", "mm^2/s" } };
    nlohmann::json rows = nlohmann::json::array();
    for (unsigned int k = 0; k < profile.nodes; ++k)
    {
      nlohmann::json row;
      row["node"] = k;
      row["position"] = { profile.meanPosition[k][0], profile.meanPosition[k][1], profile.meanPosition[k][2] };
      for (std::size_t m = 0; m < profile.names.size(); ++m)
      {
        row[profile.names[m]] = profile.mean[m][k];
        row[profile.names[m] + "_sd"] = profile.sd[m][k];
      }
      rows.push_back(row);
    }
    j["profile"] = rows;
    WriteTextFile(path, j.dump(2) + "\n", force);
    return;
  }
  std::ostringstream os;
  os << std::setprecision(8) << "node\tx_lps_mm\ty_lps_mm\tz_lps_mm";
  for (const auto & n : profile.names)
    os << '\t' << n << '\t' << n << "_sd";
  os << '\n';
  for (unsigned int k = 0; k < profile.nodes; ++k)
  {
    os << k << '\t' << profile.meanPosition[k][0] << '\t' << profile.meanPosition[k][1] << '\t'
       << profile.meanPosition[k][2];
    for (std::size_t m = 0; m < profile.names.size(); ++m)
      os << '\t' << profile.mean[m][k] << '\t' << profile.sd[m][k];
    os << '\n';
  }
  WriteTextFile(path, os.str(), force);
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient-table check

io::GradientTable
ApplyCandidate(const io::GradientTable & lps, const DirectionType & direction, const GradientCandidate & c)
{
  io::GradientTable out = lps;
  for (auto & e : out.entries)
  {
    double u[3]; // image-axis components
    for (int i = 0; i < 3; ++i)
      u[i] = direction(0, i) * e.direction[0] + direction(1, i) * e.direction[1] + direction(2, i) * e.direction[2];
    double v[3];
    for (int i = 0; i < 3; ++i)
      v[i] = c.sign[i] * u[c.permutation[i]];
    for (int r = 0; r < 3; ++r)
      e.direction[r] = direction(r, 0) * v[0] + direction(r, 1) * v[1] + direction(r, 2) * v[2];
  }
  return out;
}

GradientCheckResult
CheckGradients(const io::Dwi & dwi, const MaskImage * mask, const GradientCheckOptions & options)
{
  if (!dwi.image)
    ThrowInput("no DWI image");
  MaskImage::Pointer autoMask;
  MaskImage::ConstPointer m;
  if (mask)
    m = detail::MaskOnGrid(mask, dwi.image);
  else
  {
    autoMask = AutoMask(MeanB0(dwi, io::B0Threshold));
    m = autoMask.GetPointer();
  }
  const TensorImage::Pointer given =
    detail::FitOlsQuick(dwi, dwi.gradients, m.GetPointer(), io::B0Threshold, options.threads);
  const detail::Grid g(given);
  // seeds: voxels of highest FA (FA is invariant under the candidate tables)
  std::vector<std::pair<double, std::size_t>> ranked;
  const TensorPixel * t = given->GetBufferPointer();
  const auto * mk = m->GetBufferPointer();
  for (std::size_t v = 0; v < g.Count(); ++v)
  {
    if (!mk[v])
      continue;
    const TensorMetrics tm = ComputeTensorMetrics(t[v]);
    if (tm.fa >= options.seedFa && tm.lambda[2] > 0.0)
      ranked.emplace_back(tm.fa, v);
  }
  if (ranked.empty())
    ThrowProcessing("gradient check: no voxel with FA >= " + std::to_string(options.seedFa) + " in the mask");
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto & a, const auto & b) { return a.first > b.first; });
  if (ranked.size() > options.maxSeeds)
    ranked.resize(options.maxSeeds);
  const Frame frame(given);
  std::vector<Vec3> seeds;
  for (const auto & r : ranked)
  {
    const std::size_t v = r.second;
    seeds.push_back(frame.Physical(Vec3(static_cast<double>(v % g.nx), static_cast<double>((v / g.nx) % g.ny),
                                        static_cast<double>(v / (g.nx * g.ny)))));
  }

  Eigen::Matrix3d dir;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      dir(r, c) = given->GetDirection()(r, c);
  const std::array<std::array<int, 3>, 6> perms{
    { { 0, 1, 2 }, { 1, 0, 2 }, { 0, 2, 1 }, { 2, 1, 0 }, { 1, 2, 0 }, { 2, 0, 1 } }
  };
  const std::array<std::array<int, 3>, 4> signs{ { { 1, 1, 1 }, { -1, 1, 1 }, { 1, -1, 1 }, { 1, 1, -1 } } };
  const char * axis = "xyz";
  GradientCheckResult result;
  TrackingOptions topt;
  topt.faThreshold = options.stopFa;
  topt.angleDegrees = options.angleDegrees;
  topt.minLengthMm = 0.0;
  topt.maxLengthMm = 1000.0;
  topt.threads = options.threads;
  auto candidateTensor = TensorImage::New();
  candidateTensor->CopyInformation(given);
  candidateTensor->SetRegions(given->GetLargestPossibleRegion());
  candidateTensor->Allocate();
  for (const auto & perm : perms)
    for (const auto & sign : signs)
    {
      GradientCandidate c;
      c.permutation = perm;
      c.sign = sign;
      for (int i = 0; i < 3; ++i)
      {
        if (i)
          c.label += ' ';
        if (sign[i] < 0)
          c.label += '-';
        c.label += axis[perm[i]];
      }
      // the candidate table g' = Q g gives the tensor Q D Q^T with Q = Dir P Dir^T (P the signed permutation)
      Eigen::Matrix3d p = Eigen::Matrix3d::Zero();
      for (int i = 0; i < 3; ++i)
        p(i, perm[i]) = sign[i];
      const Eigen::Matrix3d q = dir * p * dir.transpose();
      TensorPixel * ct = candidateTensor->GetBufferPointer();
      for (std::size_t v = 0; v < g.Count(); ++v)
        ct[v] = detail::ToPixel(q * detail::ToMatrix(t[v]) * q.transpose());
      const Tracker tracker(candidateTensor, m.GetPointer(), topt);
      std::vector<double> lengths(seeds.size(), 0.0);
      detail::ParallelFor(seeds.size(), options.threads, 16,
                          [&](std::size_t begin, std::size_t end)
                          {
                            for (std::size_t k = begin; k < end; ++k)
                              lengths[k] = Length(tracker.Track(seeds[k]));
                          });
      c.streamlines = seeds.size();
      c.meanLengthMm = std::accumulate(lengths.begin(), lengths.end(), 0.0) / static_cast<double>(seeds.size());
      result.candidates.push_back(c);
    }
  const double givenScore = result.candidates.front().meanLengthMm;
  std::stable_sort(result.candidates.begin(), result.candidates.end(),
                   [](const auto & a, const auto & b) { return a.meanLengthMm > b.meanLengthMm; });
  const double best = result.candidates.front().meanLengthMm;
  result.givenScoreRatio = best > 0 ? givenScore / best : 1.0;
  result.givenIsBest = givenScore >= 0.98 * best;
  for (std::size_t i = 0; i < result.candidates.size(); ++i)
    if (result.candidates[i].label == "x y z")
      result.givenRank = i;
  if (result.givenIsBest)
    result.givenRank = 0;
  result.best = result.givenIsBest ? dwi.gradients
                                   : ApplyCandidate(dwi.gradients, given->GetDirection(), result.candidates.front());
  if (!result.givenIsBest)
    log::Warning(log::Cat("GRADIENT TABLE CHECK: the given b-vectors are probably wrong: '",
                          result.candidates.front().label, "' (image axes) gives streamlines ",
                          static_cast<int>(100.0 / std::max(result.givenScoreRatio, 1e-9)),
                          "% as long as the given table (mean ", best, " mm vs ", givenScore, " mm)"));
  return result;
}
} // namespace gw::dti
