// The follow-up analysis of one subject: registration with a gate, segmentation and morphometry per timepoint,
// matching in the baseline space, DTI along the cord, rules, outputs.
#include "gw/followup/pipeline.h"

#include "analysis_grid.h"
#include "brain_activity.h"
#include "enhancement_change.h"
#include "measurements.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/core/provenance.h"
#include "gw/dicom/dicom.h"
#include "gw/dti/cord_profile.h"
#include "gw/dti/tensor_fit.h"
#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"
#include "gw/io/transform_io.h"
#include "gw/longitudinal/matching.h"
#include "gw/registration/registration.h"
#include "gw/report/html.h"
#include "gw/report/snapshot.h"
#include "gw/segmentation/anatomy.h"
#include "gw/segmentation/brain.h"
#include "gw/segmentation/cord.h"
#include "gw/segmentation/lesion.h"
#include "gw/segmentation/morphometry.h"

namespace gw::followup
{
namespace
{
namespace seg = gw::segmentation;
namespace reg = gw::registration;
using safety::Point;

Point
ToPoint(const PointType & p)
{
  return { p[0], p[1], p[2] };
}

PointType
FromPoint(const Point & p)
{
  PointType q;
  q[0] = p[0];
  q[1] = p[1];
  q[2] = p[2];
  return q;
}

double
Distance(const PointType & a, const PointType & b)
{
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

std::string
Fixed(double v, int decimals = 3)
{
  if (!std::isfinite(v))
    return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

/// Everything computed for one timepoint.
struct Work
{
  const Timepoint * tp = nullptr;
  std::map<std::string, FloatImage::Pointer> anat; ///< native space
  std::string primaryRole;
  FloatImage::Pointer primary;
  reg::TransformPointer toTimepoint; ///< baseline point → this timepoint's point (identity for the baseline)
  reg::TransformPointer toBaseline;  ///< inverse
  bool registrationPassed = true;
  nlohmann::json registrationQa;
  MaskImage::Pointer tissue; ///< cord (cord anatomy) or brain mask, native
  /// where lesions, edema, enhancement and lesion activity are searched: the cord, or the brain kBrainInsetMm
  /// inside its intracranial surface (which holds CSF, dura, the sinuses' flow signal and surface vessels, and,
  /// where BET's surface strays at the skull base and the vertex over thick slices, bright fat)
  MaskImage::Pointer searchRegion;
  seg::LesionResult lesions, syrinx, edema;
  std::optional<seg::EnhancementResult> enhancement;
  seg::Morphometry lesionMorph, syrinxMorph, edemaMorph;
  std::vector<seg::CordSliceMorphometry> cordSlices;
  std::vector<seg::CordResult::ContourSlice> cordContour; ///< sub-voxel AP per slice when the cord was segmented
  PointType epicentre;                                    ///< native
  bool haveEpicentre = false;
  int massIndex = -1; ///< index into lesionMorph.components
  std::optional<dti::DtiResult> dti;
  std::optional<dti::CordProfileResult> profile;
  LabelImage::Pointer lesionsInBaseline;
  MaskImage::Pointer enhancementRegion; ///< where enhancement was searched (T1 grid), and on the baseline grid:
  MaskImage::Pointer enhancementRegionInBaseline;
  std::map<std::string, MaskImage::Pointer> masksInBaseline; ///< for report overlays
  std::map<std::string, FloatImage::Pointer> anatInBaseline;
  /// brain lesion activity against the previous timepoint: the contrast it read (a role of anatInBaseline) and its
  /// subtraction image on the baseline grid
  std::string lesionContrast;
  FloatImage::Pointer lesionDifference;
  /// series of this session that could not be aligned to its primary series (same-session alignment): not analysed
  std::vector<std::pair<std::string, std::string>> unaligned; ///< (series, the series it could not be aligned to)
  nlohmann::json details;
  std::vector<std::string> evidence;
};

std::string
PrimaryRole(const Timepoint & tp)
{
  for (const char * r : { role::T2, role::Flair, role::T1 })
    if (tp.images.count(r))
      return r;
  return "";
}

PointType
MapPoint(const reg::TransformType * t, const PointType & p)
{
  return t ? t->TransformPoint(p) : p;
}

reg::TransformPointer
Inverse(const reg::TransformType * t)
{
  auto inv = t->GetInverseTransform();
  if (!inv)
    ThrowProcessing("the transform to the baseline cannot be inverted");
  reg::TransformPointer out = dynamic_cast<reg::TransformType *>(inv.GetPointer());
  if (!out)
    ThrowInternal("inverse transform has an unexpected type");
  return out;
}

safety::StructureMeasure
Measure(const seg::ComponentMorphometry & c, const reg::TransformType * toBaseline)
{
  safety::StructureMeasure m;
  m.volume = c.volume;
  m.spd = c.ranoLongest * c.ranoPerpendicular;
  m.spdMinor = std::min(c.ranoLongest, c.ranoPerpendicular);
  m.apDiameter = c.maxApDiameter;
  m.length = c.length;
  m.location = ToPoint(MapPoint(toBaseline, c.centroid));
  return m;
}

/// Total of all components; AP/length of the largest; location of the largest.
safety::StructureMeasure
MeasureTotal(const seg::Morphometry & m, const reg::TransformType * toBaseline)
{
  safety::StructureMeasure total;
  const seg::ComponentMorphometry * largest = nullptr;
  for (const auto & c : m.components)
  {
    total.volume += c.volume;
    total.apDiameter = std::max(total.apDiameter, c.maxApDiameter);
    total.length = std::max(total.length, c.length);
    if (c.ranoLongest * c.ranoPerpendicular > total.spd)
    {
      total.spd = c.ranoLongest * c.ranoPerpendicular; // the largest SPD and its shorter diameter
      total.spdMinor = std::min(c.ranoLongest, c.ranoPerpendicular);
    }
    if (!largest || c.volume > largest->volume)
      largest = &c;
  }
  if (largest)
    total.location = ToPoint(MapPoint(toBaseline, largest->centroid));
  return total;
}

nlohmann::json
MeasureJson(const std::optional<safety::StructureMeasure> & m)
{
  if (!m)
    return nullptr;
  nlohmann::json j{ { "volume_mm3", m->volume },
                    { "spd_mm2", m->spd },
                    { "spd_minor_diameter_mm", m->spdMinor },
                    { "ap_mm", m->apDiameter },
                    { "length_mm", m->length } };
  if (m->location)
    j["location_lps"] = *m->location;
  return j;
}

std::vector<safety::ChangeItem>
ToChangeItems(const std::vector<longitudinal::Match> & matches, const LabelImage * after,
              const std::vector<longitudinal::Component> & afterComponents)
{
  std::vector<safety::ChangeItem> items;
  for (const auto & m : matches)
  {
    safety::ChangeItem item;
    item.kind = longitudinal::ToString(m.kind);
    item.volumeBefore = m.volumeBefore;
    item.volumeAfter = m.volumeAfter;
    for (int label : m.after)
      for (const auto & c : afterComponents)
        if (c.label == label)
          item.voxels += static_cast<int>(c.voxels);
    item.location = ToPoint(m.location);
    items.push_back(item);
  }
  return items;
}

/// The voxel-wise `f(a, b)` of two masks on one grid.
template <typename F>
MaskImage::Pointer
Voxelwise(const MaskImage * a, const MaskImage * b, F f)
{
  if (!seg::SameGrid(a, b))
    ThrowInternal("voxel-wise mask operation: masks on different grids");
  auto out = MaskImage::New();
  out->CopyInformation(a);
  out->SetRegions(a->GetLargestPossibleRegion());
  out->Allocate();
  const std::size_t n = a->GetLargestPossibleRegion().GetNumberOfPixels();
  for (std::size_t v = 0; v < n; ++v)
    out->GetBufferPointer()[v] = f(a->GetBufferPointer()[v] != 0, b->GetBufferPointer()[v] != 0) ? 1 : 0;
  return out;
}

/// Voxels in both masks (same grid).
MaskImage::Pointer
And(const MaskImage * a, const MaskImage * b)
{
  return Voxelwise(a, b, [](bool x, bool y) { return x && y; });
}

/// a AND NOT b (same grid)
MaskImage::Pointer
Subtract(const MaskImage * a, const MaskImage * b)
{
  return Voxelwise(a, b, [](bool x, bool y) { return x && !y; });
}

/// The change list of brain-mode lesion activity (detail::SubtractionActivity) from its accepted candidates:
/// - new lesions (NEW_T2_LESION): volume after = the candidate's volume;
/// - enlarging lesions (ENLARGING_T2_LESION): the earlier lesions with the grown parts contiguous with them.
///   Candidates that touch the same earlier lesion are one change, and a candidate touching two earlier lesions
///   joins them ("merged"). The volumes are those of the lesion segmentations, linked across the two timepoints by
///   gw::longitudinal::MatchComponents (`matches` of `earlierComponents` to `laterComponents`, native volumes): the
///   same method at both timepoints, so that its border convention cancels in the growth. Volume before = the
///   earlier lesions of the group and of their matches, volume after = the later lesions matched to them (when the
///   later segmentation has none: before plus the new parts, the candidates' voxels outside the earlier lesions).
///   Location = centroid of the new parts (the subtraction sees where the lesion grew), extension = how far the new
///   parts reach beyond the earlier lesions;
/// - shrinking/resolved lesions (recorded; no rule flags them: losing lesion signal is not a safety event):
///   volume before = the part lost, after = 0.
std::vector<safety::ChangeItem>
ActivityChangeItems(const std::vector<detail::ActivityCandidate> & candidates,
                    const std::vector<longitudinal::Match> & matches,
                    const std::vector<longitudinal::Component> & earlierComponents,
                    const std::vector<longitudinal::Component> & laterComponents)
{
  std::vector<safety::ChangeItem> items;
  // union-find over the earlier lesion labels linked by enlarging candidates
  std::map<int, int> parent;
  auto find = [&](int a)
  {
    while (parent.at(a) != a)
      a = parent.at(a);
    return a;
  };
  for (const auto & c : candidates)
    if (c.accepted && c.kind == "enlarging")
      for (int e : c.earlierLesions)
      {
        if (!parent.count(e))
          parent[e] = e;
        parent[find(e)] = find(c.earlierLesions.front());
      }
  struct Group
  {
    std::set<int> lesions;
    double newVolume = 0.0, extension = 0.0;
    std::array<double, 3> weighted{ 0.0, 0.0, 0.0 };
    PointType fallback; ///< the first candidate's centroid (location when no voxel is outside the earlier lesions)
    int voxels = 0;
  };
  std::map<int, Group> groups;
  for (const auto & c : candidates)
  {
    if (!c.accepted)
      continue;
    if (c.kind != "enlarging")
    {
      safety::ChangeItem item;
      item.kind = c.kind;
      item.volumeAfter = c.rising ? c.volume : 0.0;
      item.volumeBefore = c.rising ? 0.0 : c.volume;
      item.voxels = c.rising ? static_cast<int>(c.voxels) : 0; // voxels of the later component
      item.location = ToPoint(c.centroid);
      items.push_back(item);
      continue;
    }
    auto & g = groups[find(c.earlierLesions.front())];
    if (g.lesions.empty())
      g.fallback = c.centroid;
    g.lesions.insert(c.earlierLesions.begin(), c.earlierLesions.end());
    g.newVolume += c.newVolume;
    g.extension = std::max(g.extension, c.extensionMm);
    g.voxels += static_cast<int>(c.voxels);
    for (int k = 0; k < 3; ++k)
      g.weighted[k] += c.newVolume * c.newCentroid[k];
  }
  for (const auto & [root, g] : groups)
  {
    safety::ChangeItem item;
    std::set<int> before = g.lesions, after;
    for (const auto & m : matches)
      if (std::any_of(m.before.begin(), m.before.end(), [&](int l) { return g.lesions.count(l) > 0; }))
      {
        before.insert(m.before.begin(), m.before.end());
        after.insert(m.after.begin(), m.after.end());
      }
    item.kind = before.size() > 1 ? "merged" : "enlarging";
    for (const auto & e : earlierComponents)
      if (before.count(e.label))
        item.volumeBefore += e.volume;
    for (const auto & e : laterComponents)
      if (after.count(e.label))
        item.volumeAfter += e.volume;
    if (after.empty())
      item.volumeAfter = item.volumeBefore + g.newVolume;
    item.voxels = g.voxels;
    item.extension = g.extension;
    if (g.newVolume > 0)
      item.location =
        safety::Point{ g.weighted[0] / g.newVolume, g.weighted[1] / g.newVolume, g.weighted[2] / g.newVolume };
    else
      item.location = ToPoint(g.fallback);
    items.push_back(item);
  }
  return items;
}

void
RefuseExisting(const fs::path & outDir, bool force)
{
  if (force || !fs::exists(outDir))
    return;
  if (!fs::is_directory(outDir))
    ThrowOutput("output exists and is not a directory: " + outDir.string());
  for (const auto & name : FollowupOutputNames())
    if (fs::exists(outDir / name))
      ThrowOutput("output exists (use --force to overwrite): " + (outDir / name).string());
}

/// The structures drawn on the report's figures, by their masksInBaseline name, with their colours.
const std::vector<std::pair<std::string, std::array<unsigned char, 3>>> kOverlayColours{
  { "cord", { 0, 200, 0 } },
  { "lesion", { 255, 40, 40 } },
  { "edema", { 255, 220, 0 } },
  { "syrinx", { 0, 200, 255 } },
  { "enhancement", { 255, 0, 255 } },
  { "lesion_change", { 255, 110, 0 } },
  { "enhancement_change", { 255, 110, 0 } }
};
constexpr double kBrainInsetMm = 3.0; ///< a brain's search region lies this far inside its intracranial surface [mm]
/// Fat on a T1w before contrast: above this many times the brain's median. Spin-echo T1w puts fat at 3-4 times the
/// brain's median (TCGA exam: the 99.9th percentile of its brain mask, orbit and scalp included, at 3.4-3.6) and
/// white matter at about 1.3; no normal brain tissue reaches twice.
constexpr double kOutsideFatRatio = 2.0;
constexpr double kZoomMm = 80.0; ///< field of view of the zoomed axial figure of a located flag [mm]
const std::string kOverlayLegend =
  "red lesion, orange new or enlarging (lesion or enhancement) since the previous scan, yellow edema, cyan syrinx, "
  "magenta enhancement, green cord";

std::vector<report::Overlay>
Overlays(const std::map<std::string, MaskImage::Pointer> & masks)
{
  std::vector<report::Overlay> overlays;
  for (const auto & [name, rgb] : kOverlayColours)
    if (masks.count(name) && masks.at(name))
      overlays.push_back({ masks.at(name).GetPointer(), rgb });
  return overlays;
}

/// the voxels of a label map whose label `keep` accepts
template <typename Keep>
MaskImage::Pointer
LabelsWhere(const LabelImage * labels, Keep keep)
{
  auto m = seg::LabelsToMask(labels);
  const auto * l = labels->GetBufferPointer();
  auto * o = m->GetBufferPointer();
  for (std::size_t v = 0; v < m->GetLargestPossibleRegion().GetNumberOfPixels(); ++v)
    o[v] = keep(int(l[v])) ? 1 : 0;
  return m;
}

/// the new and enlarging voxels (codes 1 and 2 of gw::longitudinal::ChangeMap) of a lesion change map
MaskImage::Pointer
NewOrEnlarging(const LabelImage * change)
{
  return LabelsWhere(change, [](int code) { return code == 1 || code == 2; });
}

/// total volume of a structure's components [mm^3]
double
TotalVolume(const seg::Morphometry & m)
{
  double total = 0.0;
  for (const auto & c : m.components)
    total += c.volume;
  return total;
}

/// The core of each abnormal component (cord: graft/lesion core inside its edema halo). For each component: peak =
/// 95th percentile of its intensities; its bright part = voxels above median + 0.75 (peak - median) of the tissue;
/// background = interquartile mean intensity in a shell 1 to 2 (smallest) voxel sizes around the bright part, inside
/// the tissue (grey and white matter: smoother than their median);
/// core = voxels of the component above (background + peak) / 2, i.e. the half-maximum boundary against what surrounds
/// it (the edema when there is a halo, normal cord otherwise). `backgrounds` (optional) receives the background per
/// label of `labels`.
MaskImage::Pointer
CoreOf(const FloatImage * image, const LabelImage * labels, const MaskImage * tissue, double tissueMedian,
       std::map<int, double> * backgrounds = nullptr)
{
  const std::size_t n = image->GetLargestPossibleRegion().GetNumberOfPixels();
  const float * img = image->GetBufferPointer();
  const auto * lab = labels->GetBufferPointer();
  const auto * tis = tissue->GetBufferPointer();
  auto core = MaskImage::New();
  core->CopyInformation(image);
  core->SetRegions(image->GetLargestPossibleRegion());
  core->Allocate(true);
  auto * out = core->GetBufferPointer();
  std::map<int, std::vector<float>> values;
  for (std::size_t i = 0; i < n; ++i)
    if (lab[i])
      values[lab[i]].push_back(img[i]);
  const auto spacing = image->GetSpacing();
  const double voxel = std::min({ spacing[0], spacing[1], spacing[2] });
  for (auto & [label, vals] : values)
  {
    const std::size_t count = vals.size();
    const double peak = detail::Percentile(vals, 0.95);
    const double brightLevel = tissueMedian + 0.75 * (peak - tissueMedian);
    auto bright = MaskImage::New();
    bright->CopyInformation(image);
    bright->SetRegions(image->GetLargestPossibleRegion());
    bright->Allocate(true);
    auto * b = bright->GetBufferPointer();
    for (std::size_t i = 0; i < n; ++i)
      b[i] = (lab[i] == label && img[i] >= brightLevel) ? 1 : 0;
    const auto inner = seg::DilateMm(bright, 1.01 * voxel);
    const auto outer = seg::DilateMm(bright, 2.01 * voxel);
    std::vector<float> shell;
    const auto * pi = inner->GetBufferPointer();
    const auto * po = outer->GetBufferPointer();
    for (std::size_t i = 0; i < n; ++i)
      if (po[i] && !pi[i] && tis[i])
        shell.push_back(img[i]);
    const double background = shell.empty() ? tissueMedian : detail::InterquartileMean(shell);
    const double threshold = 0.5 * (background + peak);
    if (backgrounds)
      (*backgrounds)[label] = background;
    log::Debug("core of component " + std::to_string(label) + ": " + std::to_string(count) + " voxels, peak " +
               std::to_string(peak) + ", tissue median " + std::to_string(tissueMedian) + ", background " +
               std::to_string(background) + " (" + std::to_string(shell.size()) + " shell voxels), threshold " +
               std::to_string(threshold));
    for (std::size_t i = 0; i < n; ++i)
      if (lab[i] == label && img[i] >= threshold)
        out[i] = 1;
  }
  return core;
}

/// Removes the components of `mask` whose median FLAIR is not above the tissue's FLAIR median + 1 robust sigma
/// (1.4826 MAD): a T2-bright voxel group that FLAIR suppresses is CSF, not a lesion.
void
DropFlairSuppressed(MaskImage * mask, const FloatImage * flair, const MaskImage * tissue)
{
  const std::size_t n = mask->GetLargestPossibleRegion().GetNumberOfPixels();
  const float * f = flair->GetBufferPointer();
  std::vector<float> t;
  for (std::size_t i = 0; i < n; ++i)
    if (tissue->GetBufferPointer()[i])
      t.push_back(f[i]);
  if (t.size() < 10)
    return;
  const auto [med, sigma] = detail::MedianAndSigma(t);
  const double level = med + sigma;
  std::vector<seg::Component> components;
  const auto labels = seg::LabelComponents(mask, 1, 0.0, &components);
  std::map<int, std::vector<float>> values;
  for (std::size_t i = 0; i < n; ++i)
    if (labels->GetBufferPointer()[i])
      values[labels->GetBufferPointer()[i]].push_back(f[i]);
  std::map<int, double> medians;
  for (auto & [l, v] : values)
    medians[l] = detail::Median(v);
  for (std::size_t i = 0; i < n; ++i)
  {
    const int l = labels->GetBufferPointer()[i];
    if (l && medians[l] <= level)
      mask->GetBufferPointer()[i] = 0;
  }
}

/// Imports the DICOM folder of each timepoint that has one (gw::dicom::Import into OUT/<ses>/dicom) and assigns
/// the series to roles from their classification; images given explicitly keep precedence.
Study
ImportDicomTimepoints(const Study & in, const fs::path & outDir, bool force, std::vector<std::string> & notes)
{
  Study study = in;
  for (auto & tp : study.timepoints)
  {
    if (!tp.dicomDir)
      continue;
    dicom::ImportOptions io;
    io.force = force;
    const fs::path dir = outDir / SanitizeFileName(tp.id) / "dicom";
    const auto result = WithContext(
      "while importing the DICOM folder of " + tp.id, [&]() { return dicom::Import({ *tp.dicomDir }, dir, io); },
      ErrorKind::Input);
    for (const auto & note : result.notes)
      notes.push_back(tp.id + ": DICOM: " + note);
    const std::map<std::string, std::string> roles{
      { "T2", role::T2 }, { "T1", role::T1 }, { "T1post", role::T1Post }, { "FLAIR", role::Flair }, { "DWI", role::Dwi }
    };
    for (const auto & series : result.series)
    {
      if (!series.error.empty())
      {
        notes.push_back(tp.id + ": DICOM series " + std::to_string(series.seriesNumber) +
                        " not imported: " + series.error);
        continue;
      }
      const auto r = roles.find(series.classification);
      if (r == roles.end() || tp.images.count(r->second))
        continue;
      for (const auto & f : series.files)
      {
        const std::string ext = SplitExtension(f).second;
        if (ext == ".nii.gz" || ext == ".nii" || ext == ".nrrd")
          tp.images[r->second] = f;
        else if (ext == ".bval")
          tp.bval = f;
        else if (ext == ".bvec")
          tp.bvec = f;
      }
    }
    if (tp.images.empty())
      ThrowInput(tp.id + ": no usable series in its DICOM folder");
  }
  return study;
}

reg::TransformPointer
Identity(const itk::ImageBase<3> * grid)
{
  return reg::MakeRigidTransform({ 0, 0, 0 }, { 0, 0, 0 }, reg::GridCenter(grid));
}

/// `image` on `grid`: itself when it lies on it already, else resampled through the identity (series of one session
/// share the scanner frame; see the same-session alignment)
FloatImage::Pointer
OnGrid(const FloatImage * image, const itk::ImageBase<3> * grid)
{
  return seg::SameGrid(image, grid) ? FloatImage::Pointer(const_cast<FloatImage *>(image))
                                    : reg::Resample(image, grid, Identity(grid));
}

/// The cost mask of a rigid registration between two series of one session: the tissue with 5 mm (brain) or 10 mm
/// (cord), on the tissue's grid.
MaskImage::Pointer
SessionCostMask(const MaskImage * tissue, const std::string & anatomy)
{
  return seg::DilateMm(tissue, anatomy == "cord" ? 10.0 : 5.0);
}

/// Options of a rigid registration between two series of one session: from the scanner's frame (no
/// initialisation), gated by the rules' error bound, with `mask` (on the fixed grid; it must outlive the options).
reg::RegistrationOptions
SessionRigid(const FollowupOptions & options, const MaskImage * mask)
{
  reg::RegistrationOptions ro;
  ro.type = reg::TransformKind::Rigid;
  ro.init = reg::Initialization::None;
  ro.deterministic = options.deterministic;
  ro.maxEstimatedErrorVoxels = options.rules.registrationMaxErrorVoxels;
  ro.fixedMask = mask;
  return ro;
}

/// Whether a series of a session moved enough to be corrected: a motion below a fifth of a voxel of `grid` (its
/// finest spacing), or not clearly above the registration's own error (twice its estimate), is no motion to correct.
bool
MovedBeyondError(double displacementMaxMm, const itk::ImageBase<3> * grid, double estimatedErrorMm)
{
  const auto sp = grid->GetSpacing();
  const double voxel = std::min({ sp[0], sp[1], sp[2] });
  return displacementMaxMm > std::max(0.2 * voxel, 2.0 * estimatedErrorMm);
}

std::string
SafeId(const std::string & id)
{
  return SanitizeFileName(id);
}
} // namespace

std::vector<std::string>
FollowupOutputNames()
{
  return { "flags.json", "measurements.tsv", "report.html", "flags.mrk.json", "summary.json" };
}

FollowupResult
RunFollowup(const Study & givenStudy, const FollowupOptions & options, const fs::path & outDir)
{
  if (givenStudy.timepoints.empty())
    ThrowInput("the study has no timepoint");
  RefuseExisting(outDir, options.force);
  fs::create_directories(outDir);
  const bool force = true; // existing outputs were refused above (or --force was given)

  FollowupResult result;
  const Study study = ImportDicomTimepoints(givenStudy, outDir, force, result.notes);
  result.subject = study.subject;
  const std::size_t n = study.timepoints.size();
  std::vector<Work> work(n);
  ProgressRange progress(0.0, 1.0, "follow-up");

  // ---------------------------------------------------------------- load
  for (std::size_t i = 0; i < n; ++i)
  {
    Work & w = work[i];
    w.tp = &study.timepoints[i];
    w.primaryRole = PrimaryRole(*w.tp);
    if (w.primaryRole.empty())
    {
      if (i == 0)
        ThrowInput("baseline " + w.tp->id + " has no T2w, FLAIR or T1w image");
      result.notes.push_back(w.tp->id + ": no anatomical image; only DWI metrics are used");
    }
    for (const auto & [r, path] : w.tp->images)
      if (r != role::Dwi && r != role::CordMask && r != role::LesionMask)
        w.anat[r] = WithContext(
          "while reading " + w.tp->id + " " + r, [&]() { return io::ReadFloatImage(path); }, ErrorKind::Input);
    if (!w.primaryRole.empty())
      w.primary = w.anat.at(w.primaryRole);
    if (i > 0 && w.primaryRole != work[0].primaryRole && !w.primaryRole.empty())
      result.notes.push_back(w.tp->id + ": registered on " + w.primaryRole + " while the baseline uses " +
                             work[0].primaryRole + " (mutual information)");
  }
  const FloatImage * baseline = work[0].primary;

  // ---------------------------------------------------------------- anatomy and tissue (cord or brain)
  std::string anatomy = options.anatomy;
  auto segmentTissue = [&](Work & w)
  {
    if (!w.primary)
      return;
    if (w.tp->images.count(role::CordMask))
    {
      const auto given = io::ReadMask(w.tp->images.at(role::CordMask));
      w.tissue = seg::ResampleMaskNearest(given, w.primary);
      if (anatomy == "auto") // a cord mask says what the study is (it was analysed as a brain: thin-mask
        anatomy = "cord";    // registration failing its gate, brain lesion rules)
      else if (anatomy == "brain")
        ThrowUsage(w.tp->id + ": a cord mask was given for a brain study (--anatomy brain)");
      if (w.anat.count(role::T2))
      {
        // the given mask is used throughout; the cord's AP diameter comes from the T2 contour around the mask's
        // centerline when it can be traced (sub-voxel, see CordResult::contour), from the mask's extent otherwise
        try
        {
          seg::CordParams p;
          p.contrast = seg::CordContrast::T2;
          p.centerline = seg::CenterlineFromMask(given);
          w.cordContour = seg::SegmentCord(w.anat.at(role::T2), p).contour;
        }
        catch (const Error & e)
        {
          log::Info(w.tp->id + ": cord AP from the given mask's extent (no T2 contour: " + e.Message() + ")");
        }
      }
      return;
    }
    if (anatomy != "brain" && w.anat.count(role::T2))
    {
      try
      {
        seg::CordParams p;
        p.contrast = seg::CordContrast::T2;
        auto cord = seg::SegmentCord(w.anat.at(role::T2), p);
        w.tissue = seg::ResampleMaskNearest(cord.mask, w.primary);
        w.cordContour = cord.contour;
        if (anatomy == "auto")
          anatomy = "cord";
        return;
      }
      catch (const Error & e)
      {
        if (anatomy == "cord")
          throw Error(e).AddContext("while segmenting the cord of " + w.tp->id);
        log::Info(w.tp->id + ": no spinal cord found (" + e.Message() + "); brain mode");
      }
    }
    if (anatomy == "auto")
      anatomy = "brain";
    // the intracranial space (BET's surface); the head's outline took the scalp, whose fat is bright on FLAIR and
    // T1w, for lesions and normalised the brain's intensities with it
    try
    {
      w.tissue = seg::ExtractBrain(w.primary).mask;
    }
    catch (const Error & e)
    {
      w.tissue = dti::AutoMask(w.primary);
      result.notes.push_back(w.tp->id + ": brain extraction failed (" + e.Message() +
                             "); the head's outline is used as the brain");
    }
  };
  segmentTissue(work[0]);
  if (anatomy == "auto")
    anatomy = "brain";
  result.anatomy = anatomy;
  for (std::size_t i = 1; i < n; ++i)
    segmentTissue(work[i]);
  for (auto & w : work)
    if (w.tissue)
      w.searchRegion = anatomy == "cord" ? w.tissue : seg::ErodeMm(w.tissue, kBrainInsetMm);

  // ---------------------------------------------------------------- same-session alignment
  // Every other series of a session acquired on its own grid (a FLAIR beside the T2w, a T1w pair) is registered
  // rigidly to the primary image (mutual information, inside the brain or the cord with 10 mm, no initial shift:
  // the same scanner frame) and, when the registration passes its gate and the patient had moved, re-positioned by
  // its header (origin and direction: no resampling). Everything downstream takes series of one session as being
  // in one physical space; a 10-degree turn between two series put the FLAIR's scalp inside the T2w's brain.
  // A series that cannot be aligned is not analysed at that session (said in the notes and as an acquisition issue):
  // "as acquired" can be centimetres off (a TCGA exam's T1w pair lies 23 mm from its T2w in the scanner's frame),
  // and its enhancement, compared with another session's, raised 34 false NEW_ENHANCEMENT flags.
  std::map<std::string, reg::TransformPointer> earlierAlignment; // series group -> its last passed alignment
  for (auto & w : work)
  {
    if (!w.primary || !w.tissue)
      continue;
    std::vector<std::string> unaligned;
    std::vector<std::string> aligned; // roles already handled (a grid shared with an earlier role)
    for (auto & [r, img] : w.anat)
    {
      if (r == w.primaryRole || seg::SameGrid(img, w.primary) ||
          std::find(aligned.begin(), aligned.end(), r) != aligned.end())
        continue;
      std::vector<std::string> group; // this role and the others on its grid
      for (const auto & [r2, img2] : w.anat)
        if (r2 != w.primaryRole && seg::SameGrid(img2, img))
          group.push_back(r2);
      aligned.insert(aligned.end(), group.begin(), group.end());
      std::string groupName;
      for (const auto & g : group)
        groupName += (groupName.empty() ? "" : "+") + g;
      nlohmann::json & rec = w.details["session_alignment"][groupName];
      try
      {
        const auto mask = SessionCostMask(w.tissue, anatomy);
        auto ro = SessionRigid(options, mask);
        // the brain of the moving series too: the registration's QA runs backwards from it, and a whole head (neck,
        // face) there leads it elsewhere (FLAIR to T2w of a TCGA exam: 10-14 mm estimated error without, 0.12 with)
        auto brainOf = [&](const FloatImage * series)
        {
          MaskImage::Pointer brain;
          if (anatomy == "brain")
            try
            {
              brain = seg::DilateMm(seg::ExtractBrain(series).mask, 5.0);
            }
            catch (const Error &)
            {
              // no brain found in that series: registered with the primary's mask alone (its gate decides)
            }
          return brain;
        };
        MaskImage::Pointer movingMask = brainOf(img);
        ro.movingMask = movingMask;
        // from the scanner's frame first; a series the patient moved far between is started from the brains'
        // intensity centres
        auto reg = reg::Register(w.primary, img, ro);
        if (!reg.qa.gate.passed)
        {
          ro.init = reg::Initialization::Moments;
          auto again = reg::Register(w.primary, img, ro);
          if (again.qa.gate.passed || again.qa.estimatedErrorMm < reg.qa.estimatedErrorMm)
            reg = std::move(again);
        }
        // last, from where an earlier session's alignment put this series: one protocol places its series alike
        reg::TransformPointer earlier;
        if (!reg.qa.gate.passed && earlierAlignment.count(groupName))
        {
          const auto start = reg::Reposition(img, earlierAlignment.at(groupName));
          movingMask = brainOf(start);
          ro.init = reg::Initialization::None;
          ro.movingMask = movingMask;
          auto third = reg::Register(w.primary, start, ro);
          if (third.qa.gate.passed)
          {
            reg = std::move(third);
            earlier = earlierAlignment.at(groupName);
          }
        }
        const auto shift =
          reg::TransformDistance(reg.linear, Identity(w.primary), w.primary, w.tissue, 2); // moved [mm]
        rec = { { "registered_to", w.primaryRole },     { "estimated_error_mm", reg.qa.estimatedErrorMm },
                { "gate_passed", reg.qa.gate.passed },  { "started_from_earlier_session", bool(earlier) },
                { "displacement_mean_mm", shift.mean }, { "displacement_max_mm", shift.max } };
        if (!reg.qa.gate.passed)
        {
          rec["applied"] = false;
          unaligned.insert(unaligned.end(), group.begin(), group.end());
          result.notes.push_back(w.tp->id + ": " + groupName + " could not be aligned to " + w.primaryRole +
                                 " (registration gate failed); not analysed at this session");
          continue;
        }
        if (!earlier)
          earlierAlignment[groupName] = reg.linear;
        // no motion to correct: the series stay as acquired (displacements from the earlier session's start are on
        // top of that start's)
        rec["applied"] = earlier || MovedBeyondError(shift.max, img, reg.qa.estimatedErrorMm);
        if (!rec["applied"].get<bool>())
          continue;
        for (const auto & g : group)
          w.anat[g] = reg::Reposition(
            earlier ? reg::Reposition(w.anat.at(g), earlier).GetPointer() : w.anat.at(g).GetPointer(), reg.linear);
        log::Info(w.tp->id + ": " + groupName + " re-positioned onto " + w.primaryRole + " (moved up to " +
                  Fixed(shift.max, 1) + " mm" + (earlier ? " from an earlier session's alignment" : "") + ")");
      }
      catch (const Error & e)
      {
        rec = { { "applied", false }, { "error", e.Message() } };
        unaligned.insert(unaligned.end(), group.begin(), group.end());
        result.notes.push_back(w.tp->id + ": " + groupName + " could not be aligned to " + w.primaryRole + " (" +
                               e.Message() + "); not analysed at this session");
      }
    }
    for (const auto & r : unaligned)
    {
      w.anat.erase(r);
      w.unaligned.push_back({ r, w.primaryRole });
    }
  }
  progress.Report(0.1);

  // ---------------------------------------------------------------- lesions, per timepoint in native space
  auto segmentLesions = [&](Work & w)
  {
    if (!w.primary || !w.tissue)
      return;
    const FloatImage * image =
      w.anat.count(role::T2) && anatomy == "cord" ? w.anat.at(role::T2).GetPointer() : w.primary.GetPointer();
    if (anatomy == "brain" && w.anat.count(role::Flair))
      image = w.anat.at(role::Flair);
    // Cord: the syrinx first (CSF-like cavity: T2 bright, T1 and FLAIR dark), so that it is never taken for a
    // lesion; lesions are then searched in the cord without the syrinx.
    MaskImage::Pointer lesionTissue = w.searchRegion;
    if (anatomy == "cord")
    {
      const FloatImage * t2 = w.anat.count(role::T2) ? w.anat.at(role::T2).GetPointer() : w.primary.GetPointer();
      const FloatImage * t1 = w.anat.count(role::T1) ? w.anat.at(role::T1).GetPointer() : nullptr;
      const FloatImage * flair = w.anat.count(role::Flair) ? w.anat.at(role::Flair).GetPointer() : nullptr;
      if (t1 && !seg::SameGrid(t1, t2))
        t1 = nullptr;
      if (flair && !seg::SameGrid(flair, t2))
        flair = nullptr;
      w.syrinx = seg::SegmentSyrinx(t2, t1, flair, w.tissue, nullptr);
      w.syrinxMorph = seg::ComputeMorphometry(w.syrinx.labels, w.tissue, "syrinx");
      if (w.syrinx.labels && !w.syrinxMorph.components.empty() && seg::SameGrid(w.syrinx.labels, t2))
      {
        // CSF level: SegmentSyrinx grows at cord + 1/2 (CSF - cord); the background is taken one voxel inside the
        // cord border (partial volume with the CSF around the cord is cavity-like)
        const double csf = w.syrinx.tissueMedian + 2.0 * (w.syrinx.growThreshold - w.syrinx.tissueMedian);
        const auto tsp = t2->GetSpacing();
        const auto inner = seg::ErodeMm(seg::ResampleMaskNearest(w.tissue, t2), 1.01 * std::max(tsp[0], tsp[1]));
        const auto volumes = detail::PartialVolumes(
          t2, w.syrinx.labels, inner, [csf](int) { return csf; }, w.syrinx.tissueMedian);
        for (auto & c : w.syrinxMorph.components)
          if (volumes.count(c.label))
          {
            w.details["syrinx_volume_binary_mm3"][std::to_string(c.label)] = c.volume;
            c.volume = volumes.at(c.label);
          }
        w.details["syrinx_volume_method"] = "partial volume (CSF-cord mixing fractions)";
      }
      if (w.syrinx.mask && seg::CountNonZero(w.syrinx.mask) > 0)
        lesionTissue = Subtract(w.tissue, seg::DilateMm(w.syrinx.mask, 1.0));
    }
    if (w.tp->images.count(role::LesionMask))
    {
      auto mask = seg::ResampleMaskNearest(io::ReadMask(w.tp->images.at(role::LesionMask)), w.primary);
      std::vector<seg::Component> components;
      w.lesions.labels = seg::LabelComponents(mask, 1, 0.0, &components);
      w.lesions.mask = mask;
      w.lesions.components = components;
    }
    else
    {
      seg::LesionParams p;
      // the lesion contrast on the primary grid; it fell back to the primary image itself, so a FLAIR on its own
      // grid left a brain's lesions to the T2w, where CSF is brighter
      const auto onGrid = OnGrid(image, w.primary);
      w.lesions = seg::SegmentLesions(onGrid, lesionTissue, p);
      // In the cord the T2 abnormality holds the lesion/graft core and its edema halo: keep the core (half
      // maximum against its surroundings, see CoreOf); the halo is segmented separately as edema.
      if (anatomy == "cord" && !w.lesions.components.empty())
      {
        // With a T1w on the same grid the core is where the abnormality is also clearly T1 hypointense (edema
        // is T2 bright but only mildly T1 dark); otherwise the T2 half-maximum core.
        const FloatImage * t1 = w.anat.count(role::T1) ? w.anat.at(role::T1).GetPointer() : nullptr;
        MaskImage::Pointer core;
        FloatImage::ConstPointer coreImage = onGrid; // the contrast in which the core is bright
        std::map<int, double> backgrounds;           // CoreOf's background per abnormal component
        if (t1 && seg::SameGrid(t1, onGrid))
        {
          auto negT1 = FloatImage::New();
          negT1->CopyInformation(t1);
          negT1->SetRegions(t1->GetLargestPossibleRegion());
          negT1->Allocate();
          const std::size_t nv = t1->GetLargestPossibleRegion().GetNumberOfPixels();
          std::vector<float> tissueValues;
          for (std::size_t v = 0; v < nv; ++v)
          {
            negT1->GetBufferPointer()[v] = -t1->GetBufferPointer()[v];
            if (lesionTissue->GetBufferPointer()[v])
              tissueValues.push_back(-t1->GetBufferPointer()[v]);
          }
          const double median = tissueValues.empty() ? 0.0 : detail::Median(tissueValues);
          core = CoreOf(negT1, w.lesions.labels, lesionTissue, median, &backgrounds);
          coreImage = negT1;
        }
        else
          core = CoreOf(onGrid, w.lesions.labels, lesionTissue, w.lesions.tissueMedian, &backgrounds);
        const LabelImage::Pointer abnormal = w.lesions.labels; // before the core replaces it
        // T2 bright but FLAIR suppressed is CSF (partial volume at the cord border), not a lesion
        const FloatImage * flair = w.anat.count(role::Flair) ? w.anat.at(role::Flair).GetPointer() : nullptr;
        if (flair && seg::SameGrid(flair, onGrid))
          DropFlairSuppressed(core, flair, lesionTissue);
        std::vector<seg::Component> components;
        w.lesions.labels = seg::LabelComponents(core, p.minVoxels, p.minVolume, &components);
        w.lesions.mask = seg::LabelsToMask(w.lesions.labels);
        w.lesions.components = components;
        w.lesionMorph = seg::ComputeMorphometry(w.lesions.labels, w.tissue, "lesion");
        // Volumes inside the core's half-maximum surface at sub-voxel resolution (detail::IsoSurfaceVolumes): a
        // graft core of 5 x 4 x 10 mm on 1 x 1 x 2.5 mm voxels is mostly boundary, and its voxel count moves by a
        // voxel layer (+/-10-15%) with the grid and the noise, enough to cross the 40% MASS_GROWTH or the 50%
        // enlarging rule between two scans of an unchanged mass. The level is half-way between the core's own
        // intensity (interquartile mean of its interior: the 95th percentile that CoreOf thresholds with is
        // noise-biased) and CoreOf's background around it (edema or normal cord), in the contrast that drew the core.
        // Voxel-wise linear mixing (as for the syrinx) does not suit it: the grey matter around a graft at the cord
        // centre differs from white matter by a quarter of the core's contrast and counts as partial volume (+30% on
        // the noise-free phantom). Each core component takes the background of the abnormal component holding most
        // of its voxels. Searched one in-plane voxel inside the cord border: the CSF outside the cord is brighter
        // than the core on the T2w and on the negated T1w.
        if (!w.lesionMorph.components.empty())
        {
          std::map<int, std::map<int, std::size_t>> overlap; // core label -> abnormal label -> voxels
          const std::size_t nv = w.lesions.labels->GetLargestPossibleRegion().GetNumberOfPixels();
          for (std::size_t v = 0; v < nv; ++v)
            if (const int l = w.lesions.labels->GetBufferPointer()[v])
              ++overlap[l][abnormal->GetBufferPointer()[v]];
          const auto inside = detail::InteriorLevels(coreImage, w.lesions.labels);
          std::map<int, double> level;
          for (const auto & [l, counts] : overlap)
          {
            const auto best = std::max_element(counts.begin(), counts.end(),
                                               [](const auto & a, const auto & b) { return a.second < b.second; });
            if (backgrounds.count(best->first) && inside.count(l))
              level[l] = 0.5 * (backgrounds.at(best->first) + inside.at(l));
          }
          const auto isp = coreImage->GetSpacing();
          const auto inner = seg::ErodeMm(lesionTissue, 1.01 * std::max(isp[0], isp[1]));
          const auto volumes = detail::IsoSurfaceVolumes(
            coreImage, w.lesions.labels, inner,
            [&level](int label)
            { return level.count(label) ? level.at(label) : std::numeric_limits<double>::infinity(); });
          for (auto & c : w.lesionMorph.components)
            if (volumes.count(c.label) && level.count(c.label))
            {
              w.details["lesion_volume_binary_mm3"][std::to_string(c.label)] = c.volume;
              c.volume = volumes.at(c.label);
            }
          w.details["lesion_volume_method"] = "inside the half-maximum surface, sub-voxel";
        }
        return;
      }
    }
    w.lesionMorph =
      seg::ComputeMorphometry(w.lesions.labels, anatomy == "cord" ? w.tissue.GetPointer() : nullptr, "lesion");
  };
  for (auto & w : work)
    segmentLesions(w);
  progress.Report(0.15);

  // ---------------------------------------------------------------- registration to the baseline
  // Cost function over the region of interest, on both images (the backward registration of the QA uses the
  // moving side): the cord with a 10 mm margin (the spine moves relative to the body between scans), or the
  // brain; lesions and syrinx with a 3 mm margin are excluded (they change by definition).
  auto regionOf = [&](const Work & w) -> MaskImage::Pointer
  {
    if (!w.tissue)
      return nullptr;
    return anatomy == "cord" ? seg::DilateMm(w.tissue, 10.0) : w.tissue;
  };
  auto excludeOf = [&](const Work & w) -> MaskImage::Pointer
  {
    MaskImage::Pointer out;
    for (const MaskImage * m : { w.lesions.mask.GetPointer(), w.syrinx.mask.GetPointer() })
      if (m && seg::CountNonZero(m) > 0)
      {
        auto d = seg::DilateMm(m, 3.0);
        if (!out)
          out = d;
        else
          for (std::size_t v = 0; v < out->GetLargestPossibleRegion().GetNumberOfPixels(); ++v)
            out->GetBufferPointer()[v] |= d->GetBufferPointer()[v];
      }
    return out;
  };
  const MaskImage::Pointer baseRegion = regionOf(work[0]), baseExclude = excludeOf(work[0]);
  for (std::size_t i = 0; i < n; ++i)
  {
    Work & w = work[i];
    if (i == 0 || !w.primary)
      continue;
    reg::RegistrationOptions ro;
    ro.type = reg::ParseTransformKind(options.registration);
    ro.deterministic = options.deterministic;
    ro.maxEstimatedErrorVoxels = options.rules.registrationMaxErrorVoxels;
    ro.minOverlapFraction = 0.5;
    const MaskImage::Pointer region = regionOf(w), exclude = excludeOf(w);
    ro.fixedMask = baseRegion;
    ro.movingMask = region;
    ro.fixedExcludeMask = baseExclude;
    ro.movingExcludeMask = exclude;
    try
    {
      // A registration that fails the gate is retried from other starting points (initialisation by geometry
      // instead of intensity moments, then correlation instead of mutual information for same-contrast pairs);
      // then without the region masks; the first that passes is kept, else the one with the smallest estimated
      // error (and the gate fails).
      auto r = reg::Register(baseline, w.primary, ro);
      std::vector<std::string> attempts{ "moments/mattes" };
      const std::vector<std::pair<reg::Initialization, reg::MetricKind>> retries{
        { reg::Initialization::Geometry, reg::MetricKind::MattesMI },
        { reg::Initialization::Moments, reg::MetricKind::Correlation }
      };
      for (const auto & [init, metric] : retries)
      {
        if (r.qa.gate.passed)
          break;
        if (metric == reg::MetricKind::Correlation && w.primaryRole != work[0].primaryRole)
          continue;
        auto again = ro;
        again.init = init;
        again.metric = metric;
        attempts.push_back(std::string(init == reg::Initialization::Geometry ? "geometry/" : "moments/") +
                           reg::ToString(metric));
        auto r2 = reg::Register(baseline, w.primary, again);
        if (r2.qa.gate.passed || r2.qa.estimatedErrorMm < r.qa.estimatedErrorMm)
          r = r2;
      }
      if (!r.qa.gate.passed && (ro.fixedMask || ro.movingMask))
      {
        // last resort: the whole field of view (a mask may cut the structure the optimiser needs)
        auto again = ro;
        again.fixedMask = nullptr;
        again.movingMask = nullptr;
        attempts.push_back("moments/mattes/unmasked");
        auto r2 = reg::Register(baseline, w.primary, again);
        if (r2.qa.gate.passed || r2.qa.estimatedErrorMm < r.qa.estimatedErrorMm)
          r = r2;
      }
      w.details["registration_attempts"] = attempts;
      w.toTimepoint = reg::Simplify(r.transform);
      w.toBaseline = Inverse(w.toTimepoint);
      w.registrationPassed = r.qa.gate.passed;
      w.registrationQa = reg::ToJson(r.qa);
      std::string why;
      for (const auto & f : r.qa.gate.failures)
        why += (why.empty() ? "" : "; ") + f;
      w.details["registration"] = w.registrationQa;
      const fs::path dir = outDir / SafeId(w.tp->id);
      io::WriteTransform(w.toTimepoint, dir / "to_baseline.h5", force);
      WriteTextFile(dir / "registration_qa.json", w.registrationQa.dump(2) + "\n", force);
      if (!w.registrationPassed)
        result.notes.push_back(w.tp->id + ": registration to baseline failed the quality gate (" + why + ")");
      w.details["registration_message"] = why;
    }
    catch (const Error & e)
    {
      w.registrationPassed = false;
      w.details["registration_message"] = e.what();
      result.notes.push_back(w.tp->id + ": registration to baseline failed: " + e.Message());
      w.toTimepoint = reg::MakeRigidTransform({ 0, 0, 0 }, { 0, 0, 0 }, reg::GridCenter(baseline));
      w.toBaseline = w.toTimepoint;
    }
    progress.Report(0.15 + 0.3 * double(i) / double(n));
  }
  work[0].toTimepoint = reg::MakeRigidTransform({ 0, 0, 0 }, { 0, 0, 0 }, reg::GridCenter(baseline));
  work[0].toBaseline = work[0].toTimepoint;

  // ---------------------------------------------------------------- the graft site / epicentre
  std::optional<PointType> siteBaseline;
  // Given, or in a cord study the injury epicentre (the largest baseline lesion; spinal cord grafts are placed
  // there) or the middle of the cord. A brain has no such default: its largest lesion need not be the graft (an MS
  // plaque, a stroke beside a peri-infarct graft), and a mass followed there raises MASS_GROWTH on whatever lesion
  // grows. Without a given site a brain study follows no mass.
  if (study.graftSite)
    siteBaseline = FromPoint(*study.graftSite);
  else if (anatomy == "cord" && !work[0].lesionMorph.components.empty())
    siteBaseline = work[0].lesionMorph.components.front().centroid; // largest lesion
  else if (anatomy == "cord" && work[0].tissue)
    siteBaseline = report::ImageCenter(work[0].tissue);
  else
    result.notes.push_back("no graft site given (graft_site_lps): a brain study follows no mass (MASS_GROWTH not "
                           "evaluated)");

  // ---------------------------------------------------------------- per timepoint: remaining structures
  reg::TransformPointer earlierPostAlignment; // T1w_ce to T1w at the last session where it passed its gate
  for (std::size_t i = 0; i < n; ++i)
  {
    Work & w = work[i];
    const fs::path dir = outDir / SafeId(w.tp->id);
    if (siteBaseline)
    {
      w.epicentre = MapPoint(w.toTimepoint, *siteBaseline);
      w.haveEpicentre = true;
    }
    if (w.primary && w.tissue)
    {
      // the mass: the lesion nearest the graft site (none without a site)
      double best = std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; w.haveEpicentre && c < w.lesionMorph.components.size(); ++c)
      {
        const double d = Distance(w.lesionMorph.components[c].centroid, w.epicentre);
        if (d < best && d <= options.graftSearchMm)
        {
          best = d;
          w.massIndex = static_cast<int>(c);
        }
      }
      if (anatomy == "cord")
      {
        w.cordSlices = seg::ComputeCordMorphometry(w.tissue);
      }
      const FloatImage * bright = w.anat.count(role::Flair)
                                    ? w.anat.at(role::Flair).GetPointer()
                                    : (w.anat.count(role::T2) ? w.anat.at(role::T2).GetPointer() : nullptr);
      // Edema: the FLAIR/T2 hyperintensity around the lesions of the cord (its lesion is the injury that holds the
      // graft), around the mass at the graft site in a brain. A brain's other lesions (MS plaques, an infarct away
      // from the graft) carry no graft-related edema, and the brain's hyperintensity around them is lesion, grey
      // matter or flow artefact; without a graft site a brain study segments no edema.
      MaskImage::Pointer around = w.lesions.mask;
      if (anatomy != "cord")
      {
        around = nullptr;
        if (w.massIndex >= 0 && w.lesions.labels)
        {
          const int mass = w.lesionMorph.components[w.massIndex].label;
          around = LabelsWhere(w.lesions.labels, [mass](int label) { return label == mass; });
        }
      }
      if (bright && around && seg::CountNonZero(around) > 0)
      {
        const auto brightOnGrid = OnGrid(bright, w.primary);
        const MaskImage::Pointer tissue = w.searchRegion;
        seg::EdemaParams ep;
        ep.distance = options.edemaDistanceMm;
        ep.kSeed = 4.0;
        ep.kGrow = 3.0;
        w.edema = seg::SegmentEdema(brightOnGrid, tissue.GetPointer(), around, ep);
        // edema is perilesional: keep what lies within the search distance of a lesion, but not the lesion's own
        // partial-volume rim (the first voxel layer around it)
        if (w.edema.mask)
        {
          const auto distance = seg::DistanceMap(around);
          const auto sp = w.lesions.mask->GetSpacing();
          const auto rim = seg::DilateMm(w.lesions.mask, 1.01 * std::min({ sp[0], sp[1], sp[2] }));
          auto * m = w.edema.mask->GetBufferPointer();
          const float * dd = distance->GetBufferPointer();
          const auto * rr = rim->GetBufferPointer();
          const std::size_t nv = w.edema.mask->GetLargestPossibleRegion().GetNumberOfPixels();
          std::vector<std::uint8_t> inRim(nv, 0); // segmented, within the distance, but in the lesion's rim
          for (std::size_t v = 0; v < nv; ++v)
            if (m[v] && (dd[v] > ep.distance || rr[v]))
            {
              inRim[v] = dd[v] <= ep.distance && rr[v] && !w.lesions.mask->GetBufferPointer()[v];
              m[v] = 0;
            }
          std::vector<seg::Component> components;
          w.edema.labels = seg::LabelComponents(w.edema.mask, ep.minVoxels, ep.minVolume, &components);
          w.edema.mask = seg::LabelsToMask(w.edema.labels);
          w.edema.components = components;
          // The rim is left out so that a lesion's own partial-volume layer is never taken for edema. Where a halo
          // was found, though, the rim between the lesion and the halo is halo: give its segmented voxels back when
          // they touch the halo (around a 6 mm graft that layer holds a third of the halo, and how much of it the
          // grid puts in the rim changes from scan to scan).
          if (anatomy == "cord" && !components.empty())
          {
            const auto touching = seg::DilateMm(w.edema.mask, 1.01 * std::max({ sp[0], sp[1], sp[2] }));
            auto * em = w.edema.mask->GetBufferPointer();
            for (std::size_t v = 0; v < nv; ++v)
              if (inRim[v] && touching->GetBufferPointer()[v])
                em[v] = 1;
            // The grow threshold (normal median + kGrow sigma) is a detection level: it also takes grey matter
            // and any voxel with a little edema, so the halo's extent follows the voxel size of the day. Its
            // boundary is put where a voxel is half edema instead (half maximum between the normal tissue median
            // and the halo's median), the level at which partial-volume gains and losses cancel.
            const float * bi = brightOnGrid->GetBufferPointer();
            const auto * lab = w.edema.labels->GetBufferPointer();
            std::map<int, std::vector<float>> values;
            for (std::size_t v = 0; v < nv; ++v)
              if (lab[v])
                values[lab[v]].push_back(bi[v]);
            std::map<int, double> level;
            for (auto & [l, vals] : values)
              level[l] = 0.5 * (w.edema.tissueMedian + detail::Median(vals));
            for (std::size_t v = 0; v < nv; ++v)
              if (lab[v] && double(bi[v]) < level[lab[v]])
                em[v] = 0;
            w.edema.labels = seg::LabelComponents(w.edema.mask, ep.minVoxels, ep.minVolume, &components);
            w.edema.mask = seg::LabelsToMask(w.edema.labels);
            w.edema.components = components;
          }
        }
        w.edemaMorph =
          seg::ComputeMorphometry(w.edema.labels, anatomy == "cord" ? tissue.GetPointer() : nullptr, "edema");
      }
      bool postAligned = false;
      FloatImage::Pointer post;        // T1w_ce on the T1w's grid, aligned to it when the patient moved
      MaskImage::Pointer postCoverage; // when post was moved: the pre grid's voxels it covers, off its border
      if (w.anat.count(role::T1) && w.anat.count(role::T1Post))
      {
        const FloatImage * pre = w.anat.at(role::T1);
        post = OnGrid(w.anat.at(role::T1Post), pre);
        // The post-contrast series aligned to the pre-contrast one: the patient moves while the contrast is injected
        // (a TCGA exam's pair, planned on one grid, lies 10 degrees apart), and a subtraction of misaligned series
        // shows every edge as enhancement (rigid, mutual information, in the tissue with 5 mm, 10 in the cord). That
        // exam re-imaged as a follow-up, its pair as acquired, against a baseline whose pair lay aligned: 24-30
        // false NEW_ENHANCEMENT flags unaligned, 0-1 aligned. When the gate fails, once more from where the last
        // session's alignment put it; when that fails too, the day's enhancement is not analysed (a misaligned
        // subtraction against another day's aligned one raised 25-30 false flags).
        nlohmann::json & rec = w.details["t1_post_alignment"];
        try
        {
          const auto mask = seg::ResampleMaskNearest(SessionCostMask(w.tissue, anatomy), pre);
          const auto ro = SessionRigid(options, mask);
          FloatImage::Pointer moving = post;
          auto aligned = reg::Register(pre, moving, ro);
          bool fromEarlier = false;
          if (!aligned.qa.gate.passed && earlierPostAlignment)
          {
            auto start = reg::Reposition(post, earlierPostAlignment);
            auto again = reg::Register(pre, start, ro);
            if (again.qa.gate.passed)
            {
              aligned = std::move(again);
              moving = start;
              fromEarlier = true;
            }
          }
          const auto shift = reg::TransformDistance(aligned.linear, Identity(pre), pre, mask, 2);
          rec = { { "estimated_error_mm", aligned.qa.estimatedErrorMm },
                  { "gate_passed", aligned.qa.gate.passed },
                  { "started_from_earlier_session", fromEarlier },
                  { "displacement_mean_mm", shift.mean },
                  { "displacement_max_mm", shift.max } };
          postAligned = aligned.qa.gate.passed;
          if (postAligned && !fromEarlier)
            earlierPostAlignment = aligned.linear;
          // as for the series of a session
          rec["applied"] =
            postAligned && (fromEarlier || MovedBeyondError(shift.max, pre, aligned.qa.estimatedErrorMm));
          if (rec["applied"].get<bool>())
          {
            post = reg::Resample(moving, pre, aligned.linear, reg::Interpolation::BSpline);
            postCoverage = detail::FieldOfViewMask(moving, pre, aligned.linear, 1.5);
            w.anat[role::T1Post] = post;
            log::Info(w.tp->id + ": T1w_ce aligned to T1w (moved up to " + Fixed(shift.max, 1) + " mm" +
                      (fromEarlier ? " from an earlier session's alignment" : "") + ")");
          }
        }
        catch (const Error & e)
        {
          rec = { { "applied", false }, { "error", e.Message() } };
        }
        if (!postAligned)
        {
          w.unaligned.push_back({ role::T1Post, role::T1 });
          result.notes.push_back(
            w.tp->id + ": T1w_ce could not be aligned to T1w (" +
            (rec.contains("error") ? rec["error"].get<std::string>() : std::string("registration gate failed")) +
            "); enhancement not analysed at this session");
        }
      }
      if (postAligned)
      {
        const FloatImage * pre = w.anat.at(role::T1);
        // the cord with 2 mm (enhancement at its surface); the brain's search region (dura, sinuses and vessels on
        // its surface enhance normally)
        auto tissue = seg::ResampleMaskNearest(anatomy == "cord" ? seg::DilateMm(w.tissue, 2.0) : w.searchRegion, pre);
        // a post moved onto pre covers it up to its own slab's end: its outermost slices carry slice-profile and
        // inflow artefacts, and beyond them there is nothing to subtract. One and a half voxels inside: the cubic
        // B-spline's weight on the last slice is 2 % there (one voxel inside, up to a sixth)
        if (postCoverage)
          tissue = And(tissue, postCoverage);
        seg::EnhancementParams ep;
        // the brain's mask on thick slices takes orbit and scalp: their fat is not searched (see outsideFatRatio)
        if (anatomy == "brain")
          ep.outsideFatRatio = kOutsideFatRatio;
        w.enhancement = seg::SegmentEnhancement(pre, post, tissue, ep);
        w.enhancementRegion = tissue;
      }
    }
    // DTI in the DWI's own grid (same session frame as the anatomy)
    if (options.dti && w.tp->images.count(role::Dwi))
    {
      try
      {
        const auto dwi = io::ReadDwi(w.tp->images.at(role::Dwi), w.tp->bval, w.tp->bvec);
        dti::FitOptions fo;
        w.dti = dti::FitTensors(dwi, nullptr, fo);
        dti::WriteDtiResult(*w.dti, (dir / "dti").string(), force);
        if (w.haveEpicentre && anatomy == "cord" && w.tissue)
        {
          // FA of the cord on the DWI grid, without voxels that partial volume with CSF has made free-water-like
          // (MD above csfMdThreshold): the cut depends on the tissue, not on the voxel size of the day. Lesions
          // stay in: a growing lesion lowers the FA of the cord, as it should.
          MaskImage::Pointer normal = seg::ResampleMaskNearest(w.tissue, w.dti->maps.md);
          {
            auto * m = normal->GetBufferPointer();
            const float * md = w.dti->maps.md->GetBufferPointer();
            const std::size_t nv = normal->GetLargestPossibleRegion().GetNumberOfPixels();
            for (std::size_t v = 0; v < nv; ++v)
              if (m[v] && !(md[v] > 0.0f && md[v] < options.csfMdThreshold))
                m[v] = 0;
          }
          // FA of the border voxels without their CSF partial volume (see detail::CorrectBorderFa): the PV
          // layer is a large part of a cord 8 mm across on 1.5 mm voxels, and its CSF content changes with the
          // voxel size and position of the day (+/-3% of the band's FA between two scans of an unchanged cord);
          // the corrected band FA estimates the volume average of the tissue's FA. Voxels touching the day's edema
          // get the same correction: edema is free water too, and its strong signal would otherwise pull the FA of
          // the white matter it mixes with below the share of edema in the voxel.
          detail::BorderFaCorrection correction;
          dti::ScalarMaps maps = w.dti->maps;
          maps.fa = detail::CorrectBorderFa(w.dti->maps, w.tissue, normal, &correction, w.edema.mask);
          w.details["fa_border_correction"] = { { "reference_md_mm2_s", correction.referenceMd },
                                                { "interior_voxels", correction.interior },
                                                { "border_voxels", correction.border },
                                                { "edema_voxels", correction.edema },
                                                { "corrected_voxels", correction.corrected } };
          w.profile = dti::CordProfile(maps, normal, w.epicentre, options.bandMm);
          dti::WriteCordProfile(*w.profile, dir / "cord_profile.tsv", force);
        }
      }
      catch (const Error & e)
      {
        result.notes.push_back(w.tp->id + ": DTI not used: " + e.Message());
      }
    }
    // native-space outputs
    if (w.tissue)
      io::WriteImage(w.tissue.GetPointer(), dir / (anatomy == "cord" ? "cord.nii.gz" : "brain_mask.nii.gz"), force);
    if (w.lesions.labels)
      io::WriteImage(w.lesions.labels.GetPointer(), dir / "lesions.nii.gz", force);
    if (w.syrinx.labels)
      io::WriteImage(w.syrinx.labels.GetPointer(), dir / "syrinx.nii.gz", force);
    if (w.edema.labels)
      io::WriteImage(w.edema.labels.GetPointer(), dir / "edema.nii.gz", force);
    if (w.enhancement && w.enhancement->labels)
    {
      io::WriteImage(w.enhancement->labels.GetPointer(), dir / "enhancement.nii.gz", force);
      io::WriteImage(w.enhancement->zMap.GetPointer(), dir / "enhancement_z.nii.gz", force);
      w.details["enhancement"] = { { "difference_median", w.enhancement->tissueMedian },
                                   { "difference_sigma", w.enhancement->tissueSigma },
                                   { "seed_threshold_sigma", w.enhancement->seedThreshold },
                                   { "grow_threshold_sigma", w.enhancement->growThreshold } };
    }
    progress.Report(0.45 + 0.35 * double(i + 1) / double(n));
  }

  // ---------------------------------------------------------------- into the baseline space, matching
  // The baseline space's grid: the baseline's, refined along an axis where a scan compared voxel by voxel (each
  // timepoint's primary image and FLAIR, when its registration passed) was acquired finer, so that resampling onto it
  // does not lose what the finer slices hold (see detail::RefinedAnalysisGrid).
  const FloatImage * space = baseline;
  detail::AnalysisGrid analysis;
  {
    std::vector<std::pair<const itk::ImageBase<3> *, const io::TransformType *>> acquisitions;
    for (std::size_t i = 0; i < n; ++i)
    {
      const Work & w = work[i];
      if (!w.primary || (i > 0 && !w.registrationPassed))
        continue;
      const io::TransformType * t = i == 0 ? nullptr : w.toTimepoint.GetPointer();
      acquisitions.emplace_back(w.primary.GetPointer(), t);
      if (anatomy == "brain" && w.anat.count(role::Flair))
        acquisitions.emplace_back(w.anat.at(role::Flair).GetPointer(), t);
    }
    analysis = detail::RefinedAnalysisGrid(baseline, acquisitions);
    if (analysis.refinement != std::array<unsigned int, 3>{ { 1, 1, 1 } })
    {
      space = analysis.grid;
      const auto sp = space->GetSpacing();
      result.notes.push_back("baseline space: the baseline's grid refined " + std::to_string(analysis.refinement[0]) +
                             " x " + std::to_string(analysis.refinement[1]) + " x " +
                             std::to_string(analysis.refinement[2]) + " (voxels " + Fixed(sp[0], 2) + " x " +
                             Fixed(sp[1], 2) + " x " + Fixed(sp[2], 2) + " mm), as a later scan was acquired finer");
    }
  }
  const longitudinal::MatchOptions mo{ options.rules.enlargingRelative, options.rules.enlargingAbsolute, 1 };
  std::vector<std::vector<longitudinal::Component>> lesionComponents(n);
  for (std::size_t i = 0; i < n; ++i)
  {
    Work & w = work[i];
    if (!w.primary)
      continue;
    const bool identity = i == 0;
    auto toBase = [&](const MaskImage * m) -> MaskImage::Pointer
    {
      if (!m)
        return nullptr;
      return identity ? seg::ResampleMaskNearest(m, space) : reg::Resample(m, space, w.toTimepoint);
    };
    for (const auto & [r, img] : w.anat)
      w.anatInBaseline[r] = identity && seg::SameGrid(img, space) ? img : reg::Resample(img, space, w.toTimepoint);
    if (w.lesions.mask)
    {
      auto m = toBase(w.lesions.mask);
      w.masksInBaseline["lesion"] = m;
      lesionComponents[i] = longitudinal::LabelComponents(m, 0.0, 1, w.lesionsInBaseline);
      // The change classification compares volumes: take them from the native segmentation (measured on the
      // acquired grid) rather than from the nearest-neighbour resampled masks, whose volume moves by a voxel layer
      // with sub-voxel shifts (a 10 mm long lesion on 2.5 mm slices gains or loses a slice: +/-25%). Each native
      // component goes to the common-space component holding most of its resampled voxels.
      if (w.lesions.labels && !w.lesionMorph.components.empty())
      {
        const auto native = identity && seg::SameGrid(w.lesions.labels, space)
                              ? w.lesions.labels
                              : reg::Resample(w.lesions.labels.GetPointer(), space, w.toTimepoint);
        std::map<int, std::map<int, std::size_t>> overlap; // native label -> common label -> voxels
        const std::size_t nv = native->GetLargestPossibleRegion().GetNumberOfPixels();
        for (std::size_t v = 0; v < nv; ++v)
          if (native->GetBufferPointer()[v] && w.lesionsInBaseline->GetBufferPointer()[v])
            ++overlap[native->GetBufferPointer()[v]][w.lesionsInBaseline->GetBufferPointer()[v]];
        std::map<int, double> volume; // common label -> native volume
        for (const auto & [nat, counts] : overlap)
        {
          const auto best = std::max_element(counts.begin(), counts.end(),
                                             [](const auto & a, const auto & b) { return a.second < b.second; });
          for (const auto & c : w.lesionMorph.components)
            if (c.label == nat)
              volume[best->first] += c.volume;
        }
        for (auto & c : lesionComponents[i])
          if (volume.count(c.label))
            c.volume = volume.at(c.label);
      }
    }
    if (w.syrinx.mask)
      w.masksInBaseline["syrinx"] = toBase(w.syrinx.mask);
    if (w.edema.mask)
      w.masksInBaseline["edema"] = toBase(w.edema.mask);
    if (w.enhancement && w.enhancement->mask)
    {
      w.masksInBaseline["enhancement"] = toBase(w.enhancement->mask);
      w.enhancementRegionInBaseline = toBase(w.enhancementRegion);
    }
    if (w.tissue && anatomy == "cord")
      w.masksInBaseline["cord"] = toBase(w.tissue);
  }

  // ---------------------------------------------------------------- acquisition consistency
  auto sliceThickness = [](const FloatImage * img)
  {
    const auto s = img->GetSpacing();
    return std::max({ s[0], s[1], s[2] });
  };
  std::vector<std::vector<std::string>> acquisitionIssues(n);
  std::optional<io::GradientTable> baseGradients;
  for (std::size_t i = 0; i < n; ++i)
  {
    Work & w = work[i];
    for (const auto & [r, to] : w.unaligned)
      if (i > 0)
        acquisitionIssues[i].push_back(r + " could not be aligned to the " + to + " of its session: not analysed");
    for (const auto & [r, img] : w.anat)
    {
      if (i == 0 || !work[0].anat.count(r))
        continue;
      const double a = sliceThickness(work[0].anat.at(r)), b = sliceThickness(img);
      if (std::abs(a - b) > options.rules.sliceThicknessTolerance)
        acquisitionIssues[i].push_back(r + " slice spacing " + Fixed(b, 2) + " mm vs " + Fixed(a, 2) +
                                       " mm at baseline");
    }
    if (w.tp->images.count(role::Dwi))
    {
      try
      {
        const fs::path dwiPath = w.tp->images.at(role::Dwi);
        io::GradientTable g;
        const std::string ext = SplitExtension(dwiPath).second;
        if (ext == ".nrrd" || ext == ".nhdr")
          g = io::ReadNrrdGradients(dwiPath);
        else
          g = io::ReadFslGradients(
            w.tp->bval ? *w.tp->bval : dwiPath.parent_path() / (SplitExtension(dwiPath).first + ".bval"),
            w.tp->bvec ? *w.tp->bvec : dwiPath.parent_path() / (SplitExtension(dwiPath).first + ".bvec"));
        if (!baseGradients)
          baseGradients = g;
        else
        {
          auto maxB = [](const io::GradientTable & t)
          {
            double b = 0;
            for (const auto & e : t.entries)
              b = std::max(b, e.bValue);
            return b;
          };
          auto dirs = [](const io::GradientTable & t)
          {
            return std::count_if(t.entries.begin(), t.entries.end(),
                                 [](const io::GradientEntry & e) { return e.bValue > io::B0Threshold; });
          };
          if (std::abs(maxB(g) - maxB(*baseGradients)) > options.rules.bValueTolerance)
            acquisitionIssues[i].push_back("DWI b-value " + Fixed(maxB(g), 0) + " vs " +
                                           Fixed(maxB(*baseGradients), 0) + " s/mm^2 at baseline");
          if (dirs(g) != dirs(*baseGradients))
            acquisitionIssues[i].push_back("DWI has " + std::to_string(dirs(g)) + " diffusion directions vs " +
                                           std::to_string(dirs(*baseGradients)) + " at baseline");
        }
      }
      catch (const Error & e)
      {
        acquisitionIssues[i].push_back("DWI gradient table unreadable: " + e.Message());
      }
    }
  }

  // ---------------------------------------------------------------- rules input
  std::vector<safety::TimepointData> data(n);
  std::vector<MaskImage::Pointer> enhancing(n); // EnhancingAnywhere of each scan, when a later one needs it
  MaskImage::Pointer brainInSpace; // the baseline's search region on the analysis grid, when lesion activity needs it
  for (std::size_t i = 0; i < n; ++i)
  {
    Work & w = work[i];
    safety::TimepointData & d = data[i];
    d.id = w.tp->id;
    d.daysSinceTransplant = DaysSinceTransplant(study, *w.tp);
    d.registrationMeasured = i > 0 && w.primary;
    d.registrationPassed = w.registrationPassed;
    d.registrationMessage =
      w.details.is_object() ? w.details.value("registration_message", std::string()) : std::string();
    if (w.registrationQa.is_object() && w.registrationQa.contains("estimated_error_mm") &&
        w.registrationQa.contains("voxel_size_mm"))
    {
      const double vox = w.registrationQa["voxel_size_mm"].get<double>();
      d.registrationErrorVoxels = vox > 0 ? w.registrationQa["estimated_error_mm"].get<double>() / vox : 0.0;
    }
    d.acquisitionIssues = acquisitionIssues[i];
    if (!w.primary)
      continue;
    if (w.massIndex >= 0)
      d.mass = Measure(w.lesionMorph.components[w.massIndex], w.toBaseline);
    if (anatomy == "cord")
    {
      d.syrinx = MeasureTotal(w.syrinxMorph, w.toBaseline);
      if (w.haveEpicentre && (!w.cordContour.empty() || !w.cordSlices.empty()))
      {
        // the cord contour's AP extent where the cord was segmented here (sub-voxel: the mask's extent moves in
        // whole voxels, 1.5 mm on a coarse grid, a third of the 25% swelling rule on an 8 mm cord); the mask's
        // extent for a given cord mask
        auto maxInBand = [&](const auto & slices)
        {
          double m = 0.0;
          for (const auto & s : slices)
            if (std::abs(s.z - w.epicentre[2]) <= 0.5 * options.bandMm)
              m = std::max(m, s.apDiameter);
          return m;
        };
        const double ap = w.cordContour.empty() ? maxInBand(w.cordSlices) : maxInBand(w.cordContour);
        if (ap > 0)
          d.cordAp = ap;
      }
    }
    d.edema = MeasureTotal(w.edemaMorph, w.toBaseline);
    if (w.profile)
      for (const auto & r : w.profile->regions)
      {
        if (r.metrics.voxels == 0)
          continue;
        if (r.name == "epicentre")
          d.faEpicentre = r.metrics.fa;
        else if (r.name == "rostral")
          d.faRostral = r.metrics.fa;
        else if (r.name == "caudal")
          d.faCaudal = r.metrics.fa;
      }
    if (i > 0 && work[i - 1].primary)
    {
      const fs::path dir = outDir / SafeId(w.tp->id);
      if (anatomy == "brain" && work[i - 1].registrationPassed)
      {
        // brain: lesion activity by subtraction (new, enlarging, shrinking, resolved lesions), see SubtractionActivity
        const std::string r = work[0].anatInBaseline.count(role::Flair) && w.anatInBaseline.count(role::Flair) &&
                                  work[i - 1].anatInBaseline.count(role::Flair)
                                ? std::string(role::Flair)
                                : work[0].primaryRole;
        if (work[i - 1].anatInBaseline.count(r) && w.anatInBaseline.count(r))
        {
          if (!brainInSpace)
            brainInSpace = seg::ResampleMaskNearest(work[0].searchRegion, space);
          const MaskImage * brain = brainInSpace;
          detail::ActivityParams ap;
          ap.kDiff = options.activityDiffSigma;
          ap.kBright = options.activityBrightSigma;
          ap.smoothingMm = options.activitySmoothingMm;
          ap.kLocal = options.activityLocalSigma;
          ap.falling = options.activityFalling;
          ap.refinement = analysis.refinement;
          std::vector<detail::ActivityCandidate> candidates;
          // only where both acquisitions have data, one voxel away from their borders (slab-edge artefacts)
          const auto valid = And(detail::FieldOfViewMask(work[i - 1].anat.at(r), space, work[i - 1].toTimepoint, 1.0),
                                 detail::FieldOfViewMask(w.anat.at(r), space, w.toTimepoint, 1.0));
          std::vector<const FloatImage *> older; // a new lesion is absent from every earlier scan
          for (std::size_t k = 0; k + 1 < i; ++k)
            if (work[k].registrationPassed && work[k].anatInBaseline.count(r))
              older.push_back(work[k].anatInBaseline.at(r));
          // compared at one resolution, the later scan never the sharper (see detail::CommonResolution)
          const auto rb = detail::ResolutionOnGrid(space, work[i - 1].anat.at(r), work[i - 1].toTimepoint);
          const auto ra = detail::ResolutionOnGrid(space, w.anat.at(r), w.toTimepoint);
          const auto [tb, ta] = detail::CommonResolution(rb, ra);
          const auto before = detail::BlurToResolution(work[i - 1].anatInBaseline.at(r), rb, tb);
          const auto after = detail::BlurToResolution(w.anatInBaseline.at(r), ra, ta);
          FloatImage::Pointer difference;
          const auto map = detail::SubtractionActivity(before, after, brain, work[i - 1].lesionsInBaseline, valid, ap,
                                                       &candidates, older, &difference);
          w.details["lesion_activity_candidates"] = detail::ToJson(candidates);
          w.details["lesion_activity_contrast"] = r;
          w.lesionContrast = r;
          w.lesionDifference = difference;
          std::vector<longitudinal::Match> matches;
          if (work[i - 1].lesionsInBaseline && w.lesionsInBaseline)
            matches = longitudinal::MatchComponents(work[i - 1].lesionsInBaseline, lesionComponents[i - 1],
                                                    w.lesionsInBaseline, lesionComponents[i], mo);
          d.lesionChanges = ActivityChangeItems(candidates, matches, lesionComponents[i - 1], lesionComponents[i]);
          io::WriteImage(map.GetPointer(), dir / "lesion_change_in_baseline.nii.gz", force);
          d.evidence.push_back(fs::relative(dir / "lesion_change_in_baseline.nii.gz", outDir).string());
          io::WriteImage(difference.GetPointer(), dir / "lesion_difference_in_baseline.nii.gz", force);
          d.evidence.push_back(fs::relative(dir / "lesion_difference_in_baseline.nii.gz", outDir).string());
          w.masksInBaseline["lesion_change"] = NewOrEnlarging(map);
        }
      }
      else if (work[i - 1].lesionsInBaseline && w.lesionsInBaseline)
      {
        const auto matches = longitudinal::MatchComponents(work[i - 1].lesionsInBaseline, lesionComponents[i - 1],
                                                           w.lesionsInBaseline, lesionComponents[i], mo);
        d.lesionChanges = ToChangeItems(matches, w.lesionsInBaseline, lesionComponents[i]);
        auto map = longitudinal::ChangeMap(work[i - 1].lesionsInBaseline, w.lesionsInBaseline, matches);
        io::WriteImage(map.GetPointer(), dir / "lesion_change_in_baseline.nii.gz", force);
        d.evidence.push_back(fs::relative(dir / "lesion_change_in_baseline.nii.gz", outDir).string());
        w.masksInBaseline["lesion_change"] = NewOrEnlarging(map);
      }
      if (w.masksInBaseline.count("enhancement"))
      {
        const Work & e = work[i - 1];
        const MaskImage * afterMask = w.masksInBaseline.at("enhancement");
        // compared only where both scans were searched: each brain mask strays differently into the scalp and the
        // skull base, where enhancement is normal
        MaskImage::Pointer common;
        if (e.enhancementRegionInBaseline && w.enhancementRegionInBaseline)
          common = And(e.enhancementRegionInBaseline, w.enhancementRegionInBaseline);
        auto within = [&](const MaskImage * m, std::vector<longitudinal::Component> & components)
        {
          auto labels = LabelImage::New();
          if (!m)
          {
            labels->CopyInformation(afterMask);
            labels->SetRegions(afterMask->GetLargestPossibleRegion());
            labels->Allocate(true);
            components.clear();
            return labels;
          }
          components = longitudinal::LabelComponents(common ? And(m, common).GetPointer() : m, 0.0, 1, labels);
          return labels;
        };
        std::vector<longitudinal::Component> beforeComponents, afterComponents;
        const auto before =
          within(e.masksInBaseline.count("enhancement") ? e.masksInBaseline.at("enhancement").GetPointer() : nullptr,
                 beforeComponents);
        const auto after = within(afterMask, afterComponents);
        auto matches = longitudinal::MatchComponents(before, beforeComponents, after, afterComponents, mo);
        // a focus that enhanced at any earlier scan is not new: the previous one first, then back to the baseline
        // (each scan's partial volume of a thin structure differs; a vessel below the threshold on one follow-up is
        // above it on the next)
        std::set<int> preexisting;
        auto tested = nlohmann::json::array();
        for (std::size_t k = i; k-- > 0;)
          if (work[k].enhancement && work[k].registrationPassed)
          {
            if (!enhancing[k])
              enhancing[k] = detail::EnhancingAnywhere(*work[k].enhancement);
            for (auto & record : detail::PreexistingEnhancement(matches, after, enhancing[k], *work[k].enhancement,
                                                                work[k].toTimepoint, preexisting))
            {
              record["compared_with"] = work[k].tp->id;
              tested.push_back(record);
            }
          }
        if (!tested.empty())
          w.details["enhancement_preexisting"] = tested;
        d.enhancementChanges = ToChangeItems(matches, after, afterComponents);
        auto map = longitudinal::ChangeMap(before, after, matches);
        for (std::size_t v = 0; v < map->GetLargestPossibleRegion().GetNumberOfPixels(); ++v)
          if (preexisting.count(after->GetBufferPointer()[v]))
            map->GetBufferPointer()[v] = 5; // enhancing before too: unchanged
        io::WriteImage(map.GetPointer(), dir / "enhancement_change_in_baseline.nii.gz", force);
        d.evidence.push_back(fs::relative(dir / "enhancement_change_in_baseline.nii.gz", outDir).string());
        w.masksInBaseline["enhancement_change"] = NewOrEnlarging(map);
      }
    }
  }
  result.flags = safety::Evaluate(data, options.rules);
  progress.Report(0.85);

  // ---------------------------------------------------------------- report pictures at flagged locations
  report::ReportContent content;
  content.subject = study.subject;
  const fs::path figures = outDir / "figures";
  // an earlier run's pictures (--force): its flags are not this run's, and a picture of a flag no longer raised
  // must not stay beside the report
  if (fs::is_directory(figures))
    for (const auto & entry : fs::directory_iterator(figures))
    {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && entry.path().extension() == ".png" &&
          (name.rfind("flag", 0) == 0 || name.rfind("overview_", 0) == 0))
        fs::remove(entry.path());
    }
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i)
  {
    index[work[i].tp->id] = i;
    content.timepoints.push_back(work[i].tp->id);
  }
  int figureCount = 0;
  for (auto & flag : result.flags)
  {
    if (!options.snapshots || !index.count(flag.timepoint))
      continue;
    const Work & w = work[index[flag.timepoint]];
    if (w.anatInBaseline.empty())
      continue;
    // the contrast the finding was read on: the T1w post for enhancement, the brain's lesion activity contrast
    // (FLAIR) for its lesion flags, the primary series otherwise
    const bool lesionFlag =
      flag.code == std::string(safety::code::NewT2Lesion) || flag.code == std::string(safety::code::EnlargingT2Lesion);
    std::string roleShown = w.primaryRole;
    if (flag.code == std::string(safety::code::NewEnhancement) && w.anatInBaseline.count(role::T1Post))
      roleShown = role::T1Post;
    else if (lesionFlag && w.lesionDifference && w.anatInBaseline.count(w.lesionContrast))
      roleShown = w.lesionContrast;
    const FloatImage * image = w.anatInBaseline.at(roleShown);
    const auto overlays = Overlays(w.masksInBaseline);
    const PointType centre = flag.location ? FromPoint(*flag.location) : report::ImageCenter(image);
    // the scan the flag was measured against (its reference timepoint), shown beside the finding with the same view,
    // so that a reader sees what changed; a scan that failed its registration gate is not shown as aligned
    const Work * reference = nullptr;
    if (const auto it = index.find(flag.referenceTimepoint); it != index.end())
    {
      const Work & r = work[it->second];
      if (&r != &w && r.registrationPassed && r.anatInBaseline.count(roleShown))
        reference = &r;
    }
    for (const auto & [plane, planeName] : std::vector<std::pair<report::Plane, std::string>>{
           { report::Plane::Axial, "axial" }, { report::Plane::Sagittal, "sagittal" } })
    {
      ++figureCount;
      const std::string stem =
        "flag" + std::to_string(figureCount) + "_" + SafeId(flag.timepoint) + "_" + SafeId(flag.code) + "_" + planeName;
      report::SnapshotOptions so;
      so.crosshair = true;
      so.pixelSize = 0.5 * std::min({ image->GetSpacing()[0], image->GetSpacing()[1], image->GetSpacing()[2] });
      // the axial plane zoomed on a located finding (a few-millimetre lesion is a few pixels of a whole head); the
      // sagittal plane shows the whole image for context
      const bool zoom = plane == report::Plane::Axial && flag.location;
      if (zoom)
      {
        so.fieldOfView = kZoomMm;
        so.pixelSize = std::min(so.pixelSize, kZoomMm / 384.0);
      }
      const std::string view = planeName + (zoom ? " " + Fixed(kZoomMm, 0) + " mm around the finding" : std::string());
      auto add = [&](const FloatImage * shown, const std::vector<report::Overlay> & ov, const std::string & name,
                     const std::string & caption, const report::SnapshotOptions & snapshot)
      {
        report::WriteSnapshot(shown, ov, centre, plane, figures / name, force, snapshot);
        content.figures.push_back({ "figures/" + name, caption, flag.timepoint, flag.code });
        flag.evidence.push_back("figures/" + name);
      };
      if (zoom && reference)
        add(reference->anatInBaseline.at(roleShown), Overlays(reference->masksInBaseline), stem + "_reference.png",
            flag.code + " at " + flag.timepoint + ": the reference scan " + reference->tp->id + " (" + view + ", " +
              roleShown + " in baseline space, its own structures; " + kOverlayLegend + ")",
            so);
      add(image, overlays, stem + ".png",
          flag.code + " at " + flag.timepoint + " (" + view + ", " + roleShown + " in baseline space; " +
            kOverlayLegend + ")",
          so);
      // enhancement: the same day before contrast (a focus bright before contrast, fat or blood, does not enhance)
      if (zoom && roleShown == role::T1Post && w.anatInBaseline.count(role::T1))
        add(w.anatInBaseline.at(role::T1), overlays, stem + "_precontrast.png",
            flag.code + " at " + flag.timepoint + ": before contrast (" + view + ", " + std::string(role::T1) +
              " in baseline space; " + kOverlayLegend + ")",
            so);
      if (zoom && lesionFlag && w.lesionDifference)
      {
        report::SnapshotOptions sub = so;
        sub.window = std::array<double, 2>{ -8.0, 8.0 };
        add(w.lesionDifference, overlays, stem + "_subtraction.png",
            flag.code + " at " + flag.timepoint + ": the subtraction image (" + view + ", " + roleShown +
              " later minus earlier in sigmas of their difference, black -8, white +8; " + kOverlayLegend + ")",
            sub);
      }
    }
  }
  // one overview picture per timepoint
  for (std::size_t i = 0; options.snapshots && i < n; ++i)
  {
    const Work & w = work[i];
    if (w.anatInBaseline.empty())
      continue;
    const auto overlays = Overlays(w.masksInBaseline);
    const PointType centre = siteBaseline ? *siteBaseline : report::ImageCenter(space);
    const std::string name = "overview_" + SafeId(w.tp->id) + "_sagittal.png";
    report::SnapshotOptions so;
    const auto sp = w.anatInBaseline.at(w.primaryRole)->GetSpacing();
    so.pixelSize = 0.5 * std::min({ sp[0], sp[1], sp[2] });
    report::WriteSnapshot(w.anatInBaseline.at(w.primaryRole), overlays, centre, report::Plane::Sagittal, figures / name,
                          force, so);
    content.figures.push_back({ "figures/" + name,
                                w.tp->id + ": " + w.primaryRole + " in baseline space (" + kOverlayLegend + ")",
                                w.tp->id, "" });
  }

