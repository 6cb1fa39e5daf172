// Image reading and writing through ITK's NIfTI, NRRD and MetaImage IO classes, chosen explicitly by extension
// (no reliance on the IO factory registration of the build). All readers check the header before allocating.
#include "gw/io/image_io.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>

#include <libdeflate.h>
#include <zlib.h>

#include <itkCastImageFilter.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageRegionConstIterator.h>
#include <itkImageRegionIterator.h>
#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::io
{
namespace
{
/// Largest image we agree to allocate (elements = voxels x components): 2^31, 8 GiB as float.
constexpr std::uint64_t MaxElements = std::uint64_t{ 1 } << 31;

std::string
LowerExtension(const fs::path & path)
{
  std::string ext = SplitExtension(path).second;
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

itk::ImageIOBase::Pointer
CreateImageIO(const fs::path & path)
{
  const std::string ext = LowerExtension(path);
  if (ext == ".nii" || ext == ".nii.gz")
    return itk::NiftiImageIO::New().GetPointer();
  if (ext == ".nrrd" || ext == ".nhdr")
    return itk::NrrdImageIO::New().GetPointer();
  if (ext == ".mha" || ext == ".mhd")
    return itk::MetaImageIO::New().GetPointer();
  ThrowInput("unsupported image format '" + ext + "' of " + path.filename().string() +
             " (supported: .nii .nii.gz .nrrd .nhdr .mha .mhd)");
}

/// MetaImage headers are parsed by ITK's MetaIO, which copies field names and values into fixed 255-byte buffers
/// (a fuzzed header with a long binary field overflowed them). Refuse such headers before MetaIO sees them: every
/// header line up to ElementDataFile must be printable text of at most 250 characters, and NDims must be 1..10.
void
CheckMetaImageHeader(const fs::path & path)
{
  std::ifstream in(path, std::ios::binary);
  std::string line;
  int lines = 0;
  while (std::getline(in, line) && lines++ < 200)
  {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.size() > 250)
      ThrowInput("MetaImage header of " + path.filename().string() + " has a line longer than 250 characters");
    for (unsigned char c : line)
      if (c < 0x20 && c != '\t')
        ThrowInput("MetaImage header of " + path.filename().string() + " holds binary data");
    // MetaIO reads NDims values for every per-axis field: a huge NDims kept it reading for minutes (fuzzing)
    if (line.rfind("NDims", 0) == 0)
    {
      const auto eq = line.find('=');
      const std::string value = eq == std::string::npos ? "" : line.substr(eq + 1);
      char * end = nullptr;
      const long dims = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || dims < 1 || dims > 10)
        ThrowInput("MetaImage header of " + path.filename().string() + ": NDims '" + value + "' is not 1..10");
    }
    if (line.rfind("ElementDataFile", 0) == 0)
      return;
  }
}

/// The uncompressed size a gzip member's trailer states (ISIZE: little-endian, modulo 2^32) from its last 4 bytes.
std::uint64_t
GzipTrailerSize(const unsigned char * t)
{
  return std::uint64_t(t[0]) | std::uint64_t(t[1]) << 8 | std::uint64_t(t[2]) << 16 | std::uint64_t(t[3]) << 24;
}

/// A NIfTI header that claims more voxel bytes than the file holds is refused before ITK allocates the image (a
/// 351-byte file claiming 3.8 GB was found by fuzzing). .nii: the file size; .nii.gz: the gzip trailer's
/// uncompressed size (modulo 2^32, so only checked below 4 GiB). Other formats keep ITK's own read-time checks.
void
CheckVoxelBytesPresent(const fs::path & path, const itk::ImageIOBase * io, std::uint64_t headerNeeded)
{
  const std::string ext = LowerExtension(path);
  if (ext != ".nii" && ext != ".nii.gz")
    return;
  // the file's own voxel bytes (vox_offset + voxels x bitpix / 8) when the header could be read here: ITK's size
  // is that of the pixel type it converts to (float for scaled integer data: twice the bytes of int16 voxels)
  const std::uint64_t needed =
    headerNeeded > 0 ? headerNeeded : static_cast<std::uint64_t>(io->GetImageSizeInBytes()) + 348;
  std::error_code ec;
  const std::uint64_t fileSize = fs::file_size(path, ec);
  if (ec)
    return;
  std::uint64_t available = fileSize;
  if (ext == ".nii.gz")
  {
    if (needed >= (std::uint64_t{ 1 } << 32) || fileSize < 18)
      return;
    std::ifstream in(path, std::ios::binary);
    in.seekg(-4, std::ios::end);
    unsigned char t[4] = {};
    in.read(reinterpret_cast<char *>(t), 4);
    if (in.gcount() != 4)
      return;
    available = GzipTrailerSize(t);
  }
  if (available < needed)
    ThrowInput("image " + path.filename().string() + " claims " + std::to_string(needed) +
               " bytes of header and voxels but holds " + std::to_string(available) + "; refused before allocation");
}

/// Reads up to `n` bytes from the start of `path`, through gzip when `gz`. Returns what was read ("" when a gzip
/// file cannot be opened: ITK's own checks apply then).
std::string
ReadHeadBytes(const fs::path & path, std::size_t n, bool gz)
{
  std::string buf(n, '\0');
  if (!gz)
  {
    std::ifstream in(path, std::ios::binary);
    in.read(buf.data(), static_cast<std::streamsize>(n));
    buf.resize(static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
    return buf;
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f)
    return "";
  std::size_t got = 0;
  while (got < n)
  {
    const int r = gzread(f, buf.data() + got, static_cast<unsigned>(n - got));
    if (r <= 0)
      break;
    got += static_cast<std::size_t>(r);
  }
  gzclose(f);
  buf.resize(got);
  return buf;
}

template <typename T>
T
HeaderValue(const std::string & h, std::size_t offset, bool swap)
{
  T v;
  char b[sizeof(T)];
  std::memcpy(b, h.data() + offset, sizeof(T));
  if (swap)
    std::reverse(b, b + sizeof(T));
  std::memcpy(&v, b, sizeof(T));
  return v;
}

/// NIfTI-1/-2 geometry fields are checked before ITK derives the orientation from them: a NaN or infinite sform
/// made VNL abort() inside NiftiImageIO::SetImageIOOrientationFromNIfTI (found by fuzzing). Refused: xform codes
/// outside 0..5; with qform_code > 0 a non-finite quaternion or offset, or b^2+c^2+d^2 > 1 (no unit quaternion);
/// with sform_code > 0 a non-finite row or a singular 3x3 part; non-finite pixdim[0..dim]; pixdim[1..3] <= 0 on
/// the spatial axes; a non-finite or negative vox_offset; dim[0] outside 1..7.
std::uint64_t
CheckNiftiGeometry(const fs::path & path)
{
  const std::string ext = LowerExtension(path);
  const std::string h = ReadHeadBytes(path, 540, ext == ".nii.gz");
  if (h.size() < 348)
    return 0; // too short for any NIfTI header: ITK refuses it
  const std::string name = path.filename().string();
  const auto refuse = [&](const std::string & why) { ThrowInput("NIfTI header of " + name + ": " + why); };
  // as niftilib decides (sizeof_hdr is not required, found by fuzzing): NIfTI-2 by its magic at byte 4, NIfTI-1 by
  // its magic at byte 344, Analyze 7.5 by sizeof_hdr 348; byte order from dim[0] (1..7 when native)
  int version = 0;
  bool nifti = true, swap = false;
  const auto dimOk = [](std::int64_t d) { return d >= 1 && d <= 7; };
  if (h.size() >= 540 && (h.compare(4, 3, "n+2") == 0 || h.compare(4, 3, "ni2") == 0))
  {
    version = 2;
    swap = !dimOk(HeaderValue<std::int64_t>(h, 16, false));
  }
  else if (h.compare(344, 3, "n+1") == 0 || h.compare(344, 3, "ni1") == 0)
  {
    version = 1;
    swap = !dimOk(HeaderValue<std::int16_t>(h, 40, false));
  }
  else if (HeaderValue<std::int32_t>(h, 0, false) == 348 || HeaderValue<std::int32_t>(h, 0, true) == 348)
  {
    version = 1;
    nifti = false;
    swap = HeaderValue<std::int32_t>(h, 0, false) != 348;
  }
  if (version == 0)
    return 0; // not a NIfTI or Analyze header: ITK refuses it
  double pixdim[8], quat[6], srow[12], voxOffset;
  int dim0, qcode, scode, bitpix;
  std::int64_t dims[8];
  if (version == 1)
  {
    dim0 = HeaderValue<std::int16_t>(h, 40, swap);
    for (int i = 0; i < 8; ++i)
      dims[i] = HeaderValue<std::int16_t>(h, 40 + 2 * i, swap);
    bitpix = HeaderValue<std::int16_t>(h, 72, swap);
    for (int i = 0; i < 8; ++i)
      pixdim[i] = HeaderValue<float>(h, 76 + 4 * i, swap);
    voxOffset = HeaderValue<float>(h, 108, swap);
    qcode = HeaderValue<std::int16_t>(h, 252, swap);
    scode = HeaderValue<std::int16_t>(h, 254, swap);
    for (int i = 0; i < 6; ++i)
      quat[i] = HeaderValue<float>(h, 256 + 4 * i, swap);
    for (int i = 0; i < 12; ++i)
      srow[i] = HeaderValue<float>(h, 280 + 4 * i, swap);
  }
  else
  {
    dim0 = static_cast<int>(std::clamp<std::int64_t>(HeaderValue<std::int64_t>(h, 16, swap), -1, 8));
    for (int i = 0; i < 8; ++i)
      dims[i] = HeaderValue<std::int64_t>(h, 16 + 8 * i, swap);
    bitpix = HeaderValue<std::int16_t>(h, 14, swap);
    for (int i = 0; i < 8; ++i)
      pixdim[i] = HeaderValue<double>(h, 104 + 8 * i, swap);
    voxOffset = static_cast<double>(HeaderValue<std::int64_t>(h, 168, swap));
    qcode = HeaderValue<std::int32_t>(h, 344, swap);
    scode = HeaderValue<std::int32_t>(h, 348, swap);
    for (int i = 0; i < 6; ++i)
      quat[i] = HeaderValue<double>(h, 352 + 8 * i, swap);
    for (int i = 0; i < 12; ++i)
      srow[i] = HeaderValue<double>(h, 400 + 8 * i, swap);
  }
  // niftilib tolerates some of these and ITK then derives the orientation from garbage (found by fuzzing: dim[0] = 0
  // with a NaN sform and out-of-range xform codes aborted in VNL)
  if (dim0 < 1 || dim0 > 7)
    refuse("dim[0] = " + std::to_string(dim0) + " outside 1..7");
  if (nifti && (qcode < 0 || qcode > 5 || scode < 0 || scode > 5))
    refuse("qform_code " + std::to_string(qcode) + " / sform_code " + std::to_string(scode) + " outside 0..5");
  for (int i = 0; i <= dim0; ++i)
    if (!std::isfinite(pixdim[i]))
      refuse("non-finite pixdim[" + std::to_string(i) + "]");
  for (int i = 1; i <= std::min(dim0, 3); ++i)
    if (!(pixdim[i] > 0.0))
      refuse("voxel size pixdim[" + std::to_string(i) + "] = " + std::to_string(pixdim[i]) + " is not positive");
  // vox_offset beyond 2^50 bytes is no file (found by fuzzing: 1.8e28 overflowed the conversion to bytes)
  if (!std::isfinite(voxOffset) || voxOffset < 0.0 || voxOffset > 1125899906842624.0)
    refuse("invalid vox_offset");
  // Analyze 7.5 headers (no NIfTI magic): niftilib ignores the xform fields, so only the above applies
  if (!nifti)
    qcode = scode = 0;
  if (qcode > 0)
  {
    for (double v : quat)
      if (!std::isfinite(v))
        refuse("non-finite qform quaternion or offset");
    if (quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] > 1.0 + 1e-6)
      refuse("qform quaternion (b, c, d) longer than 1 is not a rotation");
  }
  if (scode > 0)
  {
    for (double v : srow)
      if (!std::isfinite(v))
        refuse("non-finite sform (srow_x/y/z)");
    const double * r = srow; // rows of 4: the 3x3 part is r[0..2], r[4..6], r[8..10]
    const double det =
      r[0] * (r[5] * r[10] - r[6] * r[9]) - r[1] * (r[4] * r[10] - r[6] * r[8]) + r[2] * (r[4] * r[9] - r[5] * r[8]);
    double scale = 1.0;
    for (int c = 0; c < 3; ++c)
      scale *= std::sqrt(r[c] * r[c] + r[4 + c] * r[4 + c] + r[8 + c] * r[8 + c]);
    // |det| relative to the product of the column lengths: 1 for orthogonal axes, 0 for degenerate ones
    if (!(scale > 0.0) || !(std::abs(det) > 1e-6 * scale))
      refuse("singular sform (the voxel axes do not span 3D space)");
  }
  // bytes the file must hold: vox_offset (at least the header) + voxels x bitpix / 8; 0 when not computable here
  if (bitpix <= 0 || bitpix % 8 != 0)
    return 0;
  std::uint64_t bytes = static_cast<std::uint64_t>(bitpix / 8);
  for (int i = 1; i <= dim0; ++i)
  {
    if (dims[i] <= 0 || static_cast<std::uint64_t>(dims[i]) > (std::uint64_t{ 1 } << 40) / bytes)
      return 0; // ITK refuses empty axes, OpenHeader huge ones
    bytes *= static_cast<std::uint64_t>(dims[i]);
  }
  return bytes + std::max<std::uint64_t>(static_cast<std::uint64_t>(voxOffset), version == 1 ? 348 : 540);
}

/// One "key<sep>value" header line of NRRD (": ") or MetaImage (" = ").
bool
SplitField(const std::string & line, const std::string & sep, std::string & key, std::string & value)
{
  const auto p = line.find(sep);
  if (p == std::string::npos)
    return false;
  key = line.substr(0, p);
  value = line.substr(p + sep.size());
  const auto trim = [](std::string & s)
  {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
      s.pop_back();
    std::size_t b = 0;
    while (b < s.size() && (s[b] == ' ' || s[b] == '\t'))
      ++b;
    s.erase(0, b);
  };
  trim(key);
  trim(value);
  return true;
}

/// Where a NRRD or MetaImage header says its voxels are.
struct DataLocation
{
  fs::path file;            ///< the data file (the header itself when attached)
  std::uint64_t offset = 0; ///< first data byte (attached: after the header; detached: byte skip)
  std::string encoding;     ///< "raw", "gzip", "bzip2", "ascii", "hex"
  bool fromEnd = false;     ///< byte skip -1 / HeaderSize -1: the data are the last bytes of the file
};

/// A detached data file named by a header: relative to the header's folder and inside it (lexically), a regular
/// file. Absolute paths, paths leaving the folder and multi-file lists (NRRD "LIST" or format strings, MetaImage
/// "LIST" or "%d" patterns) are refused: the formats allow them, but no input of this project needs them, and they
/// let a header make the reader open any file of the machine (a device, a FIFO).
fs::path
DetachedDataFile(const fs::path & header, const std::string & name)
{
  const std::string hn = header.filename().string();
  if (name == "LIST" || name.find('%') != std::string::npos || name.find(' ') != std::string::npos)
    ThrowInput(hn + ": multi-file data (" + name + ") is not supported");
  const fs::path rel(name);
  if (rel.empty() || rel.is_absolute())
    ThrowInput(hn + ": the data file must be a relative path next to the header, not '" + name + "'");
  const fs::path dir = header.parent_path().empty() ? fs::path(".") : header.parent_path();
  const fs::path p = (dir / rel).lexically_normal();
  if (!IsInside(dir, p))
    ThrowInput(hn + ": the data file '" + name + "' lies outside the header's folder");
  if (!fs::is_regular_file(p))
    ThrowInput(hn + ": data file '" + name + "' not found (or not a regular file)");
  return p;
}

/// Parses the NRRD or MetaImage header text for the data location (before ITK opens anything). Throws on refused
/// data file paths and unsupported encodings. Returns false for other formats.
bool
LocateData(const fs::path & path, DataLocation & loc)
{
  const std::string ext = LowerExtension(path);
  const bool nrrd = ext == ".nrrd" || ext == ".nhdr";
  const bool meta = ext == ".mha" || ext == ".mhd";
  if (!nrrd && !meta)
    return false;
  std::ifstream in(path, std::ios::binary);
  std::string line, key, value;
  std::uint64_t pos = 0;
  bool attached = true;
  long long skip = 0;
  loc.encoding = "raw";
  for (int lines = 0; lines < 10000 && std::getline(in, line); ++lines)
  {
    pos += line.size() + 1;
    if (nrrd)
    {
      if (line.empty() || line == "\r")
        break; // attached data follow the blank line
      // ITK's NrrdIO formats a malformed field line into a fixed 1 KiB error buffer (found by fuzzing: a 1159-byte
      // "kinds" line of binary data, a gzip stream without the blank line before it, overflowed it). Field lines
      // are short; comments and key:=value lines (which may be long, e.g. Slicer segmentations) are never echoed.
      if (line.back() == '\r')
        line.pop_back();
      for (unsigned char ch : line)
        if (ch < 0x20 && ch != '\t')
          ThrowInput("NRRD header of " + path.filename().string() +
                     " holds binary data (no blank line before the voxel data?)");
      if (line.size() > 512 && line[0] != '#' && line.find(":=") == std::string::npos)
        ThrowInput("NRRD header of " + path.filename().string() + " has a field line longer than 512 characters");
      if (line[0] == '#' || !SplitField(line, ":", key, value))
        continue;
      if (!value.empty() && value[0] == '=')
        continue; // "key:=value" key/value pairs
      if (key == "data file" || key == "datafile")
      {
        attached = false;
        loc.file = DetachedDataFile(path, value);
      }
      else if (key == "encoding")
        loc.encoding = value == "gz"                       ? "gzip"
                       : value == "bz2"                    ? "bzip2"
                       : value == "txt" || value == "text" ? "ascii"
                                                           : value;
      else if (key == "byte skip" || key == "byteskip")
        skip = std::atoll(value.c_str());
    }
    else
    {
      if (!SplitField(line, "=", key, value))
        continue;
      if (key == "CompressedData")
        loc.encoding = (value == "True" || value == "true") ? "gzip" : "raw";
      else if (key == "HeaderSize")
        skip = std::atoll(value.c_str());
      else if (key == "ElementDataFile")
      {
        if (value != "LOCAL" && value != "Local" && value != "local")
        {
          attached = false;
          loc.file = DetachedDataFile(path, value);
        }
        break; // the last header field
      }
    }
  }
  if (attached)
  {
    loc.file = path;
    loc.offset = pos;
  }
  else
  {
    loc.offset = skip > 0 ? static_cast<std::uint64_t>(skip) : 0;
    loc.fromEnd = skip == -1;
  }
  if (loc.encoding != "raw" && loc.encoding != "gzip" && loc.encoding != "ascii" && loc.encoding != "hex")
    ThrowInput(path.filename().string() + ": data encoding '" + loc.encoding + "' is not supported");
  return true;
}

/// Claimed voxel bytes against the bytes the data file holds, before ITK allocates: raw needs them all; gzip
/// (deflate) cannot expand more than 1032:1; ASCII needs at least 2 characters per value, hex 2 per byte.
void
CheckDataBytes(const fs::path & path, const DataLocation & loc, const itk::ImageIOBase * io)
{
  std::error_code ec;
  const std::uint64_t fileSize = fs::file_size(loc.file, ec);
  if (ec)
    ThrowInput(path.filename().string() + ": cannot read the size of its data file");
  const std::uint64_t available = loc.fromEnd ? fileSize : (fileSize > loc.offset ? fileSize - loc.offset : 0);
  const std::uint64_t needed = static_cast<std::uint64_t>(io->GetImageSizeInBytes());
  const std::uint64_t values =
    static_cast<std::uint64_t>(io->GetImageSizeInPixels()) * std::max<std::uint64_t>(1, io->GetNumberOfComponents());
  bool ok = true;
  if (loc.encoding == "raw")
    ok = available >= needed;
  else if (loc.encoding == "gzip")
    ok = needed / 1032 <= available;
  else if (loc.encoding == "ascii")
    ok = values <= available / 2 + 1;
  else if (loc.encoding == "hex")
    ok = needed <= available / 2;
  if (!ok)
    ThrowInput("image " + path.filename().string() + " claims " + std::to_string(needed) + " voxel bytes but its " +
               loc.encoding + " data hold " + std::to_string(available) + " bytes; refused before allocation");
}

/// Reads the header, validates it, returns the IO object ready to be given to a reader.
itk::ImageIOBase::Pointer
OpenHeader(const fs::path & path)
{
  if (!fs::exists(path))
    ThrowInput("no such file: " + path.string());
  if (fs::is_directory(path))
    ThrowInput("is a directory, not an image file: " + path.string());
  itk::ImageIOBase::Pointer io = CreateImageIO(path);
  const std::string ext = LowerExtension(path);
  if (ext == ".mha" || ext == ".mhd")
    CheckMetaImageHeader(path);
  const std::uint64_t niftiBytes = ext == ".nii" || ext == ".nii.gz" ? CheckNiftiGeometry(path) : 0;
  DataLocation data;
  const bool separateData = LocateData(path, data);
  if (!io->CanReadFile(path.string().c_str()))
    ThrowInput("not a readable " + LowerExtension(path) + " image: " + path.string());
  try
  {
    io->SetFileName(path.string());
    io->ReadImageInformation();
  }
  catch (const std::exception & e)
  {
    std::string what = e.what();
    const auto nl = what.find_last_of('\n', what.size() > 1 ? what.size() - 2 : 0);
    if (nl != std::string::npos && nl + 1 < what.size())
      what = what.substr(nl + 1);
    while (!what.empty() && (what.back() == '\n' || what.back() == ' '))
      what.pop_back();
    ThrowInput("cannot read image header of " + path.filename().string() + ": " + what);
  }
  const unsigned int dim = io->GetNumberOfDimensions();
  if (dim < 1 || dim > 5)
    ThrowInput("unsupported image dimension " + std::to_string(dim) + " in " + path.filename().string());
  std::uint64_t elements = std::max<std::uint64_t>(1, io->GetNumberOfComponents());
  for (unsigned int d = 0; d < dim; ++d)
  {
    const std::uint64_t n = io->GetDimensions(d);
    if (n == 0)
      ThrowInput("image " + path.filename().string() + " has an empty axis " + std::to_string(d));
    if (elements > MaxElements / n)
      ThrowInput("image " + path.filename().string() + " claims more than 2^31 elements; refused before allocation");
    elements *= n;
    if (!(io->GetSpacing(d) > 0.0) || !std::isfinite(io->GetSpacing(d)))
      ThrowInput("image " + path.filename().string() + " has a non-positive or non-finite spacing on axis " +
                 std::to_string(d));
  }
  // an unknown voxel type makes ITK's size queries throw its own exception type (found by fuzzing: an .mha with
  // ElementType = MEAOT_FLT escaped as itk::ExceptionObject)
  if (io->GetComponentType() == itk::IOComponentEnum::UNKNOWNCOMPONENTTYPE)
    ThrowInput("image " + path.filename().string() + " has an unknown or unsupported voxel type");
  try
  {
    CheckVoxelBytesPresent(path, io, niftiBytes);
    if (separateData)
      CheckDataBytes(path, data, io);
  }
  catch (const itk::ExceptionObject & e)
  {
    ThrowInput("cannot size the voxel data of " + path.filename().string() + ": " + e.GetDescription());
  }
  return io;
}

template <typename TImage>
typename TImage::Pointer
ReadWith(const fs::path & path, itk::ImageIOBase * io)
{
  using ReaderType = itk::ImageFileReader<TImage>;
  auto reader = ReaderType::New();
  reader->SetImageIO(io);
  reader->SetFileName(path.string());
  return WithContext(
    "while reading " + path.filename().string(),
    [&]()
    {
      reader->Update();
      typename TImage::Pointer image = reader->GetOutput();
      image->DisconnectPipeline();
      return image;
    },
    ErrorKind::Input);
}

/// Checks that a header describes a 3D scalar image (or 4D with one volume).
void
Require3DScalar(const itk::ImageIOBase * io, const fs::path & path)
{
  if (io->GetNumberOfComponents() != 1)
    ThrowInput(path.filename().string() + " has " + std::to_string(io->GetNumberOfComponents()) +
               " components per voxel; a scalar 3D image is needed");
  const unsigned int dim = io->GetNumberOfDimensions();
  if (dim < 2)
    ThrowInput(path.filename().string() + " is not a 3D image");
  for (unsigned int d = 3; d < dim; ++d)
    if (io->GetDimensions(d) != 1)
      ThrowInput(path.filename().string() + " is " + std::to_string(dim) + "D with " +
                 std::to_string(io->GetDimensions(d)) + " volumes; a 3D image is needed");
}

/// gzip (one member, deflate level 1, libdeflate: faster than zlib's level 1 and about 4% smaller) of the file
/// `from` into `to`.
void
GzipFileFast(const fs::path & from, const fs::path & to)
{
  const std::string data = ReadFile(from);
  std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor *)> c(libdeflate_alloc_compressor(1),
                                                                              libdeflate_free_compressor);
  if (!c)
    ThrowOutput("cannot allocate a deflate compressor for " + to.string());
  std::string gz(libdeflate_gzip_compress_bound(c.get(), data.size()), '\0');
  const std::size_t n = libdeflate_gzip_compress(c.get(), data.data(), data.size(), gz.data(), gz.size());
  if (n == 0)
    ThrowOutput("gzip compression failed for " + to.string());
  std::ofstream out(to, std::ios::binary);
  out.write(gz.data(), static_cast<std::streamsize>(n));
  out.close();
  if (!out)
    ThrowOutput("write failed for " + to.string());
}

