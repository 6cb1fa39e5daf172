// DCMTK-based reading of one DICOM file: header facts (classic, mosaic, enhanced multi-frame) and pixel decoding.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <openjpeg-2.5/openjpeg.h> // explicit: ITK ships an older, mangled openjpeg.h
#include <zlib.h>

#include <unistd.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "internal.h"

namespace gw::dicom::detail
{
namespace
{
void
Initialise()
{
  static std::once_flag once;
  std::call_once(once,
                 []
                 {
                   OFLog::configure(OFLogger::FATAL_LOG_LEVEL); // DCMTK must not print; we report through notes/errors
                   DJDecoderRegistration::registerCodecs();
                   DJLSDecoderRegistration::registerCodecs();
                   DcmRLEDecoderRegistration::registerCodecs();
                 });
}

std::string
Trim(std::string s)
{
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
    s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == ' ')
    ++b;
  return s.substr(b);
}

std::string
Str(DcmItem * item, const DcmTagKey & key)
{
  if (!item)
    return {};
  OFString v;
  if (item->findAndGetOFStringArray(key, v, OFFalse).good())
    return Trim(v.c_str());
  return {};
}

std::vector<std::string>
SplitBackslash(const std::string & s)
{
  std::vector<std::string> out;
  std::string cur;
  for (char c : s)
  {
    if (c == '\\')
    {
      out.push_back(Trim(cur));
      cur.clear();
    }
    else
      cur += c;
  }
  out.push_back(Trim(cur));
  return out;
}

/// `out` with every value of `e` that DCMTK's typed getter `get` gives appended (values it refuses are skipped).
template <typename T>
void
AppendAll(DcmElement * e, unsigned long vm, OFCondition (DcmElement::*get)(T &, const unsigned long),
          std::vector<double> & out)
{
  for (unsigned long i = 0; i < vm; ++i)
  {
    T v;
    if ((e->*get)(v, i).good())
      out.push_back(static_cast<double>(v));
  }
}

/// All numeric values of an element, whatever its VR (UN/OB: interpreted with `binary` = 'f' float32, 'd' float64,
/// 's' text).
std::vector<double>
Numbers(DcmItem * item, const DcmTagKey & key, char binary = 's')
{
  std::vector<double> out;
  if (!item)
    return out;
  DcmElement * e = nullptr;
  if (item->findAndGetElement(key, e, OFFalse).bad() || !e)
    return out;
  const DcmEVR vr = e->ident();
  const unsigned long vm = e->getVM();
  switch (vr)
  {
    case EVR_FL:
      AppendAll<Float32>(e, vm, &DcmElement::getFloat32, out);
      return out;
    case EVR_FD:
      AppendAll<Float64>(e, vm, &DcmElement::getFloat64, out);
      return out;
    case EVR_US:
      AppendAll<Uint16>(e, vm, &DcmElement::getUint16, out);
      return out;
    case EVR_SS:
      AppendAll<Sint16>(e, vm, &DcmElement::getSint16, out);
      return out;
    case EVR_UL:
      AppendAll<Uint32>(e, vm, &DcmElement::getUint32, out);
      return out;
    case EVR_SL:
      AppendAll<Sint32>(e, vm, &DcmElement::getSint32, out);
      return out;
    case EVR_UN:
    case EVR_OB:
    case EVR_OW:
    case EVR_ox:
    {
      Uint8 * bytes = nullptr;
      const Uint32 len = e->getLength();
      if (e->getUint8Array(bytes).bad() || !bytes || len == 0)
        return out;
      if (binary == 'f' && len % 4 == 0)
      {
        for (Uint32 i = 0; i < len / 4; ++i)
        {
          float v;
          std::memcpy(&v, bytes + 4 * i, 4);
          out.push_back(v);
        }
        return out;
      }
      if (binary == 'd' && len % 8 == 0)
      {
        for (Uint32 i = 0; i < len / 8; ++i)
        {
          double v;
          std::memcpy(&v, bytes + 8 * i, 8);
          out.push_back(v);
        }
        return out;
      }
      const std::string text(reinterpret_cast<const char *>(bytes), len);
      for (const auto & part : SplitBackslash(text))
      {
        try
        {
          if (!part.empty())
            out.push_back(std::stod(part));
        }
        catch (const std::exception &)
        {
          return {};
        }
      }
      return out;
    }
    default:
    {
      OFString v;
      if (e->getOFStringArray(v).bad())
        return out;
      for (const auto & part : SplitBackslash(v.c_str()))
      {
        try
        {
          if (!part.empty())
            out.push_back(std::stod(part));
        }
        catch (const std::exception &)
        {
        }
      }
      return out;
    }
  }
}

std::optional<double>
Number(DcmItem * item, const DcmTagKey & key, char binary = 's')
{
  const auto v = Numbers(item, key, binary);
  if (v.empty() || !std::isfinite(v[0]))
    return std::nullopt;
  return v[0];
}

DcmItem *
SeqItem(DcmItem * item, const DcmTagKey & seq, unsigned long index = 0)
{
  if (!item)
    return nullptr;
  DcmItem * out = nullptr;
  if (item->findAndGetSequenceItem(seq, out, static_cast<signed long>(index)).good())
    return out;
  return nullptr;
}

/// Looks up `seq`→`key` in the per-frame item first, then in the shared functional groups.
DcmItem *
Group(DcmItem * perFrame, DcmItem * shared, const DcmTagKey & seq)
{
  if (DcmItem * i = SeqItem(perFrame, seq))
    return i;
  return SeqItem(shared, seq);
}

double
TimeSeconds(const std::string & t)
{
  // HHMMSS.frac or HH:MM:SS.frac
  std::string s;
  for (char c : t)
    if (c != ':')
      s += c;
  if (s.size() < 6)
    return 0.0;
  try
  {
    return std::stod(s.substr(0, 2)) * 3600.0 + std::stod(s.substr(2, 2)) * 60.0 + std::stod(s.substr(4));
  }
  catch (const std::exception &)
  {
    return 0.0;
  }
}

std::string
NormaliseManufacturer(const std::string & m)
{
  std::string u = m;
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (u.find("SIEMENS") != std::string::npos)
    return "Siemens";
  if (u.find("PHILIPS") != std::string::npos)
    return "Philips";
  if (u.find("GE ") == 0 || u == "GE" || u.find("GE MEDICAL") != std::string::npos ||
      u.find("GENERAL ELECTRIC") != std::string::npos)
    return "GE";
  if (u.find("CANON") != std::string::npos || u.find("TOSHIBA") != std::string::npos)
    return "Canon";
  if (u.find("UIH") != std::string::npos || u.find("UNITED IMAGING") != std::string::npos)
    return "UIH";
  return m;
}

bool
Inflate(const std::vector<std::uint8_t> & in, std::vector<std::uint8_t> & out, std::string & error)
{
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK)
  {
    error = "zlib initialisation failed";
    return false;
  }
  out.clear();
  out.resize(std::max<std::size_t>(in.size() * 4, 1 << 16));
  zs.next_in = const_cast<Bytef *>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  std::size_t produced = 0;
  while (rc != Z_STREAM_END)
  {
    if (produced == out.size())
    {
      if (out.size() > (std::size_t(1) << 32))
      {
        inflateEnd(&zs);
        error = "decompressed size implausibly large";
        return false;
      }
      out.resize(out.size() * 2);
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(out.size() - produced);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = out.size() - zs.avail_out;
    if (rc == Z_STREAM_END)
      break;
    if (rc != Z_OK && rc != Z_BUF_ERROR)
    {
      inflateEnd(&zs);
      error = "corrupt gzip data";
      return false;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0)
    {
      inflateEnd(&zs);
      error = "truncated gzip data";
      return false;
    }
  }
  inflateEnd(&zs);
  out.resize(produced);
  return true;
}

/// Plausibility check of the first bytes: preamble+DICM, or a raw little-endian dataset starting with group
/// 0x0002/0x0008 (files without meta header).
bool
LooksLikeDicom(const std::uint8_t * p, std::size_t n)
{
  if (n >= 132 && std::memcmp(p + 128, "DICM", 4) == 0)
    return true;
  if (n >= 8)
  {
    const unsigned group = p[0] | (p[1] << 8);
    const unsigned groupBE = (p[0] << 8) | p[1];
    const unsigned element = p[2] | (p[3] << 8);
    if ((group == 0x0002 || group == 0x0008) && element < 0x0100)
      return true;
    if (groupBE == 0x0008 || groupBE == 0x0002)
      return true;
  }
  return false;
}

/// Reads [offset, offset+n) of an open file descriptor; false on a short read or error.
bool
PRead(int fd, std::uint64_t offset, void * out, std::size_t n)
{
  auto * p = static_cast<char *>(out);
  while (n > 0)
  {
    const ssize_t k = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return false;
    p += k;
    n -= static_cast<std::size_t>(k);
    offset += static_cast<std::uint64_t>(k);
  }
  return true;
}

/// Random access to the bytes of a DICOM file: a gunzipped buffer, or the file itself read in large blocks (a
/// growing buffer of the leading bytes, where the header is, plus a window for reads further on), so that walking
/// thousands of element headers costs a handful of system calls and the pixel data are not read.
class ByteSource
{
public:
  /// Opens a file; gzip-compressed files are inflated in memory. Check Ok().
  explicit ByteSource(const fs::path & path)
    : m_Handle(std::make_unique<gw::ReadOnlyFile>(path))
  {
    if (!m_Handle->Ok())
    {
      m_Error = "unreadable";
      return;
    }
    m_Size = m_Handle->Size();
    std::uint8_t magic[2] = {};
    if (m_Size >= 2 && PRead(m_Handle->Fd(), 0, magic, 2) && magic[0] == 0x1f && magic[1] == 0x8b)
    {
      std::vector<std::uint8_t> raw(static_cast<std::size_t>(m_Size));
      if (!PRead(m_Handle->Fd(), 0, raw.data(), raw.size()))
      {
        m_Error = "unreadable";
        return;
      }
      m_Handle.reset();
      if (!Inflate(raw, m_Owned, m_Error))
        return;
      m_Gzip = true;
      m_Data = m_Owned.data();
      m_Size = m_Owned.size();
    }
    m_Ok = true;
  }
  ByteSource(const std::uint8_t * data, std::size_t size)
    : m_Data(data)
    , m_Size(size)
    , m_Ok(true)
  {
  }
  bool Ok() const { return m_Ok; }
  const std::string & Error() const { return m_Error; }
  bool Gzip() const { return m_Gzip; }
  std::uint64_t Size() const { return m_Size; }
  bool Read(std::uint64_t offset, void * out, std::size_t n)
  {
    if (!m_Ok || offset > m_Size || n > m_Size - offset)
      return false;
    if (n == 0)
      return true;
    if (m_Data)
    {
      std::memcpy(out, m_Data + offset, n);
      return true;
    }
    if (offset + n > m_Head.size() && offset <= m_Head.size() + block && offset + n <= maxHead)
      ExtendHead(offset + n);
    if (offset + n <= m_Head.size())
    {
      std::memcpy(out, m_Head.data() + offset, n);
      return true;
    }
    if (n >= block)
      return PRead(m_Handle->Fd(), offset, out, n);
    if (offset < m_WindowStart || offset + n > m_WindowStart + m_Window.size())
    {
      m_Window.resize(static_cast<std::size_t>(std::min<std::uint64_t>(block, m_Size - offset)));
      m_WindowStart = offset;
      if (!PRead(m_Handle->Fd(), offset, m_Window.data(), m_Window.size()))
      {
        m_Window.clear();
        return false;
      }
    }
    std::memcpy(out, m_Window.data() + (offset - m_WindowStart), n);
    return true;
  }
  /// The contiguous bytes [0, n) (n <= Size()); nullptr when they cannot be read.
  const std::uint8_t * Head(std::uint64_t n)
  {
    if (!m_Ok || n > m_Size)
      return nullptr;
    if (m_Data)
      return m_Data;
    if (n > m_Head.size() && !ExtendHead(n, true))
      return nullptr;
    return m_Head.data();
  }

private:
  static constexpr std::size_t block = 64 * 1024;                     // read granularity [bytes]
  static constexpr std::uint64_t maxHead = std::uint64_t{ 64 } << 20; // header bytes kept while walking [bytes]
  bool ExtendHead(std::uint64_t end, bool exact = false)
  {
    const std::size_t old = m_Head.size();
    std::uint64_t target = exact ? end : std::max<std::uint64_t>({ end, 2 * old, block });
    target = std::min(target, m_Size);
    m_Head.resize(static_cast<std::size_t>(target));
    if (!PRead(m_Handle->Fd(), old, m_Head.data() + old, m_Head.size() - old))
    {
      m_Head.resize(old);
      return false;
    }
    return true;
  }
  std::unique_ptr<gw::ReadOnlyFile> m_Handle;
  std::vector<std::uint8_t> m_Owned; // inflated .gz content
  const std::uint8_t * m_Data = nullptr;
  std::uint64_t m_Size = 0;
  std::vector<std::uint8_t> m_Head; // bytes [0, m_Head.size())
  std::vector<std::uint8_t> m_Window;
  std::uint64_t m_WindowStart = 0;
  bool m_Ok = false, m_Gzip = false;
  std::string m_Error;
};

/// What the length walk notes about the top-level elements (see PixelDataInfo).
struct TopLevel
{
  std::uint64_t datasetOffset = 0, headerEnd = 0, elementOffset = 0, valueOffset = 0, valueLength = 0;
  bool floatPixels = false, encapsulated = false, explicitVr = true, bigEndian = false, deflated = false;
  std::string mediaStorageSopClass; ///< (0002,0002) of the file meta header
};

/// Walks the element headers of [pos, end) and checks that no defined length runs past `end` (the enclosing
/// item, sequence or file). DCMTK allocates an element's value as soon as it reads its length, so a few-byte file
/// claiming a 4 GB element would allocate 4 GB (found by fuzzing); such files are refused before DCMTK sees them.
/// Undefined lengths (sequences, items, encapsulated pixel data) are followed to their delimiters.
bool
WalkLengths(ByteSource & src, std::uint64_t & pos, std::uint64_t end, bool explicitVr, bool bigEndian, int depth,
            std::string & why, bool opaqueItems = false, TopLevel * top = nullptr)
{
  if (depth > 16)
  {
    why = "sequences nested deeper than 16 levels";
    return false;
  }
  auto u16 = [&](const std::uint8_t * b)
  { return bigEndian ? std::uint32_t(b[0] << 8 | b[1]) : std::uint32_t(b[1] << 8 | b[0]); };
  auto u32 = [&](const std::uint8_t * b)
  {
    return bigEndian ? (std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | b[3])
                     : (std::uint32_t(b[3]) << 24 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[1]) << 8 | b[0]);
  };
  while (pos + 8 <= end)
  {
    std::uint8_t h[12];
    if (!src.Read(pos, h, 8))
      return true; // truncated header: DCMTK reports it
    const std::uint32_t group = u16(h), element = u16(h + 2);
    std::uint64_t length = 0;
    std::uint64_t headerSize = 8;
    bool sequence = false, encapsulated = false;
    if (group == 0xFFFE)
    {
      length = u32(h + 4); // items and delimiters are always implicit
      if (element == 0xE00D || element == 0xE0DD)
      {
        pos += 8;
        return true; // delimiter: the caller continues after it
      }
      sequence = !opaqueItems; // an item holds elements (a pixel data fragment holds bytes)
    }
    else if (opaqueItems)
    {
      why = "unexpected element inside encapsulated pixel data";
      return false;
    }
    else if (explicitVr)
    {
      const char v0 = char(h[4]), v1 = char(h[5]);
      if (!IsStandardVr(v0, v1))
      {
        why = "unknown value representation at byte " + std::to_string(pos + 4);
        return false;
      }
      const bool longVr = IsLongLengthVr(v0, v1);
      if (longVr)
      {
        if (!src.Read(pos + 8, h + 8, 4))
          return true;
        length = u32(h + 8);
        headerSize = 12;
      }
      else
        length = u16(h + 6);
      sequence = v0 == 'S' && v1 == 'Q';
      encapsulated = v0 == 'O' && (v1 == 'B' || v1 == 'W');
    }
    else
    {
      length = u32(h + 4);
      // implicit VR: DCMTK parses the items of a defined-length sequence from the dictionary's VR, so they are
      // walked too (found by fuzzing: a DICOMDIR record inside (0004,1220) claimed 2.5 GB)
      sequence = DcmTag(DcmTagKey(static_cast<Uint16>(group), static_cast<Uint16>(element))).getEVR() == EVR_SQ;
    }
    if (top && group != 0xFFFE)
    {
      if (group > 0x0028 && top->headerEnd == 0)
        top->headerEnd = pos;
      if (group == 0x7FE0 && (element == 0x0010 || element == 0x0008) && top->elementOffset == 0)
      {
        top->elementOffset = pos;
        top->valueOffset = pos + headerSize;
        top->valueLength = length;
        top->floatPixels = element == 0x0008;
        top->encapsulated = length == 0xFFFFFFFFull;
        top->explicitVr = explicitVr;
        top->bigEndian = bigEndian;
      }
    }
    pos += headerSize;
    if (length == 0xFFFFFFFFull)
    {
      // undefined length: items (or fragments) up to the sequence delimiter
      if (!WalkLengths(src, pos, end, explicitVr, bigEndian, depth + 1, why, encapsulated))
        return false;
      continue;
    }
    if (length > end - pos)
    {
      std::ostringstream os;
      os << "element (" << std::hex << std::setw(4) << std::setfill('0') << group << "," << std::setw(4) << element
         << std::dec << ") claims " << length << " bytes but only " << (end - pos) << " remain";
      why = os.str();
      return false;
    }
    if (sequence && length > 0)
    {
      std::uint64_t inner = pos;
      if (!WalkLengths(src, inner, pos + length, explicitVr, bigEndian, depth + 1, why))
        return false;
    }
    pos += length;
  }
  return true;
}

