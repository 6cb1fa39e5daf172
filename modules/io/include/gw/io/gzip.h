#pragma once
// gzip (RFC 1952) writing shared by every GraftWatch writer of .nii.gz and gzip-encoded NRRD data.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "gw/core/files.h"

namespace gw::io
{
/// Writes the concatenation of `parts` to the file `path` as one gzip member (RFC 1952), after the file's present
/// content when `append` (a NRRD header before its data), replacing it otherwise. pigz style: pieces of 2 MiB are
/// deflated independently on up to 4 threads by ISA-L's level 1 (igzip: 4-6x zlib's level-1 speed on image data and
/// maps, at zlib's level-1 size on images and within 7% of it on mostly-background maps), every piece but the last
/// ending on a byte boundary (full flush) so that the concatenation is one valid deflate stream; the CRC-32 of the
/// whole (ISA-L's) is combined from the pieces'. Throws gw::Error (Output) when the file cannot be written.
void WriteGzipFile(const fs::path & path, const std::vector<std::pair<const std::uint8_t *, std::size_t>> & parts,
                   bool append = false);
} // namespace gw::io
