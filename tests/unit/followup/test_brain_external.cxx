// Brain mode on a real single-session exam (pre_post_gadolinium: TCGA-FG-6692, a brain tumour; T2w, FLAIR, T1w pre
// and post gadolinium). The FLAIR and the T1w pair were acquired with the head in another position than the T2w
// (the primary series): they must be aligned to it before the FLAIR's lesions are mapped onto the T2w's grid, and the
// analysis must stay inside the brain.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <itkImageRegionConstIteratorWithIndex.h>
#include <nlohmann/json.hpp>

#include "gw/core/files.h"
#include "gw/followup/pipeline.h"
#include "gw/followup/study.h"
#include "gw/io/image_io.h"
#include "gw/registration/registration.h"
#include "gw/testing/testing.h"

namespace
{
namespace fs = std::filesystem;

TEST(FollowupBrainExternal, TumourExamSeriesAlignedAndLesionAtTheTumour)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/pre_post_gadolinium");
  gw::testing::ScratchDir scratch("fu_tcga");
  const nlohmann::json doc{ { "subject", "sub-tcga" },
                            { "timepoints",
                              { { { "id", "t0" },
                                  { "days", 0 },
                                  { "images",
                                    { { "T2w", (dir / "t2.nii.gz").string() },
                                      { "FLAIR", (dir / "flair.nii.gz").string() },
                                      { "T1w", (dir / "t1_pre.nii.gz").string() },
                                      { "T1w_ce", (dir / "t1_post_gad.nii.gz").string() } } } } } } };
  gw::WriteTextFile(scratch / "study.json", doc.dump(2), false);
  gw::followup::FollowupOptions options;
  options.anatomy = "brain";
  options.snapshots = false;
  options.dti = false;
  gw::followup::RunFollowup(gw::followup::ReadStudy(scratch / "study.json"), options, scratch / "out");
  const auto summary = nlohmann::json::parse(gw::ReadFile(scratch / "out" / "summary.json"));
  const auto & alignment = summary["timepoints"][0]["details"]["session_alignment"];
  std::cout << "session alignment: " << alignment.dump() << "\n";
  // measured: FLAIR moved up to 32 mm (estimated error 0.05 mm), the T1w pair up to 37 mm (0.12 mm); the gate's
  // limit is one voxel of the T2w (1.64 mm geometric mean)
  for (const char * group : { "FLAIR", "T1w+T1w_ce" })
  {
    ASSERT_TRUE(alignment.contains(group)) << group;
    EXPECT_TRUE(alignment[group].value("gate_passed", false)) << group;
    EXPECT_TRUE(alignment[group].value("applied", false)) << group;
    EXPECT_GT(alignment[group].value("displacement_max_mm", 0.0), 10.0) << group << ": the head had moved";
  }

