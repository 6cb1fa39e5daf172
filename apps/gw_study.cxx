// gw_study: a cohort (BIDS dataset or study JSONs) through the follow-up analysis, as a BIDS derivative dataset.
#include <cstdio>
#include <iostream>
#include <string>

#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/log.h"
#include "gw/followup/cohort.h"

namespace fs = std::filesystem;

int
main(int argc, char ** argv)
{
  gw::cli::App app(
    { "gw_study", "Cohort follow-up (BIDS derivatives)",
      "Runs the follow-up analysis of gw_followup for every subject of a BIDS dataset (every sub-* folder), of a "
      "folder of study JSON files, or of a text file listing study JSONs, and writes a BIDS derivative dataset: "
      "dataset_description.json (DatasetType derivative, SourceDatasets), OUT/sub-XX/ with each subject's "
      "sub-XX_sessions.tsv, BIDS-derivative images (ses-YY/anat/..._label-cord_mask.nii.gz, "
      "..._desc-lesions_dseg.nii.gz, "
      "ses-YY/dwi/..._model-tensor_param-fa_dwimap.nii.gz, ...), flags.json, report.html and measurements, "
      "participants.tsv, cohort_status.tsv, cohort_flags.tsv (subject, timepoint, code, "
      "status, value, threshold, unit) and index.html linking every report with the flags by subject and "
      "timepoint. Each subject runs in its own gw_followup process into a temporary folder renamed into place when "
      "complete, so an interrupted run leaves no partial subject; --resume skips subjects whose completion marker "
      "matches the current inputs (SHA-256) and options. Exit code 4 when a subject failed (the others are still "
      "analysed and summarized); 6 with --fail-on-flags when a suspected or confirmed flag is raised.",
      "GraftWatch" });
  std::string study, output, rules, anatomy = "auto", registration = "rigid", followup, adopt;
  std::vector<std::string> participants;
  int jobs = 1;
  bool resume = false, summarizeOnly = false, failOnFlags = false, noDti = false, noSnapshots = false;
  double band = 15.0;
  // An existing output folder is the point of --resume and --summarize-only: only then is -o not checked for
  // emptiness by the CLI layer (subject folders are still never overwritten without --force).
  bool reuseOutput = false;
  for (int i = 1; i < argc; ++i)
    reuseOutput |= std::string(argv[i]) == "--resume" || std::string(argv[i]) == "--summarize-only";

  app.Group("Input/output", "Cohort and output folder");
  app.AddDirectory(study, "study", "BIDS dataset root, folder of study JSON files, or a text file listing study JSONs")
    .Index(0)
    .Required()
    .Input();
  auto out = app.AddDirectory(output, "output", "Output folder: the BIDS derivative dataset (derivatives/graftwatch)")
               .Flag("o")
               .Required();
  if (!reuseOutput)
    out.Output(gw::cli::OutputKind::Directory);
  app.Add(participants, "participantLabel", "Only these subjects (sub-XX or XX; several allowed)")
    .LongFlag("participant-label");
  app.Group("Execution", "Parallelism, resuming, summary");
  app.Add(jobs, "jobs", "Subjects analysed at the same time (one gw_followup process each)").Range(1, 256, 1);
  app.AddFlag(resume, "resume",
              "Continue an interrupted run: keep subjects whose outputs are complete and match the current inputs "
              "and options, analyse the others");
  app
    .AddFlag(summarizeOnly, "summarizeOnly",
             "Only (re)write the cohort summary from the subject folders present in the output (e.g. made by the "
             "Snakemake workflow)")
    .LongFlag("summarize-only");
  app
    .AddDirectory(
      adopt, "adopt",
      "Take over this folder written by gw_followup for the one subject given with --participant-label "
      "(what the Snakemake workflow does): lay it out as BIDS derivatives, mark it complete and move it "
      "into the output (moved, not copied; same file system). An existing output folder needs --force, which also "
      "replaces an existing OUT/sub-XX. No summary is written")
    .Input();
  app.AddFlag(failOnFlags, "failOnFlags", "Exit with code 6 when a suspected or confirmed flag is raised")
    .LongFlag("fail-on-flags");
  app.Add(followup, "followup", "gw_followup executable (default: next to gw_study)").Hidden();
  app.Group("Analysis", "Forwarded to gw_followup for every subject");
  app.AddFile(rules, "rules", "Safety rules JSON overriding the documented defaults").Extensions(".json").Input();
  app.AddEnum(anatomy, "anatomy", "Anatomy: cord, brain, or auto (cord when found on the T2w)",
              { "auto", "cord", "brain" });
  app.AddEnum(registration, "registration", "Transform to the baseline", { "rigid", "affine" });
  app.Add(band, "band", "Width of the DTI epicentre band and of the cord swelling window")
    .Units("mm")
    .Range(1.0, 100.0);
  app.AddFlag(noDti, "noDti", "Do not fit tensors even when a DWI is present").LongFlag("no-dti");
  app.AddFlag(noSnapshots, "noSnapshots", "No pictures in the reports").LongFlag("no-snapshots");
  app.AddReturn("subjects", "Subjects in the cohort", gw::cli::Kind::Integer);
  app.AddReturn("failed", "Subjects whose analysis failed", gw::cli::Kind::Integer);
  app.AddReturn("flags", "Flags raised in the cohort", gw::cli::Kind::Integer);
  app.AddReturn("unexpected_flags", "Suspected or confirmed flags in the cohort", gw::cli::Kind::Integer);

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   namespace gf = gw::followup;
                   const auto subjects = gf::DiscoverCohort(study, participants);
                   std::vector<gf::SubjectOutcome> outcomes;
                   gf::CohortOptions o;
                   o.followupExecutable = followup.empty()
                                            ? fs::read_symlink("/proc/self/exe").parent_path() / "gw_followup"
                                            : fs::path(followup);
                   char bandText[32];
                   std::snprintf(bandText, sizeof bandText, "%.17g", band);
                   o.followupArgs = { "--anatomy", anatomy, "--registration", registration, "--band", bandText };
                   if (noDti)
                     o.followupArgs.push_back("--no-dti");
                   if (noSnapshots)
                     o.followupArgs.push_back("--no-snapshots");
                   o.optionsFingerprint = gf::OptionsFingerprint(o.followupArgs, rules);
                   if (!rules.empty())
                     o.followupArgs.insert(o.followupArgs.end(), { "--rules", fs::absolute(rules).string() });
                   o.jobs = jobs;
                   o.resume = resume;
                   o.force = ctx.Force();
                   if (!adopt.empty())
                   {
                     if (subjects.size() != 1 || participants.size() != 1)
                       gw::ThrowUsage("--adopt needs exactly one --participant-label");
                     gf::AdoptFollowupOutput(subjects[0], adopt, o, output);
                     std::cout << subjects[0].label << "\tadopted\n";
                     ctx.SetReturn("subjects", 1.0);
                     ctx.SetReturn("failed", 0.0);
                     return;
                   }
                   if (!summarizeOnly)
                   {
                     gw::log::Info(gw::log::Cat(subjects.size(), " subjects, ", jobs, " at a time"));
                     outcomes = gf::RunCohort(subjects, o, output);
                   }
                   const auto summary = gf::SummarizeCohort(output, subjects, outcomes);
                   int failed = 0;
                   for (const auto & oc : outcomes)
                   {
                     std::cout << oc.label << "\t" << oc.state << (oc.message.empty() ? "" : "\t" + oc.message) << "\n";
                     failed += oc.state == "failed";
                   }
                   std::cout << "subjects: " << summary.subjects << " (" << summary.complete << " analysed, " << failed
                             << " failed); flags: " << summary.flags << " (" << summary.unexpectedFlags
                             << " suspected or confirmed)\nsummary: " << (fs::path(output) / "index.html").string()
                             << "\n";
                   ctx.SetReturn("subjects", static_cast<double>(summary.subjects));
                   ctx.SetReturn("failed", static_cast<double>(failed));
                   ctx.SetReturn("flags", static_cast<double>(summary.flags));
                   ctx.SetReturn("unexpected_flags", static_cast<double>(summary.unexpectedFlags));
                   if (failed > 0)
                     ctx.SetExitCode(gw::ExitCode::Processing);
                   else if (failOnFlags && summary.unexpectedFlags > 0)
                     ctx.SetExitCode(gw::ExitCode::Flags);
                 });
}
