// gw_segment: spinal cord, lesion, syrinx, contrast enhancement, edema and brain segmentation with morphometry.
#include <iostream>

#include "gw/cli/app.h"
#include "gw/segmentation/pipeline.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app(
    { "gw_segment", "Segment cord, lesion, syrinx, enhancement, edema, brain",
      "Segments the spinal cord (automatic centerline + per-slice active contour on T2 or T1, sagittal or axial), "
      "T2/FLAIR-hyperintense or T1-hypointense lesions inside the cord (robust statistics of normal-appearing "
      "tissue, hysteresis, connected components), a syrinx (CSF-like elongated intramedullary cavity), contrast "
      "enhancement (registered T1 post minus pre, clusters >= 3 voxels and >= --min-volume mm^3) and edema around a "
      "lesion or graft site, and the brain (intracranial) mask of a head image by BET's deformable surface (Smith "
      "2002; T1, T2 or FLAIR). External masks (SCT, 3D Slicer) replace any computed mask (non-zero = inside, resampled "
      "nearest neighbour to the image grid). Writes masks (.nii.gz) with provenance, per-component morphometry "
      "(<prefix>_morphometry.json/.tsv, metric names of SCT's sct_analyze_lesion where they overlap) and per-slice "
      "cord cross-sectional area (<prefix>_cord_morphometry.tsv). A JSON summary is printed on stdout.",
      "GraftWatch.Segmentation" });
  gw::segmentation::TaskOptions o;
  app.Group("Task", "What to segment and where to write");
  app.AddEnum(o.task, "task", "What to segment", { "cord", "lesion", "syrinx", "enhancement", "edema", "brain" })
    .Index(0)
    .Required();
  app
    .Add(o.prefix, "output",
         "Output prefix: <prefix>_cord.nii.gz, <prefix>_lesion.nii.gz, <prefix>_morphometry.json, ...")
    .Flag("o")
    .Required()
    .Output(gw::cli::OutputKind::Prefix)
    .OutputSuffixes(gw::segmentation::TaskOutputSuffixes());
  app.Group("Images", "Input images (co-registered when several are given)");
  app.AddImage(o.t2, "t2", "T2-weighted image (cord, lesion, syrinx, edema)").Input();
  app
    .AddImage(o.t1, "t1",
              "T1-weighted image (cord, T1-hypointense lesion, syrinx check); T1 pre-contrast for "
              "enhancement")
    .Input();
  app.AddImage(o.t1Post, "t1Post", "T1 post-contrast, registered to --t1 (enhancement)").LongFlag("t1-post").Input();
  app.AddImage(o.flair, "flair", "FLAIR image (lesion, edema)").Input();
  app.Group("Masks and guidance", "External masks and hints");
  app.AddImage(o.cordMask, "cordMask", "Cord (or brain/tissue) mask used instead of computing it (SCT, Slicer)")
    .LongFlag("cord-mask")
    .ImageType("label")
    .Input();
  app
    .AddImage(o.lesionMask, "lesionMask",
              "Lesion mask: used instead of computing (lesion), excluded from the syrinx, or the lesion/graft site "
              "(edema)")
    .LongFlag("lesion-mask")
    .ImageType("label")
    .Input();
  app
    .AddFile(o.centerline, "centerline",
             "Cord centerline: JSON LPS points [mm] or a centerline image (e.g. SCT *_centerline.nii.gz)")
    .Extensions(".json,.nii.gz,.nii,.nrrd,.mha")
    .Input();
  app.AddPoint(o.seed, "seed", "A point inside the cord (cord) or the lesion (lesion, seeded mode), LPS").Units("mm");
  app.Group("Options", "Thresholds", true);
  app.AddEnum(o.contrast, "contrast",
              "Cord contrast: auto (T2 when --t2 is given), t2 (dark cord in bright CSF), "
              "t1 (bright cord in dark CSF)",
              { "auto", "t2", "t1" });
  app.AddFlag(o.hypointense, "hypointense", "Lesion: T1-hypointense lesions on --t1 instead of hyperintense");
  app
    .Add(o.k, "k",
         "Seed threshold in robust standard deviations of normal tissue (0 = task default: lesion 4, "
         "syrinx 4, enhancement 5, edema 3)")
    .Range(0, 50);
  app.Add(o.distance, "distance", "Edema search band around the lesion/graft").Units("mm").Range(0, 100);
  app
    .Add(o.fractionalThreshold, "fractionalThreshold",
         "Brain: BET's fractional intensity threshold (smaller gives a larger brain)")
    .LongFlag("fractional-threshold")
    .Range(0.01, 0.99);
  app.Add(o.minVolume, "minVolume", "Smallest component kept").LongFlag("min-volume").Units("mm^3").Range(0, 1e6);
  app.AddReturn("components", "Number of components (lesions, clusters)", gw::cli::Kind::Integer);
  app.AddReturn("totalVolume", "Total volume of the segmentation [mm^3]");

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   o.force = ctx.Force();
                   const nlohmann::json summary = gw::segmentation::RunTask(o, ctx.GetProvenance());
                   std::cout << summary.dump(2) << "\n";
                   ctx.SetReturn("components", summary.value("components", 0.0));
                   ctx.SetReturn("totalVolume", summary.value("total_volume [mm3]", 0.0));
                 });
}
