// Follow-up pipeline: study reading, and the phantom scenarios end to end (expected flags and no others).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include <itkImageRegionConstIteratorWithIndex.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/followup/pipeline.h"
#include "gw/followup/study.h"
#include "gw/phantom/phantom.h"
#include "gw/testing/testing.h"

namespace
{
namespace fs = std::filesystem;
using gw::followup::ReadStudy;

TEST(FollowupStudy, DaysBetweenIsoDates)
{
  EXPECT_EQ(gw::followup::DaysBetween("2024-03-04", "2024-06-03"), 91.0);
  EXPECT_EQ(gw::followup::DaysBetween("2024-03-04T10:00:00", "2024-03-03"), -1.0);
  EXPECT_THROW(gw::followup::DaysBetween("03/04/2024", "2024-03-03"), gw::Error);
}

TEST(FollowupStudy, StudyJsonWithRolesDatesAndTransplant)
{
  gw::testing::ScratchDir dir("study");
  const fs::path img = dir / "t2.nii.gz";
  {
    std::ofstream(img) << "x";
  }
  gw::WriteTextFile(dir / "study.json",
                    R"({"subject":"sub-07","transplant_date":"2024-01-01","graft_site_lps":[1,2,3],
                        "timepoints":[{"id":"base","date":"2024-01-15","images":{"T2w":"t2.nii.gz"}},
                                      {"id":"m3","date":"2024-04-14","images":{"T2w":"t2.nii.gz"}}]})",
                    false);
  const auto s = ReadStudy(dir / "study.json");
  EXPECT_EQ(s.subject, "sub-07");
  ASSERT_EQ(s.timepoints.size(), 2u);
  EXPECT_EQ(s.timepoints[0].images.at("T2w"), img);
  EXPECT_EQ(*gw::followup::DaysSinceTransplant(s, s.timepoints[0]), 14.0);
  EXPECT_EQ(*gw::followup::DaysSinceTransplant(s, s.timepoints[1]), 104.0);
  ASSERT_TRUE(s.graftSite.has_value());
  EXPECT_EQ((*s.graftSite)[2], 3.0);
  gw::WriteTextFile(dir / "bad.json", R"({"timepoints":[{"id":"a","images":{"T2w":"missing.nii.gz"}}]})", false);
  EXPECT_THROW(ReadStudy(dir / "bad.json"), gw::Error);
  gw::WriteTextFile(dir / "notjson.json", "{", false);
  EXPECT_THROW(ReadStudy(dir / "notjson.json"), gw::Error);
}

/// (timepoint, code, status) of a flags array (ours or the phantom's expected ones).
using Key = std::tuple<std::string, std::string, std::string>;

std::string
Describe(const std::set<Key> & keys)
{
  std::ostringstream s;
  for (const auto & [t, c, st] : keys)
    s << "  " << t << " " << c << " (" << st << ")\n";
  return s.str();
}

