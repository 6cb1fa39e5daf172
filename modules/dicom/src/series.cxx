// Scan, series grouping, slice sorting, geometry and volume assembly.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/parallel.h"
#include "internal.h"

namespace gw::dicom
{
namespace
{
using Vec3 = std::array<double, 3>;

Vec3
Cross(const Vec3 & a, const Vec3 & b)
{
  return { a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0] };
}
double
Dot(const Vec3 & a, const Vec3 & b)
{
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
double
Norm(const Vec3 & a)
{
  return std::sqrt(Dot(a, a));
}
std::string
Fmt(double v, int precision = 3)
{
  std::ostringstream s;
  s.precision(precision);
  s << std::fixed << v;
  return s.str();
}

void
CollectFiles(const fs::path & p, bool recursive, std::vector<fs::path> & files, std::vector<std::string> & notes)
{
  std::error_code ec;
  if (fs::is_regular_file(p, ec))
  {
    files.push_back(p);
    return;
  }
  if (!fs::is_directory(p, ec))
  {
    notes.push_back(p.string() + ": not found");
    return;
  }
  if (recursive)
  {
    for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec))
        files.push_back(it->path());
  }
  else
  {
    for (auto it = fs::directory_iterator(p, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec))
        files.push_back(it->path());
  }
  if (ec)
    notes.push_back(p.string() + ": " + ec.message());
}
} // namespace

ScanResult
ScanDirectories(const std::vector<fs::path> & paths, const ScanOptions & options)
{
  ScanResult result;
  std::vector<fs::path> files;
  for (const auto & p : paths)
    CollectFiles(p, options.recursive, files, result.notes);
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  result.filesSeen = files.size();

  // parse in parallel (2 threads: I/O and parsing overlap); DCMTK dataset objects are per thread
  std::vector<detail::ParsedFile> parsed(files.size());
  ParallelFor(files.size(), ThreadCount(0, 4), 1,
              [&](std::size_t begin, std::size_t end)
              {
                for (std::size_t i = begin; i < end; ++i)
                {
                  parsed[i] = detail::ParseFile(files[i]);
                  for (auto & f : parsed[i].info.frames)
                    f.fileIndex = i;
                }
              });

  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < files.size(); ++i)
  {
    auto & pf = parsed[i];
    if (!pf.isImage)
    {
      result.notes.push_back(files[i].string() + ": skipped (" + pf.skipReason + ")");
      continue;
    }
    ++result.dicomFiles;
    const std::string key = pf.info.uid + "|" + pf.seriesKeyExtra;
    auto it = index.find(key);
    if (it == index.end())
    {
      index[key] = result.series.size();
      result.series.push_back(std::move(pf.info));
    }
    else
    {
      SeriesInfo & s = result.series[it->second];
      s.frames.insert(s.frames.end(), pf.info.frames.begin(), pf.info.frames.end());
      s.notes.insert(s.notes.end(), pf.info.notes.begin(), pf.info.notes.end());
    }
  }
  // the same object in several files (copies, re-exports): keep the first file (scan order)
  for (auto & s : result.series)
  {
    std::set<std::pair<std::string, unsigned>> seen;
    std::set<std::size_t> dropped;
    std::vector<FrameRef> unique;
    for (auto & f : s.frames)
    {
      if (!f.sopInstanceUid.empty() && !seen.insert({ f.sopInstanceUid, f.frame }).second)
      {
        dropped.insert(f.fileIndex);
        continue;
      }
      unique.push_back(std::move(f));
    }
    for (std::size_t i : dropped)
      result.notes.push_back(files[i].string() + ": skipped (duplicate of an object already found)");
    s.frames = std::move(unique);
  }
  // distinguish split series (same UID, different orientation/size/echo)
  std::map<std::string, int> uidCount;
  for (const auto & s : result.series)
    ++uidCount[s.uid];
  std::map<std::string, int> uidSeen;
  std::vector<SeriesInfo> kept;
  for (auto & s : result.series)
  {
    if (uidCount[s.uid] > 1)
      s.uid += "#" + std::to_string(++uidSeen[s.uid]);
    s.classification = ClassifySeries(s);
    if (!options.includeLocalizers && s.classification == "localizer")
    {
      result.notes.push_back("series " + std::to_string(s.seriesNumber) + " (" + s.description +
                             "): localizer skipped");
      continue;
    }
    if (!options.includeDerived && s.classification == "derived")
    {
      result.notes.push_back("series " + std::to_string(s.seriesNumber) + ": derived series skipped");
      continue;
    }
    kept.push_back(std::move(s));
  }
  result.series = std::move(kept);
  std::stable_sort(result.series.begin(), result.series.end(),
                   [](const SeriesInfo & a, const SeriesInfo & b)
                   { return a.seriesNumber != b.seriesNumber ? a.seriesNumber < b.seriesNumber : a.uid < b.uid; });
  return result;
}