  // the brain mask: an adult intracranial volume with the soft tissue BET takes at the skull base and the vertex
  // (measured 1.99 L; the head's outline holds 2.9 L)
  const auto brain = gw::io::ReadMask(scratch / "out" / "t0" / "brain_mask.nii.gz");
  const auto sp = brain->GetSpacing();
  double brainVolume = 0.0;
  for (std::size_t i = 0; i < brain->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    brainVolume += brain->GetBufferPointer()[i] ? sp[0] * sp[1] * sp[2] : 0.0;
  EXPECT_GT(brainVolume, 1.1e6);
  EXPECT_LT(brainVolume, 2.1e6);

  // the centre of the tumour's ring on the T2w, read by eye at voxel (85, 150, 17) of t2.nii.gz (the ring's radius is
  // about 7 mm): a FLAIR lesion within 10 mm of it, and at least 1 mL of lesion within 25 mm (the tumour's T2/FLAIR
  // abnormality spans slices 13-18). Measured 7.2 mm and 4.6 mL. (The FLAIR abnormality is large: left unaligned it
  // still overlaps the ring, 1.3 mm and 2.8 mL; the alignment is checked above, and on a phantom with known motion in
  // FollowupBrainActivity.SessionSeriesOnAnotherGridAreAligned.)
  const auto lesions = gw::io::ReadLabelImage(scratch / "out" / "t0" / "lesions.nii.gz");
  const auto t2 = gw::io::ReadFloatImage(dir / "t2.nii.gz");
  gw::PointType ring;
  t2->TransformIndexToPhysicalPoint(itk::Index<3>{ { 85, 150, 17 } }, ring);
  double nearest = std::numeric_limits<double>::infinity(), near25 = 0.0;
  itk::ImageRegionConstIteratorWithIndex<gw::LabelImage> it(lesions, lesions->GetLargestPossibleRegion());
  const auto ls = lesions->GetSpacing();
  for (; !it.IsAtEnd(); ++it)
    if (it.Get())
    {
      gw::PointType p;
      lesions->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      const double d = p.EuclideanDistanceTo(ring);
      nearest = std::min(nearest, d);
      if (d <= 25.0)
        near25 += ls[0] * ls[1] * ls[2];
    }
  std::cout << "tumour ring at (" << ring[0] << ", " << ring[1] << ", " << ring[2] << "): nearest lesion voxel "
            << nearest << " mm, lesion within 25 mm " << near25 << " mm^3\n";
  EXPECT_LT(nearest, 10.0);
  EXPECT_GT(near25, 1000.0);
}

// ---------------------------------------------------------------------------------------------------------------
// The same real exam as a follow-up of itself: the head turned by (3, -2, 4) degrees and shifted by (2.5, -3, 1.5)
// mm about the T2w's centre, every series resampled (cubic B-spline) on its own grid, with fresh noise. On 5.5 mm
// slices the turn changes every thin structure's partial volume (vessels, dura, scalp, the skull base), as a real
// re-scan would. Optionally with changes planted in the follow-up's anatomy before the motion.
struct Plant
{
  std::string file;      ///< the series it is planted in
  itk::Index<3> index;   ///< its centre, a voxel of that series
  double radiusMm = 0.0; ///< a sphere with a 0.7 mm logistic edge ...
  double gain = 0.0;     ///< ... adding gain x the local median intensity
};

gw::FloatImage::Pointer
Reimaged(const gw::FloatImage * image, const gw::registration::TransformType * headToBefore, unsigned seed,
         const std::vector<Plant> & plants, const std::string & file)
{
  namespace reg = gw::registration;
  auto planted = gw::FloatImage::New();
  planted->CopyInformation(image);
  planted->SetRegions(image->GetLargestPossibleRegion());
  planted->Allocate();
  std::copy_n(image->GetBufferPointer(), image->GetLargestPossibleRegion().GetNumberOfPixels(),
              planted->GetBufferPointer());
  {
    for (const auto & p : plants)
    {
      if (p.file != file)
        continue;
      gw::PointType c;
      image->TransformIndexToPhysicalPoint(p.index, c);
      std::vector<float> local;
      std::vector<std::pair<std::size_t, double>> inside; // voxel, weight
      itk::ImageRegionConstIteratorWithIndex<gw::FloatImage> it(image, image->GetLargestPossibleRegion());
      for (std::size_t v = 0; !it.IsAtEnd(); ++it, ++v)
      {
        gw::PointType q;
        image->TransformIndexToPhysicalPoint(it.GetIndex(), q);
        const double r = q.EuclideanDistanceTo(c);
        if (r < p.radiusMm + 6.0)
          local.push_back(it.Get());
        if (r < p.radiusMm + 5.0)
          inside.emplace_back(v, 1.0 / (1.0 + std::exp((r - p.radiusMm) / 0.7)));
      }
      std::nth_element(local.begin(), local.begin() + long(local.size() / 2), local.end());
      const double median = local[local.size() / 2];
      for (const auto & [v, w] : inside)
        planted->GetBufferPointer()[v] += float(p.gain * median * w);
    }
  }
  auto moved = reg::Resample(planted, image, headToBefore, reg::Interpolation::BSpline);
  // fresh noise: half a percent of the 99th percentile
  std::vector<float> values(image->GetBufferPointer(),
                            image->GetBufferPointer() + image->GetLargestPossibleRegion().GetNumberOfPixels());
  std::nth_element(values.begin(), values.begin() + long(0.99 * double(values.size())), values.end());
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.005f * values[std::size_t(0.99 * double(values.size()))]);
  for (std::size_t v = 0; v < values.size(); ++v)
    moved->GetBufferPointer()[v] = std::max(0.0f, moved->GetBufferPointer()[v] + noise(rng));
  return moved;
}

