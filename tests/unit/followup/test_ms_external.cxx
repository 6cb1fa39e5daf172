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
#include <array>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include <itkImageRegionIteratorWithIndex.h>
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

/// Per truth lesion (index = label of `truthLabels`, 1..n), the FLAIR local contrast (mean over the lesion minus the
/// median of a 2-6 mm shell around it, in robust sigmas of the brain) at study2, and its change from study1; both
/// scans resampled into the common space with the provided transforms.
struct FlairContrast
{
  std::vector<double> later, change;
};

FlairContrast
FlairContrastChange(const fs::path & dir, const gw::LabelImage * truthLabels, std::size_t count,
                    const gw::MaskImage * brainCommon)
{
  std::vector<double> change(count + 1, 0.0), later(count + 1, 0.0);
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
      if (t == 1)
        later[l] = local;
    }
  }
  return { later, change };
}

/// the phantom grid (default: 96 x 96 x 20 voxels of 1 x 1 x 4 mm around the origin), or another one
gw::FloatImage::Pointer
PhantomGrid(const std::array<std::size_t, 3> & size = { 96, 96, 20 },
            const std::array<double, 3> & spacing = { 1.0, 1.0, 4.0 },
            const std::array<double, 3> & origin = { -47.5, -47.5, -38.0 })
{
  gw::SizeType sz;
  gw::SpacingType sp;
  gw::PointType o;
  for (unsigned k = 0; k < 3; ++k)
  {
    sz[k] = size[k];
    sp[k] = spacing[k];
    o[k] = origin[k];
  }
  return gw::testing::MakeImage(sz, sp, o);
}

/// An ellipsoid in LPS [mm]: centre and semi-axes.
struct Ellipsoid
{
  std::array<double, 3> centre{ 0.0, 0.0, 0.0 }, semi{ 0.0, 0.0, 0.0 };
  /// sum of squared normalised offsets (<= 1 inside; an absent ellipsoid, semi-axes 0, contains nothing)
  double R2(const gw::PointType & p) const
  {
    if (semi[0] <= 0)
      return std::numeric_limits<double>::infinity();
    double r2 = 0.0;
    for (int k = 0; k < 3; ++k)
      r2 += (p[k] - centre[k]) * (p[k] - centre[k]) / (semi[k] * semi[k]);
    return r2;
  }
  bool Contains(const gw::PointType & p) const { return R2(p) <= 1.0; }
  double Volume() const { return 4.0 / 3.0 * M_PI * semi[0] * semi[1] * semi[2]; }
  /// the same ellipsoid scaled to `factor` times its volume
  Ellipsoid Grown(double factor) const
  {
    Ellipsoid e = *this;
    for (auto & a : e.semi)
      a *= std::cbrt(factor);
    return e;
  }
};

/// A phantom lesion at the two timepoints (an absent ellipsoid, semi-axes 0, where it is not there); later lesions
/// of a list paint over earlier ones.
struct PhantomLesion
{
  Ellipsoid before, after;
  double intensity = 210.0;
};

/// The lesions of the first phantom studies: an old lesion (resolved in `after` when `resolve`) and a new one.
std::vector<PhantomLesion>
OldAndNewLesions(bool resolve)
{
  const Ellipsoid old{ { 18, -15, 4 }, { 5, 5, 6 } };
  return { { old, resolve ? Ellipsoid{} : old, 210.0 }, { Ellipsoid{}, { { -20, -18, -6 }, { 4, 4, 5 } }, 200.0 } };
}

/// A FLAIR-like brain phantom on an MS-like grid (1 x 1 x 4 mm, a slab that cuts the brain at both ends): white
/// matter, a grey-matter rim, two dark ventricles and `lesions` (their `before` or `after` shape); `after` adds a
/// multiplicative bias field with a global gain and offset (session drift), and a bright last slice (slab-edge inflow
/// artefact). Noise: Gaussian, sigma 4 (white matter 100). `grid`: another grid (an empty image) to sample it on.
gw::FloatImage::Pointer
BrainPhantom(const std::vector<PhantomLesion> & lesions, bool after, std::uint64_t seed,
             gw::FloatImage::Pointer grid = nullptr)
{
  auto img = grid ? grid : PhantomGrid();
  const auto imgSize = img->GetLargestPossibleRegion().GetSize();
  gw::testing::Rng rng(seed);
  const Ellipsoid brain{ { 0, 0, 0 }, { 40, 44, 48 } }, whiteMatter{ { 0, 0, 0 }, { 35, 39, 43 } };
  const Ellipsoid ventricles[] = { { { -8, 5, 0 }, { 4, 12, 14 } }, { { 8, 5, 0 }, { 4, 12, 14 } } };
  itk::Index<3> idx;
  for (idx[2] = 0; idx[2] < long(imgSize[2]); ++idx[2])
    for (idx[1] = 0; idx[1] < long(imgSize[1]); ++idx[1])
      for (idx[0] = 0; idx[0] < long(imgSize[0]); ++idx[0])
      {
        gw::PointType p;
        img->TransformIndexToPhysicalPoint(idx, p);
        double v = 0.0;
        if (brain.Contains(p))
        {
          v = whiteMatter.Contains(p) ? 100.0 : 130.0; // white matter, grey-matter rim
          if (ventricles[0].Contains(p) || ventricles[1].Contains(p))
            v = 30.0;
          for (const auto & l : lesions)
            if ((after ? l.after : l.before).Contains(p))
              v = l.intensity;
          if (after)
          {
            v *= 1.1 * (1.0 + 0.002 * p[0]); // session gain and a bias field of +-9 % across the brain
            v += 15.0;
            if (idx[2] == long(imgSize[2]) - 1)
              v *= 1.6; // slab-edge inflow artefact
          }
        }
        img->SetPixel(idx, float(std::abs(v + 4.0 * rng.Normal())));
      }
  return img;
}

/// Runs gw_followup in brain mode (no DTI; the report's figures when `snapshots`) on the study document `doc`
/// (written to scratch/study.json); outputs in scratch/out.
gw::followup::FollowupResult
RunStudyDocument(const fs::path & scratch, const nlohmann::json & doc, bool snapshots = false)
{
  gw::WriteTextFile(scratch / "study.json", doc.dump(2), false);
  gw::followup::FollowupOptions options;
  options.anatomy = "brain";
  options.snapshots = snapshots;
  options.dti = false;
  return gw::followup::RunFollowup(gw::followup::ReadStudy(scratch / "study.json"), options, scratch / "out");
}

