#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/progress.h"
#include "gw/testing/testing.h"

namespace
{
using gw::cli::App;
using gw::testing::ScratchDir;

struct Args
{
  explicit Args(std::vector<std::string> a)
    : strings(std::move(a))
  {
    for (auto & s : strings)
      ptrs.push_back(s.data());
  }
  int argc() { return static_cast<int>(ptrs.size()); }
  char ** argv() { return ptrs.data(); }
  std::vector<std::string> strings;
  std::vector<char *> ptrs;
};

struct Declared
{
  std::string input, output, mode = "rigid";
  double sigma = 1.5;
  int levels = 3;
  bool halfway = false;
  std::vector<double> seed;
  std::vector<std::string> inputs;
  App app{ { "gw_example", "Example", "An example app for tests.", "GraftWatch.Test" } };
  Declared()
  {
    app.Group("IO", "Inputs and outputs");
    app.AddImage(input, "fixed", "Fixed image").LongFlag("fixed").Required();
    app.AddFile(output, "output", "Output prefix")
      .Flag("o")
      .LongFlag("output")
      .Required()
      .Output(gw::cli::OutputKind::Prefix)
      .OutputSuffixes({ "_warped.nii.gz", "_qa.json" });
    app.Group("Options", "Tuning", true);
    app.AddEnum(mode, "type", "Transform type", { "rigid", "affine", "bspline" });
    app.Add(sigma, "sigma", "Smoothing").Range(0, 10, 0.5).Units("mm");
    app.Add(levels, "levels", "Pyramid levels").Range(1, 6);
    app.AddFlag(halfway, "halfway", "Halfway space");
    app.AddPoint(seed, "seed_point", "Seed").LongFlag("seed-point");
    app.AddFiles(inputs, "extra", "More inputs").Index(0);
    app.AddReturn("metric", "Final metric value");
  }
};

TEST(Cli, XmlFollowsSchemaElementOrder)
{
  Declared d;
  const std::string xml = d.app.Xml();
  // name, longflag, description, label, default, channel, constraints: in this order (CTK schema)
  const auto pName = xml.find("<name>sigma</name>");
  const auto pFlag = xml.find("<longflag>sigma</longflag>", pName);
  const auto pDesc = xml.find("<description>Smoothing [mm]</description>", pFlag);
  const auto pLabel = xml.find("<label>", pDesc);
  const auto pDefault = xml.find("<default>1.5</default>", pLabel);
  const auto pConstr = xml.find("<constraints>", pDefault);
  ASSERT_NE(pName, std::string::npos);
  EXPECT_LT(pName, pFlag);
  EXPECT_LT(pFlag, pDesc);
  EXPECT_LT(pDesc, pLabel);
  EXPECT_LT(pLabel, pDefault);
  EXPECT_LT(pDefault, pConstr);
  EXPECT_NE(pConstr, std::string::npos);
  // dashes are not allowed in Slicer long flags: declared with '_'
  EXPECT_NE(xml.find("<longflag>seed_point</longflag>"), std::string::npos);
  EXPECT_NE(xml.find("<index>1000</index>"), std::string::npos) << "return parameter";
  EXPECT_NE(xml.find("<parameters advanced=\"true\">"), std::string::npos);
  EXPECT_NE(xml.find("<element>bspline</element>"), std::string::npos);
}

TEST(Cli, HelpListsUnitsDefaultsAndExitCodes)
{
  Declared d;
  const std::string help = d.app.Help();
  EXPECT_NE(help.find("[mm]"), std::string::npos);
  EXPECT_NE(help.find("(default: rigid)"), std::string::npos);
  EXPECT_NE(help.find("Exit codes"), std::string::npos);
  EXPECT_NE(d.app.Markdown().find("| `--sigma` |"), std::string::npos);
}

TEST(Cli, ParsesSlicerStyleValues)
{
  Declared d;
  ScratchDir dir;
  bool ran = false;
  Args a({ "gw_example", "--fixed", "f.nii", "-o", (dir / "out").string(), "--type", "affine", "--sigma", "2.5",
           "--halfway", "--seed_point", "1,2.5,-3", "a.nii", "b.nii" });
  const int code = d.app.Run(a.argc(), a.argv(), [&](gw::cli::Context &) { ran = true; });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(ran);
  EXPECT_EQ(d.mode, "affine");
  EXPECT_DOUBLE_EQ(d.sigma, 2.5);
  EXPECT_TRUE(d.halfway);
  ASSERT_EQ(d.seed.size(), 3u);
  EXPECT_DOUBLE_EQ(d.seed[2], -3.0);
  EXPECT_EQ(d.inputs, (std::vector<std::string>{ "a.nii", "b.nii" }));
}

TEST(Cli, DashedLongFlagAlsoAccepted)
{
  Declared d;
  ScratchDir dir;
  Args a({ "gw_example", "--fixed", "f", "-o", (dir / "o").string(), "--seed-point", "1,2,3" });
  EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [](gw::cli::Context &) {}), 0);
  EXPECT_DOUBLE_EQ(d.seed[1], 2.0);
}