/// Checks the element lengths of a whole file: the meta group (explicit VR little endian) then the dataset in
/// its transfer syntax (deflated datasets are left to DCMTK).
bool
CheckElementLengths(ByteSource & src, std::string & why, TopLevel * top = nullptr)
{
  std::uint64_t pos = 0;
  std::string syntax;
  std::uint8_t pre[132] = {};
  if (src.Size() >= 132 && src.Read(0, pre, 132) && std::memcmp(pre + 128, "DICM", 4) == 0)
  {
    pos = 132;
    // meta group: explicit VR little endian, group 0002, and (as DCMTK reads it) every element inside the length
    // that (0002,0000) declares, whatever its group (found by fuzzing: a non-0002 element with a non-standard VR
    // inside the declared meta length was read by DCMTK as a meta element claiming 4 GB)
    std::uint64_t metaEnd = 0;
    while (pos + 8 <= src.Size())
    {
      std::uint8_t h[12];
      if (!src.Read(pos, h, 8))
        break;
      const unsigned group = h[0] | (h[1] << 8), element = h[2] | (h[3] << 8);
      if (group != 0x0002 && pos >= metaEnd)
        break;
      const char v0 = char(h[4]), v1 = char(h[5]);
      if (!IsStandardVr(v0, v1))
      {
        why = "unknown value representation in the file meta header at byte " + std::to_string(pos + 4);
        return false;
      }
      std::uint64_t length = 0, headerSize = 8;
      if (IsLongLengthVr(v0, v1))
      {
        if (!src.Read(pos + 8, h + 8, 4))
          break;
        length =
          std::uint32_t(h[8]) | std::uint32_t(h[9]) << 8 | std::uint32_t(h[10]) << 16 | std::uint32_t(h[11]) << 24;
        headerSize = 12;
      }
      else
        length = h[6] | (h[7] << 8);
      pos += headerSize;
      if (length > src.Size() - pos)
      {
        why = "file meta element claims more bytes than the file holds";
        return false;
      }
      if (group == 0x0002 && element == 0x0000 && length == 4 && metaEnd == 0)
      {
        std::uint8_t g[4];
        if (src.Read(pos, g, 4))
          metaEnd =
            pos + 4 +
            (std::uint32_t(g[0]) | std::uint32_t(g[1]) << 8 | std::uint32_t(g[2]) << 16 | std::uint32_t(g[3]) << 24);
      }
      // a UID value without its padding (NUL or space)
      auto uid = [&]()
      {
        std::string value(static_cast<std::size_t>(length), '\0');
        if (!src.Read(pos, value.data(), value.size()))
          value.clear();
        while (!value.empty() && (value.back() == '\0' || value.back() == ' '))
          value.pop_back();
        return value;
      };
      if (top && group == 0x0002 && element == 0x0002 && length < 128)
        top->mediaStorageSopClass = uid();
      if (group == 0x0002 && element == 0x0010)
      {
        // a UID holds at most 64 characters; a longer value swallows the elements after it, and how DCMTK then
        // reads the dataset (the value up to its first NUL, or a guess) is no longer what this walk can follow
        // (found by fuzzing: a 276-byte transfer syntax made DCMTK read a 1.4 GB element)
        if (length > 64)
        {
          why = "malformed transfer syntax UID in the file meta header (" + std::to_string(length) + " bytes)";
          return false;
        }
        syntax = uid();
      }
      // DCMTK parses a sequence inside the meta length item by item: its elements are walked as the dataset's are
      // (found by fuzzing: an element of a directory record in a sequence inside the meta length claimed 4 GB)
      if (v0 == 'S' && v1 == 'Q' && length > 0)
      {
        std::uint64_t inner = pos;
        if (!WalkLengths(src, inner, pos + length, true, false, 1, why))
          return false;
      }
      pos += length;
    }
  }
  if (syntax == "1.2.840.10008.1.2.1.99")
  {
    if (top)
      top->deflated = true; // offsets in the inflated dataset are of no use for reading the file
    // deflated explicit VR little endian: inflate the dataset (raw deflate, output capped) and walk that
    constexpr std::uint64_t maxInflated = std::uint64_t{ 1 } << 29; // 512 MiB
    const std::uint64_t compressedSize = src.Size() - pos;
    if (compressedSize > maxInflated)
      return true;
    std::vector<std::uint8_t> in(static_cast<std::size_t>(compressedSize));
    if (!src.Read(pos, in.data(), in.size()))
      return true;
    z_stream zs{};
    if (inflateInit2(&zs, -15) != Z_OK)
      return true;
    std::vector<std::uint8_t> out;
    std::uint8_t chunk[65536];
    zs.next_in = in.data();
    zs.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    while (rc == Z_OK)
    {
      zs.next_out = chunk;
      zs.avail_out = sizeof(chunk);
      rc = inflate(&zs, Z_NO_FLUSH);
      out.insert(out.end(), chunk, chunk + (sizeof(chunk) - zs.avail_out));
      if (out.size() > maxInflated)
      {
        inflateEnd(&zs);
        why = "deflated dataset inflates to more than 512 MiB";
        return false;
      }
      if (zs.avail_in == 0 && rc == Z_OK && zs.avail_out != 0)
        break;
    }
    inflateEnd(&zs);
    ByteSource inflated(out.data(), out.size());
    std::uint64_t p = 0;
    return WalkLengths(inflated, p, inflated.Size(), true, false, 0, why);
  }
  bool explicitVr = true, bigEndian = false;
  // the dataset's encoding as DCMTK takes it from the meta header: through DcmXfer of the UID as a C string (a UID
  // starting with NUL is "", DCMTK's virtual big endian implicit syntax; found by fuzzing)
  const E_TransferSyntax xfer = syntax.empty() ? EXS_Unknown : DcmXfer(syntax.c_str()).getXfer();
  if (xfer != EXS_Unknown)
  {
    const DcmXfer known(xfer);
    explicitVr = known.isExplicitVR();
    bigEndian = known.isBigEndian();
  }
  else
  {
    // no meta header, or a transfer syntax DCMTK does not know: DCMTK guesses from the first element, and so must
    // the walk (found by fuzzing: a file without meta header that reads 0002/0008 only big endian made DCMTK read
    // an implicit big-endian element of 1.1 GB). The rules of DCMTK's
    // DcmItem::checkTransferSyntax: explicit VR when bytes 4-5 are a standard VR; big endian when only the
    // big-endian reading of the tag is in the dictionary, or both are and only it has a group below 0x100.
    std::uint8_t h[6] = {};
    if (src.Read(pos, h, 6))
    {
      const auto known = [](unsigned g, unsigned e)
      { return DcmTag(DcmTagKey(static_cast<Uint16>(g), static_cast<Uint16>(e))).error().good(); };
      const unsigned groupLE = h[0] | (h[1] << 8), elementLE = h[2] | (h[3] << 8);
      const unsigned groupBE = (h[0] << 8) | h[1], elementBE = (h[2] << 8) | h[3];
      const bool little = known(groupLE, elementLE), big = known(groupBE, elementBE);
      bigEndian = (big && !little) || (big && little && groupLE > 0xff && groupBE <= 0xff);
      explicitVr = std::isalpha(h[4]) && std::isalpha(h[5]) && IsStandardVr(char(h[4]), char(h[5]));
    }
  }
  if (top)
  {
    top->datasetOffset = pos;
    top->explicitVr = explicitVr;
    top->bigEndian = bigEndian;
  }
  return WalkLengths(src, pos, src.Size(), explicitVr, bigEndian, 0, why, false, top);
}