/// Runs gw_followup in brain mode (no snapshots, no DTI) on a study of FLAIR images: (id, days, path) per timepoint.
/// `graftSite`: the study's graft_site_lps (none when absent); `snapshots`: the report's figures.
gw::followup::FollowupResult
RunBrainStudy(const fs::path & scratch, const std::vector<std::tuple<std::string, int, fs::path>> & flairs,
              const std::optional<std::array<double, 3>> & graftSite = std::nullopt, bool snapshots = false)
{
  nlohmann::json timepoints = nlohmann::json::array();
  for (const auto & [id, days, path] : flairs)
    timepoints.push_back({ { "id", id }, { "days", days }, { "images", { { "FLAIR", path.string() } } } });
  nlohmann::json doc{ { "subject", "sub-ph" }, { "timepoints", timepoints } };
  if (graftSite)
    doc["graft_site_lps"] = *graftSite;
  return RunStudyDocument(scratch, doc, snapshots);
}

/// The two-timepoint phantom study (t0 at day 0, t1 at day 180, seeds 1 and 2) of `lesions`, run in brain mode;
/// checks that the registration passed and reads t1's change map (on the t0 grid) into `change`.
gw::followup::FollowupResult
RunPhantomStudy(const gw::testing::ScratchDir & scratch, const std::vector<PhantomLesion> & lesions,
                gw::LabelImage::Pointer & change, const std::optional<std::array<double, 3>> & graftSite = std::nullopt)
{
  gw::io::WriteImage(BrainPhantom(lesions, false, 1).GetPointer(), scratch / "t0.nii.gz", false);
  gw::io::WriteImage(BrainPhantom(lesions, true, 2).GetPointer(), scratch / "t1.nii.gz", false);
  auto result = RunBrainStudy(scratch.Path(),
                              { { "t0", 0, scratch / "t0.nii.gz" }, { "t1", 180, scratch / "t1.nii.gz" } }, graftSite);
  EXPECT_EQ(result.timepoints.size(), 2u);
  EXPECT_TRUE(result.timepoints.size() == 2 && result.timepoints[1].data.registrationPassed);
  change = gw::io::ReadLabelImage(scratch / "out" / "t1" / "lesion_change_in_baseline.nii.gz");
  return result;
}

/// Voxels of the change map per code, in each of `regions` (the first that contains the voxel) and elsewhere
/// (index regions.size()).
std::vector<std::map<int, std::size_t>>
CodesByRegion(const gw::LabelImage * change, const std::vector<Ellipsoid> & regions)
{
  std::vector<std::map<int, std::size_t>> counts(regions.size() + 1);
  itk::ImageRegionConstIteratorWithIndex<gw::LabelImage> it(change, change->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    if (!it.Get())
      continue;
    gw::PointType p;
    change->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    std::size_t r = 0;
    while (r < regions.size() && !regions[r].Contains(p))
      ++r;
    ++counts[r][it.Get()];
  }
  return counts;
}

std::size_t
Total(const std::map<int, std::size_t> & counts)
{
  std::size_t n = 0;
  for (const auto & [code, count] : counts)
    n += count;
  return n;
}

/// the same ellipsoid one voxel (1 mm in-plane) and one slice (4 mm) larger: the partial-volume border tolerance
Ellipsoid
WithBorder(Ellipsoid e)
{
  e.semi = { e.semi[0] + 1.0, e.semi[1] + 1.0, e.semi[2] + 4.0 };
  return e;
}

double
DistanceMm(const gw::safety::Flag & f, const std::array<double, 3> & at)
{
  return f.location ? std::hypot((*f.location)[0] - at[0], (*f.location)[1] - at[1], (*f.location)[2] - at[2])
                    : std::numeric_limits<double>::infinity();
}

/// A grid recorded at `origin` (identity direction) seen by a head turned `angleDeg` in the plane of axes `a` and `b`
/// (from a towards b) and shifted by `shift` [mm]: the anatomy at scanner point q is the phantom at R^T (q - shift),
/// so the phantom is sampled on the grid moved by that map (this origin and direction); its header keeps `origin`.
struct Turned
{
  gw::PointType origin;
  gw::FloatImage::DirectionType direction;
};

Turned
TurnedGrid(const gw::PointType & origin, unsigned a, unsigned b, double angleDeg, const std::array<double, 3> & shift)
{
  const double angle = angleDeg * M_PI / 180.0, c = std::cos(angle), s = std::sin(angle);
  Turned t;
  t.direction.SetIdentity();
  t.direction[a][a] = c;
  t.direction[a][b] = s;
  t.direction[b][a] = -s;
  t.direction[b][b] = c;
  for (unsigned k = 0; k < 3; ++k)
    t.origin[k] = origin[k] - shift[k];
  t.origin[a] = c * (origin[a] - shift[a]) + s * (origin[b] - shift[b]);
  t.origin[b] = -s * (origin[a] - shift[a]) + c * (origin[b] - shift[b]);
  return t;
}

TEST(FollowupBrainActivity, PhantomNewLesionFoundUnderSessionDrift)
{
  gw::testing::ScratchDir scratch("fu_brain");
  const auto lesions = OldAndNewLesions(false);
  gw::LabelImage::Pointer change;
  RunPhantomStudy(scratch, lesions, change);
  ASSERT_TRUE(change);
  auto predicted = seg::LabelsToMask(change);
  const auto grid = PhantomGrid();
  auto truth = gw::testing::MakeMask(grid->GetLargestPossibleRegion().GetSize(), grid->GetSpacing(), grid->GetOrigin());
  itk::ImageRegionIteratorWithIndex<gw::MaskImage> it(truth, truth->GetLargestPossibleRegion());
  std::size_t edge = 0;
  for (; !it.IsAtEnd(); ++it)
  {
    gw::PointType p;
    truth->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    it.Set(lesions[1].after.Contains(p) ? 1 : 0);
    edge += (it.GetIndex()[2] == 19 || it.GetIndex()[2] == 0) && predicted->GetPixel(it.GetIndex());
  }
  std::vector<seg::Component> components;
  seg::LabelComponents(predicted, 1, 0.0, &components);
  EXPECT_EQ(components.size(), 1u) << "exactly the new lesion (no drift, bias or slab-edge false positive)";
  EXPECT_EQ(edge, 0u) << "nothing reported in the outermost slices";
  EXPECT_GE(gw::testing::Dice(predicted, truth), 0.6) << "the new lesion's voxels (sphere of 4x4x5 mm semi-axes)";
}

