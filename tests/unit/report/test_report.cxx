#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <itkImageRegionIteratorWithIndex.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/report/html.h"
#include "gw/report/snapshot.h"
#include "gw/testing/testing.h"

namespace
{
using namespace gw::report;

TEST(Report, SnapshotIsAValidPngWithContourColour)
{
  gw::testing::ScratchDir dir;
  gw::SizeType size = { { 32, 32, 16 } };
  gw::SpacingType spacing;
  spacing[0] = 1.0;
  spacing[1] = 1.0;
  spacing[2] = 2.0;
  gw::PointType origin;
  origin.Fill(0.0);
  auto img = gw::testing::MakeImage(size, spacing, origin, 100.0f);
  auto mask = gw::testing::MakeMask(size, spacing, origin);
  itk::ImageRegionIteratorWithIndex<gw::MaskImage> it(mask, mask->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto i = it.GetIndex();
    if (std::hypot(i[0] - 16.0, i[1] - 16.0) < 6)
      it.Set(1);
  }
  const auto png = dir / "snap.png";
  WriteSnapshot(img, { Overlay{ mask, { 255, 0, 0 } } }, ImageCenter(img), Plane::Axial, png, false);
  const std::string bytes = gw::ReadFile(png);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  EXPECT_THROW(WriteSnapshot(img, {}, ImageCenter(img), Plane::Sagittal, png, false), gw::Error) << "no overwrite";
  WriteSnapshot(img, {}, ImageCenter(img), Plane::Sagittal, dir / "sag.png", false);
  EXPECT_TRUE(gw::fs::exists(dir / "sag.png"));
}

TEST(Report, PlotSvgHasSeriesPointsAndGaps)
{
  Plot p;
  p.title = "Lesion volume";
  p.yLabel = "volume [mm^3]";
  p.x = { 0, 90, 180 };
  p.xLabels = { "ses-01", "ses-02", "ses-03" };
  p.series = { { "lesion", { 100, std::nan(""), 140 } }, { "syrinx", { 0, 10, 20 } } };
  const std::string svg = PlotSvg(p);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  std::size_t circles = 0;
  for (std::size_t pos = svg.find("<circle"); pos != std::string::npos; pos = svg.find("<circle", pos + 1))
    ++circles;
  EXPECT_EQ(circles, 5u) << "NaN leaves a gap";
  EXPECT_NE(svg.find("ses-02"), std::string::npos);
}

TEST(Report, HtmlEscapesAndListsFlags)
{
  gw::testing::ScratchDir dir;
  ReportContent c;
  c.subject = "sub-01";
  c.timepoints = { "ses-01", "ses-02" };
  gw::safety::Flag f;
  f.code = "MASS_GROWTH";
  f.timepoint = "ses-02";
  f.status = "suspected";
  f.message = "volume <b>+42%</b>";
  f.location = gw::safety::Point{ 1, 2, 3 };
  c.flags = { f };
  c.measurements = nlohmann::json::array({ { { "timepoint", "ses-01" }, { "volume_mm3", 100.0 } } });
  WriteHtmlReport(c, dir / "report.html", false);
  const std::string html = gw::ReadFile(dir / "report.html");
  EXPECT_NE(html.find("MASS_GROWTH"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;+42%&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>+42%"), std::string::npos);
  WriteMarkups(c.flags, dir / "flags.mrk.json", false);
  const auto j = nlohmann::json::parse(gw::ReadFile(dir / "flags.mrk.json"));
  EXPECT_EQ(j["markups"][0]["coordinateSystem"], "LPS");
  EXPECT_EQ(j["markups"][0]["controlPoints"][0]["position"][2], 3.0);
}
} // namespace
