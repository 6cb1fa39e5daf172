// FSL bval/bvec files and NRRD DWMRI gradient keys.
#include "gw/io/gradients.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include <itkMetaDataObject.h>
#include <itkNrrdImageIO.h>

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::io
{
namespace
{
std::vector<std::vector<double>>
ReadNumberRows(const fs::path & path)
{
  const std::string text = ReadFile(path);
  std::vector<std::vector<double>> rows;
  std::istringstream lines(text);
  std::string line;
  int lineNumber = 0;
  while (std::getline(lines, line))
  {
    ++lineNumber;
    for (char & c : line)
      if (c == ',' || c == '\t' || c == '\r')
        c = ' ';
    std::istringstream words(line);
    std::vector<double> row;
    std::string word;
    while (words >> word)
    {
      std::size_t used = 0;
      double value = 0.0;
      try
      {
        value = std::stod(word, &used);
      }
      catch (const std::exception &)
      {
        used = 0;
      }
      if (used != word.size() || !std::isfinite(value))
        ThrowInput(path.filename().string() + " line " + std::to_string(lineNumber) + ": '" + word +
                   "' is not a number");
      row.push_back(value);
    }
    if (!row.empty())
      rows.push_back(std::move(row));
  }
  return rows;
}

double
Det(const DirectionType & d)
{
  return d(0, 0) * (d(1, 1) * d(2, 2) - d(1, 2) * d(2, 1)) - d(0, 1) * (d(1, 0) * d(2, 2) - d(1, 2) * d(2, 0)) +
         d(0, 2) * (d(1, 0) * d(2, 1) - d(1, 1) * d(2, 0));
}

std::array<double, 3>
Normalized(const std::array<double, 3> & v)
{
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n < 1e-12)
    return { 0.0, 0.0, 0.0 };
  return { v[0] / n, v[1] / n, v[2] / n };
}

std::string
FormatNumber(double v, int decimals)
{
  if (std::abs(v) < 0.5 * std::pow(10.0, -decimals))
    v = 0.0; // no "-0"
  std::ostringstream s;
  s << std::setprecision(decimals) << std::fixed << v;
  std::string out = s.str();
  // trim trailing zeros like dcm2niix's %g-style output
  if (out.find('.') != std::string::npos)
  {
    while (out.back() == '0')
      out.pop_back();
    if (out.back() == '.')
      out.pop_back();
  }
  return out;
}
} // namespace

GradientTable
ReadFslGradients(const fs::path & bval, const fs::path & bvec)
{
  const auto bvalRows = ReadNumberRows(bval);
  std::vector<double> bvalues;
  if (bvalRows.size() == 1)
    bvalues = bvalRows[0];
  else
  {
    for (const auto & row : bvalRows)
    {
      if (row.size() != 1)
        ThrowInput(bval.filename().string() + " must hold one row (or one column) of b-values");
      bvalues.push_back(row[0]);
    }
  }
  if (bvalues.empty())
    ThrowInput(bval.filename().string() + " holds no b-values");
  for (double b : bvalues)
    if (b < 0.0)
      ThrowInput(bval.filename().string() + " holds a negative b-value");

  const auto vecRows = ReadNumberRows(bvec);
  const std::size_t n = bvalues.size();
  std::vector<std::array<double, 3>> dirs(n);
  if (vecRows.size() == 3 && vecRows[0].size() == n && vecRows[1].size() == n && vecRows[2].size() == n)
  {
    for (std::size_t i = 0; i < n; ++i)
      dirs[i] = { vecRows[0][i], vecRows[1][i], vecRows[2][i] };
  }
  else if (vecRows.size() == n &&
           std::all_of(vecRows.begin(), vecRows.end(), [](const auto & r) { return r.size() == 3; }))
  {
    for (std::size_t i = 0; i < n; ++i)
      dirs[i] = { vecRows[i][0], vecRows[i][1], vecRows[i][2] };
  }
  else
    ThrowInput(bvec.filename().string() + " does not hold 3 x " + std::to_string(n) + " numbers matching the " +
               std::to_string(n) + " b-values of " + bval.filename().string());

  GradientTable table;
  table.frame = "fsl";
  for (std::size_t i = 0; i < n; ++i)
  {
    GradientEntry e;
    e.bValue = bvalues[i];
    e.direction = Normalized(dirs[i]);
    if (e.bValue > B0Threshold && e.direction == std::array<double, 3>{ 0.0, 0.0, 0.0 })
      ThrowInput(bvec.filename().string() + ": volume " + std::to_string(i) + " has b=" + FormatNumber(e.bValue, 2) +
                 " but a zero gradient direction");
    table.entries.push_back(e);
  }
  return table;
}

void
WriteFslGradients(const GradientTable & table, const fs::path & bval, const fs::path & bvec, bool force)
{
  if (table.frame != "fsl")
    ThrowInternal("WriteFslGradients: table is in frame '" + table.frame + "', convert with LpsToFsl first");
  // Refuse before writing either file, so a refusal never leaves a half-written pair.
  if (!force && (fs::exists(bval) || fs::exists(bvec)))
    ThrowOutput("output exists (use --force to overwrite): " + (fs::exists(bval) ? bval : bvec).string());
  std::string vals;
  std::string vecs[3];
  for (std::size_t i = 0; i < table.entries.size(); ++i)
  {
    const auto & e = table.entries[i];
    const char * sep = i == 0 ? "" : " ";
    vals += sep + FormatNumber(e.bValue, 3);
    for (int k = 0; k < 3; ++k)
      vecs[k] += sep + FormatNumber(e.direction[k], 6);
  }
  WriteTextFile(bval, vals + "\n", force);
  WriteTextFile(bvec, vecs[0] + "\n" + vecs[1] + "\n" + vecs[2] + "\n", force);
}