/// The private elements the import reads (top level only, by tag number; see ParseFile and ReadDiffusion): any
/// other private element is left out before DCMTK parses a header. Vendor headers are mostly private (about two
/// thirds of a Philips header) and DCMTK's private dictionary lookups dominate parsing. Private creators are kept.
/// Keep this list in step with every DcmTagKey(odd group, ...) read in this file.
bool
PrivateElementRead(std::uint32_t group, std::uint32_t element, int depth)
{
  if (element <= 0x00FF)
    return true; // private creator (gives kept private elements their VR in implicit VR files)
  if (depth > 0)
    return false;
  switch ((group << 16) | element)
  {
    case 0x0019100c: // Siemens B_value
    case 0x0019100e: // Siemens DiffusionGradientDirection
    case 0x001910bb: // GE gradient x, y, z
    case 0x001910bc:
    case 0x001910bd:
    case 0x00291010: // Siemens CSA image header
    case 0x00431039: // GE b-value
    case 0x00651009: // UIH b-value
    case 0x00651037: // UIH gradient
    case 0x20011003: // Philips b-value
    case 0x20011004: // Philips diffusion direction (I: isotropic)
    case 0x2005100e: // Philips scale slope
    case 0x200510b0: // Philips gradient AP, FH, RL
    case 0x200510b1:
    case 0x200510b2:
      return true;
    default:
      return false;
  }
}

