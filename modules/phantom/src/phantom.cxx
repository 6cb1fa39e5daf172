// Phantom study generator: analytic spinal-cord anatomy, scenarios, rendering, truth, output layouts.
#include "gw/phantom/phantom.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/core/provenance.h"
#include "gw/core/random.h"
#include "gw/dicom/writer.h"
#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"
#include "gw/safety/flags.h"
#include "gw/safety/rules.h"

namespace gw::phantom
{
namespace
{
constexpr double Pi = 3.14159265358979323846;

// ---------------------------------------------------------------- deterministic random numbers
using Rng = gw::Random;

/// Seed of an independent stream: FNV-1a of the label mixed with the study seed and the timepoint.
std::uint64_t
StreamSeed(std::uint64_t seed, int timepoint, const std::string & label)
{
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : label)
    h = (h ^ c) * 1099511628211ull;
  Rng mix(seed ^ (h + 0x632BE59BD9B4E019ull * static_cast<std::uint64_t>(timepoint + 1)));
  return mix.NextU64();
}

// ---------------------------------------------------------------- dates (proleptic Gregorian, days since 1970)
long
DaysFromCivil(int y, unsigned m, unsigned d)
{
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long>(doe) - 719468;
}

std::string
CivilFromDays(long z)
{
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const long y = static_cast<long>(yoe) + era * 400 + (m <= 2);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04ld-%02u-%02u", y, m, d);
  return buf;
}

long
ParseIsoDate(const std::string & s)
{
  int y = 0;
  unsigned m = 0, d = 0;
  if (s.size() < 10 || std::sscanf(s.c_str(), "%4d-%2u-%2u", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
    ThrowUsage("not an ISO date (YYYY-MM-DD): '" + s + "'");
  return DaysFromCivil(y, m, d);
}

// ---------------------------------------------------------------- geometry of the phantom
constexpr double CordA = 6.0, CordB = 4.0;   // cord semi-axes LR, AP [mm]
constexpr double CanalA = 9.5, CanalB = 8.0; // canal semi-axes
constexpr double RingA = 14.0, RingB = 12.5; // bony ring around the canal
constexpr double SwellHalfLength = 20.0;     // raised-cosine half width of the cord swelling [mm]
constexpr double FaBandHalfLength = 10.0;    // FA decline band [mm]
constexpr double LevelLength = 15.0;         // vertebral level [mm]
constexpr double SyrinxOffset = 30.0;        // syrinx centre rostral to the graft [mm]
constexpr double BandHalf = 7.5;             // FA bands: epicentre |dz| <= 7.5, rostral/caudal 7.5..22.5
const std::array<double, 3> TableOffset{ 1.5, 12.0, -80.0 }; // world position of the phantom origin [mm]

struct Ellipsoid
{
  bool present = false;
  std::array<double, 3> c{ 0, 0, 0 }, r{ 0, 0, 0 };
  bool Inside(const std::array<double, 3> & q) const
  {
    if (!present)
      return false;
    const double a = (q[0] - c[0]) / r[0], b = (q[1] - c[1]) / r[1], d = (q[2] - c[2]) / r[2];
    return a * a + b * b + d * d <= 1.0;
  }
  double Volume() const { return present ? 4.0 / 3.0 * Pi * r[0] * r[1] * r[2] : 0.0; }
  bool Contains(const Ellipsoid & o) const // same centre, axis-aligned: radii suffice
  {
    return o.c == c && o.r[0] <= r[0] && o.r[1] <= r[1] && o.r[2] <= r[2];
  }
};

/// The scenario state of one timepoint.
struct State
{
  Ellipsoid mass, enhancement, edema, syrinx;
  double swelling = 1.0; ///< cord radius factor at the graft site
  double faScale = 1.0;  ///< FA factor of WM/GM/edema within the FA band
  double graftZ = 0.0;
};

const std::vector<std::string> &
Scenarios()
{
  static const std::vector<std::string> names = { "stable",          "mass_growth_25",   "mass_growth_40",
                                                  "mass_growth_100", "new_enhancement",  "new_edema",
                                                  "new_syrinx",      "syrinx_expansion", "cord_swelling",
                                                  "fa_decline",      "transient_edema",  "combined" };
  return names;
}

void
CheckScenario(const std::string & s)
{
  const auto & n = Scenarios();
  if (std::find(n.begin(), n.end(), s) == n.end())
  {
    std::string all;
    for (const auto & x : n)
      all += (all.empty() ? "" : ", ") + x;
    ThrowUsage("unknown scenario '" + s + "' (one of: " + all + ")");
  }
}

State
StateAt(const std::string & scenario, int k, double graftZ)
{
  State s;
  s.graftZ = graftZ;
  s.mass.present = true;
  s.mass.c = { 0.0, 0.0, graftZ };
  s.mass.r = { 2.5, 2.0, 5.0 }; // 104.7 mm^3
  const bool follow = k >= 1;
  auto growMass = [&](double relative)
  {
    const double f = std::cbrt(1.0 + relative);
    for (auto & r : s.mass.r)
      r *= f;
  };
  auto addEnhancement = [&]
  {
    s.enhancement.present = true;
    s.enhancement.c = s.mass.c;
    s.enhancement.r = { 1.5, 1.5, 1.5 }; // 14.1 mm^3
  };
  auto addEdema = [&](double rx, double ry, double rz)
  {
    s.edema.present = true;
    s.edema.c = s.mass.c;
    s.edema.r = { rx, ry, rz };
  };
  auto addSyrinx = [&](double rx, double ry, double rz)
  {
    s.syrinx.present = true;
    s.syrinx.c = { 0.0, 0.0, graftZ + SyrinxOffset };
    s.syrinx.r = { rx, ry, rz };
  };
  if (scenario == "mass_growth_25" && follow)
    growMass(0.25);
  else if (scenario == "mass_growth_40" && follow)
    growMass(0.40);
  else if (scenario == "mass_growth_100" && follow)
    growMass(1.00);
  else if (scenario == "new_enhancement" && follow)
    addEnhancement();
  else if (scenario == "new_edema" && follow)
    addEdema(4.5, 3.2, 12.0);
  else if (scenario == "new_syrinx" && follow)
    addSyrinx(1.5, 1.2, 15.0);
  else if (scenario == "syrinx_expansion")
    follow ? addSyrinx(1.8, 1.5, 16.0) : addSyrinx(1.2, 1.0, 10.0);
  else if (scenario == "cord_swelling" && follow)
    s.swelling = 1.25;
  else if (scenario == "fa_decline" && follow)
    s.faScale = 0.75;
  else if (scenario == "transient_edema")
  {
    if (k == 0)
      addEdema(3.5, 2.6, 8.0);
    else if (k == 1)
      addEdema(4.5, 3.2, 12.0);
  }
  else if (scenario == "combined" && follow)
  {
    growMass(1.00);
    addEnhancement();
    addEdema(4.5, 3.2, 12.0);
    addSyrinx(1.5, 1.2, 15.0);
    s.swelling = 1.25;
    s.faScale = 0.75;
  }
  if (s.edema.present && !s.edema.Contains(s.mass))
    ThrowInternal("phantom edema must contain the mass");
  return s;
}

double
CordScale(const State & s, double z)
{
  const double d = z - s.graftZ;
  if (s.swelling == 1.0 || std::abs(d) >= SwellHalfLength)
    return 1.0;
  return 1.0 + (s.swelling - 1.0) * 0.5 * (1.0 + std::cos(Pi * d / SwellHalfLength));
}

/// Distance of (u,v) to the segment (a,b)-(c,d).
double
SegmentDistance(double u, double v, double a, double b, double c, double d)
{
  const double ex = c - a, ey = d - b;
  const double t = std::clamp(((u - a) * ex + (v - b) * ey) / (ex * ex + ey * ey), 0.0, 1.0);
  const double dx = u - (a + t * ex), dy = v - (b + t * ey);
  return std::sqrt(dx * dx + dy * dy);
}

/// Butterfly grey matter in cord-normalised coordinates (u: LR, v: AP, anterior negative).
bool
InGreyMatter(double u, double v)
{
  const double au = std::abs(u);
  return SegmentDistance(au, v, 0.0, 0.0, 0.3, 0.0) <= 0.12 ||       // commissure
         SegmentDistance(au, v, 0.15, -0.05, 0.45, -0.55) <= 0.17 || // anterior horns
         SegmentDistance(au, v, 0.12, 0.05, 0.30, 0.80) <= 0.10;     // posterior horns
}

struct Sample
{
  std::uint16_t tissue = Air;
  bool inCord = false;
  bool faBand = false;
};

Sample
Classify(const std::array<double, 3> & q, const State & s)
{
  Sample out;
  const double x = q[0], y = q[1], z = q[2];
  const double bx = x / 30.0, by = (y + 4.0) / 28.0;
  if (bx * bx + by * by > 1.0)
    return out; // air
  const double cx = x / CanalA, cy = y / CanalB;
  if (cx * cx + cy * cy <= 1.0)
  {
    const double sc = CordScale(s, z);
    const double u = x / (CordA * sc), v = y / (CordB * sc);
    if (u * u + v * v > 1.0)
    {
      out.tissue = Csf;
      return out;
    }
    out.inCord = true;
    out.faBand = s.faScale != 1.0 && std::abs(z - s.graftZ) <= FaBandHalfLength;
    if (s.syrinx.Inside(q))
      out.tissue = Syrinx;
    else if (s.enhancement.Inside(q))
      out.tissue = Enhancing;
    else if (s.mass.Inside(q))
      out.tissue = Mass;
    else if (s.edema.Inside(q))
      out.tissue = Edema;
    else
      out.tissue = InGreyMatter(u, v) ? GreyMatter : WhiteMatter;
    return out;
  }
  const double rx = x / RingA, ry = y / RingB;
  if (rx * rx + ry * ry <= 1.0)
  {
    out.tissue = Bone;
    return out;
  }
  const double vx = x / 16.0, vy = (y + 21.0) / 10.5;
  if (vx * vx + vy * vy <= 1.0)
  {
    // discs 4 mm thick centred between levels (graft site at mid-vertebral body)
    const double m = z - s.graftZ - 0.5 * LevelLength;
    const double r = m - LevelLength * std::floor(m / LevelLength);
    out.tissue = (r < 2.0 || r > LevelLength - 2.0) ? Disc : VertebralBody;
    return out;
  }
  out.tissue = SoftTissue;
  return out;
}

// ---------------------------------------------------------------- tissue properties
struct Properties
{
  double t2, t1, t1ce, flair, s0, md, fa;
};
// indexed by Tissue
const Properties TissueTable[12] = {
  { 0, 0, 0, 0, 0, 0, 0 },                    // air
  { 280, 520, 540, 230, 250, 1.5e-3, 0.0 },   // soft tissue
  { 220, 420, 430, 200, 80, 0.5e-3, 0.0 },    // bone
  { 420, 650, 680, 380, 150, 0.5e-3, 0.0 },   // vertebral body
  { 650, 380, 400, 500, 500, 1.6e-3, 0.0 },   // disc
  { 1000, 150, 150, 60, 1000, 3.0e-3, 0.0 },  // CSF
  { 350, 700, 700, 400, 400, 1.0e-3, 0.70 },  // WM
  { 450, 620, 620, 480, 450, 1.0e-3, 0.30 },  // GM
  { 800, 350, 380, 750, 700, 1.4e-3, 0.25 },  // mass
  { 650, 550, 560, 700, 600, 1.3e-3, 0.45 },  // edema
  { 800, 350, 1100, 750, 700, 1.4e-3, 0.25 }, // enhancing
  { 1000, 150, 150, 60, 1000, 3.0e-3, 0.0 }   // syrinx
};

using Mat3 = std::array<double, 9>; // row-major

Mat3
Multiply(const Mat3 & a, const Mat3 & b)
{
  Mat3 c{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k)
        c[3 * i + j] += a[3 * i + k] * b[3 * k + j];
  return c;
}

Mat3
Transpose(const Mat3 & a)
{
  return { a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8] };
}

/// Prolate tensor along the cord (phantom z) with the given FA and MD, rotated to the world: R diag R^T.
Mat3
WorldTensor(double fa, double md, const Mat3 & rot)
{
  // lambda1 = md (1 + 2c), lambda2 = lambda3 = md (1 - c), FA = 3c / sqrt(3 + 6c^2)
  const double c = fa * std::sqrt(3.0 / (9.0 - 6.0 * fa * fa));
  const Mat3 d{ md * (1 - c), 0, 0, 0, md * (1 - c), 0, 0, 0, md * (1 + 2 * c) };
  return Multiply(Multiply(rot, d), Transpose(rot));
}

double
EffectiveFa(const Sample & s, const State & st)
{
  double fa = TissueTable[s.tissue].fa;
  if (s.faBand && (s.tissue == WhiteMatter || s.tissue == GreyMatter || s.tissue == Edema))
    fa *= st.faScale;
  return fa;
}

// ---------------------------------------------------------------- pose, grids, bias
struct Pose
{
  std::array<double, 3> anglesDeg{ 0, 0, 0 };
  std::array<double, 3> shift{ 0, 0, 0 };
  Mat3 rot{ 1, 0, 0, 0, 1, 0, 0, 0, 1 };
  std::array<double, 3> ToWorld(const std::array<double, 3> & q) const
  {
    std::array<double, 3> p{};
    for (int i = 0; i < 3; ++i)
      p[i] = rot[3 * i] * q[0] + rot[3 * i + 1] * q[1] + rot[3 * i + 2] * q[2] + shift[i] + TableOffset[i];
    return p;
  }
  std::array<double, 3> ToPhantom(const std::array<double, 3> & p) const
  {
    const double d[3] = { p[0] - shift[0] - TableOffset[0], p[1] - shift[1] - TableOffset[1],
                          p[2] - shift[2] - TableOffset[2] };
    return { rot[0] * d[0] + rot[3] * d[1] + rot[6] * d[2], rot[1] * d[0] + rot[4] * d[1] + rot[7] * d[2],
             rot[2] * d[0] + rot[5] * d[1] + rot[8] * d[2] };
  }
  /// Rotates a phantom-frame vector into the world.
  std::array<double, 3> Rotate(const std::array<double, 3> & v) const
  {
    return { rot[0] * v[0] + rot[1] * v[1] + rot[2] * v[2], rot[3] * v[0] + rot[4] * v[1] + rot[5] * v[2],
             rot[6] * v[0] + rot[7] * v[1] + rot[8] * v[2] };
  }
};

Pose
MakePose(const StudyOptions & o, int k)
{
  Pose p;
  if (!o.realism.poseChange)
    return p;
  Rng rng(StreamSeed(o.seed, k, "pose"));
  for (auto & a : p.anglesDeg)
    a = rng.Symmetric() * o.realism.maxRotationDeg;
  for (auto & s : p.shift)
    s = rng.Symmetric() * o.realism.maxShiftMm;
  const double ax = p.anglesDeg[0] * Pi / 180, ay = p.anglesDeg[1] * Pi / 180, az = p.anglesDeg[2] * Pi / 180;
  const Mat3 rx{ 1, 0, 0, 0, std::cos(ax), -std::sin(ax), 0, std::sin(ax), std::cos(ax) };
  const Mat3 ry{ std::cos(ay), 0, std::sin(ay), 0, 1, 0, -std::sin(ay), 0, std::cos(ay) };
  const Mat3 rz{ std::cos(az), -std::sin(az), 0, std::sin(az), std::cos(az), 0, 0, 0, 1 };
  p.rot = Multiply(rz, Multiply(ry, rx));
  return p;
}

struct Grid
{
  std::array<unsigned int, 3> size{};
  std::array<double, 3> spacing{}, origin{};
  std::array<double, 3> Centre(unsigned int i, unsigned int j, unsigned int k) const
  {
    return { origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2] };
  }
  double VoxelVolume() const { return spacing[0] * spacing[1] * spacing[2]; }
};

/// A grid centred on the table position; follow-ups get a jittered voxel size (same field of view).
Grid
MakeGrid(const StudyOptions & o, int k, const std::array<unsigned int, 3> & size, const std::array<double, 3> & spacing,
         const std::string & label)
{
  Grid g;
  g.size = size;
  g.spacing = spacing;
  if (o.realism.voxelJitter && k > 0)
  {
    Rng rng(StreamSeed(o.seed, k, "voxel-size"));
    const double f = 1.0 + rng.Symmetric() * o.realism.inPlaneJitter;
    const double dz = rng.Symmetric() * o.realism.sliceJitterMm;
    (void)label;
    g.spacing = { spacing[0] * f, spacing[1] * f, spacing[2] + dz };
    for (int i = 0; i < 3; ++i)
      g.size[i] = std::max(8u, static_cast<unsigned int>(std::lround(size[i] * spacing[i] / g.spacing[i])));
  }
  for (int i = 0; i < 3; ++i)
    g.origin[i] = TableOffset[i] - 0.5 * (g.size[i] - 1) * g.spacing[i];
  return g;
}

/// Smooth multiplicative field in [1 - A, 1 + A] over the field of view: a random combination of low-order
/// polynomials of the position relative to the table centre.
struct BiasField
{
  bool on = false;
  double amplitude = 0.0;
  std::array<double, 6> c{};
  double Value(const std::array<double, 3> & p) const
  {
    if (!on)
      return 1.0;
    const double x = (p[0] - TableOffset[0]) / 32.0, y = (p[1] - TableOffset[1]) / 32.0,
                 z = (p[2] - TableOffset[2]) / 60.0;
    const double terms[6] = { x, y, z, x * y, x * x - 1.0 / 3.0, z * z - 1.0 / 3.0 };
    double v = 0, norm = 0;
    for (int i = 0; i < 6; ++i)
    {
      v += c[i] * terms[i];
      norm += std::abs(c[i]);
    }
    return 1.0 + amplitude * std::clamp(v / std::max(norm, 1e-12), -1.0, 1.0);
  }
};

BiasField
MakeBias(const StudyOptions & o, int k)
{
  BiasField b;
  b.on = o.realism.biasField;
  b.amplitude = o.realism.biasAmplitude;
  Rng rng(StreamSeed(o.seed, k, "bias"));
  for (auto & c : b.c)
    c = rng.Symmetric();
  return b;
}

template <typename TImage>
typename TImage::Pointer
Allocate(const Grid & g, unsigned int components = 0)
{
  auto img = TImage::New();
  RegionType region;
  SpacingType sp;
  PointType org;
  for (int i = 0; i < 3; ++i)
  {
    region.SetSize(i, g.size[i]);
    sp[i] = g.spacing[i];
    org[i] = g.origin[i];
  }
  img->SetRegions(region);
  img->SetSpacing(sp);
  img->SetOrigin(org);
  DirectionType d;
  d.SetIdentity();
  img->SetDirection(d);
  if constexpr (std::is_same_v<TImage, DwiImage>)
    img->SetNumberOfComponentsPerPixel(components);
  img->Allocate();
  return img;
}

/// Sub-voxel sample offsets in the phantom frame (rotated), n^3 of them; the centre only when n == 1.
std::vector<std::array<double, 3>>
SubOffsets(const Grid & g, const Pose & pose, int n)
{
  std::vector<std::array<double, 3>> out;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c)
      {
        const std::array<double, 3> d{ ((c + 0.5) / n - 0.5) * g.spacing[0], ((b + 0.5) / n - 0.5) * g.spacing[1],
                                       ((a + 0.5) / n - 0.5) * g.spacing[2] };
        // world offset d -> phantom frame R^T d
        const auto & r = pose.rot;
        out.push_back({ r[0] * d[0] + r[3] * d[1] + r[6] * d[2], r[1] * d[0] + r[4] * d[1] + r[7] * d[2],
                        r[2] * d[0] + r[5] * d[1] + r[8] * d[2] });
      }
  return out;
}