template <typename TImage>
void
WriteWith(const TImage * image, const fs::path & path, bool force, bool compress)
{
  if (image == nullptr)
    ThrowInternal("WriteImage: null image for " + path.string());
  itk::ImageIOBase::Pointer io = CreateImageIO(path);
  WriteAtomically(path, force,
                  [&](const fs::path & tmp)
                  {
                    using WriterType = itk::ImageFileWriter<TImage>;
                    auto writer = WriterType::New();
                    writer->SetImageIO(io);
                    writer->SetFileName(tmp.string());
                    writer->SetInput(image);
                    const std::string ext = LowerExtension(path);
                    if (ext == ".nii.gz")
                    {
                      // ITK 5.2's NIfTI writer ignores SetCompressionLevel and deflates at zlib's level 6; the
                      // image is written uncompressed beside the temporary and gzipped at level 1 into it
                      // (writing dominates short runs; level-1 files are ~10% larger)
                      const fs::path raw = tmp.parent_path() / (tmp.filename().string() + ".raw.nii");
                      writer->SetFileName(raw.string());
                      writer->SetUseCompression(false);
                      try
                      {
                        WithContext(
                          "while writing " + path.filename().string(), [&]() { writer->Update(); }, ErrorKind::Output);
                        GzipFileFast(raw, tmp);
                      }
                      catch (...)
                      {
                        std::error_code ec;
                        fs::remove(raw, ec);
                        throw;
                      }
                      std::error_code ec;
                      fs::remove(raw, ec);
                      return;
                    }
                    writer->SetUseCompression(ext != ".nii" && compress);
                    io->SetCompressionLevel(1);
                    WithContext(
                      "while writing " + path.filename().string(), [&]() { writer->Update(); }, ErrorKind::Output);
                  });
}

