#include "gw/testing/testing.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <itkImageFileReader.h>
#include <itkImageRegionConstIterator.h>
#include <sys/wait.h>
#include <unistd.h>

namespace gw::testing
{
std::optional<fs::path>
ExternalData()
{
  const char * env = std::getenv("GW_EXTERNAL_DATA");
  fs::path p = env && *env ? fs::path(env) : fs::path(GW_DEFAULT_EXTERNAL_DATA);
  std::error_code ec;
  if (!fs::is_directory(p, ec))
    return std::nullopt;
  return p;
}

fs::path
TestingData()
{
  const char * env = std::getenv("GW_TESTING_DATA");
  return env && *env ? fs::path(env) : fs::path(GW_DEFAULT_TESTING_DATA);
}

fs::path
BinDir()
{
  const char * env = std::getenv("GW_BIN_DIR");
  return env && *env ? fs::path(env) : fs::path(GW_DEFAULT_BIN_DIR);
}

ScratchDir::ScratchDir(const std::string & tag)
{
  const char * tmp = std::getenv("TMPDIR");
  std::string templ = (fs::path(tmp && *tmp ? tmp : "/tmp") / (tag + "-XXXXXX")).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    throw std::runtime_error("mkdtemp failed");
  m_Path = buf.data();
}

ScratchDir::~ScratchDir()
{
  if (std::getenv("GW_KEEP_TEST_OUTPUT"))
    return;
  std::error_code ec;
  fs::remove_all(m_Path, ec);
}

double
Dice(const MaskImage * a, const MaskImage * b)
{
  if (a->GetLargestPossibleRegion() != b->GetLargestPossibleRegion())
    throw std::runtime_error("Dice: masks on different grids");
  itk::ImageRegionConstIterator<MaskImage> ia(a, a->GetLargestPossibleRegion());
  itk::ImageRegionConstIterator<MaskImage> ib(b, b->GetLargestPossibleRegion());
  std::size_t na = 0, nb = 0, both = 0;
  for (; !ia.IsAtEnd(); ++ia, ++ib)
  {
    const bool va = ia.Get() != 0, vb = ib.Get() != 0;
    na += va;
    nb += vb;
    both += (va && vb);
  }
  if (na + nb == 0)
    return 1.0;
  return 2.0 * static_cast<double>(both) / static_cast<double>(na + nb);
}

namespace
{
std::string
Slurp(const fs::path & p)
{
  std::ifstream is(p, std::ios::binary);
  std::ostringstream ss;
  ss << is.rdbuf();
  return ss.str();
}
} // namespace

RunResult
Run(const std::vector<std::string> & argv, const std::vector<std::string> & env)
{
  RunResult result;
  ScratchDir io("gwrun");
  const fs::path outFile = io / "stdout", errFile = io / "stderr";
  std::vector<std::string> args = argv;
  if (!args.empty() && args[0].find('/') == std::string::npos && fs::exists(BinDir() / args[0]))
    args[0] = (BinDir() / args[0]).string();
  const pid_t pid = ::fork();
  if (pid == 0)
  {
    std::FILE * o = std::freopen(outFile.c_str(), "w", stdout);
    std::FILE * e = std::freopen(errFile.c_str(), "w", stderr);
    (void)o;
    (void)e;
    std::FILE * in = std::freopen("/dev/null", "r", stdin);
    (void)in;
    for (const auto & kv : env)
      ::putenv(const_cast<char *>(kv.c_str()));
    std::vector<char *> cargv;
    for (auto & a : args)
      cargv.push_back(const_cast<char *>(a.c_str()));
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = Slurp(outFile);
  result.err = Slurp(errFile);
  return result;
}

FloatImage::Pointer
MakeImage(const SizeType & size, const SpacingType & spacing, const PointType & origin, float value)
{
  auto img = FloatImage::New();
  img->SetRegions(RegionType(size));
  img->SetSpacing(spacing);
  img->SetOrigin(origin);
  img->Allocate();
  img->FillBuffer(value);
  return img;
}

MaskImage::Pointer
MakeMask(const SizeType & size, const SpacingType & spacing, const PointType & origin)
{
  auto img = MaskImage::New();
  img->SetRegions(RegionType(size));
  img->SetSpacing(spacing);
  img->SetOrigin(origin);
  img->Allocate();
  img->FillBuffer(0);
  return img;
}
Picture::Pointer
ReadPicture(const fs::path & png)
{
  auto reader = itk::ImageFileReader<Picture>::New();
  reader->SetFileName(png.string());
  reader->Update();
  Picture::Pointer picture = reader->GetOutput();
  picture->DisconnectPipeline();
  return picture;
}
} // namespace gw::testing