double
Rician(double s, double sigma, Rng & rng)
{
  const double a = s + sigma * rng.Normal(), b = sigma * rng.Normal();
  return std::sqrt(a * a + b * b);
}

nlohmann::json
GridJson(const Grid & g)
{
  return { { "size", g.size },
           { "spacing_mm", g.spacing },
           { "origin_lps_mm", g.origin },
           { "direction", { 1, 0, 0, 0, 1, 0, 0, 0, 1 } } };
}

/// Mean FA over the cord within a z band of the phantom frame, by fine sampling (0.1 x 0.1 x 0.25 mm).
double
BandFa(const State & s, double z0, double z1)
{
  double sum = 0;
  long count = 0;
  for (double z = z0 + 0.125; z < z1; z += 0.25)
  {
    const double sc = CordScale(s, z);
    for (double y = -CordB * sc + 0.05; y < CordB * sc; y += 0.1)
      for (double x = -CordA * sc + 0.05; x < CordA * sc; x += 0.1)
      {
        const Sample smp = Classify({ x, y, z }, s);
        if (!smp.inCord)
          continue;
        sum += EffectiveFa(smp, s);
        ++count;
      }
  }
  return count ? sum / count : 0.0;
}

/// Cord volume within |z - graft| <= h: integral of pi a b s(z)^2 (Simpson, 2000 intervals; exact to ~1e-10).
double
CordSlabVolume(const State & s, double h)
{
  const int n = 2000;
  const double a = s.graftZ - h, dz = 2 * h / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i)
  {
    const double sc = CordScale(s, a + i * dz);
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    sum += w * Pi * CordA * CordB * sc * sc;
  }
  return sum * dz / 3.0;
}