TEST(FollowupBrainActivity, NewLesionFigureShowsItsContourZoomed)
{
  // The NEW_T2_LESION figure: an axial view 80 mm across centred on the new lesion, with the contour of the change
  // map's new voxels (orange, 255 110 0); the per-day lesion segmentation need not hold a new lesion found by
  // subtraction, so without this contour the figure showed no outline at the finding.
  gw::testing::ScratchDir scratch("fu_brain_figure");
  const auto lesions = OldAndNewLesions(false);
  gw::io::WriteImage(BrainPhantom(lesions, false, 1).GetPointer(), scratch / "t0.nii.gz", false);
  gw::io::WriteImage(BrainPhantom(lesions, true, 2).GetPointer(), scratch / "t1.nii.gz", false);
  const auto result = RunBrainStudy(
    scratch.Path(), { { "t0", 0, scratch / "t0.nii.gz" }, { "t1", 180, scratch / "t1.nii.gz" } }, std::nullopt, true);
  const gw::safety::Flag * flag = nullptr;
  for (const auto & f : result.flags)
    if (f.code == gw::safety::code::NewT2Lesion)
      flag = &f;
  ASSERT_NE(flag, nullptr);
  std::string axial;
  for (const auto & e : flag->evidence)
    if (e.find("_axial.png") != std::string::npos)
      axial = e;
  ASSERT_FALSE(axial.empty()) << "the flag lists its axial figure as evidence";
  const auto png = gw::testing::ReadPicture(scratch / "out" / axial);
  const auto size = png->GetLargestPossibleRegion().GetSize();
  // 80 mm in 384 pixels (the whole 96 mm image at half its 1 mm spacing would be 192)
  EXPECT_EQ(size[0], 384u);
  EXPECT_EQ(size[1], 384u);
  // orange pixels within 10 mm (48 pixels) of the centre: the new lesion's contour (semi-axes 4 x 4 x 5 mm)
  std::size_t orange = 0, orangeFar = 0;
  itk::ImageRegionConstIteratorWithIndex<gw::testing::Picture> it(png, png->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
    if (it.Get()[0] == 255 && it.Get()[1] == 110 && it.Get()[2] == 0)
    {
      const double r = std::hypot(it.GetIndex()[0] - 192.0, it.GetIndex()[1] - 192.0);
      (r <= 48.0 ? orange : orangeFar) += 1;
    }
  EXPECT_GE(orange, 50u) << "the new lesion's contour (a circle of radius up to 4 mm, 19 pixels; measured 112)";
  EXPECT_EQ(orangeFar, 0u) << "no other new or enlarging voxels in the view";

  // Beside it, the same view of the reference scan (t0, without the lesion) and of the subtraction image (the lesion
  // white). Grey levels: mean of a 9 x 9 pixel patch 2 mm (10 pixels) beside the centre (off the crosshair), inside
  // the lesion (radius 4 mm), and of one 12 mm (58 pixels) further in the white matter.
  const auto patches = [&](const std::string & suffix)
  {
    const std::string file = axial.substr(0, axial.size() - 4) + suffix;
    EXPECT_NE(std::find(flag->evidence.begin(), flag->evidence.end(), file), flag->evidence.end()) << file;
    const auto img = gw::testing::ReadPicture(scratch / "out" / file);
    auto mean = [&](long x0, long y0)
    {
      double sum = 0.0;
      for (long y = y0 - 4; y <= y0 + 4; ++y)
        for (long x = x0 - 4; x <= x0 + 4; ++x)
          sum += img->GetPixel({ { x, y } })[1];
      return sum / 81.0;
    };
    return std::make_pair(mean(202, 202), mean(202, 260));
  };
  const auto [laterLesion, laterWhite] = patches(".png");
  const auto [refLesion, refWhite] = patches("_reference.png");
  const auto [subLesion, subWhite] = patches("_subtraction.png");
  EXPECT_GT(laterLesion - laterWhite, 40.0) << "the later scan shows the lesion (FLAIR 200 against 100)";
  EXPECT_LT(std::abs(refLesion - refWhite), 20.0) << "the reference scan has white matter where the lesion appears";
  EXPECT_GT(subLesion, 230.0) << "the subtraction image is white at the lesion (a rise of over 8 sigmas)";
  EXPECT_NEAR(subWhite, 128.0, 30.0) << "and mid-grey in unchanged white matter (0 sigmas; noise)";
}

TEST(FollowupBrainActivity, SessionSeriesOnAnotherGridAreAligned)
{
  // One session: the primary series (T2w role; the phantom's contrast) on the 1 x 1 x 4 mm grid and a FLAIR on a
  // 1.2 x 1.2 x 3 mm grid acquired after the patient turned 6 degrees (about the superior axis) and shifted 3 mm
  // left and 2 mm anterior: its header places its voxels where the head was before it moved. The FLAIR is
  // registered to the T2w, re-positioned by its header, and its lesion (a sphere of radius 5 mm at (18, -18, 2),
  // FLAIR only) is found where it is on the T2w's grid.
  gw::testing::ScratchDir scratch("fu_session");
  const Ellipsoid lesion{ { 18, -18, 2 }, { 5, 5, 5 } };
  gw::io::WriteImage(BrainPhantom({}, false, 1).GetPointer(), scratch / "t2.nii.gz", false);
  const gw::SizeType size = { { 84, 84, 26 } };
  gw::SpacingType spacing;
  spacing[0] = 1.2;
  spacing[1] = 1.2;
  spacing[2] = 3.0;
  // the scanner's grid, as the header records it
  gw::PointType origin;
  origin[0] = -49.8;
  origin[1] = -49.8;
  origin[2] = -37.5;
  const auto turned = TurnedGrid(origin, 0, 1, 6.0, { 3.0, -2.0, 0.0 });
  auto grid = gw::testing::MakeImage(size, spacing, turned.origin);
  grid->SetDirection(turned.direction);
  auto flair = BrainPhantom({ { lesion, lesion, 210.0 } }, false, 2, grid);
  flair->SetOrigin(origin); // the header: the scanner's frame
  gw::FloatImage::DirectionType identity;
  identity.SetIdentity();
  flair->SetDirection(identity);
  gw::io::WriteImage(flair.GetPointer(), scratch / "flair.nii.gz", false);

  nlohmann::json doc{
    { "subject", "sub-ph" },
    { "timepoints",
      { { { "id", "t0" },
          { "days", 0 },
          { "images",
            { { "T2w", (scratch / "t2.nii.gz").string() }, { "FLAIR", (scratch / "flair.nii.gz").string() } } } } } }
  };
  const auto result = RunStudyDocument(scratch.Path(), doc);
  const auto summary = nlohmann::json::parse(gw::ReadFile(scratch / "out" / "summary.json"));
  const auto & alignment = summary["timepoints"][0]["details"]["session_alignment"]["FLAIR"];
  std::cout << "session alignment: " << alignment.dump() << "\n";
  EXPECT_TRUE(alignment.value("applied", false)) << "the FLAIR is re-positioned onto the T2w";
  // the motion: 6 degrees and 3.6 mm; over the brain (up to about 45 mm from the axis) it moves points by up to
  // 3.6 + 45 x 0.105 = 8.3 mm
  EXPECT_GT(alignment.value("displacement_max_mm", 0.0), 5.0);
  // the lesion found on the primary grid, at its place there
  const auto labels = gw::io::ReadLabelImage(scratch / "out" / "t0" / "lesions.nii.gz");
  std::vector<seg::Component> components;
  seg::LabelComponents(seg::LabelsToMask(labels), 1, 0.0, &components);
  double nearest = std::numeric_limits<double>::infinity();
  for (const auto & comp : components)
    nearest = std::min(nearest, std::hypot(comp.centroid[0] - lesion.centre[0], comp.centroid[1] - lesion.centre[1],
                                           comp.centroid[2] - lesion.centre[2]));
  // measured 0.29 mm; 4.9 mm with the re-positioning switched off (3.6 mm shift and 6 degrees at 26 mm from the
  // axis); the tolerance is the sampling of a 4 mm slice
  std::cout << "lesion centroid " << nearest << " mm from its place\n";
  EXPECT_LT(nearest, 1.5) << "the FLAIR lesion's centroid on the T2w grid vs (18, -18, 2) mm";
}

/// The brain phantom (no lesions) on the phantom grid placed at `origin` with `direction`, each voxel (1 x 1 x 4 mm)
/// the mean of 2 x 2 x 4 sub-samples: a voxel averages what it holds (partial volume), so a slab cut at another angle
/// and resampled onto this grid matches it up to the interpolation. Noise (seed): sigma 6 per voxel (white matter
/// 100: a clinical T1w's signal-to-noise ratio).
gw::FloatImage::Pointer
SlabPhantom(std::uint64_t seed, const gw::PointType & origin = PhantomGrid()->GetOrigin(),
            const gw::FloatImage::DirectionType & direction = PhantomGrid()->GetDirection())
{
  auto fine = PhantomGrid({ 192, 192, 80 }, { 0.5, 0.5, 1.0 });
  gw::PointType o = origin; // the first sub-sample's centre
  for (unsigned k = 0; k < 3; ++k)
    o[k] += -0.25 * direction[k][0] - 0.25 * direction[k][1] - 1.5 * direction[k][2];
  fine->SetOrigin(o);
  fine->SetDirection(direction);
  const auto sampled = BrainPhantom({}, false, seed, fine); // its noise (sigma 4) averages to 1 per voxel
  auto img = PhantomGrid();
  img->SetOrigin(origin);
  img->SetDirection(direction);
  gw::testing::Rng rng(seed + 1000);
  const float * f = sampled->GetBufferPointer();
  float * out = img->GetBufferPointer();
  for (std::size_t k = 0; k < 20; ++k)
    for (std::size_t y = 0; y < 96; ++y)
      for (std::size_t x = 0; x < 96; ++x)
      {
        double sum = 0.0;
        for (std::size_t dz = 0; dz < 4; ++dz)
          for (std::size_t dy = 0; dy < 2; ++dy)
            for (std::size_t dx = 0; dx < 2; ++dx)
              sum += f[(2 * x + dx) + 192 * ((2 * y + dy) + 192 * (4 * k + dz))];
        out[x + 96 * (y + 96 * k)] = float(std::abs(sum / 16.0 + 6.0 * rng.Normal()));
      }
  return img;
}

TEST(FollowupBrainActivity, MovedPostContrastSearchedOnlyWhereItsSlabCovers)
{
  // Two sessions of a brain phantom with a T1w pair (T2w, T1w and T1w_ce). At t1 the patient pitched 6 degrees and
  // shifted 2 mm between pre and post: the post's slab lies tilted across the pre's slices, and its last slice
  // carries a slab-edge artefact (1.6 times brighter). Aligned onto pre, that slice falls across the pre's top
  // slices: read as enhancement, it was a new enhancing focus (2924 mm^3). Enhancement is searched only where the
  // moved post covers pre one and a half voxels inside its slab: no flag (one voxel inside, the cubic B-spline still
  // reached the last slice: a 12 mm^3 focus).
  gw::testing::ScratchDir scratch("fu_post_slab");
  const auto write = [&](const gw::FloatImage * image, const std::string & name)
  {
    gw::io::WriteImage(image, scratch / name, false);
    return (scratch / name).string();
  };
  // the post at t1: the phantom seen by the primary grid turned 6 degrees about the left-right axis and shifted,
  // its header the scanner's frame (as in SessionSeriesOnAnotherGridAreAligned)
  const auto primary = PhantomGrid();
  const auto origin = primary->GetOrigin();
  const auto turned = TurnedGrid(origin, 1, 2, 6.0, { 0.0, 2.0, 1.0 });
  auto post = SlabPhantom(8, turned.origin, turned.direction);
  const auto size = post->GetLargestPossibleRegion().GetSize();
  itk::ImageRegionIteratorWithIndex<gw::FloatImage> it(post, post->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
    if (it.GetIndex()[2] == long(size[2]) - 1)
      it.Set(1.6f * it.Get()); // slab-edge artefact
  post->SetOrigin(origin);
  post->SetDirection(primary->GetDirection());
  nlohmann::json timepoints = nlohmann::json::array();
  timepoints.push_back({ { "id", "t0" },
                         { "days", 0 },
                         { "images",
                           { { "T2w", write(SlabPhantom(1), "t0_t2.nii.gz") },
                             { "T1w", write(SlabPhantom(2), "t0_t1.nii.gz") },
                             { "T1w_ce", write(SlabPhantom(3), "t0_t1ce.nii.gz") } } } });
  timepoints.push_back({ { "id", "t1" },
                         { "days", 120 },
                         { "images",
                           { { "T2w", write(SlabPhantom(5), "t1_t2.nii.gz") },
                             { "T1w", write(SlabPhantom(6), "t1_t1.nii.gz") },
                             { "T1w_ce", write(post, "t1_t1ce.nii.gz") } } } });
  const auto result = RunStudyDocument(scratch.Path(), { { "subject", "sub-ph" }, { "timepoints", timepoints } });
  const auto summary = nlohmann::json::parse(gw::ReadFile(scratch / "out" / "summary.json"));
  const auto & alignment = summary["timepoints"][1]["details"]["t1_post_alignment"];
  std::cout << "T1w_ce alignment at t1: " << alignment.dump() << "\n";
  EXPECT_TRUE(alignment.value("applied", false)) << "the post is moved onto the pre";
  for (const auto & f : result.flags)
    EXPECT_NE(f.code, gw::safety::code::NewEnhancement) << f.message;
}

TEST(FollowupBrainActivity, PhantomResolvedLesionListedWithoutFlag)
{
  gw::testing::ScratchDir scratch("fu_brain_resolved");
  const auto lesions = OldAndNewLesions(true);
  gw::LabelImage::Pointer change;
  const auto result = RunPhantomStudy(scratch, lesions, change);
  ASSERT_TRUE(change);
  // the voxels of each code (1 new, 2 enlarging, 3 resolved, 4 shrinking) in the new lesion, the old one, elsewhere
  const auto counts = CodesByRegion(change, { WithBorder(lesions[1].after), WithBorder(lesions[0].before) });
  auto inNew = counts[0], inOld = counts[1];
  EXPECT_GT(inNew[1], 0u) << "the new lesion is reported as new (code 1)";
  // the old lesion: semi-axes 5 x 5 x 6 mm, 1 x 1 x 4 mm voxels, about 150 voxels
  EXPECT_GE(inOld[3], 75u) << "at least half of the vanished lesion's voxels are reported as resolved (code 3)";
  EXPECT_EQ(inOld[1] + inOld[2] + inOld[4], 0u) << "the vanished lesion is reported as resolved only";
  EXPECT_EQ(Total(counts[2]), 0u) << "no change reported away from the two lesions";
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
      EXPECT_LT(DistanceMm(f, lesions[1].after.centre), 3.0)
        << "the NEW_T2_LESION flag is at the new lesion (centre (-20, -18, -6) mm), within 3 mm";
    }
  }
  EXPECT_EQ(newFlags, 1u) << "one NEW_T2_LESION flag (the new lesion); the resolved one raises none";
}