/// Runs a phantom scenario through the pipeline and compares flags with the truth: every expected flag raised with
/// its status, no other flag. Borderline expected flags (within 5% of a threshold by design) may go either way, and
/// so may their status: whether a borderline flag is confirmed depends on the next timepoint's borderline value.
void
CheckScenario(const std::string & scenario, std::uint64_t seed, int timepoints)
{
  gw::testing::ScratchDir dir("fu_" + scenario);
  gw::phantom::StudyOptions po;
  po.scenario = scenario;
  po.seed = seed;
  po.timepoints = timepoints;
  po.format = gw::phantom::OutputFormat::Bids;
  const auto truth = gw::phantom::GenerateStudy(po, dir / "bids");
  const auto study = ReadStudy(dir / "bids" / "sub-01");
  gw::followup::FollowupOptions fo;
  fo.snapshots = false;
  const auto result = gw::followup::RunFollowup(study, fo, dir / "out");

  std::set<Key> expected, optional, actual;
  for (const auto & f : truth["expected_flags"])
  {
    Key k{ f["timepoint"].get<std::string>(), f["code"].get<std::string>(), f["status"].get<std::string>() };
    (f.value("borderline", false) ? optional : expected).insert(k);
  }
  for (const auto & f : result.flags)
    actual.insert(Key{ f.timepoint, f.code, f.status });
  std::set<Key> missing, extra;
  for (const auto & k : expected)
    if (!actual.count(k))
      missing.insert(k);
  auto isOptional = [&](const Key & k)
  {
    return std::any_of(optional.begin(), optional.end(),
                       [&](const Key & o)
                       { return std::get<0>(o) == std::get<0>(k) && std::get<1>(o) == std::get<1>(k); });
  };
  for (const auto & k : actual)
    if (!expected.count(k) && !isOptional(k))
      extra.insert(k);
  std::ostringstream notes;
  for (const auto & n : result.notes)
    notes << "  note: " << n << "\n";
  for (const auto & f : result.flags)
    notes << "  flag: " << f.timepoint << " " << f.code << " " << f.status << ": " << f.message << "\n";
  EXPECT_TRUE(missing.empty()) << scenario << " seed " << seed << ": expected flags not raised:\n"
                               << Describe(missing) << notes.str();
  EXPECT_TRUE(extra.empty()) << scenario << " seed " << seed << ": flags raised that the truth does not expect:\n"
                             << Describe(extra) << notes.str();
  EXPECT_TRUE(fs::exists(dir / "out" / "flags.json"));
  EXPECT_TRUE(fs::exists(dir / "out" / "measurements.tsv"));
  EXPECT_TRUE(fs::exists(dir / "out" / "report.html"));
}

class FollowupScenario : public ::testing::TestWithParam<std::string>
{
};

TEST_P(FollowupScenario, ExpectedFlagsAndNoOthers)
{
  CheckScenario(GetParam(), 1, 3);
}

INSTANTIATE_TEST_SUITE_P(Phantom, FollowupScenario, ::testing::ValuesIn(gw::phantom::ScenarioNames()),
                         [](const auto & param) { return param.param; });

class FollowupSeedsSlow : public ::testing::TestWithParam<std::string>
{
};

TEST_P(FollowupSeedsSlow, ExpectedFlagsForNineMoreSeeds)
{
  // seeds 6-10 were added after the rules and measurements were settled on 1-5, as a check that they generalise
  for (std::uint64_t seed = 2; seed <= 10; ++seed)
    CheckScenario(GetParam(), seed, 3);
}

INSTANTIATE_TEST_SUITE_P(Phantom, FollowupSeedsSlow, ::testing::ValuesIn(gw::phantom::ScenarioNames()),
                         [](const auto & param) { return param.param; });

TEST(FollowupCordMasks, GivenMasksMakeACordStudyWithTheExpectedFlags)
{
  // cord masks from another tool (SCT, Slicer; here the phantom's truth masks) with the default anatomy "auto": the
  // study is analysed as a cord study (it was taken for a brain: the thin mask made every registration fail its
  // gate), the masks are used, the cord AP comes from the T2 contour around their centerline, and the flags are the
  // expected ones (a 25% swelling: CORD_SWELLING confirmed, then suspected)
  gw::testing::ScratchDir dir("fu_cordmask");
  gw::phantom::StudyOptions po;
  po.scenario = "cord_swelling";
  po.timepoints = 3;
  const auto truth = gw::phantom::GenerateStudy(po, dir / "bids");
  auto study = ReadStudy(dir / "bids" / "sub-01");
  for (auto & tp : study.timepoints)
  {
    const fs::path mask = dir / "bids" / "derivatives" / "truth" / "sub-01" / tp.id / "anat" /
                          ("sub-01_" + tp.id + "_label-cord_mask.nii.gz");
    ASSERT_TRUE(fs::exists(mask)) << mask;
    tp.images[gw::followup::role::CordMask] = mask;
  }
  gw::followup::FollowupOptions fo;
  fo.snapshots = false;
  fo.dti = false;
  const auto result = gw::followup::RunFollowup(study, fo, dir / "out");
  EXPECT_EQ(result.anatomy, "cord");
  for (const auto & t : result.timepoints)
    EXPECT_TRUE(t.data.registrationPassed) << t.data.id << ": " << t.data.registrationMessage;
  std::set<Key> expected, actual;
  for (const auto & f : truth["expected_flags"])
    expected.insert(
      Key{ f["timepoint"].get<std::string>(), f["code"].get<std::string>(), f["status"].get<std::string>() });
  for (const auto & f : result.flags)
    actual.insert(Key{ f.timepoint, f.code, f.status });
  EXPECT_EQ(actual, expected) << "expected:\n" << Describe(expected) << "raised:\n" << Describe(actual);
  // a cord mask in a study declared as brain is a contradiction, refused
  fo.anatomy = "brain";
  EXPECT_THROW(gw::followup::RunFollowup(study, fo, dir / "out_brain"), gw::Error);
}

