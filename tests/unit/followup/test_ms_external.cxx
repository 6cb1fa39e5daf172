// Follow-up on a real two-timepoint MS study (longitudinal_ms/patient01, Lesjak et al. 2016): every lesion change
// of gw_followup's change map (new, enlarging, resolved, shrinking) vs the provided lesion-change truth (gt.nii.gz, in
// the common space given by the study's FLAIR_to_common_space transforms). Voxel-wise Dice and lesion-wise detection
// F1 are reported as test properties (MSSEG-2's best methods reach a lesion-wise F1 of about 0.55; MSSEG-2 scores
// new lesions only, this truth covers both directions).
//
// The truth is a white-matter lesion CHANGE segmentation: it marks changes in both directions, new or enlarging
// lesions and shrinking or vanishing ones. The primary score is therefore all change codes vs all truth lesions.
// Each truth lesion is also classified by the sign of its FLAIR change, measured with the provided transforms only
// (independent of the pipeline): the change of its local contrast (mean over the lesion minus the median of a 2-6 mm
// shell around it, in robust sigmas of the brain) from study1 to study2. As secondary properties, the new/enlarging
// codes are scored against the truth lesions whose FLAIR rose, and the resolved/shrinking codes against those whose
// FLAIR fell.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include <itkMatrixOffsetTransformBase.h>

#include "gw/core/files.h"
#include "gw/followup/pipeline.h"
#include "gw/followup/study.h"
#include "gw/io/image_io.h"
#include "gw/io/transform_io.h"
#include "gw/registration/registration.h"
#include "gw/segmentation/anatomy.h"
#include "gw/testing/testing.h"

namespace
{
namespace fs = std::filesystem;
namespace reg = gw::registration;
namespace seg = gw::segmentation;

/// median and 1.4826 MAD of an image inside a mask
std::pair<double, double>
RobustStats(const gw::FloatImage * img, const gw::MaskImage * mask)
{
  std::vector<float> v;
  const std::size_t n = img->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t i = 0; i < n; ++i)
    if (mask->GetBufferPointer()[i])
      v.push_back(img->GetBufferPointer()[i]);
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  const double med = v[v.size() / 2];
  for (float & x : v)
    x = std::abs(x - float(med));
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return { med, 1.4826 * v[v.size() / 2] };
}

/// Per truth lesion (labels of `truthLabels`, 1..n): the change of its FLAIR local contrast from study1 to study2,
/// both resampled into the common space with the provided transforms.
std::vector<double>
FlairContrastChange(const fs::path & dir, const gw::LabelImage * truthLabels, std::size_t count,
                    const gw::MaskImage * brainCommon)
{
  std::vector<double> change(count + 1, 0.0);
  const std::size_t n = truthLabels->GetLargestPossibleRegion().GetNumberOfPixels();
  std::vector<std::vector<float>> z; // study1, study2 in robust sigmas of the brain
  for (const std::string s : { "study1", "study2" })
  {
    const auto img = reg::Resample(gw::io::ReadFloatImage(dir / (s + "_FLAIR.nii.gz")), truthLabels,
                                   gw::io::ReadTransform(dir / (s + "_FLAIR_to_common_space.txt")));
    const auto [med, sigma] = RobustStats(img, brainCommon);
    z.emplace_back(n);
    for (std::size_t i = 0; i < n; ++i)
      z.back()[i] = float((img->GetBufferPointer()[i] - med) / sigma);
  }
  for (std::size_t l = 1; l <= count; ++l)
  {
    auto m = gw::MaskImage::New();
    m->CopyInformation(truthLabels);
    m->SetRegions(truthLabels->GetLargestPossibleRegion());
    m->Allocate(true);
    for (std::size_t i = 0; i < n; ++i)
      m->GetBufferPointer()[i] = truthLabels->GetBufferPointer()[i] == l;
    const auto outer = seg::DilateMm(m, 6.0), inner = seg::DilateMm(m, 2.0);
    for (std::size_t t = 0; t < 2; ++t)
    {
      double sum = 0;
      std::size_t voxels = 0;
      std::vector<float> shell;
      for (std::size_t i = 0; i < n; ++i)
        if (m->GetBufferPointer()[i])
        {
          sum += z[t][i];
          ++voxels;
        }
        else if (outer->GetBufferPointer()[i] && !inner->GetBufferPointer()[i] && !truthLabels->GetBufferPointer()[i] &&
                 brainCommon->GetBufferPointer()[i])
          shell.push_back(z[t][i]);
      std::nth_element(shell.begin(), shell.begin() + shell.size() / 2, shell.end());
      const double local = sum / double(voxels) - (shell.empty() ? 0.0 : shell[shell.size() / 2]);
      change[l] += (t == 0 ? -local : local);
    }
  }
  return change;
}

