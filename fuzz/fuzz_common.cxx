#include "fuzz_common.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace gw::fuzz
{
namespace fs = std::filesystem;

namespace
{
fs::path g_Dir;

void
RemoveDir()
{
  std::error_code ec;
  if (!g_Dir.empty())
    fs::remove_all(g_Dir, ec);
}
} // namespace

const fs::path &
FreshDir()
{
  if (g_Dir.empty())
  {
    g_Dir = fs::temp_directory_path() / ("gw_fuzz-" + std::to_string(::getpid()));
    std::atexit(RemoveDir);
  }
  std::error_code ec;
  fs::remove_all(g_Dir, ec);
  fs::create_directories(g_Dir);
  return g_Dir;
}

void
WriteFile(const fs::path & path, const std::uint8_t * data, std::size_t size)
{
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
}
} // namespace gw::fuzz
