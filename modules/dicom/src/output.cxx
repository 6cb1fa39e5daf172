// Writing loaded series (NIfTI-1 with the stored integer type, NRRD incl. DWMRI), float conversion, Import().
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/parallel.h"
#include "gw/io/gzip.h"
#include "internal.h"

namespace gw::dicom
{
namespace
{
std::size_t
TypeSize(const std::string & t)
{
  if (t == "uint8" || t == "int8")
    return 1;
  if (t == "int16" || t == "uint16")
    return 2;
  return 4;
}

short
NiftiDatatype(const std::string & t)
{
  if (t == "uint8")
    return 2;
  if (t == "int16")
    return 4;
  if (t == "int32")
    return 8;
  if (t == "float32")
    return 16;
  if (t == "int8")
    return 256;
  if (t == "uint16")
    return 512;
  if (t == "uint32")
    return 768;
  ThrowInternal("unknown pixel type " + t);
}

template <typename T>
void
Put(std::vector<char> & h, std::size_t offset, T value)
{
  std::memcpy(h.data() + offset, &value, sizeof(T));
}

/// NIfTI quaternion from a rotation (columns = unit axes, RAS), as nifti_mat44_to_quatern.
void
Quaternion(double r[3][3], double & qb, double & qc, double & qd, double & qfac)
{
  double det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
               r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  qfac = 1.0;
  if (det < 0)
  {
    qfac = -1.0;
    for (int i = 0; i < 3; ++i)
      r[i][2] = -r[i][2];
  }
  double a = r[0][0] + r[1][1] + r[2][2] + 1.0, b, c, d;
  if (a > 0.5)
  {
    a = 0.5 * std::sqrt(a);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  }
  else
  {
    const double xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
    const double yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
    const double zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1.0)
    {
      b = 0.5 * std::sqrt(xd);
      c = 0.25 * (r[0][1] + r[1][0]) / b;
      d = 0.25 * (r[0][2] + r[2][0]) / b;
      a = 0.25 * (r[2][1] - r[1][2]) / b;
    }
    else if (yd > 1.0)
    {
      c = 0.5 * std::sqrt(yd);
      b = 0.25 * (r[0][1] + r[1][0]) / c;
      d = 0.25 * (r[1][2] + r[2][1]) / c;
      a = 0.25 * (r[0][2] - r[2][0]) / c;
    }
    else
    {
      d = 0.5 * std::sqrt(zd);
      b = 0.25 * (r[0][2] + r[2][0]) / d;
      c = 0.25 * (r[1][2] + r[2][1]) / d;
      a = 0.25 * (r[1][0] - r[0][1]) / d;
    }
    if (a < 0.0)
    {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  qb = b;
  qc = c;
  qd = d;
}

std::vector<char>
NiftiHeader(const LoadedSeries & s)
{
  std::vector<char> h(352, 0);
  Put<int>(h, 0, 348);
  const bool is4D = s.size[3] > 1;
  short dim[8] = {
    short(is4D ? 4 : 3), short(s.size[0]), short(s.size[1]), short(s.size[2]), short(s.size[3]), 1, 1, 1
  };
  for (int i = 0; i < 8; ++i)
    Put<short>(h, 40 + 2 * i, dim[i]);
  Put<short>(h, 70, NiftiDatatype(s.pixelType));
  Put<short>(h, 72, short(8 * TypeSize(s.pixelType)));
  const auto a = s.RasAffine();
  double r[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      r[i][j] = a[i * 4 + j] / s.spacing[j];
  double qb, qc, qd, qfac;
  Quaternion(r, qb, qc, qd, qfac);
  float pixdim[8] = { float(qfac),
                      float(s.spacing[0]),
                      float(s.spacing[1]),
                      float(s.spacing[2]),
                      float(is4D ? s.repetitionTime : 0.0),
                      0,
                      0,
                      0 };
  for (int i = 0; i < 8; ++i)
    Put<float>(h, 76 + 4 * i, pixdim[i]);
  Put<float>(h, 108, 352.0f);
  Put<float>(h, 112, float(s.sclSlope));
  Put<float>(h, 116, float(s.sclIntercept));
  h[123] = 10; // xyzt_units: mm, s
  std::string descrip = "gw_import";
  std::memcpy(h.data() + 148, descrip.data(), descrip.size());
  Put<short>(h, 252, 1); // qform: scanner
  Put<short>(h, 254, 1); // sform: scanner
  Put<float>(h, 256, float(qb));
  Put<float>(h, 260, float(qc));
  Put<float>(h, 264, float(qd));
  Put<float>(h, 268, float(a[3]));
  Put<float>(h, 272, float(a[7]));
  Put<float>(h, 276, float(a[11]));
  for (int i = 0; i < 12; ++i)
    Put<float>(h, 280 + 4 * i, float(a[i]));
  std::memcpy(h.data() + 344, "n+1\0", 4);
  return h;
}

void
WriteBytes(const fs::path & path, bool gzip, const std::vector<std::vector<char>> & chunks,
           const std::vector<std::uint8_t> & payload)
{
  if (gzip)
  {
    std::vector<std::pair<const std::uint8_t *, std::size_t>> input;
    for (const auto & c : chunks)
      input.emplace_back(reinterpret_cast<const std::uint8_t *>(c.data()), c.size());
    input.emplace_back(payload.data(), payload.size());
    io::WriteGzipFile(path, input);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  if (!out)
    ThrowOutput("cannot write " + path.string());
  for (const auto & c : chunks)
    out.write(c.data(), static_cast<std::streamsize>(c.size()));
  out.write(reinterpret_cast<const char *>(payload.data()), static_cast<std::streamsize>(payload.size()));
  if (!out)
    ThrowOutput("write failed: " + path.string());
}

std::string
NrrdType(const std::string & t)
{
  if (t == "float32")
    return "float";
  return t;
}
} // namespace

std::vector<fs::path>
WriteSeries(const LoadedSeries & s, const fs::path & basePath, const std::string & format, bool force)
{
  std::vector<fs::path> written;
  const fs::path dir = basePath.parent_path();
  const std::string base = basePath.filename().string();
  const bool diffusion = !s.gradients.entries.empty();
  if (format == "nii" || format == "nii.gz")
  {
    const fs::path image = dir / (base + "." + format);
    const std::vector<char> header = NiftiHeader(s);
    WriteAtomically(image, force,
                    [&](const fs::path & tmp)
                    {
                      WriteBytes(tmp, format == "nii.gz", { header },
                                 s.voxels); // header: 348 bytes + 4-byte extension flag
                    });
    written.push_back(image);
    if (diffusion)
    {
      const fs::path bval = dir / (base + ".bval"), bvec = dir / (base + ".bvec");
      gw::io::WriteFslGradients(s.FslGradients(), bval, bvec, force);
      written.push_back(bval);
      written.push_back(bvec);
    }
  }
  else if (format == "nrrd")
  {
    const fs::path image = dir / (base + ".nrrd");
    // NRRD has no slope: real values as float unless the stored values are already real
    const bool identity = s.sclSlope == 1.0 && s.sclIntercept == 0.0;
    const std::string type = identity ? s.pixelType : "float32";
    const std::size_t n = s.VoxelCount(), vol = s.size[0] * s.size[1] * s.size[2];
    std::vector<std::uint8_t> payload(n * TypeSize(type));
    std::vector<float> real;
    if (!identity)
    {
      real.resize(n);
      detail::ToFloat(s, 0, n, real.data());
    }
    const bool list = s.size[3] > 1;
    for (std::size_t t = 0; t < s.size[3]; ++t)
      for (std::size_t v = 0; v < vol; ++v)
      {
        const std::size_t src = t * vol + v;
        const std::size_t dst = list ? v * s.size[3] + t : src; // list (gradient/time) axis fastest
        if (identity)
          std::memcpy(payload.data() + dst * TypeSize(type), s.voxels.data() + src * TypeSize(type), TypeSize(type));
        else
        {
          std::memcpy(payload.data() + dst * 4, &real[src], 4);
        }
      }
    std::ostringstream h;
    h.precision(10);
    h << "NRRD0005\n# written by gw_import\ntype: " << NrrdType(type) << "\ndimension: " << (list ? 4 : 3)
      << "\nspace: left-posterior-superior\nsizes:";
    if (list)
      h << " " << s.size[3];
    h << " " << s.size[0] << " " << s.size[1] << " " << s.size[2] << "\nspace directions:";
    if (list)
      h << " none";
    for (int c = 0; c < 3; ++c)
      h << " (" << s.direction[c] * s.spacing[c] << "," << s.direction[3 + c] * s.spacing[c] << ","
        << s.direction[6 + c] * s.spacing[c] << ")";
    h << "\nkinds:" << (list ? " list" : "") << " domain domain domain\nendian: little\nencoding: gzip\nspace origin: ("
      << s.origin[0] << "," << s.origin[1] << "," << s.origin[2] << ")\n";
    if (diffusion)
    {
      double bmax = 0;
      for (const auto & e : s.gradients.entries)
        bmax = std::max(bmax, e.bValue);
      h << "measurement frame: (1,0,0) (0,1,0) (0,0,1)\nmodality:=DWMRI\nDWMRI_b-value:=" << bmax << "\n";
      for (std::size_t i = 0; i < s.gradients.entries.size(); ++i)
      {
        const auto & e = s.gradients.entries[i];
        const double scale = bmax > 0 ? std::sqrt(e.bValue / bmax) : 0.0;
        char key[48];
        std::snprintf(key, sizeof(key), "DWMRI_gradient_%04zu", i);
        h << key << ":=" << e.direction[0] * scale << " " << e.direction[1] * scale << " " << e.direction[2] * scale
          << "\n";
      }
    }
    h << "\n";
    const std::string text = h.str();
    // header uncompressed, data gzip: write header then append a gzip member
    WriteAtomically(image, force,
                    [&](const fs::path & tmp)
                    {
                      {
                        std::ofstream out(tmp, std::ios::binary);
                        out << text;
                        if (!out)
                          ThrowOutput("write failed: " + tmp.string());
                      }
                      io::WriteGzipFile(tmp, { { payload.data(), payload.size() } }, true);
                    });
    written.push_back(image);
  }
  else
    ThrowUsage("unknown output format '" + format + "' (nii.gz, nii or nrrd)");
  const fs::path json = dir / (base + ".json");
  WriteTextFile(json, s.sidecar.dump(2) + "\n", force);
  written.push_back(json);
  return written;
}

std::map<std::string, std::string>
ReadClassificationOverrides(const fs::path & file)
{
  std::map<std::string, std::string> out;
  nlohmann::json j;
  try
  {
    j = nlohmann::json::parse(ReadFile(file));
  }
  catch (const nlohmann::json::exception & e)
  {
    ThrowInput("classification overrides " + file.filename().string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object())
    ThrowInput("classification overrides " + file.filename().string() + ": expected a JSON object");
  for (const auto & [key, value] : j.items())
  {
    if (!value.is_string() || key.empty())
      ThrowInput("classification overrides " + file.filename().string() + ": value of '" + key + "' is not a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

bool
ApplyClassificationOverrides(SeriesInfo & series, const std::map<std::string, std::string> & overrides)
{
  auto lower = [](std::string t)
  {
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return t;
  };
  const auto byNumber = overrides.find(std::to_string(series.seriesNumber));
  std::string chosen;
  if (byNumber != overrides.end())
    chosen = byNumber->second;
  else
    for (const auto & [key, value] : overrides)
      if (lower(series.description).find(lower(key)) != std::string::npos)
      {
        chosen = value;
        break;
      }
  if (chosen.empty() || chosen == series.classification)
    return false;
  series.classification = chosen;
  series.header["ClassificationSource"] = "user";
  return true;
}

ImportResult
Import(const std::vector<fs::path> & inputs, const fs::path & outDir, const ImportOptions & options)
{
  ImportResult result;
  ScanResult scan = ScanDirectories(inputs, options.scan);
  for (auto & s : scan.series)
    ApplyClassificationOverrides(s, options.classificationOverrides);
  result.notes = scan.notes;
  std::map<std::string, int> used;
  result.series.resize(scan.series.size());
  for (std::size_t i = 0; i < scan.series.size(); ++i)
  {
    const SeriesInfo & s = scan.series[i];
    ImportedSeries & r = result.series[i];
    r.name = OutputBaseName(s);
    if (used[r.name]++ > 0)
      r.name += "_" + std::to_string(used[r.name]);
    r.seriesNumber = s.seriesNumber;
    r.classification = s.classification;
  }
  // series are independent: load and write them on a few threads (decoding and gzip dominate)
  std::vector<std::exception_ptr> fatal(scan.series.size());
  auto worker = [&](std::size_t begin, std::size_t end)
  {
    for (std::size_t i = begin; i < end; ++i)
    {
      const SeriesInfo & s = scan.series[i];
      ImportedSeries & r = result.series[i];
      try
      {
        const LoadedSeries loaded = LoadSeries(s);
        r.warnings = loaded.warnings;
        r.files = WriteSeries(loaded, outDir / r.name, options.format, options.force);
      }
      catch (const Error & e)
      {
        if (e.Kind() == ErrorKind::Output || e.Kind() == ErrorKind::Usage)
          fatal[i] = std::current_exception();
        else
          r.error = e.what();
      }
      catch (...)
      {
        fatal[i] = std::current_exception();
      }
      for (const auto & n : s.notes)
        r.warnings.push_back(n);
    }
  };
  ParallelFor(scan.series.size(), 0, 1, worker);
  for (const auto & e : fatal)
    if (e)
      std::rethrow_exception(e);
  for (const auto & r : result.series)
    (r.error.empty() ? result.succeeded : result.failed)++;
  return result;
}

nlohmann::json
ToJson(const ScanResult & scan)
{
  nlohmann::json j = nlohmann::json::array();
  for (const auto & s : scan.series)
    j.push_back({ { "name", OutputBaseName(s) },
                  { "series_number", s.seriesNumber },
                  { "description", s.description },
                  { "manufacturer", s.manufacturer },
                  { "classification", s.classification },
                  { "frames", s.frames.size() },
                  { "rows", s.rows },
                  { "columns", s.columns },
                  { "mosaic_slices", s.mosaicSlices },
                  { "multiframe", s.multiFrame } });
  return j;
}

nlohmann::json
ToJson(const ImportResult & result)
{
  nlohmann::json j;
  j["written"] = result.succeeded;
  j["failed"] = result.failed;
  j["series"] = nlohmann::json::array();
  for (const auto & s : result.series)
  {
    nlohmann::json e{ { "name", s.name },
                      { "series_number", s.seriesNumber },
                      { "classification", s.classification },
                      { "warnings", s.warnings } };
    std::vector<std::string> files;
    for (const auto & f : s.files)
      files.push_back(f.filename().string());
    e["files"] = files;
    if (!s.error.empty())
      e["error"] = s.error;
    j["series"].push_back(e);
  }
  j["notes"] = result.notes;
  return j;
}

} // namespace gw::dicom