/// Copies the little-endian dataset elements of [pos, end) (a dataset, an item, or the items of a sequence) to
/// `out`, leaving out the private elements that are not read (PrivateElementRead); the lengths of defined-length
/// sequences and items are recomputed, undefined lengths and delimiters are kept. Implicit VR: defined-length
/// elements are copied whole (their sequences are not looked into). Returns false when the structure is not
/// understood; the caller then parses the unfiltered bytes.
bool
CopyWithoutUnreadPrivate(const std::uint8_t * b, std::uint64_t & pos, std::uint64_t end, bool explicitVr, int depth,
                         std::vector<std::uint8_t> & out)
{
  if (depth > 16)
    return false;
  auto u16 = [&](std::uint64_t at) { return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8; };
  auto u32 = [&](std::uint64_t at) { return u16(at) | u16(at + 2) << 16; };
  auto patch = [&](std::size_t at, std::size_t length)
  {
    if (length >= 0xFFFFFFFFull)
      return false;
    for (int k = 0; k < 4; ++k)
      out[at + k] = static_cast<std::uint8_t>(length >> (8 * k));
    return true;
  };
  // skips the content of an undefined-length element (items up to its sequence delimiter): a sequence in this
  // dataset's encoding, UN content in implicit VR, OB/OW fragments as opaque items
  auto skipUndefined = [&](std::uint64_t & p, bool contentExplicitVr, bool fragments)
  {
    ByteSource src(b, static_cast<std::size_t>(end));
    std::string why;
    return WalkLengths(src, p, end, contentExplicitVr, false, depth + 1, why, fragments);
  };
  while (pos + 8 <= end)
  {
    const std::uint64_t start = pos;
    const std::uint32_t group = u16(pos), element = u16(pos + 2);
    if (group == 0xFFFE)
    {
      const std::uint32_t length = u32(pos + 4);
      pos += 8;
      out.insert(out.end(), b + start, b + pos);
      if (element == 0xE00D || element == 0xE0DD)
        return true; // delimiter (copied): the caller continues after it
      const std::size_t lengthAt = out.size() - 4;
      const std::size_t contentAt = out.size();
      if (length == 0xFFFFFFFFu)
      {
        if (!CopyWithoutUnreadPrivate(b, pos, end, explicitVr, depth + 1, out))
          return false;
        continue;
      }
      if (length > end - pos)
        return false;
      std::uint64_t inner = pos;
      if (!CopyWithoutUnreadPrivate(b, inner, pos + length, explicitVr, depth + 1, out) ||
          !patch(lengthAt, out.size() - contentAt))
        return false;
      pos += length;
      continue;
    }
    std::uint64_t length = 0, headerSize = 8;
    bool sequence = false, fragments = false, unknown = false;
    if (explicitVr)
    {
      const char v0 = char(b[pos + 4]), v1 = char(b[pos + 5]);
      const bool longVr = IsLongLengthVr(v0, v1);
      if (longVr)
      {
        if (pos + 12 > end)
          return false;
        length = u32(pos + 8);
        headerSize = 12;
      }
      else
        length = u16(pos + 6);
      sequence = v0 == 'S' && v1 == 'Q';
      fragments = v0 == 'O' && (v1 == 'B' || v1 == 'W');
      unknown = v0 == 'U' && v1 == 'N';
    }
    else
    {
      length = u32(pos + 4);
      // implicit VR: only sequences have undefined lengths before the pixel data; defined-length elements (sequences
      // included) are copied whole
      sequence = length == 0xFFFFFFFFull;
    }
    const bool undefined = length == 0xFFFFFFFFull;
    if (!undefined && length > end - pos - headerSize)
      return false;
    const bool drop = (group & 1u) && group > 0x0008 && !PrivateElementRead(group, element, depth);
    pos += headerSize;
    if (undefined && !sequence && !fragments && !unknown)
      return false;
    if (drop || (undefined && !sequence))
    {
      // left out, or kept whole (undefined-length UN or OB/OW content is not filtered)
      if (undefined)
      {
        if (!skipUndefined(pos, explicitVr && !unknown, fragments))
          return false;
      }
      else
        pos += length;
      if (!drop)
        out.insert(out.end(), b + start, b + pos);
      continue;
    }
    out.insert(out.end(), b + start, b + pos);
    if (undefined)
    {
      // a sequence: items up to the delimiter
      if (!CopyWithoutUnreadPrivate(b, pos, end, explicitVr, depth + 1, out))
        return false;
      continue;
    }
    if (sequence)
    {
      const std::size_t lengthAt = out.size() - 4;
      const std::size_t contentAt = out.size();
      std::uint64_t inner = pos;
      if (!CopyWithoutUnreadPrivate(b, inner, pos + length, explicitVr, depth + 1, out) ||
          !patch(lengthAt, out.size() - contentAt))
        return false;
      pos += length;
      continue;
    }
    out.insert(out.end(), b + pos, b + pos + length);
    pos += length;
  }
  return pos == end;
}

struct Loaded
{
  DcmFileFormat file;
  TopLevel top;      // from the length walk
  bool gzip = false; // the file is gzip-compressed
};

/// True when every element length of `bytes` (a file's bytes in memory, whole or cut before its pixel data) fits.
bool
LengthsFitBuffer(const std::uint8_t * bytes, std::uint64_t size)
{
  ByteSource memory(bytes, size);
  std::string why;
  return CheckElementLengths(memory, why);
}

/// Parses `bytes` (a whole file, or a file cut before its pixel data) with DCMTK. Values are copied out of `bytes`.
bool
ParseBytes(const std::uint8_t * bytes, std::uint64_t size, DcmFileFormat & file, std::string & error)
{
  DcmInputBufferStream stream;
  stream.setBuffer(bytes, static_cast<offile_off_t>(size));
  stream.setEos();
  file.transferInit();
  const OFCondition c = file.read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  file.transferEnd();
  if (c.bad())
  {
    error = std::string("DICOM parse error: ") + c.text();
    return false;
  }
  return true;
}

/// Loads a DICOM file (gzip or plain) after checking its element lengths. `headerOnly`: DCMTK parses the bytes
/// before the top-level pixel data element only (the pixel data are neither read nor parsed; where they are is
/// noted in `loaded.top`).
bool
Load(const fs::path & path, Loaded & loaded, bool headerOnly, std::string & error)
{
  Initialise();
  ByteSource src(path);
  if (!src.Ok())
  {
    error = src.Error();
    return false;
  }
  loaded.gzip = src.Gzip();
  std::uint8_t head[132] = {};
  const std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(src.Size(), sizeof(head)));
  if (!src.Read(0, head, got) || !LooksLikeDicom(head, got))
  {
    error = src.Gzip() ? "not DICOM (gzip content)" : "not DICOM";
    return false;
  }
  {
    std::string why;
    if (!CheckElementLengths(src, why, &loaded.top))
    {
      error = "malformed DICOM: " + why;
      return false;
    }
  }
  // a DICOMDIR indexes the files of a medium and holds no image: not parsed (its directory records are the largest
  // structure DCMTK builds from a header, and DCMTK leaks them when a record is malformed; found by fuzzing)
  if (loaded.top.mediaStorageSopClass == UID_MediaStorageDirectoryStorage)
  {
    error = "DICOMDIR (an index of the files on a medium, not an image)";
    return false;
  }
  if (loaded.top.deflated)
  {
    loaded.top = TopLevel{};
    loaded.top.deflated = true;
  }
  const std::uint64_t size = headerOnly && loaded.top.elementOffset > 0 ? loaded.top.elementOffset : src.Size();
  const std::uint8_t * bytes = src.Head(size);
  if (!bytes)
  {
    error = "unreadable";
    return false;
  }
  if (headerOnly && loaded.top.elementOffset > 0 && !loaded.top.bigEndian &&
      loaded.top.datasetOffset < loaded.top.elementOffset)
  {
    // the header without the private elements that are never read (a third of the parsing work for Philips)
    std::vector<std::uint8_t> filtered(bytes, bytes + loaded.top.datasetOffset);
    filtered.reserve(static_cast<std::size_t>(size));
    std::uint64_t pos = loaded.top.datasetOffset;
    if (CopyWithoutUnreadPrivate(bytes, pos, size, loaded.top.explicitVr, 0, filtered) &&
        LengthsFitBuffer(filtered.data(), filtered.size()))
      return ParseBytes(filtered.data(), filtered.size(), loaded.file, error);
  }
  // what DCMTK parses is walked again as it is (cut before the pixel data, or inflated): a length that fitted the
  // whole file may not fit the part (found by fuzzing: DCMTK allocated 1.6 GB for a 400 kB file)
  if (!LengthsFitBuffer(bytes, size))
  {
    error = "malformed DICOM: element lengths exceed the header";
    return false;
  }
  return ParseBytes(bytes, size, loaded.file, error);
}

std::array<double, 3>
Cross(const std::array<double, 3> & a, const std::array<double, 3> & b)
{
  return { a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0] };
}