nlohmann::json
Vec(const std::array<double, 3> & v)
{
  return nlohmann::json::array({ v[0], v[1], v[2] });
}

std::string
SessionId(int k)
{
  char buf[16];
  std::snprintf(buf, sizeof(buf), "ses-%02d", k + 1);
  return buf;
}

void
ValidateOptions(const StudyOptions & o)
{
  CheckScenario(o.scenario);
  if (o.timepoints < 1 || o.timepoints > 8)
    ThrowUsage("--timepoints must be 1..8");
  if (std::abs(o.graftLevel) > 10.0)
    ThrowUsage("graft level must be within +/-10 mm of the field-of-view centre");
  if (o.realism.snr <= 0)
    ThrowUsage("SNR must be positive");
  if (o.realism.supersampling < 1 || o.realism.supersampling > 7)
    ThrowUsage("supersampling must be 1..7");
  if (o.b0Volumes < 1 || o.directions < 6 || o.bValue <= io::B0Threshold)
    ThrowUsage("the DWI needs >= 1 b0, >= 6 directions and b > 50 s/mm^2");
  for (int i = 0; i < 3; ++i)
    if (o.anatSize[i] < 8 || o.dwiSize[i] < 8 || o.anatSpacing[i] <= 0 || o.dwiSpacing[i] <= 0)
      ThrowUsage("grid sizes must be >= 8 voxels and spacings positive");
  if (o.diffusionConvention != "standard" && o.diffusionConvention != "siemens" && o.diffusionConvention != "both")
    ThrowUsage("diffusion convention must be standard, siemens or both");
  if (o.subject.empty() || SanitizeFileName(o.subject) != o.subject || o.subject.find('_') != std::string::npos ||
      o.subject.find('-') != std::string::npos)
    ThrowUsage("subject label must be alphanumeric (BIDS label)");
  ParseIsoDate(o.transplantDate);
}