std::string
ComponentTypeName(const itk::ImageIOBase * io)
{
  return itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType());
}
} // namespace

bool
IsSupportedImageFile(const fs::path & path)
{
  const std::string ext = LowerExtension(path);
  return ext == ".nii" || ext == ".nii.gz" || ext == ".nrrd" || ext == ".nhdr" || ext == ".mha" || ext == ".mhd";
}

ImageInfo
ReadImageInfo(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path);
  ImageInfo info;
  info.dimension = io->GetNumberOfDimensions();
  for (unsigned int d = 0; d < info.dimension; ++d)
  {
    info.size.push_back(io->GetDimensions(d));
    info.spacing.push_back(io->GetSpacing(d));
    info.origin.push_back(io->GetOrigin(d));
  }
  for (unsigned int r = 0; r < info.dimension; ++r)
    for (unsigned int c = 0; c < info.dimension; ++c)
      info.direction.push_back(io->GetDirection(c)[r]); // GetDirection(axis) is a column
  info.components = io->GetNumberOfComponents();
  info.componentType = ComponentTypeName(io);
  info.pixelType = itk::ImageIOBase::GetPixelTypeAsString(io->GetPixelType());
  return info;
}

FloatImage::Pointer
ReadFloatImage(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path);
  Require3DScalar(io, path);
  return ReadWith<FloatImage>(path, io);
}