/// Diffusion information of a classic file or of one enhanced frame.
void
ReadDiffusion(DcmItem * ds, DcmItem * diffusionItem, const std::string & vendor, const CsaHeader * csa, FrameRef & f)
{
  // Philips classic: dcm2niix reads the private attributes (2001,1003 / 2005,10b0-b2) first
  if (vendor == "Philips" && !diffusionItem && ds->tagExists(DcmTagKey(0x2001, 0x1003)))
  {
    if (const auto b = Number(ds, DcmTagKey(0x2001, 0x1003), 'f'))
    {
      f.bValue = *b;
      const auto ap = Number(ds, DcmTagKey(0x2005, 0x10b0), 'f');
      const auto fh = Number(ds, DcmTagKey(0x2005, 0x10b1), 'f');
      const auto rl = Number(ds, DcmTagKey(0x2005, 0x10b2), 'f');
      if (ap && fh && rl)
      {
        f.gradient = { *ap, *fh, *rl };
        f.hasGradient = true;
      }
      return;
    }
  }
  // 1. standard attributes (top level, or MR Diffusion Sequence item)
  for (DcmItem * item : { diffusionItem, ds })
  {
    if (!item)
      continue;
    if (const auto b = Number(item, DCM_DiffusionBValue, 'd'))
    {
      f.bValue = *b;
      DcmItem * dirItem = SeqItem(item, DCM_DiffusionGradientDirectionSequence);
      auto g = Numbers(dirItem ? dirItem : item, DCM_DiffusionGradientOrientation, 'd');
      if (g.size() == 3)
      {
        f.gradient = { g[0], g[1], g[2] };
        f.hasGradient = true;
      }
      if (f.hasGradient || vendor != "GE")
        return;
    }
  }
  if (vendor == "Siemens")
  {
    if (csa)
    {
      if (const auto b = CsaNumber(*csa, "B_value"))
      {
        f.bValue = *b;
        const auto x = CsaNumber(*csa, "DiffusionGradientDirection", 0);
        const auto y = CsaNumber(*csa, "DiffusionGradientDirection", 1);
        const auto z = CsaNumber(*csa, "DiffusionGradientDirection", 2);
        if (x && y && z)
        {
          f.gradient = { *x, *y, *z };
          f.hasGradient = true;
        }
        return;
      }
    }
    if (const auto b = Number(ds, DcmTagKey(0x0019, 0x100c)))
    {
      f.bValue = *b;
      const auto g = Numbers(ds, DcmTagKey(0x0019, 0x100e), 'd');
      if (g.size() == 3)
      {
        f.gradient = { g[0], g[1], g[2] };
        f.hasGradient = true;
      }
    }
    return;
  }
  if (vendor == "GE")
  {
    if (const auto b = Number(ds, DcmTagKey(0x0043, 0x1039)))
    {
      double bv = *b;
      if (bv >= 1e9)
        bv = std::fmod(bv, 1e9);
      f.bValue = bv;
      const auto x = Number(ds, DcmTagKey(0x0019, 0x10bb));
      const auto y = Number(ds, DcmTagKey(0x0019, 0x10bc));
      const auto z = Number(ds, DcmTagKey(0x0019, 0x10bd));
      if (x && y && z && !f.hasGradient)
      {
        // GE stores the direction in the image (row, column, slice) frame: convert to LPS below (flag via
        // dimensionIndex is not used; the caller converts using the orientation).
        f.gradient = { *x, *y, *z };
        f.hasGradient = true;
        f.temporalIndex = f.temporalIndex; // unchanged
      }
    }
    return;
  }
  if (vendor == "Philips")
  {
    if (const auto b = Number(ds, DcmTagKey(0x2001, 0x1003), 'f'))
    {
      f.bValue = *b;
      const auto ap = Number(ds, DcmTagKey(0x2005, 0x10b0), 'f');
      const auto fh = Number(ds, DcmTagKey(0x2005, 0x10b1), 'f');
      const auto rl = Number(ds, DcmTagKey(0x2005, 0x10b2), 'f');
      if (ap && fh && rl)
      {
        // Philips private direction order (AP, FH, RL) in patient space → LPS (x=RL, y=AP, z=FH).
        f.gradient = { *rl, *ap, *fh };
        f.hasGradient = true;
      }
    }
    return;
  }
  if (vendor == "UIH")
  {
    if (const auto b = Number(ds, DcmTagKey(0x0065, 0x1009), 'd'))
    {
      f.bValue = *b;
      const auto g = Numbers(ds, DcmTagKey(0x0065, 0x1037), 'd');
      if (g.size() == 3)
      {
        f.gradient = { g[0], g[1], g[2] };
        f.hasGradient = true;
      }
    }
  }
}

void
AddHeaderString(nlohmann::json & h, const char * key, const std::string & v)
{
  if (!v.empty())
    h[key] = v;
}
void
AddHeaderNumber(nlohmann::json & h, const char * key, const std::optional<double> & v, double scale = 1.0)
{
  if (v)
    h[key] = *v * scale;
}

} // namespace

bool
ReadMaybeGzip(const fs::path & path, std::vector<std::uint8_t> & bytes, std::string & error)
{
  std::ifstream in(path, std::ios::binary);
  if (!in)
  {
    error = "unreadable";
    return false;
  }
  std::vector<std::uint8_t> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b)
    return Inflate(raw, bytes, error);
  bytes = std::move(raw);
  return true;
}