namespace
{
GradientTable
Transform(const GradientTable & in, const DirectionType & direction, bool toLps, const std::string & frame)
{
  // Voxel-axis unit directions: columns of the direction matrix (orthonormalised implicitly by normalising).
  const bool flipX = Det(direction) > 0.0;
  GradientTable out;
  out.frame = frame;
  for (const auto & e : in.entries)
  {
    GradientEntry o = e;
    const auto & g = e.direction;
    std::array<double, 3> r{ 0.0, 0.0, 0.0 };
    if (toLps)
    {
      std::array<double, 3> v = g;
      if (flipX)
        v[0] = -v[0];
      for (int i = 0; i < 3; ++i)
        r[i] = direction(i, 0) * v[0] + direction(i, 1) * v[1] + direction(i, 2) * v[2];
    }
    else
    {
      for (int j = 0; j < 3; ++j)
        r[j] = direction(0, j) * g[0] + direction(1, j) * g[1] + direction(2, j) * g[2];
      if (flipX)
        r[0] = -r[0];
    }
    o.direction = Normalized(r);
    out.entries.push_back(o);
  }
  return out;
}
} // namespace

GradientTable
FslToLps(const GradientTable & fsl, const DirectionType & direction)
{
  if (fsl.frame != "fsl")
    ThrowInternal("FslToLps: table is in frame '" + fsl.frame + "'");
  return Transform(fsl, direction, true, "lps");
}

GradientTable
LpsToFsl(const GradientTable & lps, const DirectionType & direction)
{
  if (lps.frame != "lps")
    ThrowInternal("LpsToFsl: table is in frame '" + lps.frame + "'");
  return Transform(lps, direction, false, "fsl");
}

GradientTable
ReadNrrdGradients(const fs::path & nrrd)
{
  auto io = itk::NrrdImageIO::New();
  if (!fs::exists(nrrd))
    ThrowInput("no such file: " + nrrd.string());
  io->SetFileName(nrrd.string());
  WithContext(
    "while reading the NRRD header of " + nrrd.filename().string(), [&]() { io->ReadImageInformation(); },
    ErrorKind::Input);
  const itk::MetaDataDictionary & dict = io->GetMetaDataDictionary();
  std::string bText;
  if (!itk::ExposeMetaData<std::string>(dict, "DWMRI_b-value", bText))
    ThrowInput(nrrd.filename().string() + " has no DWMRI_b-value key: not a NRRD DWI");
  double bMax = 0.0;
  try
  {
    bMax = std::stod(bText);
  }
  catch (const std::exception &)
  {
    ThrowInput(nrrd.filename().string() + ": DWMRI_b-value '" + bText + "' is not a number");
  }
  // Measurement frame: columns map measurement-frame coordinates to world (LPS, the NRRD space here).
  double mf[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
  std::vector<std::vector<double>> frame;
  if (itk::ExposeMetaData<std::vector<std::vector<double>>>(dict, "NRRD_measurement frame", frame))
  {
    if (frame.size() != 3 || frame[0].size() != 3 || frame[1].size() != 3 || frame[2].size() != 3)
      ThrowInput(nrrd.filename().string() + ": measurement frame is not 3x3");
    // ITK stores the NRRD vectors as given in the header: frame[c] is the c-th column vector.
    for (int c = 0; c < 3; ++c)
      for (int r = 0; r < 3; ++r)
        mf[r][c] = frame[c][r];
  }
  std::string space;
  itk::ExposeMetaData<std::string>(dict, "NRRD_space", space);
  const bool ras = space == "right-anterior-superior" || space == "RAS";

  GradientTable table;
  table.frame = "lps";
  for (unsigned int i = 0;; ++i)
  {
    std::ostringstream key;
    key << "DWMRI_gradient_" << std::setw(4) << std::setfill('0') << i;
    std::string value;
    if (!itk::ExposeMetaData<std::string>(dict, key.str(), value))
    {
      if (i == 0)
        ThrowInput(nrrd.filename().string() + " has no DWMRI_gradient_0000 key");
      break;
    }
    std::istringstream s(value);
    std::array<double, 3> g{};
    if (!(s >> g[0] >> g[1] >> g[2]))
      ThrowInput(nrrd.filename().string() + ": " + key.str() + " '" + value + "' is not three numbers");
    const double n2 = g[0] * g[0] + g[1] * g[1] + g[2] * g[2];
    std::array<double, 3> w{};
    for (int r = 0; r < 3; ++r)
      w[r] = mf[r][0] * g[0] + mf[r][1] * g[1] + mf[r][2] * g[2];
    if (ras)
    {
      w[0] = -w[0];
      w[1] = -w[1];
    }
    GradientEntry e;
    e.bValue = bMax * n2; // Slicer convention: |g|^2 = b / bmax
    e.direction = Normalized(w);
    if (e.bValue <= B0Threshold)
      e.direction = { 0.0, 0.0, 0.0 };
    table.entries.push_back(e);
  }
  const unsigned int components =
    io->GetNumberOfComponents() > 1
      ? io->GetNumberOfComponents()
      : static_cast<unsigned int>(io->GetNumberOfDimensions() > 3 ? io->GetDimensions(3) : 1);
  if (components != table.entries.size())
    ThrowInput(nrrd.filename().string() + " has " + std::to_string(components) + " volumes but " +
               std::to_string(table.entries.size()) + " gradients");
  return table;
}
} // namespace gw::io
