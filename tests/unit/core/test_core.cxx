#include <fstream>

#include <gtest/gtest.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/core/provenance.h"
#include "gw/testing/testing.h"

namespace
{
using gw::testing::ScratchDir;

TEST(CoreError, ContextChainsOutermostFirst)
{
  gw::Error e(gw::ErrorKind::Input, "bad tag\nsecond line");
  e.AddContext("while reading slice 3");
  e.AddContext("while reading series 7");
  EXPECT_STREQ(e.what(), "while reading series 7: while reading slice 3: bad tag second line");
  EXPECT_EQ(gw::ToExitCode(e.Kind()), gw::ExitCode::Input);
}

TEST(CoreError, WithContextWrapsForeignExceptions)
{
  try
  {
    gw::WithContext(
      "while registering", [] { throw std::runtime_error("boom"); }, gw::ErrorKind::Processing);
    FAIL() << "no throw";
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), gw::ErrorKind::Processing);
    EXPECT_STREQ(e.what(), "while registering: boom");
  }
}

TEST(CoreError, ExitCodesAreDocumentedValues)
{
  EXPECT_EQ(static_cast<int>(gw::ToExitCode(gw::ErrorKind::Internal)), 1);
  EXPECT_EQ(static_cast<int>(gw::ToExitCode(gw::ErrorKind::Usage)), 2);
  EXPECT_EQ(static_cast<int>(gw::ToExitCode(gw::ErrorKind::Input)), 3);
  EXPECT_EQ(static_cast<int>(gw::ToExitCode(gw::ErrorKind::Processing)), 4);
  EXPECT_EQ(static_cast<int>(gw::ToExitCode(gw::ErrorKind::Output)), 5);
}

TEST(CoreFiles, RefusesOverwriteWithoutForceAndLeavesFileUntouched)
{
  ScratchDir dir;
  const auto p = dir / "out.txt";
  gw::WriteTextFile(p, "first", false);
  EXPECT_THROW(gw::WriteTextFile(p, "second", false), gw::Error);
  EXPECT_EQ(gw::ReadFile(p), "first");
  gw::WriteTextFile(p, "third", true);
  EXPECT_EQ(gw::ReadFile(p), "third");
}

TEST(CoreFiles, FailedWriterLeavesNoFileUnderFinalOrTemporaryName)
{
  ScratchDir dir;
  const auto p = dir / "img.nii.gz";
  EXPECT_THROW(gw::WriteAtomically(p, false,
                                   [](const gw::fs::path & tmp)
                                   {
                                     std::ofstream(tmp) << "partial";
                                     throw std::runtime_error("killed mid-write");
                                   }),
               std::runtime_error);
  EXPECT_FALSE(gw::fs::exists(p));
  EXPECT_TRUE(gw::fs::is_empty(dir.Path())) << "temporary file left behind";
}

TEST(CoreFiles, TemporaryNameKeepsDoubleExtension)
{
  const auto tmp = gw::TemporaryPathFor("/a/b/scan.nii.gz");
  EXPECT_EQ(tmp.parent_path(), gw::fs::path("/a/b"));
  const std::string name = tmp.filename().string();
  EXPECT_EQ(name.substr(name.size() - 7), ".nii.gz");
  EXPECT_EQ(name[0], '.');
}

TEST(CoreFiles, SanitizeFileNameBlocksTraversalAndControlCharacters)
{
  EXPECT_EQ(gw::SanitizeFileName("../../x"), "x");
  EXPECT_EQ(gw::SanitizeFileName("/etc/passwd"), "etc_passwd");
  EXPECT_EQ(gw::SanitizeFileName("T2 sag\x01\n(spine)"), "T2_sag_spine");
  EXPECT_EQ(gw::SanitizeFileName(".."), "unnamed");
  EXPECT_EQ(gw::SanitizeFileName(""), "unnamed");
  EXPECT_EQ(gw::SanitizeFileName("a..b"), "a.b");
  EXPECT_EQ(gw::SanitizeFileName(std::string(200, 'a'), 64).size(), 64u);
}

TEST(CoreFiles, Sha256KnownVector)
{
  // FIPS 180-2 test vector "abc"
  EXPECT_EQ(gw::Sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CoreFiles, ReadFileReturnsEveryByte)
{
  ScratchDir dir;
  const gw::fs::path empty = dir.Path() / "empty.bin", big = dir.Path() / "big.bin";
  std::ofstream(empty, std::ios::binary).close();
  EXPECT_EQ(gw::ReadFile(empty), "");
  // 3 MiB + 7 bytes with NULs and every byte value, larger than any stream buffer
  std::string bytes((std::size_t{ 3 } << 20) + 7, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(big, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_EQ(gw::ReadFile(big), bytes);
  EXPECT_THROW(gw::ReadFile(dir.Path() / "missing.bin"), gw::Error);
}

TEST(CoreFiles, IsInside)
{
  EXPECT_TRUE(gw::IsInside("/out", "/out/a/b.nii"));
  EXPECT_FALSE(gw::IsInside("/out", "/out/../etc/passwd"));
  EXPECT_FALSE(gw::IsInside("/out", "/outside/x"));
}

TEST(CoreProvenance, WritesToolVersionInputsAndWarnings)
{
  ScratchDir dir;
  const auto input = dir / "in.txt";
  std::ofstream(input) << "abc";
  gw::log::ResetWarnings();
  gw::log::SetLevel(gw::log::Level::Quiet);
  gw::log::Warning("spacing irregular");
  gw::log::SetLevel(gw::log::Level::Info);
  gw::Provenance prov;
  prov.tool = "gw_test";
  prov.commandLine = { "gw_test", "in.txt" };
  prov.AddInput("input", input);
  prov.parameters["threshold"] = 0.5;
  const auto out = dir / "out.nii.gz";
  gw::WriteProvenance(out, prov, false);
  const auto j = nlohmann::json::parse(gw::ReadFile(dir / "out.provenance.json"));
  EXPECT_EQ(j["tool"], "gw_test");
  EXPECT_EQ(j["version"], gw::Version());
  EXPECT_EQ(j["inputs"][0]["sha256"], gw::Sha256("abc"));
  EXPECT_EQ(j["parameters"]["threshold"], 0.5);
  EXPECT_EQ(j["warnings"][0], "spacing irregular");
}

TEST(CoreProgress, RangeMapsIntoOverall)
{
  double last = -1;
  gw::SetProgressSink([&](double f, const std::string &) { last = f; });
  gw::ProgressRange r(0.5, 0.7, "x");
  r.Report(0.5);
  EXPECT_NEAR(last, 0.6, 1e-12); // exact arithmetic up to rounding
  gw::SetProgressSink(nullptr);
}
} // namespace
