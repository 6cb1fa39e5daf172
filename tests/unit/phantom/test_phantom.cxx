// Phantom generator and DICOM writer: truth round trips, exact DWI signal model, geometry, determinism, flags.
#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <itkImageRegionConstIteratorWithIndex.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/dicom/dicom.h"
#include "gw/dicom/writer.h"
#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"
#include "gw/phantom/phantom.h"
#include "gw/testing/testing.h"

namespace
{
using gw::phantom::StudyOptions;

StudyOptions
Clean(const std::string & scenario, int timepoints = 2)
{
  StudyOptions o;
  o.scenario = scenario;
  o.timepoints = timepoints;
  o.realism.noise = o.realism.biasField = o.realism.poseChange = o.realism.voxelJitter = false;
  o.realism.partialVolume = false;
  return o;
}

long
Count(const gw::MaskImage * m)
{
  long n = 0;
  const auto * b = m->GetBufferPointer();
  for (std::size_t i = 0; i < m->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    n += b[i] != 0;
  return n;
}

std::map<std::string, std::string>
HashTree(const gw::fs::path & root)
{
  std::map<std::string, std::string> h;
  for (const auto & e : gw::fs::recursive_directory_iterator(root))
    if (e.is_regular_file())
      h[gw::fs::relative(e.path(), root).generic_string()] = gw::Sha256File(e.path());
  return h;
}
} // namespace

TEST(Phantom, GradientTableIsWellSpread)
{
  const auto t = gw::phantom::MakeGradientTable(3, 30, 800.0);
  ASSERT_EQ(t.entries.size(), 33u);
  int b0 = 0;
  std::vector<std::array<double, 3>> dirs;
  for (const auto & e : t.entries)
  {
    if (e.bValue == 0.0)
    {
      ++b0;
      continue;
    }
    EXPECT_EQ(e.bValue, 800.0);
    const double n =
      std::sqrt(e.direction[0] * e.direction[0] + e.direction[1] * e.direction[1] + e.direction[2] * e.direction[2]);
    EXPECT_NEAR(n, 1.0, 1e-12); // unit vectors
    dirs.push_back(e.direction);
  }
  EXPECT_EQ(b0, 3);
  EXPECT_EQ(t.entries[0].bValue, 0.0); // first volume is a b0
  double minAngle = 180;
  for (std::size_t i = 0; i < dirs.size(); ++i)
    for (std::size_t j = i + 1; j < dirs.size(); ++j)
    {
      const double c = std::abs(dirs[i][0] * dirs[j][0] + dirs[i][1] * dirs[j][1] + dirs[i][2] * dirs[j][2]);
      minAngle = std::min(minAngle, std::acos(std::min(1.0, c)) * 180.0 / 3.14159265358979);
    }
  // 30 antipodal directions: the optimum is ~ 26 deg; a spiral without repulsion gives < 20 deg
  EXPECT_GT(minAngle, 22.0) << "minimal angle between directions [deg]";
}

TEST(Phantom, DwiFollowsTensorModelExactlyWithoutNoise)
{
  StudyOptions o = Clean("combined");
  o.realism.poseChange = true; // a rotated tensor field: the model must hold in the world frame
  const auto tp = gw::phantom::SimulateTimepoint(o, 1);
  const unsigned int nv = tp.dwi->GetNumberOfComponentsPerPixel();
  ASSERT_EQ(nv, tp.gradients.entries.size());
  const float * s = tp.dwi->GetBufferPointer();
  const auto * d = tp.tensor->GetBufferPointer();
  const float * s0 = tp.s0->GetBufferPointer();
  const std::size_t n = tp.dwi->GetLargestPossibleRegion().GetNumberOfPixels();
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (unsigned int v = 0; v < nv; ++v)
    {
      const auto & g = tp.gradients.entries[v].direction;
      const double gdg = d[i][0] * g[0] * g[0] + d[i][3] * g[1] * g[1] + d[i][5] * g[2] * g[2] +
                         2 * (d[i][1] * g[0] * g[1] + d[i][2] * g[0] * g[2] + d[i][4] * g[1] * g[2]);
      const double expected = s0[i] * std::exp(-tp.gradients.entries[v].bValue * gdg);
      worst = std::max(worst, std::abs(s[i * nv + v] - expected) / std::max(1.0, expected));
    }
  // float storage of signal and tensor: relative error below 1e-5
  EXPECT_LT(worst, 1e-5);
  // the cord fibres run along the cord: WM FA 0.7 x 0.75 (FA decline band) or 0.7, GM 0.3, CSF 0
  std::set<int> fas;
  for (std::size_t i = 0; i < n; ++i)
    fas.insert(static_cast<int>(std::lround(tp.fa->GetBufferPointer()[i] * 1000)));
  EXPECT_TRUE(fas.count(700) && fas.count(300) && fas.count(525) && fas.count(0));
}

TEST(Phantom, RasterizedVolumesMatchMasksAndAnalyticVolumes)
{
  StudyOptions o = Clean("combined");
  o.realism.partialVolume = true; // masks stay centre-sampled; intensities get partial volume
  o.realism.poseChange = true;
  o.realism.voxelJitter = true;
  const auto tp = gw::phantom::SimulateTimepoint(o, 1);
  const auto sp = tp.dseg->GetSpacing();
  const double vv = sp[0] * sp[1] * sp[2];
  const auto & s = tp.truth["structures"];
  const std::pair<const char *, const char *> pairs[] = {
    { "mass", "lesion" }, { "enhancement", "enhancement" }, { "edema", "edema" }, { "syrinx", "syrinx" }
  };
  for (const auto & [structure, mask] : pairs)
  {
    const long voxels = Count(tp.masks.at(mask));
    EXPECT_EQ(s[structure]["voxels"].get<long>(), voxels) << structure;
    EXPECT_DOUBLE_EQ(s[structure]["volume_mm3_rasterized"].get<double>(), voxels * vv) << structure;
  }
  // centre sampling of >= 100 mm^3 ellipsoids at ~1 x 1 x 2.5 mm: within 10% of the analytic volume
  for (const char * structure : { "mass", "edema", "syrinx" })
    EXPECT_NEAR(s[structure]["volume_mm3_rasterized"].get<double>() / s[structure]["volume_mm3_analytic"].get<double>(),
                1.0, 0.10)
      << structure;
  EXPECT_NEAR(s["mass"]["volume_mm3_analytic"].get<double>(), 2 * 4.0 / 3.0 * M_PI * 2.5 * 2.0 * 5.0, 1e-9);
  EXPECT_NEAR(s["edema"]["volume_mm3_analytic"].get<double>(),
              4.0 / 3.0 * M_PI * (4.5 * 3.2 * 12.0 - 2 * 2.5 * 2.0 * 5.0), 1e-9);
  EXPECT_NEAR(s["cord"]["ap_diameter_mm_at_graft"].get<double>(), 10.0, 1e-12); // 8 mm x 1.25 swelling
  EXPECT_NEAR(s["cord"]["slab_volume_mm3_rasterized"].get<double>() /
                s["cord"]["slab_volume_mm3_analytic"].get<double>(),
              1.0, 0.05);
}

TEST(Phantom, CleanIntensitiesAreTheTissueTable)
{
  const auto tp = gw::phantom::SimulateTimepoint(Clean("new_enhancement"), 1);
  const auto * lab = tp.dseg->GetBufferPointer();
  const float * t2 = tp.anat.at("T2w")->GetBufferPointer();
  const float * t1 = tp.anat.at("T1w")->GetBufferPointer();
  const float * ce = tp.anat.at("ce-gadolinium_T1w")->GetBufferPointer();
  const float * fl = tp.anat.at("FLAIR")->GetBufferPointer();
  std::set<int> seen;
  for (std::size_t i = 0; i < tp.dseg->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
  {
    seen.insert(lab[i]);
    if (lab[i] == gw::phantom::Csf)
    {
      EXPECT_TRUE(t2[i] == 1000.0f && t1[i] == 150.0f && fl[i] == 60.0f) << i; // CSF: T2 bright, FLAIR dark
    }
    if (lab[i] == gw::phantom::Enhancing)
    {
      EXPECT_TRUE(ce[i] == 1100.0f && t1[i] == 350.0f) << i; // bright on post-gadolinium only
    }
    if (lab[i] == gw::phantom::Mass)
    {
      EXPECT_TRUE(t2[i] == 800.0f && t1[i] == 350.0f && ce[i] == 380.0f) << i;
    }
  }
  for (int t : { 1, 2, 3, 4, 5, 6, 7, 8, 10 })
    EXPECT_TRUE(seen.count(t)) << gw::phantom::TissueName(static_cast<std::uint16_t>(t));
}

TEST(Phantom, ExpectedFlagsPerScenario)
{
  // code -> expected at the first follow-up (ses-02); stable and mass_growth_25 expect nothing
  const std::map<std::string, std::set<std::string>> expected = {
    { "stable", {} },
    { "mass_growth_25", {} },
    { "mass_growth_100", { "MASS_GROWTH", "ENLARGING_T2_LESION" } },
    { "new_enhancement", { "NEW_ENHANCEMENT" } },
    { "new_edema", { "ENLARGING_T2_LESION" } },
    { "new_syrinx", { "NEW_SYRINX" } },
    { "syrinx_expansion", { "SYRINX_EXPANSION" } },
    { "cord_swelling", { "CORD_SWELLING" } },
    { "fa_decline", { "FA_DECLINE" } },
    { "transient_edema", { "ENLARGING_T2_LESION" } },
    { "combined",
      { "MASS_GROWTH", "ENLARGING_T2_LESION", "NEW_ENHANCEMENT", "NEW_SYRINX", "CORD_SWELLING", "FA_DECLINE" } }
  };
  for (const auto & [scenario, codes] : expected)
  {
    StudyOptions o = Clean(scenario, 3);
    o.anatSize = { 48, 48, 48 };
    o.anatSpacing = { 1.0, 1.0, 2.5 };
    nlohmann::json tps = nlohmann::json::array();
    for (int k = 0; k < 3; ++k)
      tps.push_back(gw::phantom::SimulateTimepoint(o, k).truth);
    const auto flags = gw::phantom::ExpectedFlags(tps);
    std::set<std::string> got;
    for (const auto & f : flags)
    {
      EXPECT_FALSE(f["borderline"].get<bool>()) << scenario << " " << f.dump();
      if (f["timepoint"] == "ses-02")
        got.insert(f["code"].get<std::string>());
      if (scenario == "transient_edema")
      {
        EXPECT_EQ(f["status"], "expected") << "post-operative window (day 49)";
      }
    }
    EXPECT_EQ(got, codes) << scenario;
  }
  // mass_growth_40 sits on the thresholds (+40% volume, SPD +25.2%): MASS_GROWTH, marked borderline
  StudyOptions o = Clean("mass_growth_40", 2);
  nlohmann::json tps = { gw::phantom::SimulateTimepoint(o, 0).truth, gw::phantom::SimulateTimepoint(o, 1).truth };
  const auto flags = gw::phantom::ExpectedFlags(tps);
  ASSERT_EQ(flags.size(), 1u);
  EXPECT_EQ(flags[0]["code"], "MASS_GROWTH");
  EXPECT_TRUE(flags[0]["borderline"].get<bool>());
}

TEST(Phantom, BidsStudyRoundTripsThroughIo)
{
  gw::testing::ScratchDir dir("phantom_bids");
  StudyOptions o = Clean("new_syrinx", 2);
  o.realism.voxelJitter = true;
  o.realism.poseChange = true;
  const auto truth = gw::phantom::GenerateStudy(o, dir.Path());
  ASSERT_EQ(truth["timepoints"].size(), 2u);
  for (const auto & t : truth["timepoints"])
  {
    const auto & f = t["files"];
    const auto img = gw::io::ReadFloatImage(dir.Path() / f["T2w"].get<std::string>());
    const auto & g = t["anat_grid"];
    for (unsigned int i = 0; i < 3; ++i)
    {
      EXPECT_EQ(img->GetLargestPossibleRegion().GetSize()[i], g["size"][i].get<std::size_t>());
      EXPECT_NEAR(img->GetSpacing()[i], g["spacing_mm"][i].get<double>(), 1e-6);
      EXPECT_NEAR(img->GetOrigin()[i], g["origin_lps_mm"][i].get<double>(), 1e-6);
    }
    const auto syrinx = gw::io::ReadMask(dir.Path() / f["truth"]["mask_syrinx"].get<std::string>());
    EXPECT_EQ(Count(syrinx), t["structures"]["syrinx"]["voxels"].get<long>());
    const auto dwi = gw::io::ReadDwi(dir.Path() / f["dwi"].get<std::string>());
    ASSERT_EQ(dwi.gradients.entries.size(), 33u);
    for (std::size_t v = 0; v < 33; ++v)
    {
      EXPECT_NEAR(dwi.gradients.entries[v].bValue, truth["gradient_table"][v]["b"].get<double>(), 1e-9);
      for (int c = 0; c < 3; ++c) // bvec files carry 6 decimals
        EXPECT_NEAR(dwi.gradients.entries[v].direction[c], truth["gradient_table"][v]["direction_lps"][c].get<double>(),
                    2e-6);
    }
  }
  EXPECT_TRUE(gw::fs::exists(dir.Path() / "sub-01" / "sub-01_sessions.tsv"));
  EXPECT_TRUE(gw::fs::exists(dir.Path() / "sub-01" / "graftwatch.json"));
  // not empty any more: refused without force
  EXPECT_THROW(gw::phantom::GenerateStudy(o, dir.Path()), gw::Error);
}

TEST(Phantom, SameSeedGivesIdenticalBytes)
{
  gw::testing::ScratchDir a("phantom_a"), b("phantom_b"), c("phantom_c");
  StudyOptions o;
  o.scenario = "combined";
  o.timepoints = 2;
  o.seed = 42;
  o.format = gw::phantom::OutputFormat::Nifti;
  o.anatSize = { 40, 40, 32 };
  o.dwiSize = { 24, 24, 24 };
  gw::phantom::GenerateStudy(o, a.Path());
  gw::phantom::GenerateStudy(o, b.Path());
  o.seed = 43;
  gw::phantom::GenerateStudy(o, c.Path());
  const auto ha = HashTree(a.Path()), hb = HashTree(b.Path()), hc = HashTree(c.Path());
  EXPECT_GT(ha.size(), 20u);
  EXPECT_EQ(ha, hb);
  EXPECT_NE(ha.at("ses-01_T2w.nii.gz"), hc.at("ses-01_T2w.nii.gz")); // another seed, other noise
}

TEST(Phantom, DicomSeriesCarryGeometryPixelsAndDiffusionTags)
{
  gw::testing::ScratchDir dir("phantom_dicom");
  StudyOptions o = Clean("new_enhancement", 1);
  o.realism.voxelJitter = true;
  o.realism.noise = true; // non-integer values: stored rounded
  o.format = gw::phantom::OutputFormat::Dicom;
  o.patientName = "MARKER^NAME";
  o.patientId = "MARKERID123";
  o.diffusionConvention = "both";
  o.dwiSize = { 16, 16, 12 };
  o.dwiSpacing = { 3.0, 3.0, 10.0 };
  const auto truth = gw::phantom::GenerateStudy(o, dir.Path());
  const auto tp = gw::phantom::SimulateTimepoint(o, 0);
  const auto & t = truth["timepoints"][0];
  const auto t2 = gw::dicom::ReadBackSeriesForTest(dir.Path() / t["files"]["T2w"].get<std::string>());
  const auto & img = tp.anat.at("T2w");
  const auto size = img->GetLargestPossibleRegion().GetSize();
  ASSERT_EQ(t2.size(), size[2]);
  const float * buf = img->GetBufferPointer();
  for (unsigned int k = 0; k < size[2]; ++k)
  {
    const auto & s = t2[k];
    for (int i = 0; i < 3; ++i) // slice k at origin + k * spacing_z along z
      EXPECT_NEAR(s.position[i], img->GetOrigin()[i] + (i == 2 ? k * img->GetSpacing()[2] : 0.0), 1e-6);
    EXPECT_NEAR(s.pixelSpacing[0], img->GetSpacing()[1], 1e-9);
    EXPECT_NEAR(s.sliceThickness, img->GetSpacing()[2], 1e-9);
    ASSERT_EQ(s.rows, size[1]);
    ASSERT_EQ(s.columns, size[0]);
    for (std::size_t i = 0; i < size[0] * size[1]; ++i)
      ASSERT_EQ(s.pixels[i], std::round(buf[k * size[0] * size[1] + i])) << "slice " << k; // round(v) stored
    EXPECT_EQ(s.patientName, "MARKER^NAME");
    EXPECT_EQ(s.patientId, "MARKERID123");
    EXPECT_EQ(s.studyDate, "20240318"); // transplant 2024-03-04 + 14 days
    EXPECT_TRUE(s.contrastBolusAgent.empty());
  }
  const auto ce = gw::dicom::ReadBackSeriesForTest(dir.Path() / t["files"]["ce-gadolinium_T1w"].get<std::string>());
  EXPECT_EQ(ce.front().contrastBolusAgent, "GADOBUTROL");
  EXPECT_NE(ce.front().seriesInstanceUid, t2.front().seriesInstanceUid);
  EXPECT_EQ(ce.front().studyInstanceUid, t2.front().studyInstanceUid);
  const auto dwi = gw::dicom::ReadBackSeriesForTest(dir.Path() / t["files"]["dwi"].get<std::string>());
  ASSERT_EQ(dwi.size(), 33u * 12u);
  for (std::size_t v = 0; v < 33; ++v)
  {
    const auto & s = dwi[v * 12 + 5];
    const auto & g = tp.gradients.entries[v];
    EXPECT_EQ(s.temporalPosition, static_cast<int>(v + 1));
    EXPECT_TRUE(s.hasStandardDiffusion && s.hasSiemensDiffusion);
    EXPECT_EQ(s.bValue, g.bValue);
    EXPECT_EQ(s.siemensBValue, g.bValue);
    for (int c = 0; c < 3; ++c)
    {
      EXPECT_EQ(s.direction[c], g.direction[c]); // FD: exact
      EXPECT_EQ(s.siemensDirection[c], g.direction[c]);
    }
  }
}

TEST(DicomWriter, ObliqueGeometryAndRescaleRoundTrip)
{
  gw::testing::ScratchDir dir("dicom_writer");
  gw::SizeType size;
  size[0] = 7;
  size[1] = 5;
  size[2] = 4;
  gw::SpacingType sp;
  sp.Fill(1.0);
  gw::PointType org;
  org.Fill(0.0);
  auto img = gw::testing::MakeImage(size, sp, org);
  sp[0] = 0.8;
  sp[1] = 0.9;
  sp[2] = 3.3;
  img->SetSpacing(sp);
  org[0] = -12.25;
  org[1] = 40.125;
  org[2] = -101.5;
  img->SetOrigin(org);
  const double a = 0.3, b = -0.2; // rotations about x then z
  gw::DirectionType d;
  const double rx[3][3] = { { 1, 0, 0 }, { 0, std::cos(a), -std::sin(a) }, { 0, std::sin(a), std::cos(a) } };
  const double rz[3][3] = { { std::cos(b), -std::sin(b), 0 }, { std::sin(b), std::cos(b), 0 }, { 0, 0, 1 } };
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
    {
      d[i][j] = 0;
      for (int k = 0; k < 3; ++k)
        d[i][j] += rz[i][k] * rx[k][j];
    }
  img->SetDirection(d);
  float * buf = img->GetBufferPointer();
  for (std::size_t i = 0; i < 7 * 5 * 4; ++i)
    buf[i] = static_cast<float>(-50.0 + 3.7 * i); // negative values: rescale slope/intercept
  gw::dicom::SeriesDescriptor desc;
  desc.seriesNumber = 9;
  desc.seriesDescription = "OBLIQUE";
  const auto files = gw::dicom::WriteDicomSeries(img, dir / "s9", desc, false);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_THROW(gw::dicom::WriteDicomSeries(img, dir / "s9", desc, false), gw::Error); // not empty, no force
  const auto back = gw::dicom::ReadBackSeriesForTest(dir / "s9");
  ASSERT_EQ(back.size(), 4u);
  const double slope = (buf[139] - buf[0]) / 65535.0;
  for (unsigned int k = 0; k < 4; ++k)
  {
    for (int i = 0; i < 3; ++i)
    {
      EXPECT_NEAR(back[k].position[i], org[i] + d[i][2] * sp[2] * k, 1e-6);
      EXPECT_NEAR(back[k].orientation[i], d[i][0], 1e-9);
      EXPECT_NEAR(back[k].orientation[3 + i], d[i][1], 1e-9);
    }
    EXPECT_NEAR(back[k].pixelSpacing[0], 0.9, 1e-12);
    EXPECT_NEAR(back[k].pixelSpacing[1], 0.8, 1e-12);
    for (std::size_t i = 0; i < 35; ++i)
      EXPECT_NEAR(back[k].pixels[i], buf[k * 35 + i], 0.5 * slope + 1e-4); // quantisation: half a step
  }
  EXPECT_EQ(gw::dicom::MakeUid("x"), gw::dicom::MakeUid("x"));
  EXPECT_NE(gw::dicom::MakeUid("x"), gw::dicom::MakeUid("y"));
  EXPECT_LE(gw::dicom::MakeUid("x").size(), 64u);
  EXPECT_EQ(gw::dicom::MakeUid("x").rfind("2.25.", 0), 0u);
}

TEST(Phantom, DicomImportReadsBackTheSimulatedImages)
{
  // the import path of gw::dicom (dcm2niix conventions) on the generated series: same voxels in physical space,
  // same gradients, scanner-like classification
  gw::testing::ScratchDir dir("phantom_import");
  StudyOptions o = Clean("new_enhancement", 1);
  o.realism.poseChange = true;
  o.realism.noise = true;
  o.format = gw::phantom::OutputFormat::Dicom;
  o.dwiSize = { 16, 16, 12 };
  o.dwiSpacing = { 3.0, 3.0, 10.0 };
  gw::phantom::GenerateStudy(o, dir.Path());
  const auto tp = gw::phantom::SimulateTimepoint(o, 0);
  const auto scan = gw::dicom::ScanDirectories({ dir.Path() / "dicom" });
  ASSERT_EQ(scan.series.size(), 5u);
  std::map<int, std::string> contrastOf = { { 2, "T2w" }, { 3, "T1w" }, { 6, "ce-gadolinium_T1w" }, { 4, "FLAIR" } };
  for (const auto & series : scan.series)
  {
    const auto loaded = gw::dicom::LoadSeries(series);
    if (series.seriesNumber == 5)
    {
      ASSERT_EQ(loaded.gradients.entries.size(), tp.gradients.entries.size());
      for (std::size_t v = 0; v < tp.gradients.entries.size(); ++v)
      {
        EXPECT_NEAR(loaded.gradients.entries[v].bValue, tp.gradients.entries[v].bValue, 1e-9);
        for (int c = 0; c < 3; ++c)
          EXPECT_NEAR(loaded.gradients.entries[v].direction[c], tp.gradients.entries[v].direction[c], 1e-9);
      }
      continue;
    }
    ASSERT_TRUE(contrastOf.count(series.seriesNumber)) << series.seriesNumber;
    const auto & mine = tp.anat.at(contrastOf[series.seriesNumber]);
    const auto theirs = gw::dicom::ToFloatImage(loaded);
    ASSERT_EQ(theirs->GetLargestPossibleRegion().GetNumberOfPixels(),
              mine->GetLargestPossibleRegion().GetNumberOfPixels());
    long mismatches = 0;
    for (itk::ImageRegionConstIteratorWithIndex<gw::FloatImage> it(theirs, theirs->GetLargestPossibleRegion());
         !it.IsAtEnd(); ++it)
    {
      gw::PointType p;
      theirs->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      gw::IndexType idx;
      if (!mine->TransformPhysicalPointToIndex(p, idx) || std::abs(it.Get() - std::round(mine->GetPixel(idx))) > 0)
        ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << "series " << series.seriesNumber << " (voxels compared in physical space)";
  }
}
