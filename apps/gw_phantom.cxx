// gw_phantom: synthetic spinal-cord follow-up study with analytic ground truth (BIDS, flat NIfTI or DICOM).
#include <iostream>

#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/log.h"
#include "gw/phantom/phantom.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app({ "gw_phantom", "Phantom study generator",
                     "Generates a spinal-cord follow-up study with known truth: T2w, T1w, T1w post-gadolinium, "
                     "FLAIR and DWI (3 b0 + 30 directions, b=800 s/mm^2, simulated from a tensor field) per "
                     "timepoint, a scenario of change (mass growth, new enhancement, edema, syrinx, cord swelling, "
                     "FA decline, transient post-operative edema, combined), label maps of every structure, and a "
                     "truth JSON with analytic and rasterized volumes [mm^3], diameters [mm] and the safety flags "
                     "the default rules expect. Same seed, same bytes.",
                     "GraftWatch.Utilities" });
  gw::phantom::StudyOptions o;
  std::string output, format = "bids", scenario = o.scenario, convention = o.diffusionConvention;
  int timepoints = o.timepoints, seed = 1, supersampling = o.realism.supersampling;
  double snr = o.realism.snr, graftLevel = o.graftLevel;
  bool noNoise = false, noBias = false, noPose = false, noJitter = false, noPv = false, clean = false;
  bool listScenarios = false;
  app.Group("Output", "Where and how");
  app.AddDirectory(output, "output", "Output directory (created; must be empty unless --force)")
    .Flag("o")
    .Required()
    .Output(gw::cli::OutputKind::Directory);
  app.AddEnum(format, "format",
              "Layout: bids (sub-XX/ses-YY, derivatives/truth), nifti (flat), dicom (one series "
              "per contrast and timepoint, truth in NIfTI)",
              { "bids", "nifti", "dicom" });
  app.Group("Study", "Scenario and timepoints");
  app.AddEnum(scenario, "scenario", "Scenario of change", gw::phantom::ScenarioNames());
  app
    .Add(timepoints, "timepoints",
         "Number of timepoints (baseline 14 days after transplant, then 3, 6, 12... "
         "months)")
    .Range(1, 8, 1);
  app.Add(seed, "seed", "Random seed (pose, voxel size, bias field, noise)").Range(0, 2147483647, 1);
  app.Add(graftLevel, "graftLevel", "S-I position of the graft site relative to the field-of-view centre")
    .Units("mm")
    .Range(-10, 10, 0.5);
  app.AddFlag(listScenarios, "listScenarios", "Print the scenarios with a description on stdout and exit");
  app.Group("Realism", "Each knob can be turned off");
  app.Add(snr, "snr", "Signal-to-noise ratio of white matter (Rician noise)").Range(1, 1000, 1);
  app.AddFlag(noNoise, "noNoise", "No Rician noise");
  app.AddFlag(noBias, "noBias", "No bias field");
  app.AddFlag(noPose, "noPose", "Same pose at every timepoint (identity)");
  app.AddFlag(noJitter, "noVoxelJitter", "Same voxel size at every timepoint");
  app.AddFlag(noPv, "noPartialVolume", "Sample voxel centres only (no partial volume)");
  app.AddFlag(clean, "clean", "All realism knobs off (noise, bias, pose, voxel jitter, partial volume)");
  app.Add(supersampling, "supersampling", "Sub-samples per axis for partial volume").Range(1, 7, 1);
  app.Group("DICOM", "Only with --format dicom", true);
  app.Add(o.subject, "subject", "BIDS subject label (sub-<label>) of the generated study");
  app.Add(o.patientName, "patientName", "PatientName written to every file (a pseudonym by default)");
  app.Add(o.patientId, "patientId", "PatientID written to every file");
  app.AddEnum(convention, "diffusionTags",
              "Diffusion tags: standard (0018,9087/9089), siemens (private "
              "0019,100C/100E), both",
              { "standard", "siemens", "both" });
  app.AddReturn("timepointsWritten", "Timepoints written", gw::cli::Kind::Integer);

  // --listScenarios needs no output directory: answer before the parser insists on one.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--listScenarios")
    {
      for (const auto & s : gw::phantom::ScenarioNames())
        std::cout << s << "\t" << gw::phantom::DescribeScenario(s) << "\n";
      return 0;
    }

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   o.scenario = scenario;
                   o.timepoints = timepoints;
                   o.seed = static_cast<std::uint64_t>(seed);
                   o.format = gw::phantom::ParseFormat(format);
                   o.graftLevel = graftLevel;
                   o.diffusionConvention = convention;
                   o.realism.snr = snr;
                   o.realism.supersampling = supersampling;
                   o.realism.noise = !(noNoise || clean);
                   o.realism.biasField = !(noBias || clean);
                   o.realism.poseChange = !(noPose || clean);
                   o.realism.voxelJitter = !(noJitter || clean);
                   o.realism.partialVolume = !(noPv || clean);
                   o.force = ctx.Force();
                   const nlohmann::json truth = gw::phantom::GenerateStudy(o, output);
                   gw::log::Info(gw::log::Cat("wrote ", timepoints, " timepoints of scenario ", scenario, "; truth in ",
                                              truth["truth_file"].get<std::string>()));
                   ctx.SetReturn("timepointsWritten", static_cast<double>(timepoints));
                 });
}
