#pragma once
/// \file testing.h
/// \brief Shared test helpers: external data lookup (skips cleanly when absent), scratch directories,
/// deterministic noise (own Box-Muller), Dice, running apps.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <itkImage.h>
#include <itkRGBPixel.h>

#include "gw/core/random.h"
#include "gw/core/types.h"

namespace gw::testing
{
namespace fs = std::filesystem;

/// \brief Root of ../shared/data (env GW_EXTERNAL_DATA); nullopt when absent.
std::optional<fs::path> ExternalData();

/// \brief Directory holding the built apps (env GW_BIN_DIR).
fs::path BinDir();
/// \brief The project's own small fixtures (testing-data/), from GW_TESTING_DATA or the source tree.
fs::path TestingData();

/// \brief A fresh empty scratch directory, removed when the object dies (unless GW_KEEP_TEST_OUTPUT is set).
class ScratchDir
{
public:
  explicit ScratchDir(const std::string & tag = "gwtest");
  ~ScratchDir();
  ScratchDir(const ScratchDir &) = delete;
  ScratchDir & operator=(const ScratchDir &) = delete;
  const fs::path & Path() const { return m_Path; }
  fs::path operator/(const std::string & name) const { return m_Path / name; }

private:
  fs::path m_Path;
};

/// \brief The project's deterministic generator (splitmix64, Box-Muller): same streams on every platform.
using Rng = gw::Random;

/// \brief Dice coefficient of two masks (non-zero = inside) on the same grid; 1 when both are empty.
double Dice(const MaskImage * a, const MaskImage * b);

/// \brief Runs a command (argv[0] looked up in BinDir() when relative), capturing stdout and stderr.
struct RunResult
{
  int exitCode = -1;
  std::string out;
  std::string err;
};
RunResult Run(const std::vector<std::string> & argv, const std::vector<std::string> & env = {});

/// \brief Creates an image with the given size/spacing/origin and identity direction, filled with `value`.
FloatImage::Pointer MakeImage(const SizeType & size, const SpacingType & spacing, const PointType & origin,
                              float value = 0.0f);
MaskImage::Pointer MakeMask(const SizeType & size, const SpacingType & spacing, const PointType & origin);

/// \brief A report picture (8-bit RGB, as gw::report writes them).
using Picture = itk::Image<itk::RGBPixel<unsigned char>, 2>;
/// \brief Reads a report picture (PNG).
Picture::Pointer ReadPicture(const fs::path & png);
} // namespace gw::testing

/// Skips the test (GTEST_SKIP) when the external data set is absent; binds `var` to the path of `sub` in it.
#define GW_REQUIRE_EXTERNAL(var, sub)                                                                                  \
  const auto var##_root = ::gw::testing::ExternalData();                                                               \
  if (!var##_root || !std::filesystem::exists(*var##_root / (sub)))                                                    \
    GTEST_SKIP() << "external data absent: " << (sub);                                                                 \
  const std::filesystem::path var = *var##_root / (sub)