const char * const AnatContrasts[4] = { "T2w", "T1w", "ce-gadolinium_T1w", "FLAIR" };
} // namespace

// ================================================================ public API
std::vector<std::string>
ScenarioNames()
{
  return Scenarios();
}

std::string
DescribeScenario(const std::string & s)
{
  CheckScenario(s);
  static const std::map<std::string, std::string> d = {
    { "stable", "graft mass unchanged at every timepoint (no flag expected)" },
    { "mass_growth_25", "graft mass volume +25% from the first follow-up (below the +40% volume and +25% SPD "
                        "thresholds: no flag expected)" },
    { "mass_growth_40", "graft mass volume +40% from the first follow-up (exactly at the volumetric threshold; "
                        "SPD +25.2%: borderline MASS_GROWTH)" },
    { "mass_growth_100", "graft mass volume doubled from the first follow-up" },
    { "new_enhancement", "a 14 mm^3 enhancing focus inside the mass from the first follow-up" },
    { "new_edema", "edema around the mass (T2/FLAIR halo, 619 mm^3) from the first follow-up" },
    { "new_syrinx", "a 113 mm^3 syrinx 30 mm rostral to the graft from the first follow-up" },
    { "syrinx_expansion", "a 50 mm^3 syrinx at baseline expanding to 181 mm^3 (AP 2 -> 3 mm, length 20 -> 32 mm)" },
    { "cord_swelling", "cord radii +25% at the graft site (AP 8 -> 10 mm) from the first follow-up" },
    { "fa_decline", "WM/GM FA x0.75 within 10 mm of the graft from the first follow-up" },
    { "transient_edema", "post-operative edema (day 14) enlarging at day 49 and resolved at day 84: expected "
                         "status only" },
    { "combined", "mass doubled, new enhancement, new edema, new syrinx, cord swelling and FA decline" }
  };
  return d.at(s);
}

std::vector<int>
ScheduleDays(const std::string & scenario, int timepoints)
{
  CheckScenario(scenario);
  static const int general[8] = { 14, 91, 182, 365, 547, 730, 1095, 1460 };
  static const int transient[8] = { 14, 49, 84, 182, 365, 547, 730, 1095 };
  std::vector<int> d;
  for (int k = 0; k < timepoints && k < 8; ++k)
    d.push_back(scenario == "transient_edema" ? transient[k] : general[k]);
  return d;
}

io::GradientTable
MakeGradientTable(int b0s, int directions, double bValue)
{
  // initial points: golden-angle spiral on the upper hemisphere
  std::vector<std::array<double, 3>> p(directions);
  for (int i = 0; i < directions; ++i)
  {
    const double z = 1.0 - (i + 0.5) / directions;
    const double r = std::sqrt(1.0 - z * z), phi = i * Pi * (3.0 - std::sqrt(5.0));
    p[i] = { r * std::cos(phi), r * std::sin(phi), z };
  }
  // antipodal electrostatic repulsion: energy sum 1/|pi-pj| + 1/|pi+pj|, projected gradient descent
  std::vector<std::array<double, 3>> force(directions);
  for (int iter = 0; iter < 400; ++iter)
  {
    for (auto & f : force)
      f = { 0, 0, 0 };
    for (int i = 0; i < directions; ++i)
      for (int j = 0; j < directions; ++j)
      {
        if (i == j)
          continue;
        for (double sign : { -1.0, 1.0 })
        {
          std::array<double, 3> d{ p[i][0] + sign * p[j][0], p[i][1] + sign * p[j][1], p[i][2] + sign * p[j][2] };
          const double n2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
          const double inv = 1.0 / (n2 * std::sqrt(n2));
          for (int c = 0; c < 3; ++c)
            force[i][c] += d[c] * inv;
        }
      }
    for (int i = 0; i < directions; ++i)
    {
      for (int c = 0; c < 3; ++c)
        p[i][c] += 0.01 / directions * force[i][c];
      const double n = std::sqrt(p[i][0] * p[i][0] + p[i][1] * p[i][1] + p[i][2] * p[i][2]);
      for (int c = 0; c < 3; ++c)
        p[i][c] /= n;
    }
  }
  for (auto & v : p) // canonical hemisphere: z >= 0
    if (v[2] < 0)
      for (auto & c : v)
        c = -c;
  io::GradientTable t;
  t.frame = "lps";
  const int total = b0s + directions;
  std::set<int> b0Positions;
  for (int i = 0; i < b0s; ++i)
    b0Positions.insert(static_cast<int>(std::lround(static_cast<double>(i) * total / b0s)));
  int next = 0;
  for (int v = 0; v < total; ++v)
  {
    io::GradientEntry e;
    if (b0Positions.count(v) || next >= directions)
      e.bValue = 0.0;
    else
    {
      e.bValue = bValue;
      e.direction = p[next++];
    }
    t.entries.push_back(e);
  }
  return t;
}

const char *
TissueName(std::uint16_t t)
{
  static const char * names[12] = { "air",          "soft_tissue", "bone", "vertebral_body", "disc",      "csf",
                                    "white_matter", "grey_matter", "mass", "edema",          "enhancing", "syrinx" };
  return t < 12 ? names[t] : "unknown";
}

OutputFormat
ParseFormat(const std::string & text)
{
  if (text == "bids")
    return OutputFormat::Bids;
  if (text == "nifti")
    return OutputFormat::Nifti;
  if (text == "dicom")
    return OutputFormat::Dicom;
  ThrowUsage("format must be bids, nifti or dicom, got '" + text + "'");
}