/// the phantom grid
gw::FloatImage::Pointer
PhantomGrid()
{
  gw::SizeType size;
  size[0] = 96;
  size[1] = 96;
  size[2] = 20;
  gw::SpacingType spacing;
  spacing[0] = 1.0;
  spacing[1] = 1.0;
  spacing[2] = 4.0;
  gw::PointType origin;
  origin[0] = -47.5;
  origin[1] = -47.5;
  origin[2] = -38.0;
  return gw::testing::MakeImage(size, spacing, origin);
}

/// A FLAIR-like brain phantom on an MS-like grid (1 x 1 x 4 mm, a slab that cuts the brain at both ends): white
/// matter, a grey-matter rim, two dark ventricles, an old lesion; `after` adds a new lesion, a multiplicative bias
/// field with a global gain and offset (session drift), and a bright last slice (slab-edge inflow artefact);
/// `resolve`: the old lesion is gone in `after` (back to white matter).
gw::FloatImage::Pointer
BrainPhantom(bool after, std::uint64_t seed, bool resolve = false)
{
  auto img = PhantomGrid();
  gw::testing::Rng rng(seed);
  auto inside = [](double x, double y, double z, double cx, double cy, double cz, double a, double b, double c)
  { return (x - cx) * (x - cx) / (a * a) + (y - cy) * (y - cy) / (b * b) + (z - cz) * (z - cz) / (c * c) <= 1.0; };
  itk::Index<3> idx;
  for (idx[2] = 0; idx[2] < 20; ++idx[2])
    for (idx[1] = 0; idx[1] < 96; ++idx[1])
      for (idx[0] = 0; idx[0] < 96; ++idx[0])
      {
        gw::PointType p;
        img->TransformIndexToPhysicalPoint(idx, p);
        const double x = p[0], y = p[1], z = p[2];
        double v = 0.0;
        if (inside(x, y, z, 0, 0, 0, 40, 44, 48))
        {
          v = inside(x, y, z, 0, 0, 0, 35, 39, 43) ? 100.0 : 130.0; // white matter, grey-matter rim
          if (inside(x, y, z, -8, 5, 0, 4, 12, 14) || inside(x, y, z, 8, 5, 0, 4, 12, 14))
            v = 30.0; // ventricles
          if (inside(x, y, z, 18, -15, 4, 5, 5, 6) && !(after && resolve))
            v = 210.0; // old lesion
          if (after && inside(x, y, z, -20, -18, -6, 4, 4, 5))
            v = 200.0; // new lesion
          if (after)
          {
            v *= 1.1 * (1.0 + 0.002 * x); // session gain and a bias field of +-9 % across the brain
            v += 15.0;
            if (idx[2] == 19)
              v *= 1.6; // slab-edge inflow artefact
          }
        }
        img->SetPixel(idx, float(std::abs(v + 4.0 * rng.Normal())));
      }
  return img;
}

