#pragma once
/// \file cohort.h
/// \brief A cohort of subjects through the follow-up pipeline (what `gw_study` runs), written as a BIDS
/// derivative dataset (BIDS 1.8 common derivatives) that the bids-validator accepts:
///
///   OUT/dataset_description.json   DatasetType "derivative", GeneratedBy GraftWatch <version>, SourceDatasets
///   OUT/README                     what the dataset holds (this layout)
///   OUT/.bidsignore                GraftWatch files outside the BIDS specification (reports, flags, logs, ...)
///   OUT/participants.tsv (+.json)  one row per subject folder present: status, timepoints, flags
///   OUT/cohort_status.tsv          one row per subject of the cohort, including failed and missing ones
///   OUT/cohort_flags.tsv           one row per flag: subject, timepoint, code, status, value, threshold, unit
///   OUT/index.html                 links to every subject's report; flags by subject and timepoint
///   OUT/logs/sub-XX_gw_followup.log       what the subject's run printed
///   OUT/sub-XX/sub-XX_sessions.tsv (+.json)   one row per timepoint: days since transplant, flags
///   OUT/sub-XX/ses-YY/anat/sub-XX_ses-YY_label-cord_mask.nii.gz            (label-brain for brain studies)
///   OUT/sub-XX/ses-YY/anat/sub-XX_ses-YY_desc-{lesions,syrinx,edema,enhancement}_dseg.nii.gz (+.tsv, .json)
///   OUT/sub-XX/ses-YY/anat/sub-XX_ses-YY_space-individual_desc-{lesion,enhancement}change_dseg.nii.gz
///                                  change since the previous timepoint on the baseline grid (+.tsv, .json)
///   OUT/sub-XX/ses-YY/dwi/sub-XX_ses-YY_model-tensor_param-{fa,md,ad,rd,s0,v1,colorfa,tensor}_dwimap.nii.gz
///                                  (BEP016 draft names), _desc-meanb0_dwiref.nii.gz, _desc-dtifit_mask.nii.gz
///   OUT/sub-XX/ses-YY/{to_baseline.h5, registration_qa.json, cord_profile.tsv}   (not BIDS: .bidsignore)
///   OUT/sub-XX/{flags.json, summary.json, measurements.tsv, report.html, figures/, flags.mrk.json}  (not BIDS)
///   OUT/sub-XX/graftwatch_complete.json   the completion marker (input and output checksums, options)
///
/// gw_followup writes its own layout (ses-YY/cord.nii.gz, ...); LayoutSubjectFolder renames it into the tree above
/// and rewrites the evidence paths of flags.json/summary.json. Each subject is processed by a child process of
/// `gw_followup` into a temporary folder OUT/.sub-XX.partial-<pid>, laid out and renamed into place only when
/// complete (with its marker), so a killed run never leaves a partial subject. The Snakemake workflow runs
/// gw_followup itself and hands the folder to `gw_study --adopt` (AdoptFollowupOutput): the same tree.
/// Child processes rather than threads: the library's ITK global state (thread count in deterministic
/// registration) and log/progress sinks are process-wide, and a crash in one subject cannot take the cohort down.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gw::followup
{
namespace fs = std::filesystem;

/// One subject of a cohort.
struct CohortSubject
{
  std::string label; ///< "sub-01": the output folder name (BIDS subject label: "sub-" + letters and digits)
  fs::path source;   ///< BIDS dataset root (with `bidsSubject`) or a study JSON file
  bool bids = false; ///< true: `source` is a BIDS root and the subject folder is source/label
};

/// \brief The subjects of STUDY_ROOT: a BIDS dataset root (every sub-* folder), a folder of study JSON files
/// (*.json, each ReadStudy-able; label = the study's subject, prefixed "sub-" when missing), or a text file listing
/// study JSON paths one per line (relative to the list; '#' comments). Labels must be unique (Error(Input)).
/// `only` restricts to the given labels ("sub-01" or "01"); an unknown one is Error(Usage).
std::vector<CohortSubject> DiscoverCohort(const fs::path & root, const std::vector<std::string> & only = {});

/// \brief The files that define a subject's input with their SHA-256: every regular file of a BIDS subject folder
/// (paths relative to it), or the study JSON plus every image, bval/bvec and DICOM file it references.
/// Returns {"files": [{"path", "sha256"}...] sorted by path, "sha256": checksum of the list}.
nlohmann::json InputManifest(const CohortSubject & subject);

/// Name of the completion marker written in each finished subject folder.
constexpr const char * CompletionMarkerName = "graftwatch_complete.json";

/// Version of the completion marker; a marker of another version (an earlier layout) makes the subject Stale.
constexpr int CompletionMarkerVersion = 2;

/// State of an existing subject output folder.
enum class SubjectOutputState
{
  Missing,    ///< no folder
  Complete,   ///< marker present, inputs, options and outputs match
  Stale,      ///< marker present but inputs or options changed since
  Unverified, ///< folder without (valid) marker, or outputs changed since the marker was written
};

/// \brief Checks OUT/<label> against the current input manifest and options fingerprint; `reason` says why it is not
/// Complete.
SubjectOutputState CheckSubjectOutput(const fs::path & subjectDir, const nlohmann::json & inputManifest,
                                      const std::string & optionsFingerprint, std::string * reason = nullptr);

/// How to run the cohort.
struct CohortOptions
{
  fs::path followupExecutable;           ///< gw_followup
  std::vector<std::string> followupArgs; ///< analysis options forwarded to every gw_followup run
  std::string optionsFingerprint;        ///< identifies the analysis options (see OptionsFingerprint)
  int jobs = 1;                          ///< subjects processed at the same time (child processes)
  bool resume = false;                   ///< skip subjects whose output is Complete
  bool force = false;                    ///< recompute and replace existing subject outputs
};

/// \brief A fingerprint of the analysis: GraftWatch version and git SHA, the forwarded options, and the SHA-256 of
/// the rules file's bytes when one is given.
std::string OptionsFingerprint(const std::vector<std::string> & followupArgs, const fs::path & rulesFile);

/// What happened to one subject in a run.
struct SubjectOutcome
{
  std::string label;
  std::string state;   ///< "processed", "skipped" (complete, --resume), "failed"
  std::string message; ///< why it failed (exit code, last log line) or was skipped
  int exitCode = 0;    ///< gw_followup's exit code (failed), 0 otherwise
  double seconds = 0.0;
};

/// \brief Runs every subject (see file comment). Progress goes to gw::ReportProgress (overall fraction, stage =
/// subject label). Existing subject folders: Complete ones are skipped with `resume`; any existing one is
/// recomputed and replaced with `force`; otherwise the subject fails with a message (never overwritten). Leftover
/// temporary folders of killed runs are removed first. Holds an exclusive lock on OUT/.gw_study.lock (Error(Output)
/// when another run holds it). A failing subject does not stop the others.
std::vector<SubjectOutcome> RunCohort(const std::vector<CohortSubject> & subjects, const CohortOptions & options,
                                      const fs::path & outRoot);

/// \brief Lays out the folder `dir` written by gw_followup for `subject` as the BIDS-derivative subject folder (see
/// the file comment), in place: per-timepoint images renamed into ses-YY/anat and ses-YY/dwi with BIDS-derivative
/// names (dseg lookup tables and JSON sidecars written), sub-XX_sessions.tsv written, evidence paths in flags.json
/// and summary.json rewritten. Files it does not know stay where they are. Error(Processing) when `dir` is not a
/// gw_followup output (no flags.json/summary.json). Returns the renames (old -> new, relative to `dir`).
std::vector<std::pair<std::string, std::string>> LayoutSubjectFolder(const fs::path & dir,
                                                                     const CohortSubject & subject);

/// \brief Takes over `followupDir`, written by `gw_followup` for `subject` with the analysis options of `options`
/// (what the Snakemake workflow runs): lays it out, writes its completion marker and moves it to OUT/<label>
/// (the folder is moved, not copied). An existing OUT/<label> is replaced only with `options.force`
/// (Error(Output) otherwise). Waits for the lock on OUT (several adoptions may run at once).
void AdoptFollowupOutput(const CohortSubject & subject, const fs::path & followupDir, const CohortOptions & options,
                         const fs::path & outRoot);

/// Cohort summary counts.
struct CohortSummary
{
  int subjects = 0;        ///< listed in cohort_status.tsv (the subjects given plus any subject folder present)
  int complete = 0;        ///< with outputs
  int flags = 0;           ///< rows of cohort_flags.tsv
  int unexpectedFlags = 0; ///< status other than "expected"
};

/// \brief Writes dataset_description.json, README, .bidsignore, participants.tsv/.json (subject folders present),
/// cohort_status.tsv, cohort_flags.tsv and index.html from the subject folders present in OUT (the subjects listed,
/// plus any other sub-* folder with flags.json). `outcomes` (optional) supplies failure messages of the current run.
/// Every file is written atomically and replaced (the summary always reflects the folders present). Works on outputs of
/// gw_study or of the Snakemake workflow (gw_followup per subject).
CohortSummary SummarizeCohort(const fs::path & outRoot, const std::vector<CohortSubject> & subjects,
                              const std::vector<SubjectOutcome> & outcomes = {});

/// \brief Writes OUT/dataset_description.json (BIDS derivative; SourceDatasets: the datasets of `subjects`, as a
/// relative DatasetLinks entry when OUT lies inside it), README and .bidsignore when absent or different.
void WriteDatasetDescription(const fs::path & outRoot, const std::vector<CohortSubject> & subjects = {});
} // namespace gw::followup