TEST(Cli, UsageErrorsExitTwo)
{
  for (auto argv : std::vector<std::vector<std::string>>{
         { "gw_example" },                                                   // nothing
         { "gw_example", "--fixed", "f" },                                   // missing required -o
         { "gw_example", "--fixed", "f", "-o", "x", "--type", "nonlinear" }, // not an element
         { "gw_example", "--fixed", "f", "-o", "x", "--sigma", "11" },       // out of range
         { "gw_example", "--fixed", "f", "-o", "x", "--levels", "two" },     // not a number
         { "gw_example", "--fixed", "f", "-o", "x", "--bogus" } })
  {
    Declared d;
    Args a(argv);
    bool ran = false;
    EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [&](gw::cli::Context &) { ran = true; }), 2) << argv.back();
    EXPECT_FALSE(ran);
  }
}

TEST(Cli, ErrorKindsMapToExitCodes)
{
  ScratchDir dir;
  const std::vector<std::pair<gw::ErrorKind, int>> cases = { { gw::ErrorKind::Input, 3 },
                                                             { gw::ErrorKind::Processing, 4 },
                                                             { gw::ErrorKind::Output, 5 },
                                                             { gw::ErrorKind::Internal, 1 } };
  for (const auto & [kind, expected] : cases)
  {
    Declared d;
    Args a({ "gw_example", "--fixed", "f", "-o", (dir / "o").string() });
    EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [k = kind](gw::cli::Context &) { throw gw::Error(k, "x"); }), expected);
  }
  Declared d;
  Args a({ "gw_example", "--fixed", "f", "-o", (dir / "o").string() });
  EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [](gw::cli::Context &) { throw std::runtime_error("itk says no"); }), 1);
}

TEST(Cli, PrefixOutputsRefusedBeforeWorkWithoutForce)
{
  ScratchDir dir;
  const auto prefix = (dir / "sub01").string();
  gw::WriteTextFile(prefix + "_qa.json", "precious", false);
  {
    Declared d;
    Args a({ "gw_example", "--fixed", "f", "-o", prefix });
    bool ran = false;
    EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [&](gw::cli::Context &) { ran = true; }), 5);
    EXPECT_FALSE(ran) << "refusal must come before any work";
    EXPECT_EQ(gw::ReadFile(prefix + "_qa.json"), "precious");
  }
  {
    Declared d;
    Args a({ "gw_example", "--fixed", "f", "-o", prefix, "--force" });
    bool force = false;
    EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [&](gw::cli::Context & c) { force = c.Force(); }), 0);
    EXPECT_TRUE(force);
  }
}

TEST(Cli, ReturnParameterFileWritten)
{
  ScratchDir dir;
  Declared d;
  const auto rp = (dir / "ret.params").string();
  Args a({ "gw_example", "--fixed", "f", "-o", (dir / "o").string(), "--returnparameterfile", rp });
  EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [](gw::cli::Context & c) { c.SetReturn("metric", 0.25); }), 0);
  EXPECT_EQ(gw::ReadFile(rp), "metric = 0.25\n");
}

TEST(Cli, ProvenanceCarriesParameters)
{
  ScratchDir dir;
  Declared d;
  Args a({ "gw_example", "--fixed", "f", "-o", (dir / "o").string(), "--levels", "4" });
  nlohmann::json params;
  EXPECT_EQ(d.app.Run(a.argc(), a.argv(), [&](gw::cli::Context & c) { params = c.GetProvenance().parameters; }), 0);
  EXPECT_EQ(params["levels"], 4);
  EXPECT_EQ(params["type"], "rigid");
}

TEST(Cli, SlicerProgressProtocolOnStdout)
{
  ScratchDir dir;
  Declared d;
  ::setenv("GW_PROGRESS", "slicer", 1);
  Args a({ "gw_example", "--fixed", "f", "-o", (dir / "o").string() });
  ::testing::internal::CaptureStdout();
  const int code = d.app.Run(a.argc(), a.argv(), [](gw::cli::Context &) { gw::ReportProgress(0.5, "half"); });
  const std::string out = ::testing::internal::GetCapturedStdout();
  ::unsetenv("GW_PROGRESS");
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("<filter-start>"), std::string::npos);
  EXPECT_NE(out.find("<filter-progress>0.5</filter-progress>"), std::string::npos);
  EXPECT_NE(out.find("<filter-end>"), std::string::npos);
}
} // namespace