TEST(FollowupBrainActivity, PhantomEnlargingLesionsFlaggedByRule)
{
  // Four pre-existing lesions (210 in white matter at 100), under the session drift of the other phantom studies,
  // in the deep white matter (two empty slices or more from each other and from the grey matter, which the lesion
  // segmentation of this phantom takes for a lesion):
  // - grows80: a sphere of radius 5 mm grown to +80% volume (radius 6.08 mm; in-plane growth only: the slices at
  //   +-4 mm stay the outermost), over the +50% rule;
  // - grows15: the same sphere with a flat cap grown on one side (an ellipsoid of semi-axes 3 x 5 x 4 mm centred
  //   4 mm from its centre, reaching 2 mm beyond it): 22 voxels added to 134 (+16%), under the +50% rule, and the
  //   border moved 2 mm, under the 3 mm extension rule;
  // - stable: unchanged;
  // - budding: a large lesion (semi-axes 7 x 7 x 6 mm, 1230 mm^3) with a new bud of radius 3 mm on its border that
  //   reaches 5 mm beyond it (+8% volume only): flagged by the extension rule (new part >= 3 mm beyond the border
  //   and >= 10 mm^3).
  const Ellipsoid base80{ { 20, -16, 2 }, { 5, 5, 5 } }, base15{ { -20, -18, -6 }, { 5, 5, 5 } };
  const Ellipsoid cap15{ { -16, -18, -6 }, { 3, 5, 4 } };
  const Ellipsoid stable{ { 20, 20, -6 }, { 4, 4, 5 } }, large{ { -20, 16, 2 }, { 7, 7, 6 } };
  const Ellipsoid bud{ { -20, 7, 2 }, { 3, 3, 3 } };
  const std::vector<PhantomLesion> lesions = {
    { base80, base80.Grown(1.8) }, { base15, base15 }, { {}, cap15 }, { stable, stable }, { large, large }, { {}, bud }
  };
  gw::testing::ScratchDir scratch("fu_brain_enlarging");
  gw::LabelImage::Pointer change;
  const auto result = RunPhantomStudy(scratch, lesions, change);
  ASSERT_TRUE(change);

  // the change map: the grown parts are enlarging (code 2), nothing is new, nothing changes elsewhere
  const auto counts = CodesByRegion(change, { WithBorder(base80.Grown(1.8)), WithBorder(base15), WithBorder(cap15),
                                              WithBorder(stable), WithBorder(large), WithBorder(bud) });
  auto grows80 = counts[0], budding = counts[4];
  for (const auto & [code, count] : counts[5])
    budding[code] += count;
  // grows80's new part: the shell between radius 5 and 6.08 mm sampled at 1 x 1 x 4 mm: 114 voxels
  EXPECT_GE(grows80[2], 57u) << "at least half of grows80's added voxels (114) are enlarging (code 2)";
  EXPECT_GE(budding[2], 14u) << "at least half of the bud's voxels outside the lesion (28) are enlarging";
  EXPECT_EQ(Total(counts[3]), 0u) << "nothing changes in the stable lesion";
  std::size_t newCode = 0;
  for (const auto & c : counts)
    newCode += c.count(1) ? c.at(1) : 0;
  EXPECT_EQ(newCode, 0u) << "no grown part is reported as a new lesion (code 1): each is contiguous with its lesion";
  std::vector<seg::Component> components;
  seg::LabelComponents(seg::LabelsToMask(change), 1, 0.0, &components);
  EXPECT_EQ(components.size(), 3u) << "three changes: grows80, grows15 and the bud (no drift, bias or slab-edge "
                                      "false positive)";
  EXPECT_LE(Total(counts[6]), 8u) << "beyond one voxel (one slice) of the lesions: at most the hysteresis fringe of "
                                     "a grown part (measured 4 voxels, 1-2 mm beyond grows80)";

  // the flags: exactly one ENLARGING_T2_LESION per lesion grown by the rule, at the centroid of its new part
  std::vector<gw::safety::Flag> enlarging;
  for (const auto & f : result.flags)
  {
    EXPECT_NE(f.code, gw::safety::code::NewT2Lesion) << f.message;
    if (f.code == gw::safety::code::EnlargingT2Lesion)
      enlarging.push_back(f);
  }
  for (const auto & f : enlarging)
    std::cout << "flag: " << f.message << " at (" << (*f.location)[0] << ", " << (*f.location)[1] << ", "
              << (*f.location)[2] << ")\n";
  ASSERT_EQ(enlarging.size(), 2u) << "grows80 and budding; not grows15 nor stable";
  std::sort(enlarging.begin(), enlarging.end(), [](const auto & a, const auto & b) { return a.unit < b.unit; });
  const auto & byVolume = enlarging[0];    // unit "fraction"
  const auto & byExtension = enlarging[1]; // unit "mm"
  ASSERT_EQ(byVolume.unit, "fraction");
  ASSERT_EQ(byExtension.unit, "mm");
  // grows80: the new part is a shell around the centre: its centroid is the centre (within 1 mm: one in-plane voxel;
  // the shell is symmetric in z about the centre slice)
  EXPECT_LT(DistanceMm(byVolume, base80.centre), 1.0) << byVolume.message;
  // measured growth: segmented volumes before and after (the segmentation's border layer is in both); the
  // point-sampled sphere grows from 134 to 248 voxels (+85%): +0.8 (analytic) within 0.3
  EXPECT_NEAR(byVolume.value, 0.8, 0.3) << byVolume.message;
  EXPECT_DOUBLE_EQ(byVolume.threshold, 0.5);
  EXPECT_NEAR(byVolume.referenceValue, base80.Volume(), 0.5 * base80.Volume())
    << "grows80's baseline volume (524 mm^3) within 50% (point-sampled on 4 mm slices plus a segmentation border)";
  EXPECT_EQ(byVolume.reference, "previous (t0)");
  // budding: the new part lies between the lesion border (y = 9) and the bud's tip (y = 4) on the slice z = 2
  EXPECT_LT(DistanceMm(byExtension, { -20, 6.5, 2 }), 1.5) << byExtension.message;
  EXPECT_NEAR(byExtension.value, 4.5, 1.0)
    << "the bud reaches 5 mm beyond the lesion (voxel centres: 1 mm steps; the segmented border may hold a layer)";
  EXPECT_DOUBLE_EQ(byExtension.threshold, 3.0);
  EXPECT_LT(byExtension.currentValue / byExtension.referenceValue - 1.0, 0.5) << "under the volume rule";
  for (const auto & f : enlarging)
  {
    EXPECT_EQ(f.timepoint, "t1");
    EXPECT_EQ(f.status, "suspected");
    EXPECT_EQ(f.evidence, (std::vector<std::string>{ "t1/lesion_change_in_baseline.nii.gz",
                                                     "t1/lesion_difference_in_baseline.nii.gz" }));
  }
  // the change list holds grows15 under the rule (enlarging, < +50%, its border moved less than 3 mm)
  bool grows15Listed = false;
  for (const auto & c : result.timepoints[1].data.lesionChanges)
    if (c.kind == "enlarging" && c.location &&
        std::hypot((*c.location)[0] - cap15.centre[0], (*c.location)[1] - cap15.centre[1],
                   (*c.location)[2] - cap15.centre[2]) < 3.0)
    {
      grows15Listed = true;
      EXPECT_LT(c.volumeAfter / c.volumeBefore - 1.0, 0.5) << "grows15 measured under +50%";
      EXPECT_LT(c.extension, 3.0) << "grows15's border moved less than 3 mm";
    }
  EXPECT_TRUE(grows15Listed) << "grows15's growth is measured and listed (enlarging, not flagged), within 3 mm of "
                                "its cap";
  // the phantom's lesions have no perilesional edema (the brain around them is normal white matter at 100)
  for (const auto & t : result.timepoints)
    EXPECT_TRUE(!t.data.edema || t.data.edema->volume == 0.0)
      << t.id << ": edema of " << t.data.edema->volume << " mm^3 around lesions in normal white matter";
}

