// Image header validation before ITK sees a file: see header_checks.h.
#include "header_checks.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include <zlib.h>

#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include "gw/core/error.h"

namespace gw::io::detail
{
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

std::uint64_t
GzipTrailerSize(const unsigned char * t)
{
  return std::uint64_t(t[0]) | std::uint64_t(t[1]) << 8 | std::uint64_t(t[2]) << 16 | std::uint64_t(t[3]) << 24;
}

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

namespace
{
/// A MetaImage header as ITK 5.2's MetaIO (MET_Read) reads it, up to its last field, ElementDataFile.
struct MetaHeader
{
  std::vector<std::pair<std::string, std::string>> fields; ///< key, value in file order (ElementDataFile last)
  std::uint64_t dataOffset = 0;                            ///< first byte after the ElementDataFile line
};

/// Lines of a MetaImage header before ElementDataFile (real headers have about 20).
constexpr int MaxMetaHeaderLines = 200;

/// Splits a MetaImage header into fields the way MetaIO's MET_Read does, and refuses headers that MetaIO would
/// read differently from us or copy into its fixed buffers unchecked. MetaIO's key starts at the first non-blank
/// character of a line and ends at the first '=' or ':' (both are separators); the value follows the separator(s)
/// and blanks. Matching that exactly matters: a check that only knows "key = value" misses "BinaryData: False" or
/// " NDims = 300", which MetaIO honours. Refused: a line (up to ElementDataFile) that is not printable text or is
/// longer than 250 characters (MetaIO copies field names and values into 255-byte arrays; a fuzzed header with a
/// long binary field overflowed them), and a header without an ElementDataFile field in its first 200 lines
/// (MetaIO requires the field and would otherwise parse the voxel bytes as header fields).
MetaHeader
ReadMetaHeader(const fs::path & path)
{
  const std::string name = path.filename().string();
  const std::string head = ReadHeadBytes(path, std::size_t{ 64 } << 10, false);
  MetaHeader h;
  std::size_t pos = 0;
  for (int lines = 0; lines < MaxMetaHeaderLines && pos < head.size(); ++lines)
  {
    std::size_t end = head.find('\n', pos);
    if (end == std::string::npos)
      end = head.size();
    std::string line = head.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.size() > 250)
      ThrowInput("MetaImage header of " + name + " has a line longer than 250 characters");
    for (unsigned char c : line)
      if (c < 0x20 && c != '\t')
        ThrowInput("MetaImage header of " + name + " holds binary data");
    const auto blank = [](char c) { return c == ' ' || c == '\t'; };
    std::size_t b = 0;
    while (b < line.size() && blank(line[b]))
      ++b;
    if (b == line.size())
      continue; // MetaIO skips blank lines
    const std::size_t sep = line.find_first_of("=:", b);
    if (sep == std::string::npos)
      // MetaIO would look for the separator on the next lines (MET_SkipToVal) and read the following fields out of
      // step with their lines, past ElementDataFile into the voxel bytes (found by fuzzing: a line "ElementType1"
      // made MetaIO take "ElementDataFile = LOCAL" as its value and copy a binary "field name" into 255 bytes)
      ThrowInput("MetaImage header of " + name + " has a line without '=' or ':'");
    std::size_t ke = sep;
    while (ke > b && blank(line[ke - 1]))
      --ke;
    std::size_t vb = sep;
    while (vb < line.size() && (line[vb] == '=' || line[vb] == ':' || blank(line[vb])))
      ++vb;
    std::size_t ve = line.size();
    while (ve > vb && blank(line[ve - 1]))
      --ve;
    h.fields.emplace_back(line.substr(b, ke - b), line.substr(vb, ve - vb));
    if (h.fields.back().first == "ElementDataFile")
    {
      h.dataOffset = std::min<std::uint64_t>(pos, head.size());
      return h;
    }
  }
  ThrowInput("MetaImage header of " + name + " has no ElementDataFile field in its first " +
             std::to_string(MaxMetaHeaderLines) + " lines");
}

/// MetaIO's reading of a boolean field (BinaryData, CompressedData): true when the value starts with T, t or 1.
bool
MetaTrue(const std::string & value)
{
  return !value.empty() && (value[0] == 'T' || value[0] == 't' || value[0] == '1');
}

/// How many numbers MetaIO reads for a numeric MetaObject/MetaImage field (0: not a numeric field or unknown).
int
MetaArrayLength(const std::string & key, int dims)
{
  static const char * const perAxis[] = { "Offset",  "Position",       "Origin",     "CenterOfRotation",
                                          "DimSize", "ElementSpacing", "ElementSize" };
  static const char * const matrix[] = { "TransformMatrix", "Rotation", "Orientation" };
  static const char * const scalar[] = {
    "NDims", "ID", "ParentID", "HeaderSize", "ElementNumberOfChannels", "ElementMin", "ElementMax", "CompressedDataSize"
  };
  const int d = std::max(dims, 1);
  for (const char * k : perAxis)
    if (key == k)
      return d;
  for (const char * k : matrix)
    if (key == k)
      return d * d;
  for (const char * k : scalar)
    if (key == k)
      return 1;
  return key == "Color" ? 4 : 0;
}

/// Field rules for MetaImage headers, before MetaIO parses them (see ReadMetaHeader for the line rules); returns
/// the parsed header:
/// - NDims must be a plain integer 1..10: MetaIO reads NDims values for every per-axis field (a huge NDims kept
///   it reading for minutes, found by fuzzing), and reads "1e3" or "3.5" as numbers too.
/// - BinaryData must be true (T/t/1, as MetaIO decides; absent means true): ITK 5.2's MetaIO reads ASCII voxel data
///   (BinaryData = False, or any other value) through MetaImage::M_ReadElementsROI -> M_ReadElementData, which
///   writes one element past the end of the destination buffer whenever ITK reads the file through a region (a 2D
///   file read as 3D, a vector image, ...). Found by fuzzing: the uninstrumented write zeroed the allocator header of
///   the next heap chunk, which AddressSanitizer only noticed inputs later (CHECK kAllocBegMagic); valgrind shows
///   "Invalid write of size 8 ... 0 bytes after a block" in MET_DoubleToValue. No input of this project is ASCII.
MetaHeader
CheckMetaImageHeader(const fs::path & path)
{
  const std::string name = path.filename().string();
  MetaHeader header = ReadMetaHeader(path);
  int dims = 0; // NDims once read (MetaIO refuses per-axis fields before it)
  for (const auto & [key, value] : header.fields)
  {
    if (key == "NDims")
    {
      const bool digits = !value.empty() && value.size() <= 2 &&
                          std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
      dims = digits ? std::stoi(value) : 0;
      if (dims < 1 || dims > 10)
        ThrowInput("MetaImage header of " + name + ": NDims '" + value + "' is not 1..10");
    }
    else if (const int count = MetaArrayLength(key, dims); count > 0)
    {
      // MetaIO reads numeric fields with operator>>, which continues on the next lines when a line holds fewer
      // values than the field needs; its fields would then be read out of step with the lines checked here
      std::istringstream values(value);
      std::string token;
      int n = 0;
      while (values >> token)
        ++n;
      if (n < count)
        ThrowInput("MetaImage header of " + name + ": " + key + " needs " + std::to_string(count) +
                   " values on its line");
    }
    else if (key == "BinaryData" && !MetaTrue(value))
      ThrowInput("MetaImage header of " + name + ": ASCII voxel data (BinaryData = " + value +
                 ") is not supported; convert the image to binary MetaImage or NIfTI");
  }
  return header;
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
    // deflate expands at most 1032-fold (a 258-byte match per 2 bits): a file that cannot hold the voxels whatever
    // its gzip trailer says (found by fuzzing: a truncated 66-byte .nii.gz claiming 582 MB, whose garbage trailer
    // claimed more, made ITK allocate 1.2 GB)
    if (needed / 1032 > fileSize)
      ThrowInput("image " + path.filename().string() + " claims " + std::to_string(needed) +
                 " bytes of header and voxels, more than its " + std::to_string(fileSize) +
                 " compressed bytes can hold; refused before allocation");
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
  // its magic at byte 344, Analyze 7.5 by sizeof_hdr 348; byte order from dim[0] (1..7 when native). At byte 344
  // niftilib's NIFTI_VERSION takes any "n+D"/"niD" with a digit D of 1..9 as NIfTI and then uses the xforms of the
  // NIfTI-1 layout (found by fuzzing: "n+2" there, a NaN in the sform and VNL abort(); only "n+1" counted here).
  int version = 0;
  bool nifti = true, swap = false;
  const auto dimOk = [](std::int64_t d) { return d >= 1 && d <= 7; };
  const auto niftiMagic = [&h](std::size_t at)
  { return h[at] == 'n' && (h[at + 1] == '+' || h[at + 1] == 'i') && h[at + 2] >= '1' && h[at + 2] <= '9'; };
  if (h.size() >= 540 && (h.compare(4, 3, "n+2") == 0 || h.compare(4, 3, "ni2") == 0))
  {
    version = 2;
    swap = !dimOk(HeaderValue<std::int64_t>(h, 16, false));
  }
  else if (niftiMagic(344))
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
  int dim0, qcode, scode, bitpix, datatype;
  std::int64_t dims[8];
  if (version == 1)
  {
    dim0 = HeaderValue<std::int16_t>(h, 40, swap);
    for (int i = 0; i < 8; ++i)
      dims[i] = HeaderValue<std::int16_t>(h, 40 + 2 * i, swap);
    datatype = HeaderValue<std::int16_t>(h, 70, swap);
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
    datatype = HeaderValue<std::int16_t>(h, 12, swap);
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
  // bytes the file must hold: vox_offset (at least the header) + voxels x bytes per voxel, the latter from the
  // datatype as niftilib takes it (nifti_datatype_sizes; bitpix is not used: found by fuzzing, bitpix 3855 skipped
  // this check and a 66-byte file made ITK allocate 1.2 GB), from bitpix for a datatype it does not know; 0 when not
  // computable here
  std::uint64_t voxelBytes = 0;
  switch (datatype)
  {
    case 2:   // uint8
    case 256: // int8
      voxelBytes = 1;
      break;
    case 4:   // int16
    case 512: // uint16
      voxelBytes = 2;
      break;
    case 128: // rgb24
      voxelBytes = 3;
      break;
    case 8:    // int32
    case 16:   // float32
    case 768:  // uint32
    case 2304: // rgba32
      voxelBytes = 4;
      break;
    case 32:   // complex64
    case 64:   // float64
    case 1024: // int64
    case 1280: // uint64
      voxelBytes = 8;
      break;
    case 1536: // float128
    case 1792: // complex128
      voxelBytes = 16;
      break;
    case 2048: // complex256
      voxelBytes = 32;
      break;
    default:
      if (bitpix > 0 && bitpix % 8 == 0)
        voxelBytes = static_cast<std::uint64_t>(bitpix / 8);
  }
  if (voxelBytes == 0)
    return 0;
  std::uint64_t bytes = voxelBytes;
  for (int i = 1; i <= dim0; ++i)
  {
    if (dims[i] <= 0 || static_cast<std::uint64_t>(dims[i]) > (std::uint64_t{ 1 } << 40) / bytes)
      return 0; // ITK refuses empty axes, OpenHeader huge ones
    bytes *= static_cast<std::uint64_t>(dims[i]);
  }
  return bytes + std::max<std::uint64_t>(static_cast<std::uint64_t>(voxOffset), version == 1 ? 348 : 540);
}

/// One "key<sep>value" header line of NRRD (": "; MetaImage headers are split by ReadMetaHeader).
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
  fs::path file;                ///< the data file (the header itself when attached)
  std::uint64_t offset = 0;     ///< first data byte (attached: after the header; detached: byte skip)
  std::string encoding;         ///< "raw", "gzip", "bzip2", "ascii", "hex"
  bool fromEnd = false;         ///< byte skip -1 / HeaderSize -1: the data are the last bytes of the file
  double compressedSize = -1.0; ///< MetaImage CompressedDataSize when given (-1: absent)
  bool meta = false;            ///< a MetaImage header
};

/// Bytes the zlib or gzip stream at `offset` of `file` (at most `limit` compressed bytes) inflates to, decompressed
/// once here with the output discarded; `complete` tells whether the stream ended (Z_STREAM_END) within the bytes.
/// Counting stops once `enough` bytes plus 64 MiB came out (then `complete` is true: the data are plentiful).
std::uint64_t
InflatedBytes(const fs::path & file, std::uint64_t offset, std::uint64_t limit, std::uint64_t enough, bool & complete)
{
  complete = false;
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) // zlib or gzip header, as MetaIO
    return 0;
  std::vector<unsigned char> src(std::size_t{ 1 } << 16), dst(std::size_t{ 1 } << 18);
  std::uint64_t produced = 0, consumed = 0;
  int rc = Z_OK;
  while (rc == Z_OK)
  {
    if (produced > enough + (std::uint64_t{ 64 } << 20))
    {
      complete = true;
      break;
    }
    if (z.avail_in == 0)
    {
      const std::uint64_t want = std::min<std::uint64_t>(src.size(), limit - consumed);
      in.read(reinterpret_cast<char *>(src.data()), static_cast<std::streamsize>(want));
      const auto got = static_cast<std::uint64_t>(std::max<std::streamsize>(0, in.gcount()));
      if (got == 0)
        break; // input exhausted before the end of the stream
      consumed += got;
      z.next_in = src.data();
      z.avail_in = static_cast<uInt>(got);
    }
    z.next_out = dst.data();
    z.avail_out = static_cast<uInt>(dst.size());
    rc = inflate(&z, Z_NO_FLUSH);
    produced += dst.size() - z.avail_out;
    if (rc == Z_STREAM_END)
      complete = true;
    if (rc == Z_BUF_ERROR && z.avail_in == 0)
      rc = Z_OK; // needs more input
  }
  inflateEnd(&z);
  return produced;
}

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

