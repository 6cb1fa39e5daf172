#include "gw/core/files.h"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <cerrno>

#include <fcntl.h>
#include <nettle/sha2.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/core/error.h"

namespace gw
{
void
PrepareOutput(const fs::path & path, bool force)
{
  std::error_code ec;
  if (fs::exists(path, ec) && !force)
    ThrowOutput("output exists (use --force to overwrite): " + path.string());
  const fs::path parent = path.parent_path();
  if (!parent.empty() && !fs::exists(parent, ec))
  {
    fs::create_directories(parent, ec);
    if (ec)
      ThrowOutput("cannot create output directory " + parent.string() + ": " + ec.message());
  }
}

std::pair<std::string, std::string>
SplitExtension(const fs::path & path)
{
  const std::string name = path.filename().string();
  for (const char * dbl : { ".nii.gz", ".tar.gz", ".dcm.gz", ".tsv.gz" })
  {
    const std::string d(dbl);
    if (name.size() > d.size() && name.compare(name.size() - d.size(), d.size(), d) == 0)
      return { name.substr(0, name.size() - d.size()), d };
  }
  const auto dot = name.find_last_of('.');
  if (dot == std::string::npos || dot == 0)
    return { name, "" };
  return { name.substr(0, dot), name.substr(dot) };
}

fs::path
TemporaryPathFor(const fs::path & finalPath)
{
  static std::atomic<unsigned> counter{ 0 };
  const auto [stem, ext] = SplitExtension(finalPath);
  std::ostringstream name;
  name << '.' << stem << ".gwtmp-" << ::getpid() << '-' << counter++ << ext;
  return finalPath.parent_path() / name.str();
}

void
WriteAtomically(const fs::path & finalPath, bool force, const std::function<void(const fs::path & tmp)> & writer)
{
  PrepareOutput(finalPath, force);
  const fs::path tmp = TemporaryPathFor(finalPath);
  try
  {
    writer(tmp);
    std::error_code ec;
    if (!fs::exists(tmp, ec))
      ThrowInternal("writer produced no file for " + finalPath.string());
    if (!force && fs::exists(finalPath, ec))
      ThrowOutput("output appeared while writing (use --force to overwrite): " + finalPath.string());
    fs::rename(tmp, finalPath, ec);
    if (ec)
      ThrowOutput("cannot rename temporary file onto " + finalPath.string() + ": " + ec.message());
  }
  catch (...)
  {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void
WriteTextFile(const fs::path & finalPath, const std::string & content, bool force)
{
  WriteAtomically(finalPath, force,
                  [&](const fs::path & tmp)
                  {
                    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
                    if (!os)
                      ThrowOutput("cannot write " + finalPath.string());
                    os.write(content.data(), static_cast<std::streamsize>(content.size()));
                    os.flush();
                    if (!os)
                      ThrowOutput("write failed for " + finalPath.string());
                  });
}

std::string
ReadFile(const fs::path & path)
{
  std::ifstream is(path, std::ios::binary | std::ios::ate);
  if (!is)
    ThrowInput("cannot read " + path.string());
  // one allocation and one read of the size the file has now (a stream copy grows and copies its buffer ~20 times
  // for a few MB, which cost more than inflating them); a file that grows meanwhile is read to its end
  const std::streamoff size = is.tellg();
  std::string out;
  if (size > 0)
  {
    out.resize(static_cast<std::size_t>(size));
    is.seekg(0);
    is.read(out.data(), size);
    out.resize(static_cast<std::size_t>(is.gcount()));
  }
  if (is.bad())
    ThrowInput("cannot read " + path.string());
  is.clear();
  std::ostringstream rest; // whatever is past the size seen at opening (or all of a file without a size)
  rest << is.rdbuf();
  out += rest.str();
  return out;
}

namespace
{
std::string
Hex(const unsigned char * data, unsigned int n)
{
  static const char * digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (unsigned i = 0; i < n; ++i)
  {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

/// SHA-256 by GNU Nettle (SHA extensions where the CPU has them; a small library that loads in a tenth of
/// OpenSSL's libcrypto start-up time, which was a visible part of a short app run).
struct Digest
{
  sha256_ctx ctx{};
  Digest() { sha256_init(&ctx); }
  void Update(const void * p, std::size_t n) { sha256_update(&ctx, n, static_cast<const std::uint8_t *>(p)); }
  std::string Final()
  {
    std::uint8_t md[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, md);
    return Hex(md, SHA256_DIGEST_SIZE);
  }
};
} // namespace

std::string
Sha256(const std::string & bytes)
{
  Digest d;
  d.Update(bytes.data(), bytes.size());
  return d.Final();
}

std::string
Sha256File(const fs::path & path)
{
  std::ifstream is(path, std::ios::binary);
  if (!is)
    ThrowInput("cannot read " + path.string());
  Digest d;
  std::vector<char> buf(1 << 20);
  while (is)
  {
    is.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    d.Update(buf.data(), static_cast<std::size_t>(is.gcount()));
  }
  return d.Final();
}

std::string
SanitizeFileName(const std::string & text, std::size_t maxLength)
{
  // Split on every character outside [A-Za-z0-9._-]; drop tokens made only of dots ("..", "."); inside a token
  // collapse runs of dots and strip leading/trailing dots; join the tokens with '_'.
  std::vector<std::string> tokens(1);
  for (unsigned char c : text)
  {
    const bool keep =
      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!keep)
    {
      if (!tokens.back().empty())
        tokens.emplace_back();
      continue;
    }
    if (c == '.' && (tokens.back().empty() || tokens.back().back() == '.'))
      continue;
    tokens.back() += static_cast<char>(c);
  }
  std::string out;
  for (auto & t : tokens)
  {
    while (!t.empty() && t.back() == '.')
      t.pop_back();
    if (t.empty())
      continue;
    if (!out.empty())
      out += '_';
    out += t;
  }
  if (out.size() > maxLength)
    out.resize(maxLength);
  while (!out.empty() && (out.back() == '.' || out.back() == '_'))
    out.pop_back();
  if (out.empty())
    out = "unnamed";
  return out;
}

bool
IsInside(const fs::path & dir, const fs::path & path)
{
  const fs::path d = fs::absolute(dir).lexically_normal();
  const fs::path p = fs::absolute(path).lexically_normal();
  auto di = d.begin();
  auto pi = p.begin();
  for (; di != d.end(); ++di, ++pi)
  {
    if (di->empty())
      continue; // trailing separator
    if (pi == p.end() || *di != *pi)
      return false;
  }
  return true;
}
ReadOnlyFile::ReadOnlyFile(const fs::path & path)
  : m_Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC))
{
}

ReadOnlyFile::~ReadOnlyFile()
{
  if (m_Fd >= 0)
    ::close(m_Fd);
}

std::uint64_t
ReadOnlyFile::Size() const
{
  struct stat st
  {
  };
  return m_Fd >= 0 && ::fstat(m_Fd, &st) == 0 && st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

long
ReadOnlyFile::Read(char * buf, std::size_t n)
{
  for (;;)
  {
    const ssize_t r = ::read(m_Fd, buf, n);
    if (r < 0 && errno == EINTR)
      continue;
    return static_cast<long>(r);
  }
}
} // namespace gw
