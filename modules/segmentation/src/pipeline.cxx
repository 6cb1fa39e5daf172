// gw_segment tasks at file level: inputs, external masks, segmentation, morphometry, outputs with provenance.
#include <numeric>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/io/image_io.h"
#include "gw/segmentation/brain.h"
#include "gw/segmentation/cord.h"
#include "gw/segmentation/lesion.h"
#include "gw/segmentation/morphometry.h"
#include "gw/segmentation/pipeline.h"

namespace gw::segmentation
{
namespace
{
struct Writer
{
  const TaskOptions & o;
  Provenance & prov;
  nlohmann::json & files;
  template <typename TImage>
  void Image(const TImage * img, const std::string & suffix, const std::string & role)
  {
    const fs::path p = o.prefix + suffix;
    io::WriteImage(img, p, o.force);
    WriteProvenance(p, prov, o.force);
    files[role] = p.string();
  }
  void Text(const std::string & text, const std::string & suffix, const std::string & role)
  {
    const fs::path p = o.prefix + suffix;
    WriteTextFile(p, text, o.force);
    files[role] = p.string();
  }
};

FloatImage::Pointer
Read(const std::string & path, const std::string & role, Provenance & prov)
{
  prov.AddInput(role, path);
  return WithContext(
    "while reading " + role + " " + path, [&] { return io::ReadFloatImage(path); }, ErrorKind::Input);
}

MaskImage::Pointer
ReadMaskOn(const std::string & path, const std::string & role, const FloatImage * ref, Provenance & prov)
{
  prov.AddInput(role, path);
  auto m = WithContext(
    "while reading " + role + " " + path, [&] { return io::ReadMask(path); }, ErrorKind::Input);
  if (!SameGrid(m, ref))
    log::Info(log::Cat(role, ": grid differs from the image, resampled (nearest neighbour)"));
  return ResampleMaskNearest(m, ref);
}

std::optional<PointType>
Seed(const TaskOptions & o)
{
  if (o.seed.empty())
    return std::nullopt;
  if (o.seed.size() != 3)
    ThrowUsage("--seed needs three values x,y,z (LPS, mm)");
  PointType p;
  for (unsigned d = 0; d < 3; ++d)
    p[d] = o.seed[d];
  return p;
}

/// Cord mask from --cord-mask or computed on `image` (written as _cord.nii.gz when computed).
MaskImage::Pointer
Cord(const TaskOptions & o, const FloatImage * image, CordContrast contrast, Provenance & prov, Writer & out,
     nlohmann::json & summary, bool seedForCord)
{
  if (!o.cordMask.empty())
    return ReadMaskOn(o.cordMask, "cord mask", image, prov);
  CordParams cp;
  cp.contrast = contrast;
  if (seedForCord)
    cp.seed = Seed(o);
  if (!o.centerline.empty())
  {
    prov.AddInput("centerline", o.centerline);
    cp.centerline = ReadCenterline(o.centerline);
  }
  ReportProgress(0.1, "cord");
  const CordResult r = SegmentCord(image, cp);
  out.Image(r.mask.GetPointer(), "_cord.nii.gz", "cord");
  out.Image(r.centerlineMask.GetPointer(), "_centerline.nii.gz", "centerline_mask");
  WriteCenterlineJson(r.centerline, o.prefix + "_centerline.json", o.force);
  out.files["centerline"] = o.prefix + "_centerline.json";
  summary["cord_slices"] = r.centerline.size();
  return r.mask;
}

void
Measure(const LesionResult & r, const MaskImage * cord, const std::string & kind, Writer & out,
        nlohmann::json & summary)
{
  out.Image(r.mask.GetPointer(), "_" + kind + ".nii.gz", kind);
  out.Image(r.labels.GetPointer(), "_" + kind + "_labels.nii.gz", kind + "_labels");
  const Morphometry m = ComputeMorphometry(r.labels, cord, kind);
  nlohmann::json j = ToJson(m);
  j["tissue_median"] = r.tissueMedian;
  j["tissue_sigma"] = r.tissueSigma;
  j["seed_threshold"] = r.seedThreshold;
  j["grow_threshold"] = r.growThreshold;
  out.Text(j.dump(2) + "\n", "_morphometry.json", "morphometry");
  out.Text(ComponentsToTsv(m), "_morphometry.tsv", "morphometry_tsv");
  if (!m.cord.empty())
    out.Text(CordToTsv(m), "_cord_morphometry.tsv", "cord_morphometry_tsv");
  double total = 0;
  for (const auto & c : m.components)
    total += c.volume;
  summary["components"] = m.components.size();
  summary["total_volume [mm3]"] = total;
  nlohmann::json list = nlohmann::json::array();
  for (const auto & c : m.components)
    list.push_back({ { "label", c.label },
                     { "volume [mm3]", c.volume },
                     { "length [mm]", c.length },
                     { "centroid_lps [mm]", { c.centroid[0], c.centroid[1], c.centroid[2] } } });
  summary["component_list"] = list;
}
} // namespace

const std::vector<std::string> &
TaskOutputSuffixes()
{
  static const std::vector<std::string> s = []
  {
    const std::vector<std::string> images = {
      "_cord",        "_centerline",         "_lesion",        "_lesion_labels", "_syrinx",       "_syrinx_labels",
      "_enhancement", "_enhancement_labels", "_enhancement_z", "_edema",         "_edema_labels", "_brain"
    };
    std::vector<std::string> all;
    for (const auto & i : images)
    {
      all.push_back(i + ".nii.gz");
      all.push_back(i + ".provenance.json");
    }
    for (const char * t : { "_centerline.json", "_morphometry.json", "_morphometry.tsv", "_cord_morphometry.tsv" })
      all.emplace_back(t);
    return all;
  }();
  return s;
}

nlohmann::json
RunTask(const TaskOptions & o, Provenance & prov)
{
  if (o.prefix.empty())
    ThrowUsage("an output prefix (-o) is required");
  nlohmann::json summary, files;
  summary["task"] = o.task;
  Writer out{ o, prov, files };
  if (o.task == "cord")
  {
    if (o.t2.empty() == o.t1.empty())
      ThrowUsage("cord: give exactly one of --t2 or --t1");
    const auto img = Read(o.t2.empty() ? o.t1 : o.t2, o.t2.empty() ? "t1" : "t2", prov);
    CordContrast contrast = o.t2.empty() ? CordContrast::T1 : CordContrast::T2;
    if (o.contrast == "t1")
      contrast = CordContrast::T1;
    else if (o.contrast == "t2")
      contrast = CordContrast::T2;
    const auto cord = Cord(o, img, contrast, prov, out, summary, true);
    Morphometry m;
    m.kind = "cord";
    m.axes = GetAnatomicalAxes(cord);
    m.cord = ComputeCordMorphometry(cord);
    out.Text(ToJson(m).dump(2) + "\n", "_morphometry.json", "morphometry");
    out.Text(CordToTsv(m), "_cord_morphometry.tsv", "cord_morphometry_tsv");
    double vol = double(CountNonZero(cord));
    for (unsigned d = 0; d < 3; ++d)
      vol *= cord->GetSpacing()[d];
    summary["total_volume [mm3]"] = vol;
    summary["components"] = 1;
  }
  else if (o.task == "lesion")
  {
    const bool t1Mode = o.hypointense || (o.t2.empty() && o.flair.empty() && !o.t1.empty());
    const std::string path = t1Mode ? o.t1 : (!o.t2.empty() ? o.t2 : o.flair);
    if (path.empty())
      ThrowUsage("lesion: give --t2 or --flair (hyperintense) or --t1 (hypointense)");
    const auto img = Read(path, t1Mode ? "t1" : (!o.t2.empty() ? "t2" : "flair"), prov);
    const auto cord = Cord(o, img, t1Mode ? CordContrast::T1 : CordContrast::T2, prov, out, summary, false);
    LesionResult r;
    if (!o.lesionMask.empty())
    {
      const auto m = ReadMaskOn(o.lesionMask, "lesion mask", img, prov);
      r.labels = LabelComponents(m, 1, 0.0, &r.components);
      r.mask = LabelsToMask(r.labels);
    }
    else
    {
      LesionParams lp;
      lp.hypointense = t1Mode;
      if (o.k > 0)
        lp.kSeed = o.k;
      lp.minVolume = o.minVolume;
      lp.seed = Seed(o);
      ReportProgress(0.6, "lesion");
      r = SegmentLesions(img, cord, lp);
    }
    Measure(r, cord, "lesion", out, summary);
  }
  else if (o.task == "syrinx")
  {
    if (o.t2.empty())
      ThrowUsage("syrinx: --t2 is required (--t1 optional, same grid)");
    const auto img = Read(o.t2, "t2", prov);
    FloatImage::Pointer t1;
    if (!o.t1.empty())
      t1 = Read(o.t1, "t1", prov);
    const auto cord = Cord(o, img, CordContrast::T2, prov, out, summary, true);
    MaskImage::Pointer excl;
    if (!o.lesionMask.empty())
      excl = ReadMaskOn(o.lesionMask, "lesion mask", img, prov);
    SyrinxParams sp;
    sp.minVolume = o.minVolume;
    if (o.k > 0)
      sp.kSeed = o.k;
    ReportProgress(0.6, "syrinx");
    const auto r = SegmentSyrinx(img, t1, cord, excl, sp);
    Measure(r, cord, "syrinx", out, summary);
  }
  else if (o.task == "enhancement")
  {
    if (o.t1.empty() || o.t1Post.empty())
      ThrowUsage("enhancement: --t1 (pre) and --t1-post (registered post contrast) are required");
    const auto pre = Read(o.t1, "t1", prov);
    const auto post = Read(o.t1Post, "t1 post", prov);
    MaskImage::Pointer tissue;
    if (!o.cordMask.empty())
      tissue = ReadMaskOn(o.cordMask, "tissue mask", pre, prov);
    EnhancementParams ep;
    ep.minVolume = o.minVolume;
    if (o.k > 0)
      ep.kSeed = o.k;
    ReportProgress(0.3, "enhancement");
    const auto r = SegmentEnhancement(pre, post, tissue, ep);
    out.Image(r.zMap.GetPointer(), "_enhancement_z.nii.gz", "enhancement_z");
    Measure(r, tissue, "enhancement", out, summary);
  }
  else if (o.task == "edema")
  {
    const std::string path = !o.flair.empty() ? o.flair : o.t2;
    if (path.empty() || o.lesionMask.empty())
      ThrowUsage("edema: --flair or --t2 and --lesion-mask (lesion or graft site) are required");
    const auto img = Read(path, o.flair.empty() ? "t2" : "flair", prov);
    const auto lesion = ReadMaskOn(o.lesionMask, "lesion mask", img, prov);
    MaskImage::Pointer tissue;
    if (!o.cordMask.empty())
      tissue = ReadMaskOn(o.cordMask, "tissue mask", img, prov);
    EdemaParams ep;
    ep.distance = o.distance;
    ep.minVolume = o.minVolume;
    if (o.k > 0)
      ep.kSeed = o.k;
    ReportProgress(0.3, "edema");
    const auto r = SegmentEdema(img, tissue, lesion, ep);
    Measure(r, tissue, "edema", out, summary);
  }
  else if (o.task == "brain")
  {
    const std::string path = !o.t1.empty() ? o.t1 : (!o.t2.empty() ? o.t2 : o.flair);
    if (path.empty())
      ThrowUsage("brain: give --t1, --t2 or --flair");
    const auto img = Read(path, !o.t1.empty() ? "t1" : (!o.t2.empty() ? "t2" : "flair"), prov);
    BrainParams bp;
    bp.fractionalThreshold = o.fractionalThreshold;
    ReportProgress(0.2, "brain");
    const auto r = ExtractBrain(img, bp);
    out.Image(r.mask.GetPointer(), "_brain.nii.gz", "brain");
    summary["components"] = 1;
    summary["total_volume [mm3]"] = r.volume;
    summary["brain"] = { { "centre_lps [mm]", { r.centre[0], r.centre[1], r.centre[2] } },
                         { "initial_radius [mm]", r.initialRadius },
                         { "t2", r.t2 },
                         { "t98", r.t98 },
                         { "threshold", r.threshold },
                         { "tissue_median", r.tissueMedian },
                         { "fractional_threshold", bp.fractionalThreshold } };
  }
  else
    ThrowUsage("unknown task '" + o.task + "' (cord, lesion, syrinx, enhancement, edema, brain)");
  ReportProgress(1.0, "done");
  summary["files"] = files;
  return summary;
}
} // namespace gw::segmentation
