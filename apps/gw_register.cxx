// gw_register: longitudinal registration with a quality gate, and DWI motion correction (--dwi).
#include <nlohmann/json.hpp>

#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/provenance.h"
#include <optional>

#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"
#include "gw/io/transform_io.h"
#include "gw/registration/motion.h"
#include "gw/registration/registration.h"

namespace reg = gw::registration;

int
main(int argc, char ** argv)
{
  gw::cli::App app(
    { "gw_register", "Registration with a quality gate",
      "Registers a moving image to a fixed image (rigid, then affine, then optional B-spline; Mattes mutual "
      "information or correlation; multi-resolution) with cost-function masks and an exclude mask (lesion, graft, "
      "syrinx). Writes PREFIX_transform.h5 (ITK, fixed to moving, loads in 3D Slicer), PREFIX_warped.nii.gz (moving "
      "on the fixed grid, or both images in halfway space with --halfway: PREFIX_fixed_halfway.nii.gz and "
      "PREFIX_warped.nii.gz) and PREFIX_qa.json (metric, inverse-consistency error [mm], estimated error, "
      "pass/fail gate). The gate fails when the estimated error (inverse-consistency error / sqrt 2) exceeds "
      "--gate-voxels voxels (geometric-mean fixed voxel size) or less than half the fixed mask overlaps the moving "
      "image; the outputs are still written and the exit code is 4 unless --ignore-gate. With --dwi, motion "
      "correction of a DWI instead: each volume rigidly to the mean b0 (in-plane motion to per-shell templates for "
      "thick slices, see --motion-model), b-vectors rotated; writes PREFIX_dwi.nii.gz "
      "(+ .bval/.bvec), PREFIX_motion.json and PREFIX_motion.tsv.",
      "GraftWatch.Registration" });
  std::string fixed, moving, prefix, fixedMask, movingMask, excludeMask, movingExcludeMask, dwi,
    type = "rigid", motionModel = "auto", bval, bvec;
  std::string metric = "mattes", init = "moments", interpolation = "linear";
  bool halfway = false, ignoreGate = false, noInverse = false, fast = false;
  double gateVoxels = 1.0, sampling = 0.15;
  app.Group("Input/output", "Images and output prefix");
  app.AddImage(fixed, "fixed", "Fixed (reference, e.g. baseline) image").LongFlag("fixed");
  app.AddImage(moving, "moving", "Moving (e.g. follow-up) image").LongFlag("moving");
  app.AddImage(dwi, "dwi", "DWI to motion-correct instead (NRRD DWMRI or NIfTI 4D with .bval/.bvec)")
    .LongFlag("dwi")
    .ImageType("diffusion-weighted");
  app.AddFile(bval, "bval", "With --dwi: FSL b-values (default: the DWI with .bval)").Extensions(".bval,.txt");
  app.AddFile(bvec, "bvec", "With --dwi: FSL b-vectors (default: the DWI with .bvec)").Extensions(".bvec,.txt");
  app.AddFile(prefix, "output", "Output prefix")
    .Flag("o")
    .LongFlag("output")
    .Required()
    .Output(gw::cli::OutputKind::Prefix)
    .OutputSuffixes({ "_transform.h5", "_warped.nii.gz", "_qa.json", "_fixed_halfway.nii.gz", "_dwi.nii.gz",
                      "_dwi.bval", "_dwi.bvec", "_motion.json", "_motion.tsv" });
  app.Group("Masks", "Cost-function masks (non-zero = inside)");
  app.AddImage(fixedMask, "fixedMask", "Fixed-image cost mask (for --dwi: mask on the DWI grid)")
    .LongFlag("fixed-mask")
    .ImageType("label");
  app.AddImage(movingMask, "movingMask", "Moving-image cost mask").LongFlag("moving-mask").ImageType("label");
  app.AddImage(excludeMask, "excludeMask", "Region removed from the cost (lesion, graft, syrinx) on the fixed grid")
    .LongFlag("exclude-mask")
    .ImageType("label");
  app.AddImage(movingExcludeMask, "movingExcludeMask", "Region removed from the cost on the moving grid")
    .LongFlag("moving-exclude-mask")
    .ImageType("label");
  app.Group("Registration", "Transform, metric and optimisation");
  app.AddEnum(type, "type", "Transform: rigid, affine (rigid then affine), bspline (then B-spline)",
              { "rigid", "affine", "bspline" });
  app.AddEnum(metric, "metric", "Similarity: mattes (mutual information) or correlation", { "mattes", "correlation" });
  app.AddEnum(init, "init", "Initialization: moments, geometry or none", { "moments", "geometry", "none" });
  app.Add(sampling, "sampling", "Fraction of fixed voxels sampled per level").Range(0.001, 1.0);
  app.AddFlag(halfway, "halfway", "Resample both images into a halfway (symmetric) space");
  app.AddEnum(interpolation, "interpolation", "Interpolation of the warped image", { "linear", "bspline" });
  app
    .AddEnum(motionModel, "motionModel",
             "With --dwi: motion model; auto uses inplane (shifts in the slice plane and rotation about the slice "
             "normal, per-shell templates) when slices are more than twice as thick as the in-plane spacing, "
             "rigid3d otherwise",
             { "auto", "rigid3d", "inplane" })
    .LongFlag("motion-model");
  app.AddFlag(fast, "fast", "Multi-threaded (results may differ in the last digits between machines)");
  app.Group("Quality gate", "Pass/fail decision");
  app.Add(gateVoxels, "gateVoxels", "Maximum estimated error in voxels")
    .LongFlag("gate-voxels")
    .Range(0.01, 100.0)
    .Units("voxel");
  app.AddFlag(noInverse, "noInverseConsistency", "Skip the backward registration (gate then checks overlap only)")
    .LongFlag("no-inverse-consistency");
  app.AddFlag(ignoreGate, "ignoreGate", "Exit 0 even when the gate fails (a warning is logged)")
    .LongFlag("ignore-gate");
  app.AddReturn("estimatedErrorMm", "Estimated registration error [mm]");
  app.AddReturn("gatePassed", "1 when the quality gate passed", gw::cli::Kind::Integer);

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   auto & prov = ctx.GetProvenance();
                   const bool force = ctx.Force();
                   auto readMask = [&](const std::string & path, const char * role) -> gw::MaskImage::Pointer
                   {
                     if (path.empty())
                       return nullptr;
                     prov.AddInput(role, path);
                     return gw::io::ReadMask(path);
                   };
                   reg::RegistrationOptions o;
                   o.type = reg::ParseTransformKind(type);
                   o.metric = reg::ParseMetricKind(metric);
                   o.init = reg::ParseInitialization(init);
                   o.samplingPercentage = sampling;
                   o.halfway = halfway;
                   o.deterministic = !fast;
                   o.inverseConsistency = !noInverse;
                   o.maxEstimatedErrorVoxels = gateVoxels;
                   if (!dwi.empty())
                   {
                     if (!fixed.empty() || !moving.empty())
                       gw::ThrowUsage("--dwi cannot be combined with --fixed/--moving");
                     prov.AddInput("dwi", dwi);
                     if (!bval.empty())
                       prov.AddInput("bval", bval);
                     if (!bvec.empty())
                       prov.AddInput("bvec", bvec);
                     std::optional<gw::fs::path> bv, bc;
                     if (!bval.empty())
                       bv = bval;
                     if (!bvec.empty())
                       bc = bvec;
                     const gw::io::Dwi in = gw::io::ReadDwi(dwi, bv, bc);
                     const auto mask = readMask(fixedMask, "mask");
                     reg::DwiMotionOptions mo;
                     mo.registration = o;
                     mo.mask = mask;
                     mo.model = motionModel == "inplane"   ? reg::MotionModel::InPlane
                                : motionModel == "rigid3d" ? reg::MotionModel::Rigid3D
                                                           : reg::MotionModel::Auto;
                     const reg::DwiMotionResult r = reg::MotionCorrectDwi(in, mo);
                     gw::io::WriteDwi(r.corrected, prefix + "_dwi.nii.gz", force);
                     const nlohmann::json report = reg::ToJson(r);
                     gw::WriteTextFile(prefix + "_motion.json", report.dump(2) + "\n", force);
                     gw::WriteTextFile(prefix + "_motion.tsv", reg::ToTsv(r), force);
                     prov.extra["motion"] = { { "outliers", r.outliers }, { "mean_fd_mm", r.meanFdMm } };
                     gw::WriteProvenance(prefix + "_dwi.nii.gz", prov, force);
                     gw::log::Info(gw::log::Cat("motion correction: ", r.volumes.size(), " volumes, mean FD ",
                                                r.meanFdMm, " mm, ", r.outliers, " outlier(s)"));
                     return;
                   }
                   if (fixed.empty() || moving.empty())
                     gw::ThrowUsage("give --fixed and --moving (or --dwi)");
                   prov.AddInput("fixed", fixed);
                   prov.AddInput("moving", moving);
                   const auto f = gw::io::ReadFloatImage(fixed);
                   const auto m = gw::io::ReadFloatImage(moving);
                   const auto fm = readMask(fixedMask, "fixed mask");
                   const auto mm = readMask(movingMask, "moving mask");
                   const auto ex = readMask(excludeMask, "exclude mask");
                   const auto mex = readMask(movingExcludeMask, "moving exclude mask");
                   o.fixedMask = fm;
                   o.movingMask = mm;
                   o.fixedExcludeMask = ex;
                   o.movingExcludeMask = mex;
                   const reg::RegistrationResult r = reg::Register(f, m, o);
                   const auto interp = reg::ParseInterpolation(interpolation);
                   gw::io::WriteTransform(reg::Simplify(r.transform), prefix + "_transform.h5", force);
                   if (halfway)
                   {
                     gw::io::WriteImage(reg::Resample(m, r.halfwayReference, r.halfwayToMoving, interp),
                                        prefix + "_warped.nii.gz", force);
                     gw::io::WriteImage(reg::Resample(f, r.halfwayReference, r.halfwayToFixed, interp),
                                        prefix + "_fixed_halfway.nii.gz", force);
                     gw::WriteProvenance(prefix + "_fixed_halfway.nii.gz", prov, force);
                   }
                   else
                     gw::io::WriteImage(reg::Resample(m, f, r.transform, interp), prefix + "_warped.nii.gz", force);
                   nlohmann::json qa = reg::ToJson(r.qa);
                   qa["type"] = type;
                   qa["transform_convention"] = "maps fixed (LPS mm) points to moving points; resample moving with it";
                   gw::WriteTextFile(prefix + "_qa.json", qa.dump(2) + "\n", force);
                   prov.extra["qa"] = qa;
                   gw::WriteProvenance(prefix + "_warped.nii.gz", prov, force);
                   ctx.SetReturn("estimatedErrorMm", r.qa.estimatedErrorMm);
                   ctx.SetReturn("gatePassed", r.qa.gate.passed ? 1.0 : 0.0);
                   if (!r.qa.gate.passed)
                   {
                     std::string why;
                     for (const auto & s : r.qa.gate.failures)
                       why += (why.empty() ? "" : "; ") + s;
                     if (ignoreGate)
                       gw::log::Warning("quality gate failed (ignored): " + why);
                     else
                       gw::ThrowProcessing("quality gate failed: " + why +
                                           " (outputs written; --ignore-gate to exit 0)");
                   }
                 });
}