TEST(FollowupBrainActivity, PhantomNewLesionFoundUnderSessionDrift)
{
  gw::testing::ScratchDir scratch("fu_brain");
  gw::io::WriteImage(BrainPhantom(false, 1).GetPointer(), scratch / "t0.nii.gz", false);
  gw::io::WriteImage(BrainPhantom(true, 2).GetPointer(), scratch / "t1.nii.gz", false);
  gw::WriteTextFile(
    scratch / "study.json",
    nlohmann::json{ { "subject", "sub-ph" },
                    { "timepoints",
                      { { { "id", "t0" }, { "days", 0 }, { "images", { { "FLAIR", "t0.nii.gz" } } } },
                        { { "id", "t1" }, { "days", 180 }, { "images", { { "FLAIR", "t1.nii.gz" } } } } } } }
      .dump(2),
    false);
  const auto study = gw::followup::ReadStudy(scratch / "study.json");
  gw::followup::FollowupOptions options;
  options.anatomy = "brain";
  options.snapshots = false;
  options.dti = false;
  const auto result = gw::followup::RunFollowup(study, options, scratch / "out");
  ASSERT_EQ(result.timepoints.size(), 2u);
  ASSERT_TRUE(result.timepoints[1].data.registrationPassed);
  const auto change = gw::io::ReadLabelImage(scratch / "out" / "t1" / "lesion_change_in_baseline.nii.gz");
  auto predicted = seg::LabelsToMask(change);
  const auto grid = PhantomGrid();
  auto truth = gw::testing::MakeMask(grid->GetLargestPossibleRegion().GetSize(), grid->GetSpacing(), grid->GetOrigin());
  itk::Index<3> idx;
  std::size_t edge = 0;
  for (idx[2] = 0; idx[2] < 20; ++idx[2])
    for (idx[1] = 0; idx[1] < 96; ++idx[1])
      for (idx[0] = 0; idx[0] < 96; ++idx[0])
      {
        gw::PointType p;
        truth->TransformIndexToPhysicalPoint(idx, p);
        const double dx = (p[0] + 20) / 4, dy = (p[1] + 18) / 4, dz = (p[2] + 6) / 5;
        truth->SetPixel(idx, dx * dx + dy * dy + dz * dz <= 1.0 ? 1 : 0);
        edge += (idx[2] == 19 || idx[2] == 0) && predicted->GetPixel(idx);
      }
  std::vector<seg::Component> components;
  seg::LabelComponents(predicted, 1, 0.0, &components);
  EXPECT_EQ(components.size(), 1u) << "exactly the new lesion (no drift, bias or slab-edge false positive)";
  EXPECT_EQ(edge, 0u) << "nothing reported in the outermost slices";
  EXPECT_GE(gw::testing::Dice(predicted, truth), 0.6) << "the new lesion's voxels (sphere of 4x4x5 mm semi-axes)";
}

TEST(FollowupBrainActivity, PhantomResolvedLesionListedWithoutFlag)
{
  gw::testing::ScratchDir scratch("fu_brain_resolved");
  gw::io::WriteImage(BrainPhantom(false, 1).GetPointer(), scratch / "t0.nii.gz", false);
  gw::io::WriteImage(BrainPhantom(true, 2, true).GetPointer(), scratch / "t1.nii.gz", false);
  gw::WriteTextFile(
    scratch / "study.json",
    nlohmann::json{ { "subject", "sub-ph" },
                    { "timepoints",
                      { { { "id", "t0" }, { "days", 0 }, { "images", { { "FLAIR", "t0.nii.gz" } } } },
                        { { "id", "t1" }, { "days", 180 }, { "images", { { "FLAIR", "t1.nii.gz" } } } } } } }
      .dump(2),
    false);
  const auto study = gw::followup::ReadStudy(scratch / "study.json");
  gw::followup::FollowupOptions options;
  options.anatomy = "brain";
  options.snapshots = false;
  options.dti = false;
  const auto result = gw::followup::RunFollowup(study, options, scratch / "out");
  ASSERT_EQ(result.timepoints.size(), 2u);
  ASSERT_TRUE(result.timepoints[1].data.registrationPassed);
  const auto change = gw::io::ReadLabelImage(scratch / "out" / "t1" / "lesion_change_in_baseline.nii.gz");
  // the voxels of each code (1 new, 3 resolved, 4 shrinking), and whether they lie in the new / the old lesion
  std::map<int, std::size_t> inNew, inOld, elsewhere;
  itk::Index<3> idx;
  for (idx[2] = 0; idx[2] < 20; ++idx[2])
    for (idx[1] = 0; idx[1] < 96; ++idx[1])
      for (idx[0] = 0; idx[0] < 96; ++idx[0])
      {
        const int code = change->GetPixel(idx);
        if (!code)
          continue;
        gw::PointType p;
        change->TransformIndexToPhysicalPoint(idx, p);
        auto r2 = [&](double cx, double cy, double cz, double a, double b, double c)
        {
          const double dx = (p[0] - cx) / a, dy = (p[1] - cy) / b, dz = (p[2] - cz) / c;
          return dx * dx + dy * dy + dz * dz;
        };
        // 1 voxel / 1 slice tolerance around each lesion for the partial-volume border
        if (r2(-20, -18, -6, 5, 5, 9) <= 1.0)
          ++inNew[code];
        else if (r2(18, -15, 4, 6, 6, 10) <= 1.0)
          ++inOld[code];
        else
          ++elsewhere[code];
      }
  EXPECT_GT(inNew[1], 0u) << "the new lesion is reported as new (code 1)";
  // the old lesion: semi-axes 5 x 5 x 6 mm, 1 x 1 x 4 mm voxels, about 150 voxels
  EXPECT_GE(inOld[3], 75u) << "at least half of the vanished lesion's voxels are reported as resolved (code 3)";
  EXPECT_EQ(inOld[1] + inOld[2] + inOld[4], 0u) << "the vanished lesion is reported as resolved only";
  std::size_t other = 0;
  for (const auto & [code, count] : elsewhere)
    other += count;
  EXPECT_EQ(other, 0u) << "no change reported away from the two lesions";
  std::size_t resolved = 0, added = 0;
  for (const auto & c : result.timepoints[1].data.lesionChanges)
  {
    resolved += c.kind == "resolved";
    added += c.kind == "new";
  }
  EXPECT_EQ(resolved, 1u) << "the resolved lesion is in the change list";
  EXPECT_EQ(added, 1u) << "the new lesion is in the change list";
  std::size_t newFlags = 0;
  for (const auto & f : result.flags)
  {
    EXPECT_NE(f.code, gw::safety::code::EnlargingT2Lesion) << f.message;
    if (f.code == gw::safety::code::NewT2Lesion)
    {
      ++newFlags;
      ASSERT_TRUE(f.location.has_value());
      EXPECT_LT(std::hypot((*f.location)[0] + 20, (*f.location)[1] + 18, (*f.location)[2] + 6), 3.0)
        << "the NEW_T2_LESION flag is at the new lesion (centre (-20, -18, -6) mm), within 3 mm";
    }
  }
  EXPECT_EQ(newFlags, 1u) << "one NEW_T2_LESION flag (the new lesion); the resolved one raises none";
}

