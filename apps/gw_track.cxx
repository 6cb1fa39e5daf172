// gw_track: deterministic tensor tractography (RK4), .tck/.vtk output, fibre statistics, along-tract profile.
#include "gw/cli/app.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/provenance.h"
#include "gw/dti/tensor_fit.h"
#include "gw/dti/tractography.h"
#include "gw/io/image_io.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app(
    { "gw_track", "DTI tractography",
      "Deterministic tensor tractography: from seeds in a mask, streamlines follow the principal eigenvector of the "
      "trilinearly interpolated tensor with 4th-order Runge-Kutta steps in both directions, stopping below an FA "
      "threshold, at a sharp turn, or outside the stopping mask. Include masks must all be visited, a streamline "
      "touching an exclude mask is dropped. Output .tck (MRtrix3, RAS coordinates) or .vtk (legacy polydata in RAS "
      "with the tag SPACE=RAS, as SlicerDMRI fibre bundles; --vtk-lps writes LPS). --profile writes FA/MD/AD/RD at "
      "N equidistant nodes along the consistently oriented streamlines (.json or .tsv). The tensor input is "
      "PREFIX_tensor.nrrd or PREFIX_tensor.nii.gz from gw_dti.",
      "GraftWatch.Diffusion" });
  std::string input, output, vtk, seeds, mask, profile;
  std::vector<std::string> include, exclude;
  double fa = 0.15, angle = 45.0, step = 0.0, minLength = 10.0, maxLength = 500.0;
  int seedsPerVoxel = 1, seed = 1, nodes = 100, threads = 0;
  bool vtkLps = false;
  app.Group("Input/output", "Files");
  app.AddImage(input, "input", "Tensor image from gw_dti (PREFIX_tensor.nrrd or .nii.gz)")
    .Index(0)
    .Required()
    .ImageType("tensor");
  app.AddFile(output, "output", "Tractogram (.tck or .vtk)").Flag("o").Required().Output().Extensions(".tck,.vtk");
  app.AddFile(vtk, "vtk", "Also write a .vtk fibre bundle").Output().Extensions(".vtk");
  app.AddFlag(vtkLps, "vtkLps", "Write .vtk in LPS (SPACE=LPS) instead of RAS").LongFlag("vtk-lps");
  app.AddFile(profile, "profile", "Along-tract profile (.json or .tsv)").Output().Extensions(".json,.tsv");
  app.Group("Regions", "Seeds and constraints");
  app.AddImage(seeds, "seeds", "Seed mask").Required().ImageType("label");
  app.AddImage(mask, "mask", "Stopping mask: tracking stays inside").ImageType("label");
  app.Add(include, "include", "Include masks (comma-separated): every one must be visited");
  app.Add(exclude, "exclude", "Exclude masks (comma-separated): streamlines touching one are dropped");
  app.Group("Tracking", "Parameters");
  app.Add(seedsPerVoxel, "seedsPerVoxel", "Seeds per seed voxel (1: centre; more: deterministic jitter)")
    .LongFlag("seeds-per-voxel")
    .Range(1, 1000, 1);
  app.Add(seed, "seed", "Jitter random seed").Range(0, 1000000, 1);
  app.Add(fa, "faThreshold", "Stop below this FA").LongFlag("fa-threshold").Range(0, 1, 0.01);
  app.Add(angle, "angle", "Stop when turning more than this per step").Units("degrees").Range(1, 90, 1);
  app.Add(step, "step", "RK4 step (0: half the smallest voxel spacing)").Units("mm").Range(0, 10, 0.1);
  app.Add(minLength, "minLength", "Discard shorter streamlines").LongFlag("min-length").Units("mm").Range(0, 1000, 1);
  app.Add(maxLength, "maxLength", "Stop streamlines at this length")
    .LongFlag("max-length")
    .Units("mm")
    .Range(1, 5000, 1);
  app.Add(nodes, "nodes", "Nodes of the along-tract profile").Range(2, 1000, 1);
  app.Add(threads, "threads", "Worker threads (0: all cores)").Range(0, 256, 1);
  app.AddReturn("streamlines", "Number of streamlines", gw::cli::Kind::Integer);
  app.AddReturn("meanLength", "Mean streamline length [mm]");

  return app.Run(
    argc, argv,
    [&](gw::cli::Context & ctx)
    {
      auto & prov = ctx.GetProvenance();
      prov.AddInput("tensor", input);
      prov.AddInput("seeds", seeds);
      const gw::TensorImage::Pointer tensor = gw::dti::ReadTensorImage(input);
      const gw::MaskImage::Pointer seedMask = gw::io::ReadMask(seeds);
      gw::MaskImage::Pointer stopMask;
      if (!mask.empty())
      {
        prov.AddInput("mask", mask);
        stopMask = gw::io::ReadMask(mask);
      }
      std::vector<gw::MaskImage::Pointer> held;
      gw::dti::TrackingRegions regions;
      regions.seeds = seedMask;
      regions.stopMask = stopMask.GetPointer();
      for (const auto & f : include)
      {
        prov.AddInput("include", f);
        held.push_back(gw::io::ReadMask(f));
        regions.include.push_back(held.back());
      }
      for (const auto & f : exclude)
      {
        prov.AddInput("exclude", f);
        held.push_back(gw::io::ReadMask(f));
        regions.exclude.push_back(held.back());
      }
      gw::dti::TrackingOptions options;
      options.seedsPerVoxel = static_cast<unsigned int>(seedsPerVoxel);
      options.seed = static_cast<std::uint64_t>(seed);
      options.faThreshold = fa;
      options.angleDegrees = angle;
      options.stepMm = step;
      options.minLengthMm = minLength;
      options.maxLengthMm = maxLength;
      options.threads = static_cast<unsigned int>(threads);
      const gw::dti::Tractogram tracts = gw::dti::TrackTensors(tensor, regions, options);
      const gw::dti::TractogramStats stats = gw::dti::ComputeStats(tracts);
      gw::dti::ScalarMaps maps;
      if (!vtk.empty() || !profile.empty() || gw::SplitExtension(output).second == ".vtk")
        maps = gw::dti::ComputeScalarMaps(tensor);
      if (gw::SplitExtension(output).second == ".vtk")
        gw::dti::WriteVtk(tracts, output, ctx.Force(), vtkLps, maps.fa);
      else if (gw::SplitExtension(output).second == ".tck")
        gw::dti::WriteTck(tracts, output, ctx.Force());
      else
        gw::ThrowUsage("the tractogram must end in .tck or .vtk: " + output);
      if (!vtk.empty())
        gw::dti::WriteVtk(tracts, vtk, ctx.Force(), vtkLps, maps.fa);
      if (!profile.empty())
        gw::dti::WriteTractProfile(gw::dti::AlongTractProfile(tracts, maps, static_cast<unsigned int>(nodes)), profile,
                                   ctx.Force());
      prov.extra["streamlines"] = stats.count;
      prov.extra["length_mm"] = { { "mean", stats.meanLengthMm },
                                  { "sd", stats.sdLengthMm },
                                  { "min", stats.minLengthMm },
                                  { "median", stats.medianLengthMm },
                                  { "max", stats.maxLengthMm } };
      gw::WriteProvenance(output, prov, ctx.Force());
      ctx.SetReturn("streamlines", static_cast<double>(stats.count));
      ctx.SetReturn("meanLength", stats.meanLengthMm);
      gw::log::Info(gw::log::Cat(stats.count, " streamlines, length mean ", stats.meanLengthMm, " mm (sd ",
                                 stats.sdLengthMm, ", min ", stats.minLengthMm, ", max ", stats.maxLengthMm, ")"));
    });
}
