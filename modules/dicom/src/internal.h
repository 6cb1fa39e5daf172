#pragma once
// Internal interfaces of gw::dicom (not installed). DCMTK types never appear here.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gw/dicom/dicom.h"

namespace gw::dicom::detail
{

/// True for the explicit-VR value representations with a 4-byte length field (OB OD OF OL OV OW SQ SV UC UN UR UT
/// UV); the others have a 2-byte length.
inline bool
IsLongLengthVr(char v0, char v1)
{
  return (v0 == 'O' && (v1 == 'B' || v1 == 'D' || v1 == 'F' || v1 == 'L' || v1 == 'V' || v1 == 'W')) ||
         (v0 == 'S' && (v1 == 'Q' || v1 == 'V')) ||
         (v0 == 'U' && (v1 == 'C' || v1 == 'N' || v1 == 'R' || v1 == 'T' || v1 == 'V'));
}

/// True for the two-letter value representations of the DICOM standard (PS3.5 6.2). DCMTK reads an unknown VR
/// code with a length field other than the 2 bytes it would have, so a walker and DCMTK disagree on such files.
inline bool
IsStandardVr(char v0, char v1)
{
  static const char * const vrs = "AEASATCSDADSDTFLFDISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
  for (const char * v = vrs; *v; v += 2)
    if (v[0] == v0 && v[1] == v1)
      return true;
  return false;
}

/// One parsed DICOM file: the series-level facts (in a SeriesInfo with exactly this file's frames) or a skip reason.
struct ParsedFile
{
  bool isImage = false;
  std::string skipReason;     ///< when !isImage
  SeriesInfo info;            ///< frames of this file only
  std::string seriesKeyExtra; ///< split key (orientation, size, echo...)
};

/// Parses the header of one file (gzip-compressed allowed). Never throws for bad files: returns a skip reason.
ParsedFile ParseFile(const fs::path & path);

/// Raw decoded pixels of one file: all frames, host byte order, 8/16/32-bit samples.
struct PixelBlock
{
  unsigned int rows = 0, columns = 0, frames = 1, bitsAllocated = 16, samplesPerPixel = 1;
  bool isSigned = false;
  bool isFloat = false;
  std::vector<std::uint8_t> bytes; ///< frames * rows * columns * samples * bitsAllocated/8
};

/// Decodes all frames of a file (uncompressed, deflate, RLE, JPEG, JPEG-LS via DCMTK; JPEG 2000 via OpenJPEG).
/// Throws Error(Input) when the pixels cannot be decoded.
PixelBlock DecodePixels(const fs::path & path);

/// Decodes all frames of a file using what the scan found (PixelDataInfo): native little-endian pixel data are read
/// directly (one read of exactly the pixel bytes, after checking the element tag); compressed data are decoded from
/// the image pixel module and the pixel element only (the rest of the header is not parsed again). Falls back to
/// DecodePixels(path) when the location is unknown or no longer matches the file.
PixelBlock DecodePixels(const fs::path & path, const PixelDataInfo & info);

/// Siemens CSA header (SV10 or the older format): element name → values (strings).
using CsaHeader = std::map<std::string, std::vector<std::string>>;
/// Parses a CSA blob. Throws Error(Input) for a malformed blob.
CsaHeader ParseCsa(const std::uint8_t * data, std::size_t length);
/// First value of a CSA element as a number, if present and numeric.
std::optional<double> CsaNumber(const CsaHeader & csa, const std::string & name, std::size_t index = 0);

/// Reads a whole (possibly gzip-compressed) file. Returns false when unreadable.
bool ReadMaybeGzip(const fs::path & path, std::vector<std::uint8_t> & bytes, std::string & error);

/// Real values (slope/intercept applied) of voxels [begin, begin+count) as float.
void ToFloat(const LoadedSeries & s, std::size_t begin, std::size_t count, float * out);

} // namespace gw::dicom::detail