MaskImage::Pointer
ReadMask(const fs::path & path)
{
  FloatImage::Pointer image = ReadFloatImage(path);
  auto mask = MaskImage::New();
  mask->CopyInformation(image);
  mask->SetRegions(image->GetLargestPossibleRegion());
  mask->Allocate();
  itk::ImageRegionConstIterator<FloatImage> in(image, image->GetLargestPossibleRegion());
  itk::ImageRegionIterator<MaskImage> out(mask, mask->GetLargestPossibleRegion());
  for (; !in.IsAtEnd(); ++in, ++out)
    out.Set(in.Get() != 0.0f && !std::isnan(in.Get()) ? 1 : 0);
  return mask;
}

LabelImage::Pointer
ReadLabelImage(const fs::path & path)
{
  FloatImage::Pointer image = ReadFloatImage(path);
  auto labels = LabelImage::New();
  labels->CopyInformation(image);
  labels->SetRegions(image->GetLargestPossibleRegion());
  labels->Allocate();
  itk::ImageRegionConstIterator<FloatImage> in(image, image->GetLargestPossibleRegion());
  itk::ImageRegionIterator<LabelImage> out(labels, labels->GetLargestPossibleRegion());
  for (; !in.IsAtEnd(); ++in, ++out)
  {
    const float v = in.Get();
    if (!(v >= 0.0f) || v > 65535.0f || v != std::floor(v))
      ThrowInput(path.filename().string() + " is not a label map: value " + std::to_string(v) +
                 " is not an integer in [0, 65535]");
    out.Set(static_cast<LabelImage::PixelType>(v));
  }
  return labels;
}