TEST(FollowupBrainActivity, SeriesThatCannotBeAlignedIsNotAnalysed)
{
  // A FLAIR on its own grid beside the T2w: at t1 it holds no image (all zero), so it cannot be aligned to the T2w.
  // It was used as acquired; now it is not analysed at that session: a note, an acquisition issue (and so
  // ACQUISITION_MISMATCH), and no lesion change from it. The t0 FLAIR aligns and is used.
  gw::testing::ScratchDir scratch("fu_unaligned");
  // 1.2 mm in-plane, 5 mm slices: another grid than the T2w's
  auto flairGrid = [] { return PhantomGrid({ 80, 80, 16 }, { 1.2, 1.2, 5.0 }, { -47.4, -47.4, -37.5 }); };
  const auto lesions = OldAndNewLesions(false);
  gw::io::WriteImage(BrainPhantom(lesions, false, 1).GetPointer(), scratch / "t0_T2w.nii.gz", false);
  gw::io::WriteImage(BrainPhantom(lesions, false, 3, flairGrid()).GetPointer(), scratch / "t0_FLAIR.nii.gz", false);
  gw::io::WriteImage(BrainPhantom(lesions, true, 2).GetPointer(), scratch / "t1_T2w.nii.gz", false);
  gw::io::WriteImage(flairGrid().GetPointer(), scratch / "t1_FLAIR.nii.gz", false);
  nlohmann::json timepoints = nlohmann::json::array();
  for (const auto & [id, days] : { std::pair<std::string, int>{ "t0", 0 }, { "t1", 180 } })
    timepoints.push_back({ { "id", id },
                           { "days", days },
                           { "images",
                             { { "T2w", (scratch / (id + "_T2w.nii.gz")).string() },
                               { "FLAIR", (scratch / (id + "_FLAIR.nii.gz")).string() } } } });
  const auto result =
    RunStudyDocument(scratch.Path(), nlohmann::json{ { "subject", "sub-ph" }, { "timepoints", timepoints } });
  ASSERT_EQ(result.timepoints.size(), 2u);
  EXPECT_TRUE(std::any_of(result.notes.begin(), result.notes.end(),
                          [](const std::string & n)
                          {
                            return n.find("t1: FLAIR could not be aligned to T2w") != std::string::npos &&
                                   n.find("not analysed") != std::string::npos;
                          }));
  EXPECT_FALSE(std::any_of(result.notes.begin(), result.notes.end(),
                           [](const std::string & n) { return n.find("t0: FLAIR") != std::string::npos; }))
    << "the t0 FLAIR aligns";
  const auto & issues = result.timepoints[1].data.acquisitionIssues;
  EXPECT_TRUE(std::any_of(issues.begin(), issues.end(),
                          [](const std::string & i)
                          { return i.find("FLAIR could not be aligned") != std::string::npos; }));
  bool mismatch = false;
  for (const auto & f : result.flags)
    mismatch = mismatch || (f.code == gw::safety::code::AcquisitionMismatch && f.timepoint == "t1");
  EXPECT_TRUE(mismatch) << "ACQUISITION_MISMATCH says the FLAIR was not analysed";
}