/// Voxel and lesion-wise agreement of a predicted mask with the truth labels `tl` (components `tc`): a truth lesion
/// is detected when a predicted voxel overlaps it; a predicted lesion (26-connected component) is a true positive
/// when it overlaps a truth lesion.
struct Agreement
{
  double dice = 0.0;
  std::set<int> detected; ///< truth labels
  std::size_t predicted = 0, truePredicted = 0;
};

Agreement
Agree(const gw::MaskImage * predicted, const gw::MaskImage * truth, const gw::LabelImage * tl)
{
  Agreement a;
  a.dice = gw::testing::Dice(predicted, truth);
  std::vector<seg::Component> pc;
  const auto pl = seg::LabelComponents(predicted, 1, 0.0, &pc);
  std::set<int> truePredicted;
  const std::size_t n = truth->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t i = 0; i < n; ++i)
    if (tl->GetBufferPointer()[i] && pl->GetBufferPointer()[i])
    {
      a.detected.insert(tl->GetBufferPointer()[i]);
      truePredicted.insert(pl->GetBufferPointer()[i]);
    }
  a.predicted = pc.size();
  a.truePredicted = truePredicted.size();
  return a;
}

double
F1(double precision, double recall)
{
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

TEST(FollowupExternal, MsPatient01LesionChangesVsTruth)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/longitudinal_ms/patient01");
  gw::testing::ScratchDir scratch("fu_ms");
  gw::WriteTextFile(
    scratch / "study.json",
    nlohmann::json{
      { "subject", "sub-ms01" },
      { "timepoints",
        { { { "id", "study1" }, { "days", 0 }, { "images", { { "FLAIR", (dir / "study1_FLAIR.nii.gz").string() } } } },
          { { "id", "study2" },
            { "days", 203 },
            { "images", { { "FLAIR", (dir / "study2_FLAIR.nii.gz").string() } } } } } } }
      .dump(2),
    false);
  const auto study = gw::followup::ReadStudy(scratch / "study.json");
  gw::followup::FollowupOptions options;
  options.anatomy = "brain";
  options.snapshots = false;
  options.dti = false;
  const auto result = gw::followup::RunFollowup(study, options, scratch / "out");
  ASSERT_TRUE(result.timepoints.size() == 2);
  ASSERT_TRUE(result.timepoints[1].data.registrationPassed) << "registration study2 -> study1 failed its gate";

  // shrinking and resolved lesions are recorded in the change list, and no rule flags them: the rules applied to
  // the timepoints with only those changes (no other measurements) raise no lesion flag
  std::size_t falling = 0;
  std::vector<gw::safety::TimepointData> onlyFalling;
  for (const auto & t : result.timepoints)
  {
    gw::safety::TimepointData d = t.data;
    d.lesionChanges.clear();
    for (const auto & c : t.data.lesionChanges)
      if (c.kind == "shrinking" || c.kind == "resolved")
        d.lesionChanges.push_back(c);
    falling += d.lesionChanges.size();
    d.enhancementChanges.clear();
    d.mass.reset();
    d.syrinx.reset();
    d.edema.reset();
    onlyFalling.push_back(d);
  }
  for (const auto & f : gw::safety::Evaluate(onlyFalling, options.rules))
    EXPECT_TRUE(f.code != gw::safety::code::NewT2Lesion && f.code != gw::safety::code::EnlargingT2Lesion)
      << "a shrinking/resolved lesion raised " << f.code << ": " << f.message;

  // the change map lives on the study1 (baseline) FLAIR grid; bring it to the common
  // space: the provided transform maps common-space points to study1 points (ITK resampling convention)
  const auto change = gw::io::ReadLabelImage(scratch / "out" / "study2" / "lesion_change_in_baseline.nii.gz");
  const auto toStudy1 = gw::io::ReadTransform(dir / "study1_FLAIR_to_common_space.txt");
  const auto truth = gw::io::ReadMask(dir / "gt.nii.gz");
  // nearest neighbour onto the truth grid
  const auto changeCommon = reg::Resample(change.GetPointer(), truth, toStudy1, reg::Interpolation::Nearest);
  const std::size_t n = truth->GetLargestPossibleRegion().GetNumberOfPixels();
  // change codes (gw::longitudinal::ChangeMap): 1 new, 2 enlarging, 3 resolved, 4 shrinking
  auto select = [&](std::initializer_list<int> codes)
  {
    auto m = gw::MaskImage::New();
    m->CopyInformation(truth);
    m->SetRegions(truth->GetLargestPossibleRegion());
    m->Allocate();
    for (std::size_t i = 0; i < n; ++i)
      m->GetBufferPointer()[i] =
        std::find(codes.begin(), codes.end(), int(changeCommon->GetBufferPointer()[i])) != codes.end() ? 1 : 0;
    return m;
  };
  std::vector<seg::Component> tc;
  const auto tl = seg::LabelComponents(truth, 1, 0.0, &tc);
  const auto all = Agree(select({ 1, 2, 3, 4 }), truth, tl); // (a) every change vs the change truth
  const auto up = Agree(select({ 1, 2 }), truth, tl);        // (b) new/enlarging ...
  const auto down = Agree(select({ 3, 4 }), truth, tl);      // ... and shrinking/resolved, by direction
  const double recall = tc.empty() ? 0.0 : double(all.detected.size()) / double(tc.size());
  const double precision = all.predicted ? double(all.truePredicted) / double(all.predicted) : 0.0;
  const double f1 = F1(precision, recall);

  // truth lesions by the sign of their FLAIR change (provided transforms; the pipeline's brain mask, eroded 3 mm)
  const auto brainCommon =
    reg::Resample(seg::ErodeMm(gw::io::ReadMask(scratch / "out" / "study1" / "brain_mask.nii.gz"), 3.0).GetPointer(),
                  truth, toStudy1);
  const auto rise = FlairContrastChange(dir, tl, tc.size(), brainCommon);
  std::size_t rising = 0, risingDetected = 0, fallingTruth = 0, fallingDetected = 0;
  for (const auto & c : tc)
  {
    const bool r = rise[c.label] > 0;
    rising += r;
    fallingTruth += !r;
    risingDetected += r && up.detected.count(c.label);
    fallingDetected += !r && down.detected.count(c.label);
    const auto at = toStudy1->TransformPoint(c.centroid);
    std::cout << "truth lesion " << c.label << ": " << c.volume << " mm3 at (" << at[0] << ", " << at[1] << ", "
              << at[2] << ") study1 LPS mm, FLAIR local contrast change " << rise[c.label] << " sigma, "
              << (up.detected.count(c.label)     ? "detected as new/enlarging"
                  : down.detected.count(c.label) ? "detected as shrinking/resolved"
                                                 : "missed")
              << "\n";
  }
  const double upPrecision = up.predicted ? double(up.truePredicted) / double(up.predicted) : 0.0;
  const double downPrecision = down.predicted ? double(down.truePredicted) / double(down.predicted) : 0.0;
  const double risingRecall = rising ? double(risingDetected) / double(rising) : 0.0;
  const double fallingRecall = fallingTruth ? double(fallingDetected) / double(fallingTruth) : 0.0;

  RecordProperty("voxel_dice", std::to_string(all.dice));
  RecordProperty("lesion_f1", std::to_string(f1));
  RecordProperty("lesion_recall", std::to_string(recall));
  RecordProperty("lesion_precision", std::to_string(precision));
  RecordProperty("rising_voxel_dice", std::to_string(up.dice));
  RecordProperty("rising_lesion_recall", std::to_string(risingRecall));
  RecordProperty("rising_lesion_precision", std::to_string(upPrecision));
  RecordProperty("rising_lesion_f1", std::to_string(F1(upPrecision, risingRecall)));
  RecordProperty("falling_lesion_recall", std::to_string(fallingRecall));
  RecordProperty("falling_lesion_precision", std::to_string(downPrecision));
  std::cout << "patient01 all lesion changes: voxel Dice " << all.dice << ", lesion-wise F1 " << f1 << " (recall "
            << recall << ": " << all.detected.size() << " of " << tc.size() << " truth lesions; precision " << precision
            << ": " << all.truePredicted << " of " << all.predicted << " predicted)\n"
            << "  new/enlarging vs the " << rising << " truth lesions whose FLAIR rose: " << risingDetected
            << " found, precision " << up.truePredicted << " of " << up.predicted << ", F1 "
            << F1(upPrecision, risingRecall) << ", voxel Dice (vs all truth) " << up.dice << "\n"
            << "  shrinking/resolved vs the " << fallingTruth << " truth lesions whose FLAIR fell: " << fallingDetected
            << " found, precision " << down.truePredicted << " of " << down.predicted << "; " << falling
            << " shrinking/resolved changes listed\n";
  // Measured with the defaults (activity 4 sigma, brightness 2.5 sigma, lesion-level local contrast 1 sigma, slab
  // edges excluded; falling direction with the same thresholds, restricted to earlier lesions and to candidates that
  // lost at least half of their local contrast): all changes vs the truth: voxel Dice 0.635, lesion-wise F1 0.358
  // (recall 3 of 13 truth lesions, precision 4 of 5 predicted lesions). New/enlarging vs the 8 truth lesions whose
  // FLAIR rose: 3 found, 4 of 4 predicted true (F1 0.545), Dice 0.639 vs all truth. Resolved/shrinking vs the 5 truth
  // lesions whose FLAIR fell (local contrast change -0.3 to -1.1 sigma: too faint for the 4-sigma voxel level): 0
  // found, 1 predicted (a false positive). Before the falling direction: Dice 0.638, F1 0.375 (3 of 13, 4 of 4).
  // The falling direction exactly mirrored (no earlier-lesion and half-contrast conditions): Dice 0.614, F1 0.255
  // (3 of 13, 4 of 14: ten false resolved/shrinking lesions, mostly posterior-fossa FLAIR CSF-flow artefacts).
  // Regression floors below the measured values:
  EXPECT_GE(all.dice, 0.55) << "voxel-wise Dice of all change voxels (measured 0.635; floor 0.085 below)";
  EXPECT_GE(f1, 0.3) << "lesion-wise F1, all changes (measured 0.358 = 3/13 recall, 4/5 precision; the floor "
                        "allows two more false lesions: 4/7 gives 0.32)";
  EXPECT_GE(precision, 0.6) << "lesion-wise precision, all changes (measured 0.8: 4 of 5; one more false lesion "
                               "gives 0.67)";
  EXPECT_GE(all.detected.size(), 3u) << "truth lesions found (measured 3 of 13; no margin: lesion counts are exact)";
  EXPECT_GE(risingDetected, 3u) << "truth lesions whose FLAIR rose found as new/enlarging (measured 3 of 8)";
  EXPECT_GE(upPrecision, 0.75) << "new/enlarging precision (measured 1.0: 4 of 4; one false lesion gives 0.8)";
  EXPECT_LE(down.predicted, 3u) << "resolved/shrinking lesions reported (measured 1, a false positive; the mirrored "
                                   "detector without the lesion conditions reported 10)";
}
} // namespace