namespace
{
/// A multi-component file must be 3D (one vector per voxel).
void
RequireVector3D(const itk::ImageIOBase * io, const fs::path & path)
{
  if (io->GetNumberOfDimensions() > 3)
    ThrowInput(path.filename().string() + " is a multi-component image with more than 3 dimensions");
}

/// Scalar series of an opened header as 4D (dimensions past the 4th must be 1).
Float4DImage::Pointer
ReadScalarSeries(const fs::path & path, itk::ImageIOBase * io)
{
  for (unsigned int d = 4; d < io->GetNumberOfDimensions(); ++d)
    if (io->GetDimensions(d) != 1)
      ThrowInput(path.filename().string() + " has more than 4 non-trivial dimensions");
  return ReadWith<Float4DImage>(path, io);
}
} // namespace

Float4DImage::Pointer
ReadFloat4DImage(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path);
  if (io->GetNumberOfComponents() > 1)
  {
    RequireVector3D(io, path);
    return ToFloat4DImage(ReadWith<DwiImage>(path, io));
  }
  return ReadScalarSeries(path, io);
}

namespace
{
/// A whole single-member .gz file inflated at once with libdeflate (about 1.6x zlib's speed on image data);
/// nullopt when the file is not one gzip member of the size its trailer states (the caller then uses ITK's reader).
std::optional<std::string>
GunzipWhole(const std::string & gz, std::uint64_t expected)
{
  if (gz.size() < 18 || static_cast<unsigned char>(gz[0]) != 0x1f || static_cast<unsigned char>(gz[1]) != 0x8b)
    return std::nullopt;
  std::string out(static_cast<std::size_t>(expected), '\0');
  std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor *)> d(libdeflate_alloc_decompressor(),
                                                                                  libdeflate_free_decompressor);
  if (!d)
    return std::nullopt;
  std::size_t inUsed = 0, outUsed = 0;
  const libdeflate_result r =
    libdeflate_gzip_decompress_ex(d.get(), gz.data(), gz.size(), out.data(), out.size(), &inUsed, &outUsed);
  if (r != LIBDEFLATE_SUCCESS || inUsed != gz.size() || outUsed != out.size())
    return std::nullopt;
  return out;
}