ParsedFile
ParseFile(const fs::path & path)
{
  ParsedFile out;
  Loaded loaded;
  std::string error;
  try
  {
    if (!Load(path, loaded, true, error))
    {
      out.skipReason = error;
      return out;
    }
    DcmDataset * ds = loaded.file.getDataset();
    DcmMetaInfo * meta = loaded.file.getMetaInfo();
    std::string sopClass = Str(ds, DCM_SOPClassUID);
    if (sopClass.empty())
      sopClass = Str(meta, DCM_MediaStorageSOPClassUID);
    if (sopClass == UID_MediaStorageDirectoryStorage || !Str(ds, DCM_FileSetID).empty() ||
        ds->tagExists(DCM_DirectoryRecordSequence))
    {
      out.skipReason = "DICOMDIR (directory index, not an image)";
      return out;
    }
    if (loaded.top.elementOffset == 0 && !ds->tagExists(DCM_PixelData) && !ds->tagExists(DCM_FloatPixelData))
    {
      out.skipReason = "no pixel data";
      return out;
    }
    SeriesInfo & s = out.info;
    s.uid = Str(ds, DCM_SeriesInstanceUID);
    if (s.uid.empty())
      s.uid = "no-series-uid:" + Str(ds, DCM_StudyInstanceUID);
    s.seriesNumber = static_cast<int>(Number(ds, DCM_SeriesNumber).value_or(0));
    s.description = Str(ds, DCM_SeriesDescription);
    const std::string protocol = Str(ds, DCM_ProtocolName);
    if (s.description.empty())
      s.description = protocol;
    s.modality = Str(ds, DCM_Modality);
    const std::string manufacturerRaw = Str(ds, DCM_Manufacturer);
    s.manufacturer = NormaliseManufacturer(manufacturerRaw);
    s.rows = static_cast<unsigned>(Number(ds, DCM_Rows).value_or(0));
    s.columns = static_cast<unsigned>(Number(ds, DCM_Columns).value_or(0));
    s.bitsAllocated = static_cast<unsigned>(Number(ds, DCM_BitsAllocated).value_or(16));
    s.bitsStored = static_cast<unsigned>(Number(ds, DCM_BitsStored).value_or(s.bitsAllocated));
    s.pixelRepresentation = static_cast<unsigned>(Number(ds, DCM_PixelRepresentation).value_or(0));
    s.samplesPerPixel = static_cast<unsigned>(Number(ds, DCM_SamplesPerPixel).value_or(1));
    s.echoNumber = static_cast<int>(Number(ds, DCM_EchoNumbers).value_or(0));
    s.transferSyntax = DcmXfer(ds->getOriginalXfer()).getXferID();
    if (s.rows == 0 || s.columns == 0)
    {
      out.skipReason = "image without Rows/Columns";
      return out;
    }
    const std::string imageType = Str(ds, DCM_ImageType);
    const unsigned long nFrames = static_cast<unsigned long>(Number(ds, DCM_NumberOfFrames).value_or(1));
    DcmItem * shared = SeqItem(ds, DCM_SharedFunctionalGroupsSequence);
    DcmSequenceOfItems * perFrameSeq = nullptr;
    ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, perFrameSeq);
    s.multiFrame = perFrameSeq != nullptr && perFrameSeq->card() > 0;
    PixelDataInfo pixelData; // shared by the frames of this file
    if (loaded.top.elementOffset > 0)
    {
      pixelData.elementOffset = loaded.top.elementOffset;
      pixelData.valueOffset = loaded.top.valueOffset;
      pixelData.valueLength = loaded.top.valueLength;
      pixelData.headerEnd = loaded.top.headerEnd;
      pixelData.isFloat = loaded.top.floatPixels;
      pixelData.bigEndian = loaded.top.bigEndian;
      pixelData.encapsulated = loaded.top.encapsulated;
    }
    pixelData.rows = s.rows;
    pixelData.columns = s.columns;
    pixelData.frames = nFrames == 0 ? 1u : static_cast<unsigned>(nFrames);
    pixelData.bitsAllocated = s.bitsAllocated;
    pixelData.samplesPerPixel = s.samplesPerPixel;
    pixelData.isSigned = s.pixelRepresentation == 1;
    pixelData.gzip = loaded.gzip;

    // header facts for the sidecar (no identifiers)
    nlohmann::json & h = s.header;
    AddHeaderString(h, "Modality", s.modality);
    AddHeaderString(h, "Manufacturer", manufacturerRaw);
    AddHeaderString(h, "ManufacturersModelName", Str(ds, DCM_ManufacturerModelName));
    AddHeaderString(h, "SoftwareVersions", Str(ds, DCM_SoftwareVersions));
    AddHeaderNumber(h, "MagneticFieldStrength", Number(ds, DCM_MagneticFieldStrength));
    AddHeaderString(h, "BodyPartExamined", Str(ds, DCM_BodyPartExamined));
    AddHeaderString(h, "PatientPosition", Str(ds, DCM_PatientPosition));
    AddHeaderString(h, "SeriesDescription", Str(ds, DCM_SeriesDescription));
    AddHeaderString(h, "ProtocolName", protocol);
    AddHeaderString(h, "ScanningSequence", Str(ds, DCM_ScanningSequence));
    AddHeaderString(h, "SequenceVariant", Str(ds, DCM_SequenceVariant));
    AddHeaderString(h, "ScanOptions", Str(ds, DCM_ScanOptions));
    AddHeaderString(h, "SequenceName", Str(ds, DCM_SequenceName));
    AddHeaderString(h, "MRAcquisitionType", Str(ds, DCM_MRAcquisitionType));
    AddHeaderString(h, "ContrastBolusAgent", Str(ds, DCM_ContrastBolusAgent));
    AddHeaderString(h, "PulseSequenceName", Str(ds, DCM_PulseSequenceName));
    AddHeaderString(h, "InPlanePhaseEncodingDirection", Str(ds, DCM_InPlanePhaseEncodingDirection));
    if (!imageType.empty())
      h["ImageType"] = SplitBackslash(imageType);
    h["SeriesNumber"] = s.seriesNumber;
    AddHeaderNumber(h, "ImagingFrequency", Number(ds, DCM_ImagingFrequency));
    AddHeaderNumber(h, "EchoTime", Number(ds, DCM_EchoTime), 0.001);
    AddHeaderNumber(h, "RepetitionTime", Number(ds, DCM_RepetitionTime), 0.001);
    AddHeaderNumber(h, "InversionTime", Number(ds, DCM_InversionTime), 0.001);
    AddHeaderNumber(h, "FlipAngle", Number(ds, DCM_FlipAngle));
    AddHeaderNumber(h, "SliceThickness", Number(ds, DCM_SliceThickness));
    AddHeaderNumber(h, "SpacingBetweenSlices", Number(ds, DCM_SpacingBetweenSlices));
    AddHeaderNumber(h, "EchoNumber", Number(ds, DCM_EchoNumbers));
    AddHeaderNumber(h, "PixelBandwidth", Number(ds, DCM_PixelBandwidth));
    AddHeaderNumber(h, "GantryDetectorTilt", Number(ds, DCM_GantryDetectorTilt));
    std::optional<double> philipsScaleSlope;
    if (s.manufacturer == "Philips")
    {
      philipsScaleSlope = Number(ds, DcmTagKey(0x2005, 0x100e), 'f');
      if (philipsScaleSlope && (*philipsScaleSlope == 0.0 || !std::isfinite(*philipsScaleSlope)))
        philipsScaleSlope.reset();
      AddHeaderNumber(h, "PhilipsRescaleSlope", Number(ds, DCM_RescaleSlope));
      AddHeaderNumber(h, "PhilipsRescaleIntercept", Number(ds, DCM_RescaleIntercept));
      AddHeaderNumber(h, "PhilipsScaleSlope", Number(ds, DcmTagKey(0x2005, 0x100e), 'f'));
    }
    h["ConversionSoftware"] = "gw_import";

    // Siemens CSA image header
    CsaHeader csa;
    bool haveCsa = false;
    if (s.manufacturer == "Siemens")
    {
      DcmElement * e = nullptr;
      if (ds->findAndGetElement(DcmTagKey(0x0029, 0x1010), e).good() && e)
      {
        Uint8 * bytes = nullptr;
        if (e->getUint8Array(bytes).good() && bytes && e->getLength() > 0)
        {
          try
          {
            csa = ParseCsa(bytes, e->getLength());
            haveCsa = true;
          }
          catch (const Error & err)
          {
            s.notes.push_back(path.filename().string() + ": " + err.Message());
          }
        }
      }
      if (haveCsa)
      {
        const auto nMosaic = CsaNumber(csa, "NumberOfImagesInMosaic");
        if (nMosaic && *nMosaic > 1 && imageType.find("MOSAIC") != std::string::npos)
        {
          s.mosaicSlices = static_cast<unsigned>(*nMosaic);
          const auto a = CsaNumber(csa, "SliceNormalVector", 0), b = CsaNumber(csa, "SliceNormalVector", 1),
                     c = CsaNumber(csa, "SliceNormalVector", 2);
          if (a && b && c)
            s.mosaicNormal = { *a, *b, *c };
        }
        if (const auto bw = CsaNumber(csa, "BandwidthPerPixelPhaseEncode"))
          h["BandwidthPerPixelPhaseEncode"] = *bw;
        if (const auto pe = CsaNumber(csa, "PhaseEncodingDirectionPositive"))
          h["PhaseEncodingDirectionPositive"] = static_cast<int>(*pe);
        const auto it = csa.find("MosaicRefAcqTimes");
        if (it != csa.end() && !it->second.empty())
        {
          std::vector<double> t;
          for (const auto & v : it->second)
          {
            try
            {
              t.push_back(std::stod(v) / 1000.0);
            }
            catch (const std::exception &)
            {
            }
          }
          if (!t.empty())
            h["SliceTiming"] = t;
        }
      }
    }
    else if (imageType.find("MOSAIC") != std::string::npos)
      s.notes.push_back(path.filename().string() + ": MOSAIC image type without CSA header");

    // geometry shared by all frames (classic) or from functional groups (enhanced)
    auto readGeometry = [&](DcmItem * perFrame, FrameRef & f, bool first)
    {
      DcmItem * measures = s.multiFrame ? Group(perFrame, shared, DCM_PixelMeasuresSequence) : ds;
      DcmItem * position = s.multiFrame ? Group(perFrame, shared, DCM_PlanePositionSequence) : ds;
      DcmItem * orient = s.multiFrame ? Group(perFrame, shared, DCM_PlaneOrientationSequence) : ds;
      DcmItem * pixelValue = s.multiFrame ? Group(perFrame, shared, DCM_PixelValueTransformationSequence) : ds;
      if (!measures)
        measures = ds;
      if (!position)
        position = ds;
      if (!orient)
        orient = ds;
      if (!pixelValue)
        pixelValue = ds;
      const auto ipp = Numbers(position, DCM_ImagePositionPatient);
      if (ipp.size() != 3)
        throw Error(ErrorKind::Input, "missing ImagePositionPatient");
      f.position = { ipp[0], ipp[1], ipp[2] };
      f.rescaleSlope = Number(pixelValue, DCM_RescaleSlope).value_or(1.0);
      f.rescaleIntercept = Number(pixelValue, DCM_RescaleIntercept).value_or(0.0);
      if (f.rescaleSlope == 0.0)
        f.rescaleSlope = 1.0;
      if (philipsScaleSlope && !s.multiFrame)
      {
        // Philips precise (floating point) values, as dcm2niix: FP = (SV * RS + RI) / (RS * SS)
        f.rescaleIntercept = f.rescaleIntercept / (f.rescaleSlope * *philipsScaleSlope);
        f.rescaleSlope = 1.0 / *philipsScaleSlope;
      }
      if (first)
      {
        const auto iop = Numbers(orient, DCM_ImageOrientationPatient);
        if (iop.size() != 6)
          throw Error(ErrorKind::Input, "missing ImageOrientationPatient");
        for (int i = 0; i < 6; ++i)
          s.orientation[i] = iop[i];
        const auto ps = Numbers(measures, DCM_PixelSpacing);
        if (ps.size() == 2 && ps[0] > 0 && ps[1] > 0)
          s.pixelSpacing = { ps[0], ps[1] };
        s.sliceThickness = Number(measures, DCM_SliceThickness).value_or(Number(ds, DCM_SliceThickness).value_or(0));
        s.spacingBetweenSlices =
          Number(measures, DCM_SpacingBetweenSlices).value_or(Number(ds, DCM_SpacingBetweenSlices).value_or(0));
      }
    };

    const double acqTime = TimeSeconds(Str(ds, DCM_AcquisitionTime));
    const int instance = static_cast<int>(Number(ds, DCM_InstanceNumber).value_or(0));
    const std::string sopInstance = Str(ds, DCM_SOPInstanceUID);
    const int acqNumber = static_cast<int>(Number(ds, DCM_AcquisitionNumber).value_or(0));
    if (!s.multiFrame)
    {
      FrameRef f;
      f.file = path;
      f.pixelData = pixelData;
      f.sopInstanceUid = sopInstance;
      f.instanceNumber = instance;
      f.acquisitionTime = acqTime;
      f.temporalIndex = static_cast<int>(Number(ds, DCM_TemporalPositionIdentifier).value_or(acqNumber));
      readGeometry(nullptr, f, true);
      ReadDiffusion(ds, SeqItem(ds, DCM_MRDiffusionSequence), s.manufacturer, haveCsa ? &csa : nullptr, f);
      if (s.manufacturer == "GE" && f.hasGradient && !ds->tagExists(DCM_DiffusionGradientOrientation))
      {
        // GE private gradient (0019,10bb-bd): logical frame with x and y opposite to the DICOM row and column
        // cosines and z along their cross product (dcm2niix convention) → LPS
        const std::array<double, 3> r{ s.orientation[0], s.orientation[1], s.orientation[2] };
        const std::array<double, 3> c{ s.orientation[3], s.orientation[4], s.orientation[5] };
        const auto n = Cross(r, c);
        const auto g = f.gradient;
        for (int k = 0; k < 3; ++k)
          f.gradient[k] = -g[0] * r[k] - g[1] * c[k] + g[2] * n[k];
      }
      if (s.manufacturer == "Philips")
      {
        const std::string dir = Str(ds, DcmTagKey(0x2001, 0x1004));
        if (dir == "I" && f.bValue > 0)
          f.dimensionIndex = { 0xFFFFFFFFu }; // marks an isotropic (trace) image
      }
      s.frames.push_back(f);
    }
    else
    {
      const unsigned long n = perFrameSeq->card();
      if (n != nFrames)
        s.notes.push_back(path.filename().string() + ": NumberOfFrames differs from the per-frame groups");
      for (unsigned long i = 0; i < n; ++i)
      {
        DcmItem * pf = perFrameSeq->getItem(i);
        FrameRef f;
        f.file = path;
        f.pixelData = pixelData;
        f.frame = static_cast<unsigned>(i);
        f.sopInstanceUid = sopInstance;
        f.instanceNumber = instance;
        readGeometry(pf, f, i == 0);
        DcmItem * content = Group(pf, nullptr, DCM_FrameContentSequence);
        if (content)
        {
          for (double v : Numbers(content, DCM_DimensionIndexValues))
            f.dimensionIndex.push_back(static_cast<std::uint32_t>(v));
          f.temporalIndex = static_cast<int>(Number(content, DCM_TemporalPositionIndex).value_or(0));
          const std::string dt = Str(content, DCM_FrameAcquisitionDateTime);
          if (dt.size() >= 14)
            f.acquisitionTime = TimeSeconds(dt.substr(8));
        }
        DcmItem * diff = Group(pf, shared, DCM_MRDiffusionSequence);
        ReadDiffusion(ds, diff, s.manufacturer, nullptr, f);
        if (diff && Str(diff, DCM_DiffusionDirectionality) == "ISOTROPIC" && f.bValue > 0)
          f.dimensionIndex.insert(f.dimensionIndex.begin(), 0xFFFFFFFFu);
        s.frames.push_back(f);
        if (i == 0)
        {
          if (DcmItem * timing = Group(pf, shared, DCM_MRTimingAndRelatedParametersSequence))
          {
            AddHeaderNumber(h, "RepetitionTime", Number(timing, DCM_RepetitionTime), 0.001);
            AddHeaderNumber(h, "FlipAngle", Number(timing, DCM_FlipAngle));
          }
          if (DcmItem * echo = Group(pf, shared, DCM_MREchoSequence))
            AddHeaderNumber(h, "EchoTime", Number(echo, DCM_EffectiveEchoTime), 0.001);
          if (DcmItem * ft = Group(pf, shared, DCM_MRImageFrameTypeSequence))
          {
            const std::string frameType = Str(ft, DCM_FrameType);
            if (!frameType.empty() && imageType.empty())
              h["ImageType"] = SplitBackslash(frameType);
          }
        }
      }
    }
    // split key: orientation (rounded), size, echo, mosaic
    std::ostringstream key;
    key.precision(3);
    key << std::fixed;
    for (double v : s.orientation)
      key << (std::abs(v) < 5e-4 ? 0.0 : v) << ",";
    key << s.rows << "x" << s.columns << ",e" << s.echoNumber << ",m" << s.mosaicSlices;
    if (s.multiFrame)
      out.seriesKeyExtra = key.str();
    out.isImage = true;
  }
  catch (const Error & e)
  {
    out.isImage = false;
    out.skipReason = e.Message();
  }
  catch (const std::exception & e)
  {
    out.isImage = false;
    out.skipReason = std::string("unexpected: ") + e.what();
  }
  return out;
}