TEST(FollowupOutputs, RefusesExistingOutputsWithoutForce)
{
  gw::testing::ScratchDir dir("fu_force");
  gw::phantom::StudyOptions po;
  po.scenario = "stable";
  po.timepoints = 2;
  gw::phantom::GenerateStudy(po, dir / "bids");
  const auto study = ReadStudy(dir / "bids" / "sub-01");
  gw::followup::FollowupOptions fo;
  fo.snapshots = false;
  fo.dti = false;
  gw::followup::RunFollowup(study, fo, dir / "out");
  const std::string before = gw::Sha256File(dir / "out" / "flags.json");
  try
  {
    gw::followup::RunFollowup(study, fo, dir / "out");
    FAIL() << "a second run without force must refuse";
  }
  catch (const gw::Error & e)
  {
    EXPECT_EQ(e.Kind(), gw::ErrorKind::Output);
  }
  EXPECT_EQ(before, gw::Sha256File(dir / "out" / "flags.json"));
  // an earlier run's flag pictures go with its flags; files the tool did not write stay
  fs::create_directories(dir / "out" / "figures");
  gw::WriteTextFile(dir / "out" / "figures" / "flag7_ses-02_NEW_T2_LESION_axial.png", "stale", false);
  gw::WriteTextFile(dir / "out" / "figures" / "reader_notes.txt", "mine", false);
  fo.force = true;
  gw::followup::RunFollowup(study, fo, dir / "out");
  EXPECT_EQ(before, gw::Sha256File(dir / "out" / "flags.json")) << "deterministic: same flags document";
  EXPECT_FALSE(fs::exists(dir / "out" / "figures" / "flag7_ses-02_NEW_T2_LESION_axial.png"))
    << "a picture of a flag this run did not raise stayed beside the report";
  EXPECT_TRUE(fs::exists(dir / "out" / "figures" / "reader_notes.txt"));
}

/// Mean grey level of the grey (not overlay-coloured) pixels of a PNG within `radius` pixels of its centre, off the
/// crosshair's row and column.
double
CentreGrey(const fs::path & png, double radius)
{
  const auto img = gw::testing::ReadPicture(png);
  const long n = long(img->GetLargestPossibleRegion().GetSize()[0]);
  double sum = 0.0;
  int count = 0;
  itk::ImageRegionConstIteratorWithIndex<gw::testing::Picture> it(img, img->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const long x = it.GetIndex()[0] - n / 2, y = it.GetIndex()[1] - n / 2;
    const auto v = it.Get();
    if (x == 0 || y == 0 || std::hypot(double(x), double(y)) > radius || v[0] != v[1] || v[1] != v[2])
      continue;
    sum += v[1];
    ++count;
  }
  return count ? sum / count : -1.0;
}