TimepointImages
SimulateTimepoint(const StudyOptions & o, int k)
{
  ValidateOptions(o);
  if (k < 0 || k >= o.timepoints)
    ThrowUsage("timepoint index out of range");
  TimepointImages out;
  out.id = SessionId(k);
  const State st = StateAt(o.scenario, k, o.graftLevel);
  const Pose pose = MakePose(o, k);
  const BiasField bias = MakeBias(o, k);
  const int n = o.realism.partialVolume ? o.realism.supersampling : 1;
  const double nSub = static_cast<double>(n) * n * n;

  // ------------------------------------------------ anatomical contrasts
  const Grid ga = MakeGrid(o, k, o.anatSize, o.anatSpacing, "anat");
  std::array<FloatImage::Pointer, 4> anat;
  for (int c = 0; c < 4; ++c)
  {
    anat[c] = Allocate<FloatImage>(ga);
    out.anat[AnatContrasts[c]] = anat[c];
  }
  const char * maskNames[6] = { "lesion", "enhancement", "edema", "syrinx", "cord", "csf" };
  std::array<MaskImage::Pointer, 6> masks;
  for (int m = 0; m < 6; ++m)
  {
    masks[m] = Allocate<MaskImage>(ga);
    out.masks[maskNames[m]] = masks[m];
  }
  out.dseg = Allocate<LabelImage>(ga);
  const auto offsets = SubOffsets(ga, pose, n);
  std::array<float *, 4> abuf;
  for (int c = 0; c < 4; ++c)
    abuf[c] = anat[c]->GetBufferPointer();
  std::array<std::uint8_t *, 6> mbuf;
  for (int m = 0; m < 6; ++m)
    mbuf[m] = masks[m]->GetBufferPointer();
  std::uint16_t * dbuf = out.dseg->GetBufferPointer();
  long voxelCount[6] = { 0, 0, 0, 0, 0, 0 };
  std::array<std::array<int, 6>, 6> extent; // per mask: min/max index per axis
  for (auto & e : extent)
    e = { 1 << 30, -1, 1 << 30, -1, 1 << 30, -1 };
  std::size_t idx = 0;
  for (unsigned int z = 0; z < ga.size[2]; ++z)
    for (unsigned int y = 0; y < ga.size[1]; ++y)
      for (unsigned int x = 0; x < ga.size[0]; ++x, ++idx)
      {
        const auto p = ga.Centre(x, y, z);
        const auto q = pose.ToPhantom(p);
        double acc[4] = { 0, 0, 0, 0 };
        if (n == 1)
        {
          const auto & pr = TissueTable[Classify(q, st).tissue];
          acc[0] = pr.t2, acc[1] = pr.t1, acc[2] = pr.t1ce, acc[3] = pr.flair;
        }
        else
          for (const auto & d : offsets)
          {
            const auto & pr = TissueTable[Classify({ q[0] + d[0], q[1] + d[1], q[2] + d[2] }, st).tissue];
            acc[0] += pr.t2, acc[1] += pr.t1, acc[2] += pr.t1ce, acc[3] += pr.flair;
          }
        const double b = bias.Value(p);
        for (int c = 0; c < 4; ++c)
          abuf[c][idx] = static_cast<float>(acc[c] / (n == 1 ? 1.0 : nSub) * b);
        const Sample centre = Classify(q, st);
        dbuf[idx] = centre.tissue;
        const bool in[6] = { centre.tissue == Mass || centre.tissue == Enhancing,
                             centre.tissue == Enhancing,
                             centre.tissue == Edema,
                             centre.tissue == Syrinx,
                             centre.inCord,
                             centre.tissue == Csf };
        for (int m = 0; m < 6; ++m)
        {
          mbuf[m][idx] = in[m] ? 1 : 0;
          if (in[m])
          {
            ++voxelCount[m];
            const int ijk[3] = { static_cast<int>(x), static_cast<int>(y), static_cast<int>(z) };
            for (int a = 0; a < 3; ++a)
            {
              extent[m][2 * a] = std::min(extent[m][2 * a], ijk[a]);
              extent[m][2 * a + 1] = std::max(extent[m][2 * a + 1], ijk[a]);
            }
          }
        }
      }
  if (o.realism.noise)
    for (int c = 0; c < 4; ++c)
    {
      const double wm[4] = { TissueTable[WhiteMatter].t2, TissueTable[WhiteMatter].t1, TissueTable[WhiteMatter].t1ce,
                             TissueTable[WhiteMatter].flair };
      const double sigma = wm[c] / o.realism.snr;
      Rng rng(StreamSeed(o.seed, k, AnatContrasts[c]));
      const std::size_t nv = anat[c]->GetLargestPossibleRegion().GetNumberOfPixels();
      for (std::size_t i = 0; i < nv; ++i)
        abuf[c][i] = static_cast<float>(Rician(abuf[c][i], sigma, rng));
    }

  // ------------------------------------------------ DWI
  const Grid gd = MakeGrid(o, k, o.dwiSize, o.dwiSpacing, "dwi");
  out.gradients = MakeGradientTable(o.b0Volumes, o.directions, o.bValue);
  const unsigned int nvol = static_cast<unsigned int>(out.gradients.entries.size());
  // attenuation table per tissue and FA band: exp(-b g^T D g), D in the world frame
  std::vector<double> atten(12 * 2 * nvol);
  std::array<Mat3, 24> tensors;
  for (int t = 0; t < 12; ++t)
    for (int band = 0; band < 2; ++band)
    {
      Sample s;
      s.tissue = static_cast<std::uint16_t>(t);
      s.faBand = band == 1;
      const Mat3 d = WorldTensor(EffectiveFa(s, st), TissueTable[t].md, pose.rot);
      tensors[2 * t + band] = d;
      for (unsigned int v = 0; v < nvol; ++v)
      {
        const auto & g = out.gradients.entries[v];
        double gdg = 0;
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j)
            gdg += g.direction[i] * d[3 * i + j] * g.direction[j];
        atten[(2 * t + band) * nvol + v] = std::exp(-g.bValue * gdg);
      }
    }
  out.dwi = Allocate<DwiImage>(gd, nvol);
  out.tensor = Allocate<TensorImage>(gd);
  out.s0 = Allocate<FloatImage>(gd);
  out.fa = Allocate<FloatImage>(gd);
  out.md = Allocate<FloatImage>(gd);
  out.dwiCord = Allocate<MaskImage>(gd);
  const auto doffsets = SubOffsets(gd, pose, n);
  float * wbuf = out.dwi->GetBufferPointer();
  std::vector<double> sig(nvol);
  double faBandSum[3] = { 0, 0, 0 };
  long faBandCount[3] = { 0, 0, 0 };
  idx = 0;
  for (unsigned int z = 0; z < gd.size[2]; ++z)
    for (unsigned int y = 0; y < gd.size[1]; ++y)
      for (unsigned int x = 0; x < gd.size[0]; ++x, ++idx)
      {
        const auto p = gd.Centre(x, y, z);
        const auto q = pose.ToPhantom(p);
        std::fill(sig.begin(), sig.end(), 0.0);
        auto accumulate = [&](const Sample & s)
        {
          const double s0 = TissueTable[s.tissue].s0;
          const double * a = &atten[(2 * s.tissue + (s.faBand ? 1 : 0)) * nvol];
          for (unsigned int v = 0; v < nvol; ++v)
            sig[v] += s0 * a[v];
        };
        const Sample centre = Classify(q, st);
        if (n == 1)
          accumulate(centre);
        else
          for (const auto & d : doffsets)
            accumulate(Classify({ q[0] + d[0], q[1] + d[1], q[2] + d[2] }, st));
        const double b = bias.Value(p);
        for (unsigned int v = 0; v < nvol; ++v)
          wbuf[idx * nvol + v] = static_cast<float>(sig[v] / (n == 1 ? 1.0 : nSub) * b);
        const Mat3 & d = tensors[2 * centre.tissue + (centre.faBand ? 1 : 0)];
        TensorPixel tp;
        tp[0] = static_cast<float>(d[0]), tp[1] = static_cast<float>(d[1]), tp[2] = static_cast<float>(d[2]);
        tp[3] = static_cast<float>(d[4]), tp[4] = static_cast<float>(d[5]), tp[5] = static_cast<float>(d[8]);
        out.tensor->GetBufferPointer()[idx] = tp;
        out.s0->GetBufferPointer()[idx] = static_cast<float>(TissueTable[centre.tissue].s0);
        const double fa = EffectiveFa(centre, st);
        out.fa->GetBufferPointer()[idx] = static_cast<float>(fa);
        out.md->GetBufferPointer()[idx] = static_cast<float>(TissueTable[centre.tissue].md);
        out.dwiCord->GetBufferPointer()[idx] = centre.inCord ? 1 : 0;
        if (centre.inCord)
        {
          const double dz = q[2] - st.graftZ;
          const int band = std::abs(dz) <= BandHalf                  ? 0
                           : (dz > BandHalf && dz <= 3 * BandHalf)   ? 1
                           : (dz < -BandHalf && dz >= -3 * BandHalf) ? 2
                                                                     : -1;
          if (band >= 0)
          {
            faBandSum[band] += fa;
            ++faBandCount[band];
          }
        }
      }
  if (o.realism.noise)
  {
    const double sigma = TissueTable[WhiteMatter].s0 / o.realism.snr;
    Rng rng(StreamSeed(o.seed, k, "dwi"));
    const std::size_t total = out.dwi->GetLargestPossibleRegion().GetNumberOfPixels() * nvol;
    for (std::size_t i = 0; i < total; ++i)
      wbuf[i] = static_cast<float>(Rician(wbuf[i], sigma, rng));
  }

  // ------------------------------------------------ truth of this timepoint
  const std::vector<int> days = ScheduleDays(o.scenario, o.timepoints);
  const long baseDay = ParseIsoDate(o.transplantDate) + days[k];
  nlohmann::json t;
  t["id"] = out.id;
  t["days_since_transplant"] = days[k];
  t["date"] = CivilFromDays(baseDay);
  t["acq_time"] = CivilFromDays(baseDay) + "T09:00:00";
  t["pose"] = { { "rotation_deg_xyz", Vec(pose.anglesDeg) },
                { "shift_mm", Vec(pose.shift) },
                { "table_offset_mm", Vec(TableOffset) },
                { "rotation_matrix", pose.rot },
                { "convention", "world LPS = R q + shift + table_offset; R = Rz Ry Rx; q = phantom frame" } };
  t["graft_site_lps"] = Vec(pose.ToWorld({ 0.0, 0.0, st.graftZ }));
  t["anat_grid"] = GridJson(ga);
  t["dwi_grid"] = GridJson(gd);
  t["partial_volume_samples"] = n * n * n;
  const double vv = ga.VoxelVolume();
  auto structure = [&](int maskIndex, const Ellipsoid & e, double analyticVolume)
  {
    nlohmann::json j;
    j["present"] = e.present;
    j["volume_mm3_analytic"] = analyticVolume;
    j["volume_mm3_rasterized"] = voxelCount[maskIndex] * vv;
    j["voxels"] = voxelCount[maskIndex];
    j["lr_diameter_mm"] = e.present ? 2 * e.r[0] : 0.0;
    j["ap_diameter_mm"] = e.present ? 2 * e.r[1] : 0.0;
    j["length_mm"] = e.present ? 2 * e.r[2] : 0.0;
    j["spd_mm2"] = e.present ? 4 * e.r[0] * e.r[1] : 0.0;
    j["spd_minor_diameter_mm"] = e.present ? 2 * std::min(e.r[0], e.r[1]) : 0.0;
    j["centre_lps"] = e.present ? Vec(pose.ToWorld(e.c)) : nlohmann::json(nullptr);
    j["semi_axes_mm_phantom"] = e.present ? Vec(e.r) : nlohmann::json(nullptr);
    if (voxelCount[maskIndex] > 0)
    {
      const auto & ex = extent[maskIndex];
      j["rasterized_extent_mm"] = { (ex[1] - ex[0] + 1) * ga.spacing[0], (ex[3] - ex[2] + 1) * ga.spacing[1],
                                    (ex[5] - ex[4] + 1) * ga.spacing[2] };
    }
    return j;
  };
  nlohmann::json s;
  s["mass"] = structure(0, st.mass, st.mass.Volume());
  s["enhancement"] = structure(1, st.enhancement, st.enhancement.Volume());
  s["edema"] = structure(2, st.edema, st.edema.present ? st.edema.Volume() - st.mass.Volume() : 0.0);
  s["edema"]["note"] = "edema = ellipsoid halo minus the mass (lr/ap/length are the halo's)";
  s["syrinx"] = structure(3, st.syrinx, st.syrinx.Volume());
  s["enhancement"]["note"] = "inside the mass; counted in the mass volume too";
  {
    nlohmann::json c;
    const double sc = CordScale(st, st.graftZ);
    c["ap_diameter_mm_at_graft"] = 2 * CordB * sc;
    c["lr_diameter_mm_at_graft"] = 2 * CordA * sc;
    c["area_mm2_at_graft"] = Pi * CordA * CordB * sc * sc;
    c["swelling_factor"] = st.swelling;
    c["voxels"] = voxelCount[4];
    // slab of +/-20 mm around the graft (phantom frame), analytic and rasterized
    long slab = 0;
    const std::uint8_t * cm = masks[4]->GetBufferPointer();
    std::size_t i = 0;
    for (unsigned int z = 0; z < ga.size[2]; ++z)
      for (unsigned int y = 0; y < ga.size[1]; ++y)
        for (unsigned int x = 0; x < ga.size[0]; ++x, ++i)
          if (cm[i] && std::abs(pose.ToPhantom(ga.Centre(x, y, z))[2] - st.graftZ) <= 20.0)
            ++slab;
    c["slab_half_length_mm"] = 20.0;
    c["slab_volume_mm3_analytic"] = CordSlabVolume(st, 20.0);
    c["slab_volume_mm3_rasterized"] = slab * vv;
    s["cord"] = c;
  }
  t["structures"] = s;
  nlohmann::json fa;
  fa["definition"] = "mean true FA over the cord; epicentre |dz| <= 7.5 mm, rostral 7.5 < dz <= 22.5, caudal "
                     "-22.5 <= dz < -7.5 (dz along the cord from the graft site)";
  fa["epicentre"] = BandFa(st, st.graftZ - BandHalf, st.graftZ + BandHalf);
  fa["rostral"] = BandFa(st, st.graftZ + BandHalf, st.graftZ + 3 * BandHalf);
  fa["caudal"] = BandFa(st, st.graftZ - 3 * BandHalf, st.graftZ - BandHalf);
  const char * bandNames[3] = { "epicentre", "rostral", "caudal" };
  for (int b = 0; b < 3; ++b)
    fa["rasterized_dwi_voxel_centres"][bandNames[b]] = faBandCount[b] ? faBandSum[b] / faBandCount[b] : 0.0;
  fa["fa_scale"] = st.faScale;
  fa["nominal"] = { { "white_matter", TissueTable[WhiteMatter].fa },
                    { "grey_matter", TissueTable[GreyMatter].fa },
                    { "csf", 0.0 },
                    { "csf_md_mm2_s", TissueTable[Csf].md } };
  t["fa"] = fa;
  out.truth = t;
  return out;
}

