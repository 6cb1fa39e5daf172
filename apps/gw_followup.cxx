// gw_followup: follow-up analysis of one subject and its safety flags.
#include <iostream>

#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/log.h"
#include "gw/core/provenance.h"
#include "gw/followup/pipeline.h"
#include "gw/followup/study.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app(
    { "gw_followup", "Follow-up analysis and safety flags",
      "Analyses a subject's follow-up after a neural stem cell transplant. STUDY is a BIDS subject folder "
      "(sub-XX with ses-*/anat/*_T2w, *_T1w, *_ce-gadolinium_T1w, *_FLAIR and ses-*/dwi/*_dwi with .bval/.bvec), a "
      "BIDS dataset with one subject (or --subject), or a study JSON listing timepoints. Every follow-up is "
      "registered to the baseline (a quality gate blocks change flags when alignment is poor), acquisitions are "
      "checked for consistency, cord, lesion, syrinx, edema and enhancement are segmented and measured, lesions are "
      "matched over time, DTI metrics are measured around the graft site, and the safety rules raise flags "
      "(NEW_ENHANCEMENT, NEW_T2_LESION, ENLARGING_T2_LESION, MASS_GROWTH, NEW_SYRINX, SYRINX_EXPANSION, "
      "CORD_SWELLING, FA_DECLINE, REGISTRATION_FAILED, ACQUISITION_MISMATCH). Writes flags.json, measurements.tsv, "
      "summary.json, report.html, flags.mrk.json and per-timepoint masks, transforms and change maps. Exit code 6 "
      "with --fail-on-flags when flags other than 'expected' ones are raised.",
      "GraftWatch" });
  std::string study, output, rules, subject, anatomy = "auto", registration = "rigid";
  bool failOnFlags = false, noDti = false, noSnapshots = false;
  double band = 15.0;
  app.Group("Input/output", "Study and output folder");
  app.AddDirectory(study, "study", "BIDS subject folder, BIDS dataset root, or a study JSON file")
    .Index(0)
    .Required()
    .Input();
  app.AddDirectory(output, "output", "Output folder").Flag("o").Required().Output(gw::cli::OutputKind::Directory);
  app.AddFile(rules, "rules", "Safety rules JSON overriding the documented defaults").Extensions(".json").Input();
  app.Add(subject, "subject", "Subject of a BIDS dataset with several subjects (sub-XX)");
  app.Group("Options", "Analysis choices");
  app.AddEnum(anatomy, "anatomy", "Anatomy: cord (spinal cord), brain, or auto (cord when found on the T2w)",
              { "auto", "cord", "brain" });
  app.AddEnum(registration, "registration", "Transform to the baseline", { "rigid", "affine" });
  app
    .Add(band, "band",
         "Width of the DTI epicentre band (rostral and caudal bands of the same width on each side) and of the window "
         "where cord swelling is measured, centred on the graft site")
    .Units("mm")
    .Range(1.0, 100.0);
  app.AddFlag(noDti, "no_dti", "Do not fit tensors even when a DWI is present").LongFlag("no-dti");
  app.AddFlag(noSnapshots, "no_snapshots", "No pictures in the report").LongFlag("no-snapshots");
  app.AddFlag(failOnFlags, "fail_on_flags", "Exit with code 6 when a suspected or confirmed flag is raised")
    .LongFlag("fail-on-flags");
  app.AddReturn("flags", "Number of flags raised", gw::cli::Kind::Integer);
  app.AddReturn("unexpected_flags", "Number of suspected or confirmed flags", gw::cli::Kind::Integer);

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   gw::followup::FollowupOptions options;
                   if (!rules.empty())
                     options.rules = gw::safety::Rules::Read(rules);
                   options.anatomy = anatomy;
                   options.registration = registration;
                   options.bandMm = band;
                   options.dti = !noDti;
                   options.snapshots = !noSnapshots;
                   options.force = ctx.Force();
                   const auto s = gw::followup::ReadStudy(study, subject);
                   auto & prov = ctx.GetProvenance();
                   for (const auto & tp : s.timepoints)
                     for (const auto & [role, path] : tp.images)
                       prov.AddInput(tp.id + ":" + role, path);
                   const auto result = gw::followup::RunFollowup(s, options, output);
                   gw::WriteProvenance(result.flagsJson, prov, true);
                   int unexpected = 0;
                   for (const auto & f : result.flags)
                     if (f.status != "expected")
                       ++unexpected;
                   std::cout << "flags: " << result.flags.size() << " (" << unexpected << " suspected or confirmed)\n";
                   for (const auto & f : result.flags)
                     std::cout << "  " << f.timepoint << "  " << f.code << "  " << f.status << "  " << f.message
                               << "\n";
                   std::cout << "report: " << result.reportHtml.string() << "\n";
                   ctx.SetReturn("flags", static_cast<double>(result.flags.size()));
                   ctx.SetReturn("unexpected_flags", static_cast<double>(unexpected));
                   if (failOnFlags && unexpected > 0)
                     ctx.SetExitCode(gw::ExitCode::Flags);
                 });
}