  // ---------------------------------------------------------------- plots
  std::vector<double> x;
  for (std::size_t i = 0; i < n; ++i)
    x.push_back(data[i].daysSinceTransplant ? *data[i].daysSinceTransplant
                                            : (work[i].tp->days ? *work[i].tp->days : double(i)));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto series = [&](const std::string & name, auto getter)
  {
    report::Series s;
    s.name = name;
    for (const auto & d : data)
      s.values.push_back(getter(d));
    return s;
  };
  const std::string xName = study.transplantDay ? "days since transplant" : "days";
  report::Plot volumes{ "Volumes", "volume [mm^3]", content.timepoints, x, {} };
  {
    // all lesions of each day (a brain's MS plaques, a cord's lesion core), beside the structures the rules follow
    report::Series lesions;
    lesions.name = "lesions (total)";
    for (std::size_t i = 0; i < n; ++i)
      lesions.values.push_back(work[i].primary ? TotalVolume(work[i].lesionMorph) : nan);
    volumes.series.push_back(lesions);
  }
  if (std::any_of(data.begin(), data.end(), [](const auto & d) { return d.mass.has_value(); }))
    volumes.series.push_back(
      series("mass", [&](const safety::TimepointData & d) { return d.mass ? d.mass->volume : nan; }));
  volumes.series.push_back(
    series("edema", [&](const safety::TimepointData & d) { return d.edema ? d.edema->volume : nan; }));
  if (anatomy == "cord")
    volumes.series.push_back(
      series("syrinx", [&](const safety::TimepointData & d) { return d.syrinx ? d.syrinx->volume : nan; }));
  content.plots.push_back(volumes);
  if (anatomy == "cord")
  {
    report::Plot cord{ "Cord AP diameter at the graft site", "AP diameter [mm]", content.timepoints, x, {} };
    cord.series.push_back(
      series("cord AP", [&](const safety::TimepointData & d) { return d.cordAp ? *d.cordAp : nan; }));
    content.plots.push_back(cord);
  }
  if (std::any_of(data.begin(), data.end(), [](const auto & d) { return d.faEpicentre.has_value(); }))
  {
    report::Plot fa{ "Fractional anisotropy around the graft site", "FA", content.timepoints, x, {} };
    fa.series.push_back(
      series("epicentre", [&](const safety::TimepointData & d) { return d.faEpicentre ? *d.faEpicentre : nan; }));
    fa.series.push_back(
      series("rostral", [&](const safety::TimepointData & d) { return d.faRostral ? *d.faRostral : nan; }));
    fa.series.push_back(
      series("caudal", [&](const safety::TimepointData & d) { return d.faCaudal ? *d.faCaudal : nan; }));
    content.plots.push_back(fa);
  }
  (void)xName;