gw::followup::FollowupResult
RunReimaged(const fs::path & dir, const fs::path & scratch, const std::vector<Plant> & plants)
{
  namespace reg = gw::registration;
  const std::vector<std::pair<std::string, std::string>> series{
    { "T2w", "t2.nii.gz" }, { "FLAIR", "flair.nii.gz" }, { "T1w", "t1_pre.nii.gz" }, { "T1w_ce", "t1_post_gad.nii.gz" }
  };
  const auto t2 = gw::io::ReadFloatImage(dir / "t2.nii.gz");
  const auto motion = reg::MakeRigidTransform({ 3.0, -2.0, 4.0 }, { 2.5, -3.0, 1.5 }, reg::GridCenter(t2));
  const reg::TransformPointer back = dynamic_cast<reg::TransformType *>(motion->GetInverseTransform().GetPointer());
  nlohmann::json before, after;
  unsigned seed = 1;
  for (const auto & [role, file] : series)
  {
    before[role] = (dir / file).string();
    const auto image = gw::io::ReadFloatImage(dir / file);
    gw::io::WriteImage(Reimaged(image, back, seed++, plants, file).GetPointer(), scratch / file, false);
    after[role] = (scratch / file).string();
  }
  const nlohmann::json doc{ { "subject", "sub-tcga" },
                            { "timepoints",
                              { { { "id", "t0" }, { "days", 0 }, { "images", before } },
                                { { "id", "t1" }, { "days", 120 }, { "images", after } } } } };
  gw::WriteTextFile(scratch / "study.json", doc.dump(2), false);
  gw::followup::FollowupOptions options;
  options.anatomy = "brain";
  options.snapshots = false;
  options.dti = false;
  return gw::followup::RunFollowup(gw::followup::ReadStudy(scratch / "study.json"), options, scratch / "out");
}

std::string
Describe(const std::vector<gw::safety::Flag> & flags)
{
  std::string s;
  for (const auto & f : flags)
    s += "  " + f.code + ": " + f.message + "\n";
  return s;
}

TEST(FollowupBrainExternal, TumourExamReimagedAfterATurnRaisesNoFlag)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/pre_post_gadolinium");
  gw::testing::ScratchDir scratch("fu_tcga_null");
  const auto result = RunReimaged(dir, scratch.Path(), {});
  ASSERT_EQ(result.timepoints.size(), 2u);
  ASSERT_TRUE(result.timepoints[1].data.registrationPassed);
  // It raised 27 flags before the rules it tests: 21 NEW_ENHANCEMENT (thin structures whose partial volume changed,
  // and foci outside the other day's brain mask), 3 NEW_T2_LESION and 3 ENLARGING_T2_LESION (structures that were
  // already bright, whose contrast against their surroundings rose by 1.0-1.8 brain sigmas).
  EXPECT_TRUE(result.flags.empty()) << "the same exam, turned, raised:\n" << Describe(result.flags);
}

TEST(FollowupBrainExternal, TumourExamReimagedWithPlantedChangesRaisesExactlyThose)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/pre_post_gadolinium");
  gw::testing::ScratchDir scratch("fu_tcga_plant");
  // an enhancing sphere of 4 mm radius (268 mm^3; +120 % of the local signal on the T1w post) in the white matter
  // beside the right lateral ventricle, and a FLAIR lesion of 5 mm radius (524 mm^3; +80 %) in the frontal white
  // matter, both in brain that the exam shows normal
  const std::vector<Plant> plants{ { "t1_post_gad.nii.gz", { { 175, 110, 15 } }, 4.0, 1.2 },
                                   { "flair.nii.gz", { { 140, 150, 12 } }, 5.0, 0.8 } };
  const auto result = RunReimaged(dir, scratch.Path(), plants);
  ASSERT_EQ(result.timepoints.size(), 2u);
  std::map<std::string, std::vector<double>> volumes;
  for (const auto & f : result.flags)
    volumes[f.code].push_back(f.value);
  EXPECT_EQ(result.flags.size(), 2u) << Describe(result.flags);
  // measured 275 mm^3 (the sphere: 268); on 5.5 mm slices a sphere's measured volume depends on where the slices
  // cut it: within 35 %
  ASSERT_EQ(volumes[gw::safety::code::NewEnhancement].size(), 1u) << Describe(result.flags);
  EXPECT_NEAR(volumes[gw::safety::code::NewEnhancement][0], 268.0, 0.35 * 268.0);
  // measured 919 mm^3: the FLAIR lesion's hysteresis takes its 0.7 mm edge and the slices it touches (the sphere:
  // 524); at least half and at most twice
  ASSERT_EQ(volumes[gw::safety::code::NewT2Lesion].size(), 1u) << Describe(result.flags);
  EXPECT_GT(volumes[gw::safety::code::NewT2Lesion][0], 0.5 * 524.0);
  EXPECT_LT(volumes[gw::safety::code::NewT2Lesion][0], 2.0 * 524.0);
}
} // namespace
