// Siemens CSA header parser (SV10 and the older unlabelled format). Values are kept as strings.
#include <cstring>

#include "gw/core/error.h"
#include "internal.h"

namespace gw::dicom::detail
{
namespace
{
std::uint32_t
ReadU32(const std::uint8_t * p)
{
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

std::string
CString(const std::uint8_t * p, std::size_t maxLength)
{
  std::size_t n = 0;
  while (n < maxLength && p[n] != 0)
    ++n;
  std::string s(reinterpret_cast<const char *>(p), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
    s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == ' ')
    ++b;
  return s.substr(b);
}
} // namespace

CsaHeader
ParseCsa(const std::uint8_t * data, std::size_t length)
{
  CsaHeader csa;
  std::size_t pos = 0;
  if (length >= 16 && std::memcmp(data, "SV10", 4) == 0)
    pos = 8;
  if (pos + 8 > length)
    ThrowInput("CSA header too short");
  const std::uint32_t nTags = ReadU32(data + pos);
  pos += 8; // n_tags, unused (77)
  if (nTags == 0 || nTags > 1000)
    ThrowInput("CSA header: implausible tag count " + std::to_string(nTags));
  constexpr std::size_t tagHeader = 64 + 4 + 4 + 4 + 4 + 4; // name, vm, vr, syngodt, nitems, xx
  for (std::uint32_t t = 0; t < nTags; ++t)
  {
    if (pos + tagHeader > length)
      ThrowInput("CSA header truncated in tag " + std::to_string(t));
    const std::string name = CString(data + pos, 64);
    const std::uint32_t nItems = ReadU32(data + pos + 64 + 4 + 4 + 4);
    pos += tagHeader;
    if (nItems > 10000)
      ThrowInput("CSA header: implausible item count in " + name);
    std::vector<std::string> values;
    for (std::uint32_t i = 0; i < nItems; ++i)
    {
      if (pos + 16 > length)
        ThrowInput("CSA header truncated in item of " + name);
      const std::uint32_t itemLength = ReadU32(data + pos + 4);
      pos += 16;
      if (itemLength > length - pos)
        ThrowInput("CSA header: item of " + name + " runs past the end");
      if (itemLength > 0)
        values.push_back(CString(data + pos, itemLength));
      pos += (itemLength + 3u) / 4u * 4u;
      if (pos > length)
        pos = length;
    }
    csa[name] = std::move(values);
  }
  return csa;
}

std::optional<double>
CsaNumber(const CsaHeader & csa, const std::string & name, std::size_t index)
{
  const auto it = csa.find(name);
  if (it == csa.end() || it->second.size() <= index)
    return std::nullopt;
  try
  {
    std::size_t used = 0;
    const double v = std::stod(it->second[index], &used);
    if (used == 0)
      return std::nullopt;
    return v;
  }
  catch (const std::exception &)
  {
    return std::nullopt;
  }
}

} // namespace gw::dicom::detail