std::string
ClassifySeries(const SeriesInfo & series)
{
  // a series without header facts classifies on its description alone
  SeriesInfo s = series;
  if (!s.header.is_object())
    s.header = nlohmann::json::object();
  auto upper = [](std::string t)
  {
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return t;
  };
  std::string imageType;
  if (s.header.contains("ImageType"))
    for (const auto & v : s.header["ImageType"])
      imageType += upper(v.get<std::string>()) + "\\";
  const std::string desc = upper(s.description + " " + s.header.value("ProtocolName", std::string()) + " " +
                                 s.header.value("SequenceName", std::string()));
  auto has = [&](const char * w) { return desc.find(w) != std::string::npos; };
  if (imageType.find("LOCALIZER") != std::string::npos || has("LOCALIZER") || has("SCOUT") || has("SURVEY") ||
      has("LOCALISER") || has("AAHEAD"))
    return "localizer";
  const bool derived = imageType.rfind("DERIVED", 0) == 0 || has("ADC") || has("TRACEW") || has("_FA") || has(" FA") ||
                       has("COLFA") || has("EXP") || imageType.find("ADC") != std::string::npos ||
                       imageType.find("TRACE") != std::string::npos || imageType.find("FA\\") != std::string::npos;
  bool diffusion = imageType.find("DIFFUSION") != std::string::npos || has("DWI") || has("DTI") || has("DIFF") ||
                   has("TENSOR") || has("EP2D_DIFF") || has("EP_B");
  int nonzeroB = 0;
  for (const auto & f : s.frames)
    if (f.bValue > 50.0)
      ++nonzeroB;
  if (nonzeroB > 0)
    diffusion = true;
  if (derived)
    return "derived";
  if (diffusion)
    return "DWI";
  if (has("FLAIR") || has("DARK-FLUID") || has("DARK_FLUID"))
    return "FLAIR";
  const double te = s.header.value("EchoTime", 0.0) * 1000.0;       // [ms]
  const double tr = s.header.value("RepetitionTime", 0.0) * 1000.0; // [ms]
  const double ti = s.header.value("InversionTime", 0.0) * 1000.0;
  const bool contrast = !s.header.value("ContrastBolusAgent", std::string()).empty() || has("GAD") || has("+C") ||
                        has("POST") || has("CONTRAST") || has(" KM") || has("_KM");
  const bool t1Words = has("T1") || has("MPRAGE") || has("MP-RAGE") || has("SPGR") || has("TFL") || has("VIBE") ||
                       has("BRAVO") || has("FSPGR");
  const bool t2Words = has("T2") || has("TSE") || has("SPACE") || has("CUBE");
  if (has("BOLD") || has("FMRI") || has("RESTING") || has("EPI"))
    return "other";
  if (t1Words || (!t2Words && te > 0 && te < 30 && tr > 0 && tr < 1000 && ti == 0) || (ti > 300 && ti < 1500))
    return contrast ? "T1post" : "T1";
  if (has("PD") && !t2Words)
    return "PD";
  if (t2Words || (te > 60 && tr > 1500))
    return "T2";
  return "other";
}

std::string
OutputBaseName(const SeriesInfo & series)
{
  std::string name = std::to_string(series.seriesNumber) + "_" + SanitizeFileName(series.description, 60);
  const auto hash = series.uid.find('#');
  if (hash != std::string::npos)
    name += "_" + SanitizeFileName(series.uid.substr(hash + 1), 8);
  return SanitizeFileName(name, 80);
}