namespace
{
struct J2kSource
{
  const std::uint8_t * data;
  OPJ_SIZE_T size;
  OPJ_SIZE_T pos;
};
OPJ_SIZE_T
J2kRead(void * buffer, OPJ_SIZE_T n, void * user)
{
  auto * s = static_cast<J2kSource *>(user);
  if (s->pos >= s->size)
    return static_cast<OPJ_SIZE_T>(-1);
  const OPJ_SIZE_T k = std::min(n, s->size - s->pos);
  std::memcpy(buffer, s->data + s->pos, k);
  s->pos += k;
  return k;
}
OPJ_OFF_T
J2kSkip(OPJ_OFF_T n, void * user)
{
  auto * s = static_cast<J2kSource *>(user);
  if (n < 0 || s->pos + static_cast<OPJ_SIZE_T>(n) > s->size)
    return -1;
  s->pos += static_cast<OPJ_SIZE_T>(n);
  return n;
}
OPJ_BOOL
J2kSeek(OPJ_OFF_T n, void * user)
{
  auto * s = static_cast<J2kSource *>(user);
  if (n < 0 || static_cast<OPJ_SIZE_T>(n) > s->size)
    return OPJ_FALSE;
  s->pos = static_cast<OPJ_SIZE_T>(n);
  return OPJ_TRUE;
}

/// Decodes one JPEG 2000 codestream (J2K or JP2) into 8/16-bit samples appended to `out`.
void
DecodeJ2k(const std::uint8_t * data, std::size_t size, const PixelBlock & block, std::vector<std::uint8_t> & out)
{
  const bool jp2 = size >= 12 && std::memcmp(data + 4, "jP  ", 4) == 0;
  opj_codec_t * codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  opj_setup_decoder(codec, &params);
  J2kSource src{ data, size, 0 };
  opj_stream_t * stream = opj_stream_default_create(OPJ_TRUE);
  opj_stream_set_user_data(stream, &src, nullptr);
  opj_stream_set_user_data_length(stream, size);
  opj_stream_set_read_function(stream, J2kRead);
  opj_stream_set_skip_function(stream, J2kSkip);
  opj_stream_set_seek_function(stream, J2kSeek);
  opj_image_t * image = nullptr;
  bool ok = opj_read_header(stream, codec, &image) && image;
  // the codestream's own image size is checked before OpenJPEG allocates for it (found by fuzzing: a changed size
  // field made OpenJPEG allocate 33 GB); a frame larger than 8192 x 8192 is no MR or CT image
  const bool sizeMatches = ok && image->numcomps >= block.samplesPerPixel && image->numcomps <= 4 &&
                           image->comps[0].w == block.columns && image->comps[0].h == block.rows &&
                           std::size_t(block.rows) * block.columns <= (std::size_t{ 1 } << 26);
  ok = sizeMatches && opj_decode(codec, stream, image) && opj_end_decompress(codec, stream);
  opj_stream_destroy(stream);
  opj_destroy_codec(codec);
  if (!ok)
  {
    const bool wrongSize = image && !sizeMatches;
    if (image)
      opj_image_destroy(image);
    ThrowInput(wrongSize ? "JPEG 2000 image size does not match Rows/Columns" : "JPEG 2000 decoding failed");
  }
  const std::size_t pixels = std::size_t(block.rows) * block.columns;
  const std::size_t bytesPer = block.bitsAllocated / 8;
  const std::size_t start = out.size();
  out.resize(start + pixels * block.samplesPerPixel * bytesPer);
  for (std::size_t p = 0; p < pixels; ++p)
    for (unsigned c = 0; c < block.samplesPerPixel; ++c)
    {
      const OPJ_INT32 v = image->comps[c].data[p];
      std::uint8_t * dst = out.data() + start + (p * block.samplesPerPixel + c) * bytesPer;
      if (bytesPer == 1)
        *dst = static_cast<std::uint8_t>(v);
      else if (bytesPer == 2)
      {
        const std::uint16_t u = static_cast<std::uint16_t>(v);
        std::memcpy(dst, &u, 2);
      }
      else
      {
        const std::uint32_t u = static_cast<std::uint32_t>(v);
        std::memcpy(dst, &u, 4);
      }
    }
  opj_image_destroy(image);
}
} // namespace