// ---------------------------------------------------------------- study generation
namespace
{
struct SeriesSpec
{
  const char * contrast;
  int seriesNumber;
  const char * description;
  const char * sequence;
  double tr, te, ti, flip;
};
const SeriesSpec AnatSeries[4] = { { "T2w", 2, "T2W_TSE_AX", "SE", 3000, 100, 0, 90 },
                                   { "T1w", 3, "T1W_SE_AX", "SE", 600, 10, 0, 90 },
                                   { "ce-gadolinium_T1w", 6, "T1W_SE_AX_POST_GD", "SE", 600, 10, 0, 90 },
                                   { "FLAIR", 4, "FLAIR_AX", "IR", 9000, 120, 2500, 90 } };

nlohmann::json
Sidecar(const SeriesSpec & s)
{
  nlohmann::json j;
  j["Manufacturer"] = "GraftWatch";
  j["ManufacturersModelName"] = "gw_phantom";
  j["MagneticFieldStrength"] = 3.0;
  j["RepetitionTime"] = s.tr / 1000.0;
  j["EchoTime"] = s.te / 1000.0;
  if (s.ti > 0)
    j["InversionTime"] = s.ti / 1000.0;
  j["FlipAngle"] = s.flip;
  j["SeriesDescription"] = s.description;
  if (std::string(s.contrast) == "ce-gadolinium_T1w")
    j["ContrastBolusIngredient"] = "GADOLINIUM";
  return j;
}

safety::StructureMeasure
Measure(const nlohmann::json & j)
{
  safety::StructureMeasure m;
  m.volume = j["volume_mm3_analytic"].get<double>();
  m.spd = j["spd_mm2"].get<double>();
  m.spdMinor = j.value("spd_minor_diameter_mm", 0.0);
  m.apDiameter = j["ap_diameter_mm"].get<double>();
  m.length = j["length_mm"].get<double>();
  if (!j["centre_lps"].is_null())
    m.location = j["centre_lps"].get<safety::Point>();
  return m;
}

} // namespace