template <typename T>
void
GatherVolumes(const char * src, std::size_t voxels, unsigned int n, bool swap, float * dst)
{
  // volume-major (NIfTI) to voxel-major (one vector per voxel), in blocks of voxels that stay in cache
  constexpr std::size_t Block = 256;
  for (std::size_t v0 = 0; v0 < voxels; v0 += Block)
  {
    const std::size_t v1 = std::min(voxels, v0 + Block);
    for (unsigned int t = 0; t < n; ++t)
    {
      const char * vol = src + (static_cast<std::size_t>(t) * voxels) * sizeof(T);
      for (std::size_t v = v0; v < v1; ++v)
      {
        T value;
        std::memcpy(&value, vol + v * sizeof(T), sizeof(T));
        if (swap)
        {
          auto * b = reinterpret_cast<unsigned char *>(&value);
          std::reverse(b, b + sizeof(T));
        }
        dst[v * n + t] = static_cast<float>(value);
      }
    }
  }
}

/// NIfTI-1 single-file 4D scalar series (.nii or .nii.gz) read straight into the vector layout: one inflate with
/// zlib, one pass converting and reordering. Null when the file is anything else (NIfTI-2, intensity scaling,
/// an unsupported datatype, a multi-member gzip...): the caller then reads through ITK. Geometry comes from ITK's
/// header reading, so it is exactly what the ITK path gives.
DwiImage::Pointer
ReadNiftiSeriesFast(const fs::path & path, const itk::ImageIOBase * io)
{
  const std::string ext = LowerExtension(path);
  if ((ext != ".nii" && ext != ".nii.gz") || io->GetNumberOfComponents() != 1 || io->GetNumberOfDimensions() != 4)
    return nullptr;
  // eligibility from the header alone, so files the ITK path reads are not read twice
  const bool gz = ext == ".nii.gz";
  const std::string head = ReadHeadBytes(path, 352, gz);
  if (head.size() < 352)
    return nullptr;
  const bool swap = HeaderValue<std::int32_t>(head, 0, false) != 348;
  if (HeaderValue<std::int32_t>(head, 0, swap) != 348 || std::memcmp(head.data() + 344, "n+1", 4) != 0)
    return nullptr;
  std::int16_t dim[8];
  for (int i = 0; i < 8; ++i)
    dim[i] = HeaderValue<std::int16_t>(head, 40 + 2 * i, swap);
  const auto datatype = HeaderValue<std::int16_t>(head, 70, swap);
  const auto voxOffset = HeaderValue<float>(head, 108, swap);
  const auto sclSlope = HeaderValue<float>(head, 112, swap);
  const auto sclInter = HeaderValue<float>(head, 116, swap);
  const bool scaled = std::isfinite(sclSlope) && sclSlope != 0.0f && (sclSlope != 1.0f || sclInter != 0.0f);
  if (scaled || dim[0] != 4)
    return nullptr;
  for (unsigned int d = 0; d < 4; ++d)
    if (dim[d + 1] < 1 || static_cast<std::size_t>(dim[d + 1]) != io->GetDimensions(d))
      return nullptr;
  std::size_t typeSize = 0;
  switch (datatype)
  {
    case 2:   // uint8
    case 256: // int8
      typeSize = 1;
      break;
    case 4:   // int16
    case 512: // uint16
      typeSize = 2;
      break;
    case 8:  // int32
    case 16: // float32
      typeSize = 4;
      break;
    default:
      return nullptr;
  }
  const std::size_t voxels = std::size_t(dim[1]) * std::size_t(dim[2]) * std::size_t(dim[3]);
  const auto n = static_cast<unsigned int>(dim[4]);
  if (!(voxOffset >= 352.0f))
    return nullptr;
  const auto offset = static_cast<std::size_t>(voxOffset);
  std::string bytes = ReadFile(path);
  if (gz)
  {
    // the trailer states the inflated size (header, extensions, voxels); CheckVoxelBytesPresent has bounded it
    if (bytes.size() < 18)
      return nullptr;
    const std::uint64_t isize =
      GzipTrailerSize(reinterpret_cast<const unsigned char *>(bytes.data() + bytes.size() - 4));
    const std::uint64_t needed = 348 + static_cast<std::uint64_t>(io->GetImageSizeInBytes());
    if (isize < needed || isize > needed + (std::uint64_t{ 64 } << 20))
      return nullptr;
    auto inflated = GunzipWhole(bytes, isize);
    if (!inflated)
      return nullptr;
    bytes = std::move(*inflated);
  }
  if (offset + voxels * n * typeSize > bytes.size())
    return nullptr;
  auto out = DwiImage::New();
  DwiImage::SizeType size;
  DwiImage::SpacingType spacing;
  DwiImage::PointType origin;
  DwiImage::DirectionType direction;
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = io->GetDimensions(r);
    spacing[r] = io->GetSpacing(r);
    origin[r] = io->GetOrigin(r);
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = io->GetDirection(c)[r];
  }
  DwiImage::IndexType index;
  index.Fill(0);
  out->SetRegions(DwiImage::RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->SetNumberOfComponentsPerPixel(n);
  out->Allocate();
  const char * src = bytes.data() + offset;
  float * dst = out->GetBufferPointer();
  switch (datatype)
  {
    case 2:
      GatherVolumes<std::uint8_t>(src, voxels, n, false, dst);
      break;
    case 256:
      GatherVolumes<std::int8_t>(src, voxels, n, false, dst);
      break;
    case 4:
      GatherVolumes<std::int16_t>(src, voxels, n, swap, dst);
      break;
    case 512:
      GatherVolumes<std::uint16_t>(src, voxels, n, swap, dst);
      break;
    case 8:
      GatherVolumes<std::int32_t>(src, voxels, n, swap, dst);
      break;
    case 16:
      GatherVolumes<float>(src, voxels, n, swap, dst);
      break;
  }
  return out;
}
} // namespace

