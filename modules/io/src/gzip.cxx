// gzip writing: see gw/io/gzip.h.
#include "gw/io/gzip.h"

#include <algorithm>
#include <fstream>

#include <libdeflate.h>
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
  std::vector<std::vector<std::uint8_t>> compressed(pieces.size());
  std::vector<uLong> crcs(pieces.size());
  auto compress = [&](std::size_t i)
  {
    const auto [data, size] = pieces[i];
    crcs[i] = libdeflate_crc32(0, data, size); // several times zlib's speed (carry-less multiply)
    z_stream zs{};
    if (deflateInit2(&zs, 1, Z_DEFLATED, -15, 8, Z_RLE) != Z_OK)
      ThrowOutput("gzip compression failed");
    std::vector<std::uint8_t> & c = compressed[i];
    c.resize(deflateBound(&zs, static_cast<uLong>(size)) + 16);
    zs.next_in = const_cast<Bytef *>(data);
    zs.avail_in = static_cast<uInt>(size);
    zs.next_out = c.data();
    zs.avail_out = static_cast<uInt>(c.size());
    const bool last = i + 1 == pieces.size();
    const int rc = deflate(&zs, last ? Z_FINISH : Z_SYNC_FLUSH);
    const bool ok = last ? rc == Z_STREAM_END : (rc == Z_OK && zs.avail_in == 0 && zs.avail_out > 0);
    c.resize(c.size() - zs.avail_out);
    deflateEnd(&zs);
    if (!ok)
      ThrowOutput("gzip compression failed");
  };
  ParallelFor(pieces.size(), ThreadCount(0, 4), 1,
              [&](std::size_t begin, std::size_t end)
              {
                for (std::size_t i = begin; i < end; ++i)
                  compress(i);
              });
  uLong crc = crc32_z(0L, Z_NULL, 0);
  std::uint64_t total = 0;
  const unsigned char header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 }; // deflate, no mtime, Unix
  out.write(reinterpret_cast<const char *>(header), sizeof(header));
  for (std::size_t i = 0; i < pieces.size(); ++i)
  {
    out.write(reinterpret_cast<const char *>(compressed[i].data()), static_cast<std::streamsize>(compressed[i].size()));
    crc = crc32_combine(crc, crcs[i], static_cast<z_off_t>(pieces[i].second));
    total += pieces[i].second;
    std::vector<std::uint8_t>().swap(compressed[i]);
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