nlohmann::json
ExpectedFlags(const nlohmann::json & timepoints)
{
  const safety::Rules rules = safety::Rules::Defaults();
  std::vector<safety::TimepointData> tps;
  // the longitudinal module's default change classification (+/-50% and >= 10 mm^3)
  auto lesionKind = [](double before, double after)
  {
    const double dv = after - before;
    if (before > 0 && dv >= 10.0 && dv / before >= 0.5)
      return "enlarging";
    if (before > 0 && -dv >= 10.0 && -dv / before >= 0.5)
      return "shrinking";
    return "stable";
  };
  for (std::size_t k = 0; k < timepoints.size(); ++k)
  {
    const auto & t = timepoints[k];
    const auto & s = t["structures"];
    safety::TimepointData d;
    d.id = t["id"].get<std::string>();
    d.daysSinceTransplant = t["days_since_transplant"].get<double>();
    d.mass = Measure(s["mass"]);
    d.syrinx = Measure(s["syrinx"]);
    d.edema = Measure(s["edema"]);
    d.cordAp = s["cord"]["ap_diameter_mm_at_graft"].get<double>();
    d.faEpicentre = t["fa"]["epicentre"].get<double>();
    d.faRostral = t["fa"]["rostral"].get<double>();
    d.faCaudal = t["fa"]["caudal"].get<double>();
    if (k > 0)
    {
      const auto & prev = timepoints[k - 1]["structures"];
      safety::ChangeItem lesion;
      lesion.volumeBefore = prev["mass"]["volume_mm3_analytic"].get<double>();
      lesion.volumeAfter = s["mass"]["volume_mm3_analytic"].get<double>();
      lesion.kind = lesionKind(lesion.volumeBefore, lesion.volumeAfter);
      lesion.voxels = s["mass"]["voxels"].get<int>();
      lesion.location = d.mass->location;
      d.lesionChanges.push_back(lesion);
      if (s["enhancement"]["present"].get<bool>())
      {
        safety::ChangeItem e;
        e.kind = prev["enhancement"]["present"].get<bool>() ? "stable" : "new";
        e.volumeBefore = prev["enhancement"]["volume_mm3_analytic"].get<double>();
        e.volumeAfter = s["enhancement"]["volume_mm3_analytic"].get<double>();
        e.voxels = s["enhancement"]["voxels"].get<int>();
        e.location = s["enhancement"]["centre_lps"].get<safety::Point>();
        d.enhancementChanges.push_back(e);
      }
    }
    tps.push_back(d);
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto & f : safety::Evaluate(tps, rules))
  {
    nlohmann::json j = safety::ToJson(f);
    j["borderline"] = f.threshold != 0.0 && std::abs(f.value - f.threshold) <= 0.05 * std::abs(f.threshold);
    out.push_back(j);
  }
  return out;
}

namespace
{
std::string
Tsv(const std::vector<std::vector<std::string>> & rows)
{
  std::string s;
  for (const auto & r : rows)
  {
    for (std::size_t i = 0; i < r.size(); ++i)
      s += (i ? "\t" : "") + r[i];
    s += "\n";
  }
  return s;
}

std::string
Dump(const nlohmann::json & j)
{
  return j.dump(2) + "\n";
}

std::string
Compact(const std::string & date) // YYYY-MM-DD -> YYYYMMDD
{
  std::string s;
  for (char c : date)
    if (c != '-')
      s += c;
  return s;
}
} // namespace

