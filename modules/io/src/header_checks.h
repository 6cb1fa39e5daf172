// Image header validation before ITK sees a file (internal to gw::io): every check that keeps a malformed or
// malicious header from making ITK allocate, abort or read out of bounds. Used by image_io.cxx.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include <itkImageIOBase.h>

#include "gw/core/files.h"

namespace gw::io::detail
{
/// Largest image we agree to allocate (elements = voxels x components): 2^31, 8 GiB as float.
constexpr std::uint64_t MaxElements = std::uint64_t{ 1 } << 31;

/// The file's extension in lower case (".nii.gz" counts as one).
std::string LowerExtension(const fs::path & path);

/// The ITK IO object of the file's format, chosen by extension; throws on an unsupported extension.
itk::ImageIOBase::Pointer CreateImageIO(const fs::path & path);

/// Reads the header, validates it, returns the IO object ready to be given to a reader.
itk::ImageIOBase::Pointer OpenHeader(const fs::path & path);

/// The uncompressed size a gzip member's trailer states (ISIZE: little-endian, modulo 2^32) from its last 4 bytes.
std::uint64_t GzipTrailerSize(const unsigned char * t);

/// Reads up to `n` bytes from the start of `path`, through gzip when `gz`. Returns what was read ("" when a gzip
/// file cannot be opened: ITK's own checks apply then).
std::string ReadHeadBytes(const fs::path & path, std::size_t n, bool gz);

/// The value of type T stored at `p` (any alignment), byte-swapped when `swap`.
template <typename T>
T
ValueAt(const char * p, bool swap)
{
  T v;
  char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (swap)
    std::reverse(b, b + sizeof(T));
  std::memcpy(&v, b, sizeof(T));
  return v;
}

/// A value of type T at `offset` of a binary header, byte-swapped when `swap`.
template <typename T>
T
HeaderValue(const std::string & h, std::size_t offset, bool swap)
{
  return ValueAt<T>(h.data() + offset, swap);
}
} // namespace gw::io::detail