DwiImage::Pointer
ReadVectorImage(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path); // header read once, whichever layout the file has
  if (io->GetNumberOfComponents() > 1)
  {
    RequireVector3D(io, path);
    return ReadWith<DwiImage>(path, io);
  }
  if (DwiImage::Pointer fast = WithContext(
        "while reading " + path.filename().string(), [&]() { return ReadNiftiSeriesFast(path, io); }, ErrorKind::Input))
    return fast;
  return ToVectorImage(ReadScalarSeries(path, io));
}

void
WriteImage(const FloatImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const MaskImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const LabelImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const Float4DImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const DwiImage * image, const fs::path & path, bool force, bool compress)
{
  const std::string ext = LowerExtension(path);
  if (ext == ".nii" || ext == ".nii.gz")
  {
    // NIfTI tools (FSL, MRtrix, dcm2niix) expect a DWI as a 4D series, not a 5D vector image.
    Float4DImage::Pointer series = ToFloat4DImage(image);
    WriteWith<Float4DImage>(series, path, force, compress);
    return;
  }
  WriteWith(image, path, force, compress);
}
void
WriteImage(const TensorImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const VectorImage3 * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}

DwiImage::Pointer
ToVectorImage(const Float4DImage * image)
{
  if (image == nullptr)
    ThrowInternal("ToVectorImage: null image");
  const auto size4 = image->GetLargestPossibleRegion().GetSize();
  const auto index4 = image->GetLargestPossibleRegion().GetIndex();
  auto out = DwiImage::New();
  DwiImage::SizeType size;
  DwiImage::IndexType index;
  DwiImage::SpacingType spacing;
  DwiImage::PointType origin;
  DwiImage::DirectionType direction;
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = size4[r];
    index[r] = index4[r];
    spacing[r] = image->GetSpacing()[r];
    origin[r] = image->GetOrigin()[r];
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = image->GetDirection()(r, c);
  }
  const unsigned int n = static_cast<unsigned int>(size4[3]);
  out->SetRegions(DwiImage::RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->SetNumberOfComponentsPerPixel(n);
  out->Allocate();
  const std::size_t voxels = size[0] * size[1] * size[2];
  const float * src = image->GetBufferPointer();
  float * dst = out->GetBufferPointer();
  for (unsigned int t = 0; t < n; ++t)
    for (std::size_t v = 0; v < voxels; ++v)
      dst[v * n + t] = src[t * voxels + v];
  return out;
}