namespace
{
struct SliceGroup
{
  double distance = 0.0;
  Vec3 position{ 0, 0, 0 };
  std::vector<const FrameRef *> frames; // one per volume, in volume order
};

bool
VolumeOrder(const FrameRef * a, const FrameRef * b)
{
  if (a->dimensionIndex != b->dimensionIndex)
    return a->dimensionIndex < b->dimensionIndex;
  if (a->temporalIndex != b->temporalIndex)
    return a->temporalIndex < b->temporalIndex;
  if (a->instanceNumber != b->instanceNumber)
    return a->instanceNumber < b->instanceNumber;
  if (a->acquisitionTime != b->acquisitionTime)
    return a->acquisitionTime < b->acquisitionTime;
  if (a->fileIndex != b->fileIndex)
    return a->fileIndex < b->fileIndex;
  return a->frame < b->frame;
}

/// Decoded-file cache for one LoadSeries call (multi-frame files are decoded once).
class PixelCache
{
public:
  const detail::PixelBlock & Get(const FrameRef & frame)
  {
    if (!m_Valid || frame.fileIndex != m_FileIndex || frame.file != m_File)
    {
      m_Valid = false;
      m_Block = detail::DecodePixels(frame.file, frame.pixelData);
      m_File = frame.file;
      m_FileIndex = frame.fileIndex;
      m_Valid = true;
    }
    return m_Block;
  }

private:
  bool m_Valid = false;
  std::size_t m_FileIndex = 0;
  fs::path m_File;
  detail::PixelBlock m_Block;
};

/// Reads sample `i` of a block as a signed 64-bit value (or float through `isFloat`).
double
Sample(const detail::PixelBlock & b, std::size_t i)
{
  const std::uint8_t * p = b.bytes.data();
  if (b.isFloat)
  {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  switch (b.bitsAllocated)
  {
    case 8:
      return b.isSigned ? double(static_cast<std::int8_t>(p[i])) : double(p[i]);
    case 16:
    {
      std::uint16_t u;
      std::memcpy(&u, p + 2 * i, 2);
      return b.isSigned ? double(static_cast<std::int16_t>(u)) : double(u);
    }
    default:
    {
      std::uint32_t u;
      std::memcpy(&u, p + 4 * i, 4);
      return b.isSigned ? double(static_cast<std::int32_t>(u)) : double(u);
    }
  }
}

std::size_t
TypeSize(const std::string & t)
{
  if (t == "uint8" || t == "int8")
    return 1;
  if (t == "int16" || t == "uint16")
    return 2;
  return 4;
}

} // namespace

namespace detail
{
template <typename T>
void
ToFloatAs(const LoadedSeries & s, std::size_t begin, std::size_t count, float * out)
{
  const T * p = reinterpret_cast<const T *>(s.voxels.data()) + begin;
  for (std::size_t i = 0; i < count; ++i)
    out[i] = static_cast<float>(double(p[i]) * s.sclSlope + s.sclIntercept);
}

void
ToFloat(const LoadedSeries & s, std::size_t begin, std::size_t count, float * out)
{
  if (begin + count > s.VoxelCount())
    ThrowInternal("voxel range out of bounds");
  const std::string & t = s.pixelType;
  if (t == "uint8")
    ToFloatAs<std::uint8_t>(s, begin, count, out);
  else if (t == "int8")
    ToFloatAs<std::int8_t>(s, begin, count, out);
  else if (t == "int16")
    ToFloatAs<std::int16_t>(s, begin, count, out);
  else if (t == "uint16")
    ToFloatAs<std::uint16_t>(s, begin, count, out);
  else if (t == "int32")
    ToFloatAs<std::int32_t>(s, begin, count, out);
  else if (t == "uint32")
    ToFloatAs<std::uint32_t>(s, begin, count, out);
  else
    ToFloatAs<float>(s, begin, count, out);
}
} // namespace detail

double
LoadedSeries::Value(std::size_t index) const
{
  const std::uint8_t * p = voxels.data() + index * TypeSize(pixelType);
  double v = 0;
  if (pixelType == "uint8")
    v = *p;
  else if (pixelType == "int8")
    v = static_cast<std::int8_t>(*p);
  else if (pixelType == "int16")
  {
    std::int16_t x;
    std::memcpy(&x, p, 2);
    v = x;
  }
  else if (pixelType == "uint16")
  {
    std::uint16_t x;
    std::memcpy(&x, p, 2);
    v = x;
  }
  else if (pixelType == "int32")
  {
    std::int32_t x;
    std::memcpy(&x, p, 4);
    v = x;
  }
  else if (pixelType == "uint32")
  {
    std::uint32_t x;
    std::memcpy(&x, p, 4);
    v = x;
  }
  else
  {
    float x;
    std::memcpy(&x, p, 4);
    v = x;
  }
  return v * sclSlope + sclIntercept;
}

std::array<double, 16>
LoadedSeries::RasAffine() const
{
  std::array<double, 16> a{};
  for (int r = 0; r < 3; ++r)
  {
    const double sign = r < 2 ? -1.0 : 1.0;
    for (int c = 0; c < 3; ++c)
      a[r * 4 + c] = sign * direction[r * 3 + c] * spacing[c];
    a[r * 4 + 3] = sign * origin[r];
  }
  a[15] = 1.0;
  return a;
}

gw::io::GradientTable
LoadedSeries::FslGradients() const
{
  gw::io::GradientTable out;
  out.frame = "fsl";
  const auto a = RasAffine();
  const double det =
    a[0] * (a[5] * a[10] - a[6] * a[9]) - a[1] * (a[4] * a[10] - a[6] * a[8]) + a[2] * (a[4] * a[9] - a[5] * a[8]);
  // axes: x and y as the voxel grid; z along their cross product (sign of the slice axis), as dcm2niix does for
  // stacks whose slice positions are slightly sheared
  std::array<Vec3, 3> axes;
  for (int c = 0; c < 3; ++c)
  {
    axes[c] = { direction[c], direction[3 + c], direction[6 + c] };
    const double n = Norm(axes[c]);
    for (double & v : axes[c])
      v = n > 0 ? v / n : 0.0;
  }
  Vec3 z = Cross(axes[0], axes[1]);
  if (Dot(z, axes[2]) < 0)
    z = { -z[0], -z[1], -z[2] };
  axes[2] = z;
  for (const auto & e : gradients.entries)
  {
    gw::io::GradientEntry f;
    f.bValue = e.bValue;
    for (int c = 0; c < 3; ++c)
      f.direction[c] = Dot(e.direction, axes[c]);
    if (det > 0)
      f.direction[0] = -f.direction[0];
    for (double & v : f.direction)
      if (v == 0.0)
        v = 0.0; // no negative zero
    out.entries.push_back(f);
  }
  return out;
}

LoadedSeries
LoadSeries(const SeriesInfo & series)
{
  return WithContext(
    "while loading series " + std::to_string(series.seriesNumber) + " (" + series.description + ")",
    [&]()
    {
      LoadedSeries out;
      if (series.frames.empty())
        ThrowInput("series has no images");
      if (series.samplesPerPixel != 1)
        ThrowInput("colour images (SamplesPerPixel " + std::to_string(series.samplesPerPixel) + ") are not supported");
      const Vec3 row{ series.orientation[0], series.orientation[1], series.orientation[2] };
      const Vec3 col{ series.orientation[3], series.orientation[4], series.orientation[5] };
      Vec3 normal = Cross(row, col);
      if (Norm(normal) < 0.5)
        ThrowInput("degenerate ImageOrientationPatient");
      const double dx = series.pixelSpacing[1], dy = series.pixelSpacing[0];

      // frames in use: drop isotropic (trace) diffusion frames mixed into a directional series
      std::vector<const FrameRef *> frames;
      std::size_t trace = 0;
      auto isTrace = [](const FrameRef & f) { return !f.dimensionIndex.empty() && f.dimensionIndex[0] == 0xFFFFFFFFu; };
      bool directional = false; // isotropic frames are dropped only from series that also hold directional ones
      for (const auto & f : series.frames)
        if (!isTrace(f) && f.hasGradient && f.bValue > gw::io::B0Threshold)
          directional = true;
      for (const auto & f : series.frames)
      {
        if (directional && isTrace(f))
        {
          ++trace;
          continue;
        }
        frames.push_back(&f);
      }
      if (frames.empty())
      {
        for (const auto & f : series.frames)
          frames.push_back(&f);
        trace = 0;
      }
      if (trace > 0)
        out.warnings.push_back("excluded " + std::to_string(trace) + " isotropic (trace) diffusion frames");

      std::vector<std::vector<const FrameRef *>> volumes; // [t][z]
      std::vector<Vec3> slicePositions;                   // per z, LPS (centre of first voxel, before y flip)
      unsigned rows = series.rows, cols = series.columns;
      const bool mosaic = series.mosaicSlices > 1;
      unsigned tilesPerRow = 1;
      Vec3 sliceDir = normal;
      double dz = 0.0;
      if (mosaic)
      {
        tilesPerRow = static_cast<unsigned>(std::ceil(std::sqrt(double(series.mosaicSlices))));
        if (series.rows % tilesPerRow != 0 || series.columns % tilesPerRow != 0)
          ThrowInput("mosaic size not divisible by the tile grid");
        rows = series.rows / tilesPerRow;
        cols = series.columns / tilesPerRow;
        std::sort(frames.begin(), frames.end(), VolumeOrder);
        for (const auto * f : frames)
          volumes.push_back({ f });
        if (Norm(series.mosaicNormal) > 0.5)
          sliceDir = series.mosaicNormal;
        dz = series.spacingBetweenSlices > 0 ? series.spacingBetweenSlices : series.sliceThickness;
        if (dz <= 0)
          ThrowInput("mosaic without slice spacing");
        // position of the first slice: ImagePositionPatient refers to the corner of the whole mosaic
        const Vec3 p = frames[0]->position;
        Vec3 first;
        for (int k = 0; k < 3; ++k)
          first[k] = p[k] + row[k] * dx * (double(series.columns) - cols) / 2.0 +
                     col[k] * dy * (double(series.rows) - rows) / 2.0;
        for (unsigned z = 0; z < series.mosaicSlices; ++z)
        {
          Vec3 q;
          for (int k = 0; k < 3; ++k)
            q[k] = first[k] + sliceDir[k] * dz * z;
          slicePositions.push_back(q);
        }
        for (const auto * f : frames)
          if (Norm({ f->position[0] - p[0], f->position[1] - p[1], f->position[2] - p[2] }) > 0.01)
            ThrowInput("mosaic volumes at different positions (moving table?)");
      }
      else
      {
        // group by position along the normal
        std::vector<std::pair<double, const FrameRef *>> byDistance;
        for (const auto * f : frames)
          byDistance.emplace_back(Dot(f->position, normal), f);
        std::stable_sort(byDistance.begin(), byDistance.end(),
                         [](const auto & a, const auto & b) { return a.first < b.first; });
        std::vector<SliceGroup> groups;
        constexpr double positionTolerance = 0.01; // [mm] same slice
        for (const auto & [d, f] : byDistance)
        {
          if (groups.empty() || d - groups.back().distance > positionTolerance)
          {
            groups.push_back({ d, f->position, {} });
          }
          const Vec3 & q = groups.back().position;
          if (Norm({ f->position[0] - q[0], f->position[1] - q[1], f->position[2] - q[2] }) > 0.1)
            ThrowInput("two images at the same slice location but different in-plane positions (" +
                       Fmt(f->position[0]) + "," + Fmt(f->position[1]) + "," + Fmt(f->position[2]) + ")");
          groups.back().frames.push_back(f);
        }
        const std::size_t nVol = groups[0].frames.size();
        for (const auto & g : groups)
          if (g.frames.size() != nVol)
          {
            ThrowInput("inconsistent number of images per slice location (" + std::to_string(g.frames.size()) + " at " +
                       Fmt(g.distance) + " mm vs " + std::to_string(nVol) + "): missing images or incomplete volumes");
          }
        for (auto & g : groups)
          std::sort(g.frames.begin(), g.frames.end(), VolumeOrder);
        volumes.assign(nVol, {});
        for (auto & g : groups)
        {
          for (std::size_t t = 0; t < nVol; ++t)
            volumes[t].push_back(g.frames[t]);
          slicePositions.push_back(g.position);
        }
        const std::size_t nz = groups.size();
        if (nz > 1)
        {
          std::vector<double> gaps;
          for (std::size_t z = 1; z < nz; ++z)
            gaps.push_back(groups[z].distance - groups[z - 1].distance);
          std::vector<double> sorted = gaps;
          std::sort(sorted.begin(), sorted.end());
          const double median = sorted[sorted.size() / 2];
          for (std::size_t z = 0; z < gaps.size(); ++z)
            if (gaps[z] > 1.5 * median)
              ThrowInput("missing slice: gap of " + Fmt(gaps[z]) + " mm between slices " + std::to_string(z) + " and " +
                         std::to_string(z + 1) + " (typical spacing " + Fmt(median) + " mm)");
          const double maxDev = std::abs(sorted.back() - median) > std::abs(sorted.front() - median)
                                  ? std::abs(sorted.back() - median)
                                  : std::abs(sorted.front() - median);
          if (maxDev > 0.1 * median)
            ThrowInput("irregular slice spacing: " + Fmt(sorted.front()) + " to " + Fmt(sorted.back()) +
                       " mm (more than 10% from the typical " + Fmt(median) + " mm): refusing a distorted volume");
          if (maxDev > 0.01 * median + 1e-3)
            out.warnings.push_back("irregular slice spacing: " + Fmt(sorted.front()) + " to " + Fmt(sorted.back()) +
                                   " mm (mean spacing used)");
          const Vec3 & a = slicePositions.front();
          const Vec3 & b = slicePositions.back();
          Vec3 span{ b[0] - a[0], b[1] - a[1], b[2] - a[2] };
          const double length = Norm(span);
          dz = length / double(nz - 1);
          for (double & v : span)
            v /= length;
          const double cosine = Dot(span, normal);
          if (cosine < 0.99999)
          {
            const double angle = std::acos(std::min(1.0, cosine)) * 180.0 / M_PI;
            out.warnings.push_back("gantry tilt / sheared stack of " + Fmt(angle, 2) +
                                   " degrees: slice axis follows the slice positions (non-orthogonal affine)");
            sliceDir = span;
          }
        }
        else
        {
          dz = series.spacingBetweenSlices > 0 ? series.spacingBetweenSlices : series.sliceThickness;
          if (dz <= 0)
            dz = 1.0;
        }
      }
      const std::size_t nz = slicePositions.size(), nt = volumes.size();
      out.size = { cols, rows, nz, nt };
      out.spacing = { dx, dy, dz };
      // voxel axes: i along row cosine, j along the column cosine reversed (rows flipped), k along slices
      for (int k = 0; k < 3; ++k)
      {
        out.direction[k * 3 + 0] = row[k];
        out.direction[k * 3 + 1] = -col[k];
        out.direction[k * 3 + 2] = sliceDir[k];
        out.origin[k] = slicePositions[0][k] + col[k] * dy * (double(rows) - 1.0);
      }

      // rescale: one slope/intercept for the series, else float output
      double slope = frames[0]->rescaleSlope, intercept = frames[0]->rescaleIntercept;
      bool uniform = true;
      for (const auto * f : frames)
        if (std::abs(f->rescaleSlope - slope) > 1e-9 * std::abs(slope) ||
            std::abs(f->rescaleIntercept - intercept) > 1e-9 * (1.0 + std::abs(intercept)))
          uniform = false;

      // decode in file order (every file read once, multi-frame files decoded once), files spread over a few
      // threads; samples go straight into the output buffer: stored values as they are when one rescale holds for
      // the series, else real values as float32
      const std::size_t sliceVoxels = std::size_t(rows) * cols;
      const std::size_t voxelCount = sliceVoxels * nz * nt;
      struct Job
      {
        const FrameRef * frame;
        std::size_t t, z;
      };
      std::vector<Job> jobs;
      for (std::size_t t = 0; t < nt; ++t)
        for (std::size_t z = 0; z < volumes[t].size(); ++z)
          jobs.push_back({ volumes[t][z], t, z });
      std::sort(jobs.begin(), jobs.end(),
                [](const Job & a, const Job & b)
                {
                  return a.frame->fileIndex != b.frame->fileIndex ? a.frame->fileIndex < b.frame->fileIndex
                                                                  : a.frame->frame < b.frame->frame;
                });
      std::vector<std::pair<std::size_t, std::size_t>> ranges; // jobs of one file
      for (std::size_t i = 0; i < jobs.size(); ++i)
        if (i == 0 || jobs[i].frame->fileIndex != jobs[i - 1].frame->fileIndex ||
            jobs[i].frame->file != jobs[i - 1].frame->file)
          ranges.emplace_back(i, i + 1);
        else
          ranges.back().second = i + 1;

      // the pixel format of the series is that of the first file (all others must match it)
      PixelCache firstCache;
      const detail::PixelBlock & first = WithContext(
        jobs[0].frame->file.filename().string(),
        [&]() -> const detail::PixelBlock & { return firstCache.Get(*jobs[0].frame); }, ErrorKind::Input);
      const bool isFloat = first.isFloat, isSigned = first.isSigned;
      const unsigned bits = first.bitsAllocated;
      const bool raw = uniform; // stored samples copied as they are
      const std::size_t outSize = raw ? bits / 8 : 4;
      out.voxels.resize(voxelCount * outSize); // every voxel is written below (each (t, z) has exactly one job)

      std::atomic<std::size_t> nextRange{ 0 };
      std::mutex mutex;
      std::exception_ptr failure;
      auto place = [&](const detail::PixelBlock & block, const Job & job)
      {
        const std::string & name = job.frame->file.filename().string();
        if (block.rows != series.rows || block.columns != series.columns)
          ThrowInput(name + ": image size differs from the series");
        if (job.frame->frame >= block.frames)
          ThrowInput(name + ": frame " + std::to_string(job.frame->frame) + " missing in pixel data");
        if (isFloat != block.isFloat || isSigned != block.isSigned || bits != block.bitsAllocated)
          ThrowInput(name + ": pixel format differs within the series");
        const std::size_t frameOffset = std::size_t(job.frame->frame) * series.rows * series.columns;
        const double s = job.frame->rescaleSlope;
        const double b = job.frame->rescaleIntercept;
        const std::size_t sampleSize = bits / 8;
        const unsigned zCount = mosaic ? series.mosaicSlices : 1;
        for (unsigned zz = 0; zz < zCount; ++zz)
        {
          const std::size_t z = mosaic ? zz : job.z;
          const unsigned tileRow = mosaic ? zz / tilesPerRow : 0, tileCol = mosaic ? zz % tilesPerRow : 0;
          std::uint8_t * dst = out.voxels.data() + (job.t * nz + z) * sliceVoxels * outSize;
          for (unsigned r = 0; r < rows; ++r)
          {
            const std::size_t srcRow = std::size_t(tileRow) * rows + r;
            const std::size_t src = frameOffset + srcRow * series.columns + std::size_t(tileCol) * cols;
            std::uint8_t * d = dst + std::size_t(rows - 1 - r) * cols * outSize; // rows reversed (y flip)
            if (raw)
              std::memcpy(d, block.bytes.data() + src * sampleSize, cols * sampleSize);
            else
              for (unsigned c = 0; c < cols; ++c)
              {
                const float v = static_cast<float>(Sample(block, src + c) * s + b);
                std::memcpy(d + std::size_t(c) * 4, &v, 4);
              }
          }
        }
      };
      auto worker = [&](PixelCache & cache)
      {
        for (std::size_t ri = nextRange++; ri < ranges.size(); ri = nextRange++)
        {
          try
          {
            for (std::size_t ji = ranges[ri].first; ji < ranges[ri].second; ++ji)
            {
              const Job & job = jobs[ji];
              const detail::PixelBlock & block = WithContext(
                job.frame->file.filename().string(),
                [&]() -> const detail::PixelBlock & { return cache.Get(*job.frame); }, ErrorKind::Input);
              place(block, job);
            }
          }
          catch (...)
          {
            std::lock_guard<std::mutex> lock(mutex);
            if (!failure)
              failure = std::current_exception();
            nextRange = ranges.size();
          }
        }
      };
      const unsigned nThreads = static_cast<unsigned>(
        std::min<std::size_t>(std::max(1u, std::min(4u, std::thread::hardware_concurrency())), ranges.size()));
      std::vector<std::thread> pool;
      for (unsigned t = 1; t < nThreads; ++t)
        pool.emplace_back(
          [&]
          {
            PixelCache cache;
            worker(cache);
          });
      worker(firstCache); // this thread starts with the first file (already decoded)
      for (auto & th : pool)
        th.join();
      if (failure)
        std::rethrow_exception(failure);
      // pixel type (dcm2niix: unsigned 16-bit data with fewer than 16 stored bits is written as int16); the stored
      // bytes are the same either way
      if (!raw || isFloat)
        out.pixelType = "float32";
      else if (bits == 8)
        out.pixelType = isSigned ? "int8" : "uint8";
      else if (bits == 16)
      {
        std::uint16_t maxValue = 0;
        if (!isSigned && series.bitsStored < 16)
        {
          const auto * p = reinterpret_cast<const std::uint16_t *>(out.voxels.data());
          for (std::size_t i = 0; i < voxelCount; ++i)
            maxValue = std::max(maxValue, p[i]);
        }
        out.pixelType = isSigned || (series.bitsStored < 16 && maxValue <= 32767) ? "int16" : "uint16";
      }
      else
      {
        std::uint32_t maxValue = 0;
        if (!isSigned)
        {
          const auto * p = reinterpret_cast<const std::uint32_t *>(out.voxels.data());
          for (std::size_t i = 0; i < voxelCount; ++i)
            maxValue = std::max(maxValue, p[i]);
        }
        out.pixelType = isSigned || maxValue <= 2147483647u ? "int32" : "uint32";
      }
      out.sclSlope = uniform ? slope : 1.0;
      out.sclIntercept = uniform ? intercept : 0.0;

      // diffusion
      bool diffusion = false;
      for (const auto & v : volumes)
        if (v[0]->bValue >= 0.0)
          diffusion = true;
      if (diffusion)
      {
        for (std::size_t t = 0; t < nt; ++t)
        {
          const FrameRef * f = volumes[t][0];
          for (const auto * g : volumes[t])
            if (std::abs(g->bValue - f->bValue) > 1e-3 ||
                Norm({ g->gradient[0] - f->gradient[0], g->gradient[1] - f->gradient[1],
                       g->gradient[2] - f->gradient[2] }) > 1e-3)
              ThrowInput("diffusion weighting differs between slices of volume " + std::to_string(t) +
                         ": cannot assemble volumes");
          gw::io::GradientEntry e;
          e.bValue = std::max(0.0, f->bValue);
          if (f->hasGradient)
          {
            const double n = Norm(f->gradient);
            // a mosaic whose CSA slice normal opposes row x column: dcm2niix reports the opposite (physically
            // equivalent) direction; we follow it so tables compare exactly
            const double sign = (mosaic && Dot(sliceDir, normal) < 0) ? -1.0 : 1.0;
            // stored vectors are kept as they are (not renormalised), as dcm2niix writes them
            if (n > 1e-6)
              for (int k = 0; k < 3; ++k)
                e.direction[k] = sign * f->gradient[k];
          }
          out.gradients.entries.push_back(e);
        }
        out.gradients.frame = "lps";
      }

      // sidecar
      nlohmann::json & j = out.sidecar;
      j = series.header;
      j["SeriesNumber"] = series.seriesNumber;
      j["Classification"] = series.classification.empty() ? ClassifySeries(series) : series.classification;
      if (!out.warnings.empty())
        j["ConversionWarnings"] = out.warnings;
      if (nt > 1 && !volumes.empty())
      {
        // repetition time of the 4th axis
        out.repetitionTime = series.header.value("RepetitionTime", 0.0);
      }
      if (mosaic)
        j["MosaicSlices"] = series.mosaicSlices;
      if (!series.multiFrame && !mosaic)
      {
        // slice timing from acquisition times of the first volume (seconds, relative)
        std::vector<double> times;
        for (const auto * f : volumes[0])
          times.push_back(f->acquisitionTime);
        const double t0 = *std::min_element(times.begin(), times.end());
        bool informative = false;
        for (double & t : times)
        {
          t -= t0;
          if (t > 1e-6)
            informative = true;
        }
        if (informative && nt > 1)
          j["SliceTiming"] = times;
      }
      return out;
    },
    ErrorKind::Input);
}

} // namespace gw::dicom