namespace
{
/// Decodes the pixel data of a parsed dataset (see DecodePixels).
PixelBlock
DecodeDataset(DcmDataset * ds)
{
  PixelBlock block;
  block.rows = static_cast<unsigned>(Number(ds, DCM_Rows).value_or(0));
  block.columns = static_cast<unsigned>(Number(ds, DCM_Columns).value_or(0));
  block.frames = static_cast<unsigned>(Number(ds, DCM_NumberOfFrames).value_or(1));
  block.bitsAllocated = static_cast<unsigned>(Number(ds, DCM_BitsAllocated).value_or(16));
  block.samplesPerPixel = static_cast<unsigned>(Number(ds, DCM_SamplesPerPixel).value_or(1));
  block.isSigned = Number(ds, DCM_PixelRepresentation).value_or(0) == 1;
  if (block.frames == 0)
    block.frames = 1;
  if (block.bitsAllocated != 8 && block.bitsAllocated != 16 && block.bitsAllocated != 32)
    ThrowInput("unsupported BitsAllocated " + std::to_string(block.bitsAllocated));
  const std::size_t expected =
    std::size_t(block.rows) * block.columns * block.frames * block.samplesPerPixel * (block.bitsAllocated / 8);
  if (expected == 0)
    ThrowInput("empty image");

  DcmElement * floatPixels = nullptr;
  if (ds->findAndGetElement(DCM_FloatPixelData, floatPixels).good() && floatPixels)
  {
    Float32 * f = nullptr;
    if (floatPixels->getFloat32Array(f).bad() || !f || floatPixels->getLength() < expected)
      ThrowInput("unreadable FloatPixelData");
    block.isFloat = true;
    block.bytes.assign(reinterpret_cast<std::uint8_t *>(f), reinterpret_cast<std::uint8_t *>(f) + expected);
    return block;
  }

  DcmElement * element = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, element).bad() || !element)
    ThrowInput("no pixel data");
  auto * pixelData = dynamic_cast<DcmPixelData *>(element);
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  const DcmXfer xf(xfer);
  if (pixelData && xf.isEncapsulated())
  {
    if (xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000 || xfer == EXS_JPEG2000MulticomponentLosslessOnly ||
        xfer == EXS_JPEG2000Multicomponent)
    {
      DcmPixelSequence * seq = nullptr;
      if (pixelData->getEncapsulatedRepresentation(xfer, nullptr, seq).bad() || !seq)
        ThrowInput("JPEG 2000: no encapsulated pixel data");
      const unsigned long items = seq->card();
      if (items < 2)
        ThrowInput("JPEG 2000: no fragments");
      std::vector<std::vector<std::uint8_t>> frames;
      const unsigned long fragments = items - 1;
      for (unsigned long i = 1; i < items; ++i)
      {
        DcmPixelItem * item = nullptr;
        if (seq->getItem(item, i).bad() || !item)
          ThrowInput("JPEG 2000: bad fragment");
        Uint8 * bytes = nullptr;
        if (item->getUint8Array(bytes).bad() || (!bytes && item->getLength() > 0))
          ThrowInput("JPEG 2000: unreadable fragment");
        const bool newFrame = frames.empty() || fragments == block.frames ||
                              (item->getLength() >= 2 && bytes[0] == 0xff && bytes[1] == 0x4f) ||
                              (item->getLength() >= 8 && std::memcmp(bytes + 4, "jP  ", 4) == 0);
        if (newFrame)
          frames.emplace_back();
        frames.back().insert(frames.back().end(), bytes, bytes + item->getLength());
      }
      if (frames.size() != block.frames)
        ThrowInput("JPEG 2000: " + std::to_string(frames.size()) + " codestreams for " + std::to_string(block.frames) +
                   " frames");
      for (const auto & fr : frames)
        DecodeJ2k(fr.data(), fr.size(), block, block.bytes);
      return block;
    }
    const OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
      ThrowInput(std::string("unsupported or corrupt compressed pixel data (") + xf.getXferName() + ")");
    if (ds->findAndGetElement(DCM_PixelData, element).bad() || !element)
      ThrowInput("no pixel data after decompression");
  }
  // uncompressed: host byte order
  const Uint32 length = element->getLength();
  if (length < expected)
    ThrowInput("pixel data truncated (" + std::to_string(length) + " of " + std::to_string(expected) + " bytes)");
  if (block.bitsAllocated == 8)
  {
    Uint8 * p = nullptr;
    if (element->getUint8Array(p).good() && p)
      block.bytes.assign(p, p + expected);
    else
    {
      Uint16 * w = nullptr;
      if (element->getUint16Array(w).bad() || !w)
        ThrowInput("unreadable pixel data");
      const auto * b = reinterpret_cast<const std::uint8_t *>(w);
      block.bytes.assign(b, b + expected);
    }
  }
  else
  {
    Uint16 * w = nullptr;
    if (element->getUint16Array(w).good() && w)
    {
      const auto * b = reinterpret_cast<const std::uint8_t *>(w);
      block.bytes.assign(b, b + expected);
    }
    else
    {
      Uint8 * p = nullptr;
      if (element->getUint8Array(p).bad() || !p)
        ThrowInput("unreadable pixel data");
      block.bytes.assign(p, p + expected);
    }
    if (block.bitsAllocated == 32 && xf.isBigEndian())
    {
      // 32-bit data arrives as swapped 16-bit words from DCMTK's OW handling: restore host order
      for (std::size_t i = 0; i + 3 < block.bytes.size(); i += 4)
      {
        std::swap(block.bytes[i], block.bytes[i + 2]);
        std::swap(block.bytes[i + 1], block.bytes[i + 3]);
      }
    }
  }
  return block;
}

bool
HostIsLittleEndian()
{
  const std::uint16_t one = 1;
  std::uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// Native little-endian pixel data read straight from the file: the element tag is checked, then exactly the
/// pixel bytes are read. Returns false (nothing decided) when the file no longer matches `info`.
bool
ReadNativePixels(const fs::path & path, const PixelDataInfo & info, PixelBlock & block)
{
  block.rows = info.rows;
  block.columns = info.columns;
  block.frames = info.frames == 0 ? 1 : info.frames;
  block.bitsAllocated = info.bitsAllocated;
  block.samplesPerPixel = info.samplesPerPixel;
  block.isSigned = info.isSigned;
  block.isFloat = info.isFloat;
  if (block.bitsAllocated != 8 && block.bitsAllocated != 16 && block.bitsAllocated != 32)
    ThrowInput("unsupported BitsAllocated " + std::to_string(block.bitsAllocated));
  const std::size_t expected =
    std::size_t(block.rows) * block.columns * block.frames * block.samplesPerPixel * (block.bitsAllocated / 8);
  if (expected == 0)
    ThrowInput("empty image");
  if (info.isFloat && info.valueLength < expected)
    ThrowInput("unreadable FloatPixelData");
  if (info.valueLength < expected)
    ThrowInput("pixel data truncated (" + std::to_string(info.valueLength) + " of " + std::to_string(expected) +
               " bytes)");
  const std::uint64_t headerSize = info.valueOffset - info.elementOffset;
  if (headerSize != 8 && headerSize != 12)
    return false;
  std::uint8_t tag[12] = {};
  auto tagOk = [&]()
  {
    return tag[0] == 0xE0 && tag[1] == 0x7F && tag[2] == (info.isFloat ? 0x08 : 0x10) && tag[3] == 0x00 &&
           (headerSize == 8 || (tag[4] == 'O' && (tag[5] == 'W' || tag[5] == 'B' || tag[5] == 'F')));
  };
  block.bytes.resize(expected);
  if (info.gzip)
  {
    ByteSource src(path);
    if (!src.Ok() || !src.Read(info.elementOffset, tag, static_cast<std::size_t>(headerSize)) || !tagOk())
      return false;
    return src.Read(info.valueOffset, block.bytes.data(), expected);
  }
  gw::ReadOnlyFile file(path);
  if (!file.Ok() || !PRead(file.Fd(), info.elementOffset, tag, static_cast<std::size_t>(headerSize)) || !tagOk())
    return false;
  return PRead(file.Fd(), info.valueOffset, block.bytes.data(), expected);
}

/// Compressed pixel data: DCMTK parses the leading elements up to group 0028 (transfer syntax, image pixel
/// module) and the pixel element, not the (possibly huge) functional groups in between.
bool
DecodeEncapsulated(const fs::path & path, const PixelDataInfo & info, PixelBlock & block)
{
  if (info.headerEnd == 0 || info.headerEnd > info.elementOffset)
    return false;
  ByteSource src(path);
  if (!src.Ok() || info.elementOffset >= src.Size())
    return false;
  const std::uint64_t tailSize = src.Size() - info.elementOffset;
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(info.headerEnd + tailSize));
  if (!src.Read(0, bytes.data(), static_cast<std::size_t>(info.headerEnd)) ||
      !src.Read(info.elementOffset, bytes.data() + info.headerEnd, static_cast<std::size_t>(tailSize)))
    return false;
  ByteSource mini(bytes.data(), bytes.size());
  std::string error;
  TopLevel top;
  if (!CheckElementLengths(mini, error, &top) || top.elementOffset != info.headerEnd)
    return false;
  DcmFileFormat file;
  if (!ParseBytes(bytes.data(), bytes.size(), file, error))
    return false;
  bytes = std::vector<std::uint8_t>(); // DCMTK holds its own copy
  try
  {
    block = DecodeDataset(file.getDataset());
  }
  catch (const Error &)
  {
    return false; // decided by the full parse (same decoder, whole header)
  }
  return true;
}
} // namespace

PixelBlock
DecodePixels(const fs::path & path)
{
  Loaded loaded;
  std::string error;
  if (!Load(path, loaded, false, error))
    ThrowInput(path.filename().string() + ": " + error);
  return DecodeDataset(loaded.file.getDataset());
}

PixelBlock
DecodePixels(const fs::path & path, const PixelDataInfo & info)
{
  if (info.elementOffset > 0 && info.valueOffset > info.elementOffset && !info.bigEndian)
  {
    PixelBlock block;
    if (info.encapsulated ? DecodeEncapsulated(path, info, block)
                          : (HostIsLittleEndian() && ReadNativePixels(path, info, block)))
      return block;
  }
  return DecodePixels(path);
}

} // namespace gw::dicom::detail
