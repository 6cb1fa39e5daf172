// gzip writing: see gw/io/gzip.h.
#include "gw/io/gzip.h"

#include <algorithm>
#include <fstream>
#include <memory>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "gw/core/error.h"
#include "gw/core/parallel.h"

namespace gw::io
{
namespace
{
void
WriteGzip(std::ostream & out, const std::vector<std::pair<const std::uint8_t *, std::size_t>> & parts)
{
  constexpr std::size_t pieceSize = std::size_t{ 1 } << 21; // [bytes] of input per independently deflated piece
  std::vector<std::pair<const std::uint8_t *, std::size_t>> pieces;
  for (const auto & [data, size] : parts)
  {
    std::size_t off = 0;
    do
    {
      const std::size_t n = std::min(pieceSize, size - off);
      pieces.emplace_back(data + off, n);
      off += n;
    } while (off < size);
  }
  // per piece: its deflate stream (uninitialised storage: the encoder writes what is kept) and its length
  std::vector<std::unique_ptr<std::uint8_t[]>> compressed(pieces.size());
  std::vector<std::size_t> compressedSize(pieces.size(), 0);
  std::vector<uLong> crcs(pieces.size());
  auto compress = [&](std::size_t i, std::uint8_t * levelBuffer)
  {
    const auto [data, size] = pieces[i];
    crcs[i] = crc32_gzip_refl(0, data, size); // ISA-L's carry-less multiply CRC, several times zlib's speed
    isal_zstream zs;
    isal_deflate_stateless_init(&zs);
    zs.level = 1;
    zs.level_buf = levelBuffer;
    zs.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    zs.gzip_flag = 0; // raw deflate: the gzip header and trailer are written around the joined pieces
    const bool last = i + 1 == pieces.size();
    zs.end_of_stream = last ? 1 : 0;
    zs.flush = last ? NO_FLUSH : FULL_FLUSH; // FULL_FLUSH: ends on a byte boundary, no reference to earlier data
    // stateless output must fit at once: at worst stored blocks (5 bytes per 64 KiB) after a block header
    const std::size_t capacity = size + size / 16 + 2 * ISAL_DEF_MAX_HDR_SIZE + 64;
    compressed[i].reset(new std::uint8_t[capacity]);
    zs.next_in = const_cast<std::uint8_t *>(data);
    zs.avail_in = static_cast<std::uint32_t>(size);
    zs.next_out = compressed[i].get();
    zs.avail_out = static_cast<std::uint32_t>(capacity);
    if (isal_deflate_stateless(&zs) != COMP_OK || zs.avail_in != 0)
      ThrowOutput("gzip compression failed");
    compressedSize[i] = capacity - zs.avail_out;
  };
  // equal pieces in one run of consecutive pieces per worker, each with one working buffer for the encoder (its
  // contents need no initialisation)
  const unsigned int workers = ThreadCount(0, 4);
  ParallelFor(pieces.size(), workers, (pieces.size() + workers - 1) / workers,
              [&](std::size_t begin, std::size_t end)
              {
                const std::unique_ptr<std::uint8_t[]> levelBuffer(new std::uint8_t[ISAL_DEF_LVL1_DEFAULT]);
                for (std::size_t i = begin; i < end; ++i)
                  compress(i, levelBuffer.get());
              });
  uLong crc = crc32_z(0L, Z_NULL, 0);
  std::uint64_t total = 0;
  const unsigned char header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 }; // deflate, no mtime, Unix
  out.write(reinterpret_cast<const char *>(header), sizeof(header));
  for (std::size_t i = 0; i < pieces.size(); ++i)
  {
    out.write(reinterpret_cast<const char *>(compressed[i].get()), static_cast<std::streamsize>(compressedSize[i]));
    crc = crc32_combine(crc, crcs[i], static_cast<z_off_t>(pieces[i].second));
    total += pieces[i].second;
    compressed[i].reset();
  }
  unsigned char trailer[8];
  for (int k = 0; k < 4; ++k)
  {
    trailer[k] = static_cast<unsigned char>((crc >> (8 * k)) & 0xFF);
    trailer[4 + k] = static_cast<unsigned char>((total >> (8 * k)) & 0xFF); // ISIZE: size modulo 2^32
  }
  out.write(reinterpret_cast<const char *>(trailer), sizeof(trailer));
}
} // namespace

void
WriteGzipFile(const fs::path & path, const std::vector<std::pair<const std::uint8_t *, std::size_t>> & parts,
              bool append)
{
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  if (!out)
    ThrowOutput("cannot write " + path.string());
  WriteGzip(out, parts);
  out.close();
  if (!out)
    ThrowOutput("write failed: " + path.string());
}
} // namespace gw::io
