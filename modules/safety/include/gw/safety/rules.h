#pragma once
/// \file rules.h
/// \brief Safety rules: every threshold of the follow-up flags in one place, with documented defaults drawn from
/// RANO (product of perpendicular diameters), RECIST/volumetric practice and MS lesion-activity practice. The
/// rules file (JSON) overrides any subset; unknown keys are refused (a misspelled threshold must not be ignored).
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace gw::safety
{
struct Rules
{
  /// Version of the rules/flags schema written to flags.json.
  static constexpr const char * SchemaVersion = "1.0";

  /// Flags of change seen within this many weeks after transplantation are "expected" (post-operative).
  double postoperativeWindowWeeks = 12.0;

  // NEW_ENHANCEMENT: an enhancing cluster absent on the previous scan.
  double newEnhancementMinVolume = 3.0; ///< [mm^3]
  int newEnhancementMinVoxels = 3;

  // NEW_T2_LESION: a T2 lesion with no overlap with any lesion of the previous scan.
  double newLesionMinVolume = 10.0; ///< [mm^3] (about a 3 mm diameter sphere: 14 mm^3; MS practice ≥ 3 mm)

  // ENLARGING_T2_LESION: a lesion of the previous scan grown by at least enlargingAbsolute [mm^3] and either by
  // enlargingRelative of its volume, or (when the grown part was measured, brain mode) with a grown part contiguous
  // with it reaching at least enlargingMinExtension beyond its border; or the edema grown by both edema thresholds.
  // MS practice: an enlarging T2 lesion is a pre-existing lesion that grew by >= 50% in volume (above the
  // 25-45% variability of repeated lesion measurement, Goodkin et al. 1992, Arch Neurol 49:261), or whose new part,
  // contiguous with it, would count as a lesion of its own: >= 3 mm in one dimension (the smallest focal lesion of
  // the MAGNIMS criteria, Filippi et al. 2016, Lancet Neurol 15:292) and >= enlargingAbsolute. A confluent lesion
  // that grows a new focus at its border rarely gains 50% of its volume.
  double enlargingRelative = 0.5;     ///< +50% volume (MS practice)
  double enlargingAbsolute = 10.0;    ///< [mm^3]
  double enlargingMinExtension = 3.0; ///< [mm] the grown part reaches this far beyond the earlier lesion border
  double edemaRelative = 0.25;        ///< edema volume +25% ...
  double edemaAbsolute = 20.0;        ///< ... and ≥ 20 mm^3; new edema ≥ this volume counts too [mm^3]

  // MASS_GROWTH vs the nadir (smallest earlier value): either criterion, each with an absolute floor.
  double massSpdRelative = 0.25;       ///< RANO: +25% product of perpendicular diameters ...
  double massSpdMinIncrease = 5.0;     ///< ... by at least this much [mm^2] ...
  double massSpdMinDiameter = 10.0;    ///< ... of a measurable mass: both diameters at least this long at the nadir
                                       ///< and now (RANO, Wen et al. 2010: 10 mm; a diameter of a smaller mass is
                                       ///< a few voxels, and its product moves by 30-40% between two scans of the
                                       ///< same mass); smaller masses are followed by volume [mm]
  double massVolumeRelative = 0.40;    ///< volumetric: +40%
  double massVolumeMinIncrease = 20.0; ///< [mm^3]

  // NEW_SYRINX / SYRINX_EXPANSION (expansion vs the nadir).
  double newSyrinxMinVolume = 10.0;     ///< [mm^3]
  double syrinxVolumeRelative = 0.25;   ///< +25% volume ...
  double syrinxVolumeMinIncrease = 5.0; ///< ... and ≥ 5 mm^3
  double syrinxApIncrease = 2.0;        ///< [mm]
  double syrinxLengthLevels = 1.0;      ///< vertebral levels
  double vertebralLevelLength = 15.0;   ///< [mm] per level (adult cervical/thoracic average)

  // CORD_SWELLING vs baseline: maximal cord AP diameter (or area) at the graft site.
  double cordSwellingRelative = 0.15; ///< +15% ...
  double cordSwellingMinAp = 1.0;     ///< ... and ≥ 1 mm [mm]

  // FA_DECLINE vs baseline at the epicentre, rostral and caudal bands.
  double faDeclineRelative = 0.10; ///< -10%

  // REGISTRATION_FAILED: the registration quality gate.
  double registrationMaxErrorVoxels = 1.0;

  // ACQUISITION_MISMATCH between a follow-up and the baseline.
  double sliceThicknessTolerance = 0.5;   ///< [mm]
  double bValueTolerance = 50.0;          ///< [s/mm^2]
  bool acquisitionMismatchBlocks = false; ///< true: block change flags; false: raise a caveat flag only

  /// Confirmation: a flag raised again on the next scan within this distance is "confirmed" [mm].
  double confirmationDistance = 15.0;

  static Rules Defaults() { return Rules(); }
  nlohmann::json ToJson() const;
  /// Overrides the defaults with the keys present; Error(Input) for unknown keys or wrong types.
  static Rules FromJson(const nlohmann::json & j);
  static Rules Read(const std::filesystem::path & path);
};
} // namespace gw::safety