  // ---------------------------------------------------------------- tables and documents
  std::ostringstream tsv;
  tsv << "subject\ttimepoint\tdays_since_transplant\tstructure\tcount\tvolume_mm3\tspd_mm2\tap_mm\tlength_mm\tvalue"
         "\tx_lps\ty_lps\tz_lps\n";
  auto row = [&](const safety::TimepointData & d, const std::string & structure, int count,
                 const std::optional<safety::StructureMeasure> & m, double value)
  {
    tsv << study.subject << '\t' << d.id << '\t' << (d.daysSinceTransplant ? Fixed(*d.daysSinceTransplant, 1) : "n/a")
        << '\t' << structure << '\t' << (count >= 0 ? std::to_string(count) : "n/a") << '\t'
        << (m ? Fixed(m->volume) : "n/a") << '\t' << (m ? Fixed(m->spd) : "n/a") << '\t'
        << (m ? Fixed(m->apDiameter) : "n/a") << '\t' << (m ? Fixed(m->length) : "n/a") << '\t' << Fixed(value, 5);
    if (m && m->location)
      tsv << '\t' << Fixed((*m->location)[0]) << '\t' << Fixed((*m->location)[1]) << '\t' << Fixed((*m->location)[2]);
    else
      tsv << "\tn/a\tn/a\tn/a";
    tsv << '\n';
  };
  nlohmann::json summary;
  summary["subject"] = study.subject;
  summary["anatomy"] = anatomy;
  summary["study"] = ToJson(study);
  if (siteBaseline)
    summary["graft_site_lps"] = ToPoint(*siteBaseline);
  for (std::size_t i = 0; i < n; ++i)
  {
    const auto & d = data[i];
    const Work & w = work[i];
    const double lesionTotal = TotalVolume(w.lesionMorph);
    std::optional<safety::StructureMeasure> total;
    if (w.primary)
      total = MeasureTotal(w.lesionMorph, w.toBaseline);
    row(d, "lesions_total", w.primary ? int(w.lesionMorph.components.size()) : -1, total, lesionTotal);
    row(d, "mass", d.mass ? 1 : 0, d.mass, d.mass ? d.mass->volume : nan);
    if (anatomy == "cord")
      row(d, "syrinx", int(w.syrinxMorph.components.size()), d.syrinx, d.syrinx ? d.syrinx->volume : nan);
    row(d, "edema", int(w.edemaMorph.components.size()), d.edema, d.edema ? d.edema->volume : nan);
    if (w.enhancement)
    {
      double v = 0;
      for (const auto & c : w.enhancement->components)
        v += c.volume;
      row(d, "enhancement", int(w.enhancement->components.size()), std::nullopt, v);
    }
    if (d.cordAp)
      row(d, "cord_ap_at_site", -1, std::nullopt, *d.cordAp);
    if (d.faEpicentre)
      row(d, "fa_epicentre", -1, std::nullopt, *d.faEpicentre);
    if (d.faRostral)
      row(d, "fa_rostral", -1, std::nullopt, *d.faRostral);
    if (d.faCaudal)
      row(d, "fa_caudal", -1, std::nullopt, *d.faCaudal);

    nlohmann::json t;
    t["id"] = d.id;
    if (d.daysSinceTransplant)
      t["days_since_transplant"] = *d.daysSinceTransplant;
    t["primary_contrast"] = w.primaryRole;
    t["registration_passed"] = d.registrationPassed;
    t["acquisition_issues"] = d.acquisitionIssues;
    t["mass"] = MeasureJson(d.mass);
    t["syrinx"] = MeasureJson(d.syrinx);
    t["edema"] = MeasureJson(d.edema);
    t["cord_ap_mm"] = d.cordAp ? nlohmann::json(*d.cordAp) : nlohmann::json(nullptr);
    t["fa"] = { { "epicentre", d.faEpicentre ? nlohmann::json(*d.faEpicentre) : nlohmann::json(nullptr) },
                { "rostral", d.faRostral ? nlohmann::json(*d.faRostral) : nlohmann::json(nullptr) },
                { "caudal", d.faCaudal ? nlohmann::json(*d.faCaudal) : nlohmann::json(nullptr) } };
    t["lesions"] = seg::ToJson(w.lesionMorph);
    nlohmann::json changes = nlohmann::json::array();
    for (const auto & c : d.lesionChanges)
      changes.push_back({ { "kind", c.kind },
                          { "volume_before_mm3", c.volumeBefore },
                          { "volume_after_mm3", c.volumeAfter },
                          { "extension_mm", c.extension },
                          { "location_lps_mm", c.location ? nlohmann::json(*c.location) : nlohmann::json(nullptr) } });
    t["lesion_changes"] = changes;
    if (w.dti)
      t["dti"] = { { "fitted_voxels", w.dti->fittedVoxels }, { "seconds", w.dti->seconds } };
    t["details"] = w.details;
    summary["timepoints"].push_back(t);
    TimepointResult tr;
    tr.id = d.id;
    tr.data = d;
    tr.details = t;
    result.timepoints.push_back(tr);
  }
  for (std::size_t i = 0; i < n; ++i)
    for (const auto & issue : acquisitionIssues[i])
      result.notes.push_back(work[i].tp->id + ": acquisition differs from baseline: " + issue);
  summary["notes"] = result.notes;
  content.notes = result.notes;
  content.notes.insert(content.notes.begin(),
                       "anatomy: " + anatomy +
                         (siteBaseline ? "; graft site (baseline LPS mm): " + Fixed((*siteBaseline)[0], 1) + ", " +
                                           Fixed((*siteBaseline)[1], 1) + ", " + Fixed((*siteBaseline)[2], 1)
                                       : std::string("; no graft site")));
  for (std::size_t i = 1; i < n; ++i)
    if (work[i].registrationQa.is_object())
      content.notes.push_back(work[i].tp->id + ": registration estimated error " +
                              Fixed(work[i].registrationQa.value("estimated_error_mm", nan), 2) + " mm (gate " +
                              (work[i].registrationPassed ? "passed" : "FAILED") + ")");
  content.flags = result.flags;
  content.provenance = std::string("GraftWatch ") + Version() + " (" + GitSha() + ")";

  result.flagsJson = outDir / "flags.json";
  result.measurementsTsv = outDir / "measurements.tsv";
  result.reportHtml = outDir / "report.html";
  result.summaryJson = outDir / "summary.json";
  summary["flags"] = safety::FlagsDocument(result.flags, options.rules, study.subject);
  WriteTextFile(result.flagsJson, safety::FlagsDocument(result.flags, options.rules, study.subject).dump(2) + "\n",
                force);
  WriteTextFile(result.measurementsTsv, tsv.str(), force);
  WriteTextFile(result.summaryJson, summary.dump(2) + "\n", force);
  report::WriteMarkups(result.flags, outDir / "flags.mrk.json", force);
  report::WriteHtmlReport(content, result.reportHtml, force);
  progress.Report(1.0);
  return result;
}
} // namespace gw::followup