TEST(FollowupBrainActivity, MassFollowedOnlyAtAGivenGraftSite)
{
  // One lesion (a sphere of radius 6 mm, 905 mm^3) grown to +80% volume (radius 7.3 mm): an enlarging T2 lesion.
  // A brain has no default graft site: without one it is not followed as a mass (before, the largest baseline lesion
  // was taken for the graft and raised MASS_GROWTH; on MS patient01 a 79 mm^3 plaque gave "mass volume +44%"); at a
  // given graft site it is.
  const Ellipsoid lesion{ { 18, -18, 2 }, { 6, 6, 6 } };
  const std::vector<PhantomLesion> lesions = { { lesion, lesion.Grown(1.8) } };
  for (const bool site : { false, true })
  {
    gw::testing::ScratchDir scratch(site ? "fu_brain_site" : "fu_brain_nosite");
    gw::LabelImage::Pointer change;
    const auto result = RunPhantomStudy(scratch, lesions, change,
                                        site ? std::optional<std::array<double, 3>>(lesion.centre) : std::nullopt);
    std::vector<gw::safety::Flag> mass, enlarging;
    for (const auto & f : result.flags)
    {
      if (f.code == gw::safety::code::MassGrowth)
        mass.push_back(f);
      if (f.code == gw::safety::code::EnlargingT2Lesion)
        enlarging.push_back(f);
    }
    EXPECT_EQ(enlarging.size(), 1u) << "the grown lesion is an enlarging T2 lesion either way";
    const bool noted =
      std::any_of(result.notes.begin(), result.notes.end(),
                  [](const std::string & n) { return n.find("no graft site given") != std::string::npos; });
    // the report's volume plot: the day's lesions always, the mass only when one is followed
    const std::string html = gw::ReadFile(scratch / "out" / "report.html");
    EXPECT_NE(html.find(">lesions (total)</text>"), std::string::npos);
    EXPECT_EQ(html.find(">mass</text>") != std::string::npos, site) << "the mass series only with a graft site";
    if (!site)
    {
      EXPECT_TRUE(mass.empty()) << "no graft site: no mass followed; raised: " << (mass.empty() ? "" : mass[0].message);
      EXPECT_TRUE(noted) << "the missing graft site is said in the notes";
      continue;
    }
    EXPECT_FALSE(noted);
    ASSERT_EQ(mass.size(), 1u) << "the lesion at the given graft site is followed as a mass";
    EXPECT_GE(mass[0].value, mass[0].threshold) << mass[0].message;
    EXPECT_EQ(mass[0].timepoint, "t1");
    EXPECT_LT(DistanceMm(mass[0], lesion.centre), 2.0) << "at the mass's centroid (within 2 mm: 1 x 1 x 4 mm voxels)";
  }
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
  const auto result = RunBrainStudy(
    scratch.Path(), { { "study1", 0, dir / "study1_FLAIR.nii.gz" }, { "study2", 203, dir / "study2_FLAIR.nii.gz" } });
  const gw::safety::Rules rules; // the defaults RunBrainStudy uses
  ASSERT_TRUE(result.timepoints.size() == 2);
  ASSERT_TRUE(result.timepoints[1].data.registrationPassed) << "registration study2 -> study1 failed its gate";
  for (const auto & f : result.flags)
    EXPECT_NE(f.code, gw::safety::code::MassGrowth)
      << "no graft site, no mass (it was a growing 79 mm^3 plaque): " << f.message;
  // perilesional edema is measured against the brain's own FLAIR (it was measured against the whole image, air
  // included, and took the brain within 10 mm of every lesion: 87 and 93 mL)
  for (const auto & t : result.timepoints)
    EXPECT_TRUE(!t.data.edema || t.data.edema->volume < 1000.0)
      << t.id << ": edema " << t.data.edema->volume << " mm^3 (lesions: at most 1.4 mL in all)";

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
  for (const auto & f : gw::safety::Evaluate(onlyFalling, rules))
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
  const auto contrast = FlairContrastChange(dir, tl, tc.size(), brainCommon);
  const auto & rise = contrast.change;
  // the pipeline's subtraction image (normalised difference, the voxel level's kDiff = 4 sigmas) in the common space:
  // per truth lesion, its peak in the lesion's direction (nearest neighbour, as the change map)
  const auto difference = reg::Resample(
    gw::io::ReadFloatImage(scratch / "out" / "study2" / "lesion_difference_in_baseline.nii.gz").GetPointer(), truth,
    toStudy1, reg::Interpolation::Nearest);
  std::vector<double> peak(tc.size() + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    if (const auto l = tl->GetBufferPointer()[i])
    {
      const double v = difference->GetBufferPointer()[i];
      peak[l] = rise[l] > 0 ? std::max(peak[l], v) : std::min(peak[l], v);
    }
  const double kDiff = gw::followup::FollowupOptions{}.activityDiffSigma; // the default voxel level
  // A new or enlarging T2 lesion is brighter than the tissue around it on the later FLAIR: the lesion level asks a
  // rising candidate for kLocal brain sigmas against its shell. Truth lesions that rose without that contrast at
  // study2 are beyond any detector that asks it (and beyond a reader who looks for a hyperintensity).
  const double kLocal = gw::followup::FollowupOptions{}.activityLocalSigma;
  std::size_t reaching = 0, hyperintense = 0;
  std::size_t rising = 0, risingDetected = 0, fallingTruth = 0, fallingDetected = 0;
  std::set<int> notHyperintenseFound;
  for (const auto & c : tc)
  {
    const bool r = rise[c.label] > 0;
    const bool bright = r && contrast.later[c.label] >= kLocal;
    hyperintense += bright;
    if (!bright && up.detected.count(c.label))
      notHyperintenseFound.insert(c.label);
    reaching += std::abs(peak[c.label]) >= kDiff;
    rising += r;
    fallingTruth += !r;
    risingDetected += r && up.detected.count(c.label);
    fallingDetected += !r && down.detected.count(c.label);
    const auto at = toStudy1->TransformPoint(c.centroid);
    std::cout << "truth lesion " << c.label << ": " << c.volume << " mm3 at (" << at[0] << ", " << at[1] << ", "
              << at[2] << ") study1 LPS mm, FLAIR local contrast " << contrast.later[c.label]
              << " sigma at study2, change " << rise[c.label] << " sigma, peak normalised difference " << peak[c.label]
              << " sigma, "
              << (up.detected.count(c.label)     ? "detected as new/enlarging"
                  : down.detected.count(c.label) ? "detected as shrinking/resolved"
                                                 : "missed")
              << "\n";
  }
  const double upPrecision = up.predicted ? double(up.truePredicted) / double(up.predicted) : 0.0;
  const double downPrecision = down.predicted ? double(down.truePredicted) / double(down.predicted) : 0.0;
  const double risingRecall = rising ? double(risingDetected) / double(rising) : 0.0;
  const double fallingRecall = fallingTruth ? double(fallingDetected) / double(fallingTruth) : 0.0;

  RecordProperty("truth_lesions_reaching_voxel_level", std::to_string(reaching));
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
            << " shrinking/resolved changes listed\n"
            << "  truth lesions whose subtraction image reaches the voxel level (" << kDiff
            << " sigmas, in their direction): " << reaching << " of " << tc.size() << "\n"
            << "  truth lesions that rose and are " << kLocal
            << " brain sigmas brighter than their surroundings on study2's FLAIR: " << hyperintense << " of "
            << tc.size() << " (the best lesion-wise F1 of a detector that asks it: "
            << 2.0 * double(hyperintense) / double(tc.size() + hyperintense) << ")\n";
  RecordProperty("truth_lesions_hyperintense_at_study2", std::to_string(hyperintense));
  // Measured on study1's own 4 mm grid (before the refinement below) with the defaults (activity 4 sigma,
  // brightness 2.5 sigma, lesion-level local contrast 1 sigma, slab edges excluded; falling direction with the same
  // thresholds, restricted to earlier lesions and to candidates that lost at least half of their local contrast; on
  // these 4 mm slices every test also against the earlier image blurred across slices), intensities normalised in the
  // brain (BET's intracranial mask, eroded 3 mm): all changes vs the truth: voxel Dice 0.636, lesion-wise F1 0.267
  // (recall 2 of 13 truth lesions, precision 3 of 3 predicted lesions). New/enlarging vs the 8 truth lesions whose
  // FLAIR rose: 2 found, 3 of 3 predicted true (F1 0.40). Resolved/shrinking vs the 5 truth lesions whose FLAIR fell
  // (local contrast change -0.3 to -1.1 sigma: too faint for the 4-sigma voxel level): 0 found, none predicted. Before
  // the thick-slice test (the earlier image blurred across slices): Dice 0.623, F1 0.245 (2 of 13, 3 of 5): two false
  // resolved/shrinking lesions, posterior-fossa FLAIR CSF-flow artefacts that study2's 3 mm slices, resampled onto
  // study1's 4 mm grid, dimmed. History: normalised in the head's outline (scalp and skull included) the same defaults
  // gave Dice 0.635, F1 0.358 (3 of 13, 4 of 5; rising 3 found, F1 0.545). The lesion lost with the brain mask (truth
  // lesion 10, 17 mm^3) peaks at 2.39 brain sigmas on study2's FLAIR against the 2.5-sigma brightness level (2.53 in
  // the head's statistics): a knife edge, not a change of sensitivity (brightness 2.0 finds it again with one more
  // false lesion, 1.5 with 11 more). The defaults were not re-tuned on this patient. Before the falling direction: Dice
  // 0.638, F1 0.375 (3 of 13, 4 of 4). The falling direction exactly mirrored (no earlier-lesion and half-contrast
  // conditions): Dice 0.614, F1 0.255 (3 of 13, 4 of 14: ten false resolved/shrinking lesions, mostly posterior-fossa
  // FLAIR CSF-flow artefacts). Enlarging lesions (rising candidates contiguous with a study1 lesion,
  // ENLARGING_T2_LESION by the +50% or 3 mm extension rule) left these numbers unchanged: no accepted rising candidate
  // touches a study1 lesion, so all stay new.
  //
  // The pipeline's own subtraction image (lesion_difference_in_baseline.nii.gz) bounded the recall: only 3 of the 13
  // truth lesions reach the voxel level of 4 sigmas in their direction (truth lesions 1, 6 and 10: peaks 15.6, 6.3
  // and 6.5; lesion 10 then peaks at 2.39 brain sigmas on study2's FLAIR, under the 2.5-sigma brightness level). The
  // other ten peak between -3.4 and +2.8 sigmas on study1's 4 mm grid, where 2.1% of the analysed brain's voxels rise
  // above 2.5 sigmas (0.5% above 4). Lowering the brightness level to 2.0 finds lesion 10 (F1 0.375, 3 of 13, 4 of 4)
  // but raised 2 false T2 lesion flags on twelve pitched null re-scans of the TCGA exam, where 2.5 raises none.
  //
  // The baseline space refined (study2's 3 mm slices against study1's 4 mm: study1's grid at 2 mm along its slice
  // axis, detail::RefinedAnalysisGrid; study2 blurred by 4 mm slices' profile along it, detail::CommonResolution):
  // 5 of the 13 truth lesions reach the voxel level (truth lesions 1, 5, 6, 10, 11) against 3 on study1's own grid,
  // where study2's slices were read between their centres. Found are still 2 (1 and 6; Dice 0.619, F1 0.267: 2 of
  // 13, 2 of 2 predicted lesions true): the others are not 2.5 brain sigmas bright on study2's FLAIR (the voxel
  // level's brightness test). Blurring study2 only to 4 mm's resolution (a Gaussian of the variance difference):
  // 7 of 13 reach the voxel level, F1 0.255 (2 of 13, 3 of 4), but a null pair (study2 against itself as acquired
  // in 4 mm slices, test_reimaged_external) raised a false NEW_T2_LESION, and refined without any matching: 8 false
  // lesions here (F1 0.197, 3 of 11), edges that study2's thinner slices show sharper.
  //
  // What the truth holds (the data and the provided transforms; the pipeline's brain mask only bounds the shells): of
  // its 13 lesions, 5 fell (their FLAIR local contrast fell by 0.3 to 1.05 sigmas) and 8 rose. Of those 8, only 4 are
  // kLocal brighter than their surroundings on study2's FLAIR (truth lesions 1, 6, 10 and 13: 2.55, 2.16, 1.97 and
  // 1.19 sigmas); lesion 11 reaches 0.84. Lesions 3, 4 and 5 (0.11, 0.18 and -0.23) lie at the wall of a lateral
  // ventricle or of the temporal horn: at study2 their mean is near or below the brain median (-0.5 to -1.0 sigmas),
  // at study1 it was that of the fluid (-1.8 to -2.1), and study2's T2w is darker than study1's at lesions 3 and 4 (a
  // Python model with the provided intra-study transforms; slices through them show no hyperintensity on either). A
  // detector that asks a new lesion to be brighter than its surroundings finds at most 4 of the 13: lesion-wise F1
  // 2*4/17 = 0.47 with every reported lesion true, below the 0.55 of the MSSEG-2 challenge (whose truth holds only new
  // FLAIR hyperintensities).
  EXPECT_EQ(hyperintense, 4u) << "truth lesions that rose and are kLocal brighter than their surroundings at study2 "
                                 "(measured 4 of 13: the README quotes it)";
  EXPECT_TRUE(notHyperintenseFound.empty())
    << "a truth lesion found as new/enlarging must be brighter than its surroundings at study2 (the lesion level "
       "asks kLocal); found without it: "
    << notHyperintenseFound.size();
  // Regression floors below the measured values:
  EXPECT_GE(reaching, 5u) << "truth lesions whose subtraction image reaches the voxel level (measured 5 of 13; 3 "
                             "on study1's own 4 mm grid; no margin: counts are exact)";
  EXPECT_GE(all.dice, 0.55) << "voxel-wise Dice of all change voxels (measured 0.619; floor 0.07 below)";
  EXPECT_GE(f1, 0.25) << "lesion-wise F1, all changes (measured 0.267 = 2/13 recall, 2/2 precision; the floor "
                         "allows one false lesion: 2/3 gives 0.25)";
  EXPECT_GE(precision, 0.66) << "lesion-wise precision, all changes (measured 1.0: 2 of 2; one false lesion "
                                "gives 0.67)";
  EXPECT_GE(all.detected.size(), 2u) << "truth lesions found (measured 2 of 13; no margin: lesion counts are exact)";
  EXPECT_GE(risingDetected, 2u) << "truth lesions whose FLAIR rose found as new/enlarging (measured 2 of 8)";
  EXPECT_GE(upPrecision, 0.66) << "new/enlarging precision (measured 1.0: 2 of 2; one false lesion gives 0.67)";
  EXPECT_LE(down.predicted, 1u) << "resolved/shrinking lesions reported (measured 0; 2 false ones before the "
                                   "thick-slice test, 10 with the mirrored detector without the lesion conditions)";
}
} // namespace
