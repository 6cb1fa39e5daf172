#pragma once
/// \file pipeline.h
/// \brief The follow-up analysis of one subject (what `gw_followup` runs): every follow-up registered to the
/// baseline with a quality gate, acquisition consistency checked, cord/lesion/syrinx/edema/enhancement segmented
/// and measured in each timepoint's own space, lesion instances matched over time in the baseline space, DTI
/// metrics along the cord around the graft site, safety rules applied, and the outputs written:
///
///   OUT/flags.json            versioned flags document (gw::safety::FlagsDocument)
///   OUT/measurements.tsv      one row per timepoint x structure
///   OUT/report.html           per-subject report (snapshots at flagged locations, plots, flag table)
///   OUT/flags.mrk.json        3D Slicer markups of the flagged locations (LPS)
///   OUT/figures/*.png|svg     report pictures
///   OUT/<ses>/...             per timepoint: masks (native space), transform to baseline (.h5) and its QA,
///                             change maps in the baseline space, DTI maps, cord profile
///   OUT/summary.json          everything measured, machine-readable
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/followup/study.h"
#include "gw/safety/flags.h"
#include "gw/safety/rules.h"

namespace gw::followup
{
struct FollowupOptions
{
  safety::Rules rules;                ///< thresholds (defaults, or a rules file)
  std::string anatomy = "auto";       ///< auto | cord | brain (auto: cord when a cord is found on the T2w)
  std::string registration = "rigid"; ///< rigid | affine
  bool deterministic = true;          ///< fixed seeds and single-threaded metric: identical results run after run
  bool dti = true;                    ///< fit tensors when a DWI is present
  bool snapshots = true;              ///< pictures in the report
  double bandMm = 15.0;               ///< DTI regions: epicentre band width; cord swelling window width [mm]
  double csfMdThreshold = 2.0e-3;     ///< DTI: cord voxels with MD above this are CSF partial volume [mm^2/s]
  double activityDiffSigma = 4.0;     ///< brain: new/enlarging voxels rise by this many robust sigmas ...
  double activityBrightSigma = 2.5;   ///< ... and are this many robust sigmas above the brain median
  double activitySmoothingMm = 0.0;   ///< brain: Gaussian sigma applied before subtraction [mm] (0: none)
  double activityLocalSigma = 1.0;    ///< brain: a new lesion is this much brighter than its surroundings [sigmas]
  bool activityFalling = true;        ///< brain: also report shrinking/resolved lesions (same thresholds, mirrored)
  double edemaDistanceMm = 10.0;      ///< edema is searched within this distance of a lesion [mm]
  double graftSearchMm = 20.0;        ///< the mass is the lesion nearest the graft site within this distance [mm]
  bool force = false;                 ///< overwrite existing outputs
};

/// What one timepoint gave (also in summary.json).
struct TimepointResult
{
  std::string id;
  safety::TimepointData data; ///< what the rules saw
  nlohmann::json details;     ///< measurements, QA, files
};

struct FollowupResult
{
  std::string subject;
  std::string anatomy;                     ///< "cord" or "brain"
  std::vector<TimepointResult> timepoints; ///< baseline first
  std::vector<safety::Flag> flags;
  std::vector<std::string> notes; ///< caveats (registration, acquisition, missing contrasts)
  fs::path flagsJson, measurementsTsv, reportHtml, summaryJson;
};

/// \brief The files RunFollowup writes directly under `outDir` (for refuse-overwrite checks).
std::vector<std::string> FollowupOutputNames();

/// \brief Runs the whole follow-up analysis of `study` into `outDir`. Throws Error(Input) when the study has no
/// usable anatomical image, Error(Output) when outputs exist without `force`. A failed registration does not
/// throw: it blocks change flags for that timepoint and raises REGISTRATION_FAILED.
FollowupResult RunFollowup(const Study & study, const FollowupOptions & options, const fs::path & outDir);
} // namespace gw::followup