/// Pixels of the "new since the previous scan" contour colour (255 110 0) within `radius` pixels of a PNG's centre.
std::size_t
OrangeNearCentre(const fs::path & png, double radius)
{
  const auto img = gw::testing::ReadPicture(png);
  const long n = long(img->GetLargestPossibleRegion().GetSize()[0]);
  std::size_t count = 0;
  itk::ImageRegionConstIteratorWithIndex<gw::testing::Picture> it(img, img->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
    count += it.Get()[0] == 255 && it.Get()[1] == 110 && it.Get()[2] == 0 &&
             std::hypot(double(it.GetIndex()[0] - n / 2), double(it.GetIndex()[1] - n / 2)) <= radius;
  return count;
}

TEST(FollowupReport, NewEnhancementShownBesideItsReferenceAndBeforeContrast)
{
  // The NEW_ENHANCEMENT figure (T1w post-contrast, zoomed on the focus) stands beside the same view of the previous
  // scan's post-contrast image (the reference) and of the same day before contrast. The phantom's focus (radius
  // 1.5 mm inside the mass: post-contrast 1100 against 380) is bright only on the day's post-contrast view.
  gw::testing::ScratchDir dir("fu_figures");
  gw::phantom::StudyOptions po;
  po.scenario = "new_enhancement";
  po.timepoints = 2;
  gw::phantom::GenerateStudy(po, dir / "bids");
  gw::followup::FollowupOptions fo;
  fo.dti = false;
  const auto result = gw::followup::RunFollowup(ReadStudy(dir / "bids" / "sub-01"), fo, dir / "out");
  const gw::safety::Flag * flag = nullptr;
  for (const auto & f : result.flags)
    if (f.code == gw::safety::code::NewEnhancement)
      flag = &f;
  ASSERT_NE(flag, nullptr);
  std::string axial;
  for (const auto & e : flag->evidence)
    if (e.size() > 10 && e.compare(e.size() - 10, 10, "_axial.png") == 0)
      axial = e;
  ASSERT_FALSE(axial.empty());
  const std::string stem = axial.substr(0, axial.size() - 4);
  for (const std::string suffix : { "_reference.png", "_precontrast.png" })
    ASSERT_NE(std::find(flag->evidence.begin(), flag->evidence.end(), stem + suffix), flag->evidence.end())
      << stem + suffix << " listed as evidence";
  // the focus is 1.5 mm across its centre: 7 pixels of the 80 mm view of 384 pixels; 5 pixels around the centre
  const double post = CentreGrey(dir / "out" / axial, 5.0);
  const double reference = CentreGrey(dir / "out" / (stem + "_reference.png"), 5.0);
  const double pre = CentreGrey(dir / "out" / (stem + "_precontrast.png"), 5.0);
  EXPECT_GT(post - reference, 40.0) << "post " << post << ", the previous scan's post " << reference;
  EXPECT_GE(OrangeNearCentre(dir / "out" / axial, 20.0), 10u) << "the new focus outlined in orange (new since the "
                                                                 "previous scan) on the day's view";
  EXPECT_EQ(OrangeNearCentre(dir / "out" / (stem + "_reference.png"), 20.0), 0u)
    << "the reference scan's own structures: nothing new there";
  EXPECT_GT(post - pre, 40.0) << "post " << post << ", before contrast " << pre;
}
} // namespace

namespace
{
TEST(FollowupDicom, StableStudyImportedFromDicomRaisesNoFlag)
{
  // the phantom written as DICOM, timepoints given as DICOM folders (imported on the fly)
  gw::testing::ScratchDir dir("fu_dicom");
  gw::phantom::StudyOptions po;
  po.scenario = "stable";
  po.timepoints = 2;
  po.format = gw::phantom::OutputFormat::Dicom;
  const auto truth = gw::phantom::GenerateStudy(po, dir / "study");
  nlohmann::json study{ { "subject", "sub-01" }, { "transplant_date", po.transplantDate } };
  for (const auto & tp : truth["timepoints"])
    study["timepoints"].push_back(
      { { "id", tp["id"] }, { "date", tp["date"] }, { "dicom", "study/dicom/" + tp["id"].get<std::string>() } });
  gw::WriteTextFile(dir / "study.json", study.dump(2), false);
  gw::followup::FollowupOptions fo;
  fo.snapshots = false;
  const auto result = gw::followup::RunFollowup(gw::followup::ReadStudy(dir / "study.json"), fo, dir / "out");
  std::ostringstream flags;
  for (const auto & f : result.flags)
    flags << f.timepoint << " " << f.code << ": " << f.message << "\n";
  EXPECT_TRUE(result.flags.empty()) << flags.str();
  ASSERT_EQ(result.timepoints.size(), 2u);
  EXPECT_TRUE(result.timepoints[1].data.registrationPassed);
  EXPECT_TRUE(fs::exists(dir / "out" / "ses-01" / "dicom")) << "series imported into the output folder";
}
} // namespace