/// Parses the NRRD or MetaImage header text for the data location (before ITK opens anything; a MetaImage header
/// already read by CheckMetaImageHeader is passed in `metaHeader`). Throws on refused data file paths and
/// unsupported encodings. Returns false for other formats.
bool
LocateData(const fs::path & path, const MetaHeader * metaHeader, DataLocation & loc)
{
  const std::string ext = LowerExtension(path);
  const bool nrrd = ext == ".nrrd" || ext == ".nhdr";
  const bool meta = ext == ".mha" || ext == ".mhd";
  if (!nrrd && !meta)
    return false;
  std::uint64_t pos = 0;
  bool attached = true;
  long long skip = 0;
  loc.encoding = "raw";
  if (meta)
  {
    loc.meta = true;
    // fields as MetaIO splits them ("key = value" or "key: value"; ElementDataFile is the last one), as checked
    const MetaHeader h = metaHeader ? *metaHeader : CheckMetaImageHeader(path);
    pos = h.dataOffset;
    for (const auto & [key, value] : h.fields)
    {
      if (key == "CompressedData")
        loc.encoding = MetaTrue(value) ? "gzip" : "raw";
      else if (key == "HeaderSize")
        skip = std::atoll(value.c_str());
      else if (key == "CompressedDataSize")
      {
        char * end = nullptr;
        loc.compressedSize = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || !std::isfinite(loc.compressedSize) || loc.compressedSize < 0.0)
          ThrowInput(path.filename().string() + ": invalid CompressedDataSize '" + value + "'");
      }
      else if (key == "ElementDataFile" && value != "LOCAL" && value != "Local" && value != "local")
      {
        attached = false;
        loc.file = DetachedDataFile(path, value);
      }
    }
  }
  std::ifstream in;
  if (nrrd)
    in.open(path, std::ios::binary);
  std::string line, key, value;
  for (int lines = 0; nrrd && lines < 10000 && std::getline(in, line); ++lines)
  {
    pos += line.size() + 1;
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
    // a key:=value line has ":=" at its first colon; a field line may hold ":=" further on and NrrdIO still parses
    // it as that field (found by fuzzing: a 1064-byte "sizes" line with ":=" near its end overflowed the buffer)
    const auto colon = line.find(':');
    const bool keyValue = colon != std::string::npos && colon + 1 < line.size() && line[colon + 1] == '=';
    if (line.size() > 512 && line[0] != '#' && !keyValue)
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
  if (attached)
  {
    loc.file = path;
    loc.offset = pos;
    // MetaIO reads attached data from byte HeaderSize of the file when it is given (valgrind sweep: HeaderSize = 10
    // or 100000 made it inflate header text or nothing, and ITK kept uninitialised voxels)
    if (meta && skip > 0)
      loc.offset = static_cast<std::uint64_t>(skip);
    loc.fromEnd = meta && skip == -1;
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
  // MetaIO allocates CompressedDataSize bytes and inflates them all: more than the file holds is a huge allocation
  // or inflating uninitialised memory (valgrind: "Conditional jump ... depends on uninitialised value(s)" in inflate
  // from MET_PerformUncompression, on a truncated compressed .mha)
  if (loc.encoding == "gzip" && loc.compressedSize > static_cast<double>(available))
    ThrowInput("image " + path.filename().string() + ": CompressedDataSize " + std::to_string(loc.compressedSize) +
               " exceeds the " + std::to_string(available) + " bytes its data hold");
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
  // MetaImage compressed data must be one complete stream that inflates to the voxel bytes the header claims: ITK
  // 5.2's MetaIO region reader (MET_UncompressStream, used whenever ITK reads the file through a region, e.g. a 1D or
  // 2D file read as 3D) loops forever on a complete deflate stream that ends early (found by a valgrind sweep of
  // generated headers). Costs one extra inflate of compressed MetaImage files (this project writes none by default).
  // HeaderSize = -1 (data at the end of the file) with compressed data cannot be located here and is refused.
  if (loc.meta && loc.encoding == "gzip")
  {
    if (loc.fromEnd)
      ThrowInput(path.filename().string() + ": compressed data with HeaderSize = -1 is not supported");
    const std::uint64_t limit = loc.compressedSize >= 0.0 ? static_cast<std::uint64_t>(loc.compressedSize) : available;
    bool complete = false;
    const std::uint64_t inflated = InflatedBytes(loc.file, loc.offset, limit, needed, complete);
    if (inflated < needed)
      ThrowInput("image " + path.filename().string() + " claims " + std::to_string(needed) +
                 " voxel bytes but its compressed data inflate to " + std::to_string(inflated));
    // a stream cut short (valgrind sweep: a truncated stream holding enough bytes still left voxels uninitialised
    // in the region reader)
    if (!complete)
      ThrowInput("image " + path.filename().string() + ": its compressed data are truncated or corrupt");
  }
}
} // namespace

itk::ImageIOBase::Pointer
OpenHeader(const fs::path & path)
{
  if (!fs::exists(path))
    ThrowInput("no such file: " + path.string());
  if (fs::is_directory(path))
    ThrowInput("is a directory, not an image file: " + path.string());
  itk::ImageIOBase::Pointer io = CreateImageIO(path);
  const std::string ext = LowerExtension(path);
  std::optional<MetaHeader> meta;
  if (ext == ".mha" || ext == ".mhd")
    meta = CheckMetaImageHeader(path);
  const std::uint64_t niftiBytes = ext == ".nii" || ext == ".nii.gz" ? CheckNiftiGeometry(path) : 0;
  DataLocation data;
  const bool separateData = LocateData(path, meta ? &*meta : nullptr, data);
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
} // namespace gw::io::detail