Float4DImage::Pointer
ToFloat4DImage(const DwiImage * image)
{
  if (image == nullptr)
    ThrowInternal("ToFloat4DImage: null image");
  const unsigned int n = image->GetNumberOfComponentsPerPixel();
  auto out = Float4DImage::New();
  Float4DImage::SizeType size;
  Float4DImage::IndexType index;
  Float4DImage::SpacingType spacing;
  Float4DImage::PointType origin;
  Float4DImage::DirectionType direction;
  direction.SetIdentity();
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = image->GetLargestPossibleRegion().GetSize()[r];
    index[r] = image->GetLargestPossibleRegion().GetIndex()[r];
    spacing[r] = image->GetSpacing()[r];
    origin[r] = image->GetOrigin()[r];
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = image->GetDirection()(r, c);
  }
  size[3] = n;
  index[3] = 0;
  spacing[3] = 1.0;
  origin[3] = 0.0;
  out->SetRegions(Float4DImage::RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->Allocate();
  const std::size_t voxels = size[0] * size[1] * size[2];
  const float * src = image->GetBufferPointer();
  float * dst = out->GetBufferPointer();
  for (unsigned int t = 0; t < n; ++t)
    for (std::size_t v = 0; v < voxels; ++v)
      dst[t * voxels + v] = src[v * n + t];
  return out;
}

namespace
{
FloatImage::Pointer
Make3DLike(const itk::ImageBase<4> * image4, const itk::ImageRegion<4> & region4)
{
  auto out = FloatImage::New();
  SizeType size;
  IndexType index;
  SpacingType spacing;
  PointType origin;
  DirectionType direction;
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = region4.GetSize()[r];
    index[r] = region4.GetIndex()[r];
    spacing[r] = image4->GetSpacing()[r];
    origin[r] = image4->GetOrigin()[r];
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = image4->GetDirection()(r, c);
  }
  out->SetRegions(RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->Allocate();
  return out;
}
} // namespace

FloatImage::Pointer
ExtractVolume(const Float4DImage * image, unsigned int t)
{
  if (image == nullptr)
    ThrowInternal("ExtractVolume: null image");
  const auto region = image->GetLargestPossibleRegion();
  if (t >= region.GetSize()[3])
    ThrowUsage("volume " + std::to_string(t) + " requested from a series of " + std::to_string(region.GetSize()[3]));
  FloatImage::Pointer out = Make3DLike(image, region);
  const std::size_t voxels = out->GetLargestPossibleRegion().GetNumberOfPixels();
  std::copy_n(image->GetBufferPointer() + t * voxels, voxels, out->GetBufferPointer());
  return out;
}

FloatImage::Pointer
ExtractComponent(const DwiImage * image, unsigned int c)
{
  if (image == nullptr)
    ThrowInternal("ExtractComponent: null image");
  const unsigned int n = image->GetNumberOfComponentsPerPixel();
  if (c >= n)
    ThrowUsage("component " + std::to_string(c) + " requested from an image with " + std::to_string(n));
  auto out = FloatImage::New();
  out->CopyInformation(image);
  out->SetRegions(image->GetLargestPossibleRegion());
  out->Allocate();
  const std::size_t voxels = out->GetLargestPossibleRegion().GetNumberOfPixels();
  const float * src = image->GetBufferPointer();
  float * dst = out->GetBufferPointer();
  for (std::size_t v = 0; v < voxels; ++v)
    dst[v] = src[v * n + c];
  return out;
}
} // namespace gw::io
