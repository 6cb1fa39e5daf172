// gw_dti: diffusion tensor fit (OLS, WLS, NLLS, robust), scalar maps, gradient-table check, cord metrics.
#include <chrono>
#include <ctime>
#include <future>

#include <nlohmann/json.hpp>

#include "gw/cli/app.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/provenance.h"
#include "gw/dti/cord_profile.h"
#include "gw/dti/gradient_check.h"
#include "gw/dti/tensor_fit.h"
#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app(
    { "gw_dti", "DTI tensor fit",
      "Fits diffusion tensors to a DWI (NIfTI 4D with FSL .bval/.bvec, or NRRD DWMRI) and writes PREFIX_FA, _MD, "
      "_AD, _RD [mm^2/s], _S0, _meanb0, _mask, _V1 (principal eigenvector, LPS components), _colourFA, the tensor "
      "as NIfTI (intent SYMMATRIX, lower triangle Dxx,Dxy,Dyy,Dxz,Dyz,Dzz on disk, LPS frame) and as NRRD for 3D "
      "Slicer (--maps selects a subset), and PREFIX_dti.json (fit summary). b <= 50 s/mm^2 counts as b0. Without "
      "--mask an automatic mask is "
      "made (Otsu on the mean b0, largest component, holes filled). The default fit is iterated WLS with 2 "
      "iterations, as MRtrix3 dwi2tensor. --check-gradients tries every axis permutation and flip of the b-vectors "
      "and warns when another table gives more coherent fibres (as MRtrix3 dwigradcheck). With --cord and "
      "--epicentre, FA/MD/AD/RD per slice and in epicentre/rostral/caudal bands go to PREFIX_cord_profile.json/.tsv.",
      "GraftWatch.Diffusion" });
  std::string input, output, bval, bvec, mask, fit = "wls", wlsStart = "signal", cord, maps = "all";
  int wlsIterations = 2, threads = 0;
  double b0Threshold = 50.0, robustSigma = 0.0, robustK = 3.0, band = 10.0;
  bool checkGradients = false, fixGradients = false;
  std::vector<double> epicentre;
  app.Group("Input/output", "Files");
  app.AddImage(input, "input", "Diffusion-weighted series (.nii/.nii.gz with .bval/.bvec, or NRRD DWMRI)")
    .Index(0)
    .Required()
    .ImageType("diffusion-weighted");
  app.AddFile(bval, "bval", "FSL b-values (default: input with .bval)").Extensions(".bval,.txt");
  app.AddFile(bvec, "bvec", "FSL b-vectors (default: input with .bvec)").Extensions(".bvec,.txt");
  auto suffixes = gw::dti::DtiOutputSuffixes();
  for (const char * s : { "_dti.json", "_cord_profile.json", "_cord_profile.tsv" })
    suffixes.emplace_back(s);
  app.Add(output, "output", "Output prefix: PREFIX_FA.nii.gz, PREFIX_MD.nii.gz, ...")
    .Flag("o")
    .Required()
    .Output(gw::cli::OutputKind::Prefix)
    .OutputSuffixes(suffixes);
  app.AddImage(mask, "mask", "Fit only inside this mask (default: automatic mask)").ImageType("label");
  app.Add(maps, "maps",
          "Maps to write, comma-separated: all, or any of fa, md, ad, rd, s0, meanb0, mask, v1, colourfa, tensor "
          "(NIfTI), tensor-nrrd");
  app.Group("Fit", "Tensor estimation");
  app.AddEnum(fit, "fit",
              "Estimator: ols, wls (iterated weighted), nlls (Levenberg-Marquardt, positive definite), "
              "robust (RESTORE-like outlier rejection)",
              { "ols", "wls", "nlls", "robust" });
  app.Add(wlsIterations, "wlsIterations", "WLS refits after the OLS start (MRtrix3: 2, DIPY: 1)")
    .LongFlag("wls-iterations")
    .Range(1, 20, 1);
  app
    .AddEnum(wlsStart, "wlsStart",
             "First WLS solve weighted by the measured signal (signal, MRtrix3) or started from OLS (ols, DIPY)",
             { "signal", "ols" })
    .LongFlag("wls-start");
  app.Add(b0Threshold, "b0Threshold", "b-values at or below are b0")
    .LongFlag("b0-threshold")
    .Units("s/mm^2")
    .Range(0, 500, 1);
  app.Add(robustSigma, "robustSigma", "Noise sigma for the robust fit (0: estimated from WLS residuals)")
    .LongFlag("robust-sigma")
    .Range(0, 1e9, 1);
  app.Add(robustK, "robustK", "Robust fit: reject measurements deviating by more than k sigma")
    .LongFlag("robust-k")
    .Range(1, 10, 0.1);
  app.Add(threads, "threads", "Worker threads (0: all cores)").Range(0, 256, 1);
  app.Group("Gradient check", "b-vector sanity check");
  app.AddFlag(checkGradients, "checkGradients", "Try all axis permutations/flips of the b-vectors and report")
    .LongFlag("check-gradients");
  app
    .AddFlag(fixGradients, "fixGradients",
             "With --check-gradients: fit with the best table when it is not the given one")
    .LongFlag("fix-gradients");
  app.Group("Cord metrics", "DTI metrics along the cord relative to a lesion epicentre");
  app.AddImage(cord, "cord", "Cord mask (any grid; sampled at DWI voxel centres)").ImageType("label");
  app.AddPoint(epicentre, "epicentre", "Lesion epicentre (LPS)").Units("mm");
  app.Add(band, "band", "Width of the epicentre, rostral and caudal bands").Units("mm").Range(0.5, 200, 0.5);
  app.AddReturn("fittedVoxels", "Voxels fitted", gw::cli::Kind::Integer);
  app.AddReturn("meanFA", "Mean FA in the mask");
  app.AddReturn("gradientCheck", "Best gradient table (image axes) when checked", gw::cli::Kind::String);

  return app.Run(
    argc, argv,
    [&](gw::cli::Context & ctx)
    {
      // --verbose: wall and process CPU time [s] of each phase
      auto last = std::chrono::steady_clock::now();
      std::clock_t lastCpu = std::clock();
      auto lap = [&](const char * what)
      {
        const auto now = std::chrono::steady_clock::now();
        const std::clock_t cpu = std::clock();
        gw::log::Debug(gw::log::Cat("timing: ", what, ": wall ", std::chrono::duration<double>(now - last).count(),
                                    " s, cpu ", static_cast<double>(cpu - lastCpu) / CLOCKS_PER_SEC, " s"));
        last = now;
        lastCpu = cpu;
      };
      const std::vector<std::string> mapList = gw::dti::ParseDtiMaps(maps);
      auto & prov = ctx.GetProvenance();
      std::optional<gw::fs::path> bv, bc;
      if (!bval.empty())
        bv = bval;
      if (!bvec.empty())
        bc = bvec;
      // input checksums and the mask are read while the DWI is (decompressing it is the longest step)
      gw::MaskImage::Pointer maskImage;
      auto side = std::async(std::launch::async,
                             [&]()
                             {
                               prov.AddInput("dwi", input);
                               if (!mask.empty())
                               {
                                 prov.AddInput("mask", mask);
                                 maskImage = gw::io::ReadMask(mask);
                               }
                             });
      // the series as stored: the fit converts only the voxels of the mask
      gw::io::DwiSeries dwi;
      try
      {
        dwi = gw::io::ReadDwiSeries(input, bv, bc);
      }
      catch (...)
      {
        side.wait();
        throw;
      }
      lap("read dwi");
      side.get();
      lap("checksums and mask");
      if (!cord.empty() && epicentre.size() != 3)
        gw::ThrowUsage("--cord needs --epicentre x,y,z (LPS mm)");
      nlohmann::json summary;
      if (checkGradients)
      {
        const gw::dti::GradientCheckResult check = gw::dti::CheckGradients(
          { dwi.samples.ToImage(static_cast<unsigned int>(threads)), dwi.gradients }, maskImage.GetPointer());
        nlohmann::json cands = nlohmann::json::array();
        for (const auto & c : check.candidates)
          cands.push_back(
            { { "table", c.label }, { "mean_length_mm", c.meanLengthMm }, { "streamlines", c.streamlines } });
        summary["gradient_check"] = { { "given_is_best", check.givenIsBest },
                                      { "given_score_ratio", check.givenScoreRatio },
                                      { "best", check.candidates.front().label },
                                      { "candidates", cands } };
        ctx.SetReturn("gradientCheck", check.givenIsBest ? std::string("x y z") : check.candidates.front().label);
        if (!check.givenIsBest && fixGradients)
        {
          gw::log::Warning("fitting with the corrected gradient table '" + check.candidates.front().label + "'");
          dwi.gradients = check.best;
          summary["gradient_check"]["applied"] = check.candidates.front().label;
        }
      }
      gw::dti::FitOptions options;
      options.method = gw::dti::ParseFitMethod(fit);
      options.wlsIterations = static_cast<unsigned int>(wlsIterations);
      options.wlsStartFromOls = wlsStart == "ols";
      options.b0Threshold = b0Threshold;
      options.robustSigma = robustSigma;
      options.robustK = robustK;
      options.threads = static_cast<unsigned int>(threads);
      const gw::dti::DtiResult result = gw::dti::FitTensors(dwi, maskImage.GetPointer(), options);
      lap("fit");
      const auto written = gw::dti::WriteDtiResult(result, output, ctx.Force(), mapList, options.threads);
      lap("write maps");
      double faSum = 0.0;
      const auto * fa = result.maps.fa->GetBufferPointer();
      const auto * m = result.mask->GetBufferPointer();
      for (std::size_t i = 0; i < result.mask->GetBufferedRegion().GetNumberOfPixels(); ++i)
        if (m[i])
          faSum += fa[i];
      const double meanFa = result.fittedVoxels ? faSum / static_cast<double>(result.fittedVoxels) : 0.0;
      summary["fit"] = gw::dti::ToString(options.method);
      summary["wls_iterations"] = wlsIterations;
      summary["wls_start"] = wlsStart;
      summary["fitted_voxels"] = result.fittedVoxels;
      summary["mean_fa"] = meanFa;
      summary["non_positive_definite_voxels"] = result.nonPositiveVoxels;
      summary["seconds"] = result.seconds;
      summary["tensor_frame"] = "LPS";
      summary["mask"] = mask.empty() ? "automatic" : "given";
      if (options.method == gw::dti::FitMethod::Robust)
        summary["robust"] = { { "sigma", result.sigma }, { "rejected_measurements", result.rejectedMeasurements } };
      if (epicentre.size() == 3)
      {
        gw::MaskImage::Pointer cordMask;
        if (!cord.empty())
        {
          prov.AddInput("cord", cord);
          cordMask = gw::io::ReadMask(cord);
        }
        gw::PointType e;
        for (unsigned int i = 0; i < 3; ++i)
          e[i] = epicentre[i];
        const auto profile =
          gw::dti::CordProfile(result.maps, cordMask ? cordMask.GetPointer() : result.mask.GetPointer(), e, band);
        gw::dti::WriteCordProfile(profile, output + "_cord_profile.json", ctx.Force());
        gw::dti::WriteCordProfile(profile, output + "_cord_profile.tsv", ctx.Force());
      }
      prov.extra = summary;
      gw::WriteTextFile(output + "_dti.json", summary.dump(2) + "\n", ctx.Force());
      gw::WriteProvenance(written.front(), prov, ctx.Force());
      lap("write json");
      ctx.SetReturn("fittedVoxels", static_cast<double>(result.fittedVoxels));
      ctx.SetReturn("meanFA", meanFa);
      gw::log::Info(gw::log::Cat("fitted ", result.fittedVoxels, " voxels (", gw::dti::ToString(options.method),
                                 ") in ", result.seconds, " s; mean FA ", meanFa));
    });
}