nlohmann::json
GenerateStudy(const StudyOptions & o, const fs::path & outDir)
{
  ValidateOptions(o);
  return WithContext(
    "while generating phantom study '" + o.scenario + "'",
    [&]() -> nlohmann::json
    {
      std::error_code ec;
      if (fs::exists(outDir, ec) && !(fs::is_directory(outDir, ec) && (o.force || fs::is_empty(outDir, ec))))
        ThrowOutput("output directory exists and is not empty (use --force): " + outDir.string());
      fs::create_directories(outDir, ec);
      if (ec)
        ThrowOutput("cannot create " + outDir.string() + ": " + ec.message());
      const bool force = o.force;
      const std::string sub = "sub-" + o.subject;
      // where things go
      const bool bids = o.format == OutputFormat::Bids;
      const fs::path subjectDir = bids ? outDir / sub : outDir;
      const fs::path truthRoot = bids ? outDir / "derivatives" / "truth" : outDir / "truth";
      const fs::path truthSubject = bids ? truthRoot / sub : truthRoot;
      auto rel = [&](const fs::path & p) { return fs::relative(p, outDir).generic_string(); };

      nlohmann::json doc;
      doc["schema"] = "graftwatch-phantom-truth/1";
      doc["generator"] = { { "tool", "gw_phantom" }, { "version", Version() } };
      doc["scenario"] = o.scenario;
      doc["description"] = DescribeScenario(o.scenario);
      doc["subject"] = sub;
      doc["seed"] = o.seed;
      doc["format"] = bids ? "bids" : (o.format == OutputFormat::Nifti ? "nifti" : "dicom");
      doc["transplant_date"] = o.transplantDate;
      doc["realism"] = { { "noise", o.realism.noise },
                         { "snr", o.realism.snr },
                         { "bias_field", o.realism.biasField },
                         { "bias_amplitude", o.realism.biasAmplitude },
                         { "pose_change", o.realism.poseChange },
                         { "max_rotation_deg", o.realism.maxRotationDeg },
                         { "max_shift_mm", o.realism.maxShiftMm },
                         { "voxel_jitter", o.realism.voxelJitter },
                         { "partial_volume", o.realism.partialVolume },
                         { "supersampling", o.realism.partialVolume ? o.realism.supersampling : 1 } };
      doc["tissues"] = nlohmann::json::object();
      for (std::uint16_t t = 0; t < 12; ++t)
        doc["tissues"][std::to_string(t)] = TissueName(t);
      doc["timepoints"] = nlohmann::json::array();
      const auto table = MakeGradientTable(o.b0Volumes, o.directions, o.bValue);
      std::vector<std::vector<std::string>> sessions = { { "session_id", "acq_time" } };

      for (int k = 0; k < o.timepoints; ++k)
      {
        ReportProgress(static_cast<double>(k) / o.timepoints, "simulating " + SessionId(k));
        TimepointImages tp = SimulateTimepoint(o, k);
        nlohmann::json t = tp.truth;
        const std::string ses = tp.id;
        const std::string prefix = bids ? sub + "_" + ses + "_" : ses + "_";
        nlohmann::json files;
        // ---- acquired images
        if (o.format == OutputFormat::Dicom)
        {
          const fs::path dicomDir = outDir / "dicom" / ses;
          dicom::SeriesDescriptor d;
          d.patientName = o.patientName;
          d.patientId = o.patientId;
          d.uidSeed = "gw_phantom/" + std::to_string(o.seed) + "/" + o.scenario + "/" + sub;
          d.studyDate = Compact(t["date"].get<std::string>());
          d.studyTime = "090000.00";
          d.studyId = std::to_string(k + 1);
          d.accessionNumber = "GWP" + std::to_string(k + 1);
          for (const auto & s : AnatSeries)
          {
            dicom::SeriesDescriptor ds = d;
            ds.seriesNumber = s.seriesNumber;
            ds.seriesDescription = s.description;
            ds.protocolName = s.description;
            ds.scanningSequence = s.sequence;
            ds.repetitionTime = s.tr;
            ds.echoTime = s.te;
            ds.inversionTime = s.ti;
            ds.flipAngle = s.flip;
            if (std::string(s.contrast) == "ce-gadolinium_T1w")
              ds.contrastBolusAgent = "GADOBUTROL";
            char name[64];
            std::snprintf(name, sizeof(name), "S%02d_%s", s.seriesNumber, s.description);
            const fs::path dir = dicomDir / name;
            dicom::WriteDicomSeries(tp.anat.at(s.contrast), dir, ds, force);
            files[s.contrast] = rel(dir);
          }
          dicom::SeriesDescriptor ds = d;
          ds.seriesNumber = 5;
          ds.seriesDescription = "DTI_" + std::to_string(o.directions) + "DIR_B" + std::to_string(int(o.bValue));
          ds.protocolName = ds.seriesDescription;
          ds.scanningSequence = "EP";
          ds.sequenceVariant = "SK\\SS";
          ds.repetitionTime = 4000;
          ds.echoTime = 70;
          if (o.diffusionConvention != "standard")
            ds.manufacturer = "SIEMENS";
          const auto conv = o.diffusionConvention == "standard"  ? dicom::DiffusionConvention::Standard
                            : o.diffusionConvention == "siemens" ? dicom::DiffusionConvention::Siemens
                                                                 : dicom::DiffusionConvention::StandardAndSiemens;
          const fs::path dir = dicomDir / ("S05_" + ds.seriesDescription);
          dicom::WriteDicomDwiSeries(tp.dwi, tp.gradients, dir, ds, conv, force);
          files["dwi"] = rel(dir);
        }
        else
        {
          const fs::path anatDir = bids ? subjectDir / ses / "anat" : outDir;
          const fs::path dwiDir = bids ? subjectDir / ses / "dwi" : outDir;
          for (const auto & s : AnatSeries)
          {
            const fs::path p = anatDir / (prefix + s.contrast + ".nii.gz");
            io::WriteImage(tp.anat.at(s.contrast).GetPointer(), p, force);
            if (bids)
              WriteTextFile(anatDir / (prefix + s.contrast + ".json"), Dump(Sidecar(s)), force);
            files[s.contrast] = rel(p);
          }
          const fs::path p = dwiDir / (prefix + "dwi.nii.gz");
          io::WriteDwi(io::Dwi{ tp.dwi, tp.gradients }, p, force);
          if (bids)
          {
            const SeriesSpec dwiSpec{ "dwi", 5, "DTI", "EP", 4000, 70, 0, 90 };
            WriteTextFile(dwiDir / (prefix + "dwi.json"), Dump(Sidecar(dwiSpec)), force);
          }
          files["dwi"] = rel(p);
          files["bval"] = rel(dwiDir / (prefix + "dwi.bval"));
          files["bvec"] = rel(dwiDir / (prefix + "dwi.bvec"));
        }
        // ---- truth images
        const fs::path tAnat = bids ? truthSubject / ses / "anat" : truthSubject;
        const fs::path tDwi = bids ? truthSubject / ses / "dwi" : truthSubject;
        for (const auto & [name, mask] : tp.masks)
        {
          const fs::path p = tAnat / (prefix + "label-" + name + "_mask.nii.gz");
          io::WriteImage(mask.GetPointer(), p, force);
          files["truth"]["mask_" + name] = rel(p);
        }
        {
          const fs::path p = tAnat / (prefix + "dseg.nii.gz");
          io::WriteImage(tp.dseg.GetPointer(), p, force);
          files["truth"]["dseg"] = rel(p);
        }
        const std::pair<const char *, const FloatImage *> maps[3] = { { "FA", tp.fa },
                                                                      { "MD", tp.md },
                                                                      { "S0", tp.s0 } };
        for (const auto & [name, img] : maps)
        {
          const fs::path p = tDwi / (prefix + "desc-truth_" + name + ".nii.gz");
          io::WriteImage(img, p, force);
          files["truth"][name] = rel(p);
        }
        {
          const fs::path p = tDwi / (prefix + "desc-truth_tensor.nii.gz");
          io::WriteImage(tp.tensor.GetPointer(), p, force);
          files["truth"]["tensor"] = rel(p);
          const fs::path c = tDwi / (prefix + "space-dwi_label-cord_mask.nii.gz");
          io::WriteImage(tp.dwiCord.GetPointer(), c, force);
          files["truth"]["dwi_cord_mask"] = rel(c);
        }
        t["files"] = files;
        doc["timepoints"].push_back(t);
        sessions.push_back({ ses, t["acq_time"].get<std::string>() });
      }
      ReportProgress(1.0, "writing truth");
      doc["graft_site_lps"] = doc["timepoints"][0]["graft_site_lps"];
      doc["safety_rules"] = safety::Rules::Defaults().ToJson();
      doc["expected_flags"] = ExpectedFlags(doc["timepoints"]);
      std::set<std::string> codes;
      for (const auto & f : doc["expected_flags"])
        if (!f["borderline"].get<bool>())
          codes.insert(f["code"].get<std::string>());
      doc["expected_flag_codes"] = codes;
      doc["gradient_table"] = nlohmann::json::array();
      for (const auto & e : table.entries)
        doc["gradient_table"].push_back({ { "b", e.bValue }, { "direction_lps", e.direction } });

      // study metadata read by gw::followup (BIDS sessions.tsv + graftwatch.json)
      const std::string sessionsName = bids ? sub + "_sessions.tsv" : "sessions.tsv";
      WriteTextFile(subjectDir / sessionsName, Tsv(sessions), force);
      nlohmann::json meta;
      meta["transplant_date"] = o.transplantDate;
      meta["graft_site_lps"] = doc["graft_site_lps"];
      meta["phantom"] = { { "scenario", o.scenario }, { "seed", o.seed } };
      WriteTextFile(subjectDir / "graftwatch.json", Dump(meta), force);
      if (bids)
      {
        nlohmann::json dd;
        dd["Name"] = "GraftWatch phantom study (" + o.scenario + ")";
        dd["BIDSVersion"] = "1.8.0";
        dd["DatasetType"] = "raw";
        dd["GeneratedBy"] = { { { "Name", "gw_phantom" }, { "Version", Version() } } };
        WriteTextFile(outDir / "dataset_description.json", Dump(dd), force);
        WriteTextFile(outDir / "participants.tsv", Tsv({ { "participant_id" }, { sub } }), force);
        nlohmann::json td = dd;
        td["Name"] = "GraftWatch phantom ground truth";
        td["DatasetType"] = "derivative";
        WriteTextFile(truthRoot / "dataset_description.json", Dump(td), force);
        std::vector<std::vector<std::string>> dseg = { { "index", "name" } };
        for (std::uint16_t t = 0; t < 12; ++t)
          dseg.push_back({ std::to_string(t), TissueName(t) });
        WriteTextFile(truthRoot / "dseg.tsv", Tsv(dseg), force);
      }
      const fs::path truthFile = truthSubject / (bids ? sub + "_truth.json" : "truth.json");
      doc["truth_file"] = rel(truthFile);
      WriteTextFile(truthFile, Dump(doc), force);
      return doc;
    },
    ErrorKind::Output);
}
} // namespace gw::phantom
