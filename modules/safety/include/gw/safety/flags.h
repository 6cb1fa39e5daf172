#pragma once
/// \file flags.h
/// \brief Follow-up safety flags with stable codes, evaluated from per-timepoint measurements and changes.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/safety/rules.h"

namespace gw::safety
{
/// Stable flag codes (never renamed: pipelines key on them).
namespace code
{
constexpr const char * NewEnhancement = "NEW_ENHANCEMENT";
constexpr const char * NewT2Lesion = "NEW_T2_LESION";
constexpr const char * EnlargingT2Lesion = "ENLARGING_T2_LESION";
constexpr const char * MassGrowth = "MASS_GROWTH";
constexpr const char * NewSyrinx = "NEW_SYRINX";
constexpr const char * SyrinxExpansion = "SYRINX_EXPANSION";
constexpr const char * CordSwelling = "CORD_SWELLING";
constexpr const char * FaDecline = "FA_DECLINE";
constexpr const char * RegistrationFailed = "REGISTRATION_FAILED";
constexpr const char * AcquisitionMismatch = "ACQUISITION_MISMATCH";
} // namespace code

using Point = std::array<double, 3>; ///< LPS [mm]

/// A lesion-like object seen at a timepoint: a new or changed lesion, a new enhancing cluster, ...
struct ChangeItem
{
  std::string kind;          ///< "new", "enlarging", "stable", "shrinking", "resolved", "merged", "split"
  double volumeBefore = 0.0; ///< [mm^3]
  double volumeAfter = 0.0;  ///< [mm^3]
  int voxels = 0;            ///< voxels of the later component(s)
  double extension = 0.0;    ///< enlarging: how far the grown part reaches beyond the earlier lesion [mm] (0: unknown)
  std::optional<Point> location;
};

/// What one structure measures at one timepoint. Absent (nullopt) = not measured.
struct StructureMeasure
{
  double volume = 0.0;     ///< [mm^3]
  double spd = 0.0;        ///< product of the two perpendicular diameters on the largest axial slice [mm^2]
  double spdMinor = 0.0;   ///< the shorter of those two diameters [mm]
  double apDiameter = 0.0; ///< [mm]
  double length = 0.0;     ///< craniocaudal [mm]
  std::optional<Point> location;
};

/// Everything the rules look at for one timepoint (baseline = first).
struct TimepointData
{
  std::string id; ///< "ses-01", "baseline", ...
  std::optional<double> daysSinceTransplant;
  std::vector<std::string> evidence; ///< files a reader opens to check (change maps, report snapshots)

  // quality
  bool registrationMeasured = false;
  bool registrationPassed = true;
  double registrationErrorVoxels = 0.0;
  std::string registrationMessage;
  std::vector<std::string> acquisitionIssues; ///< mismatches vs baseline (empty when consistent)

  // structures (absent when not measured at this timepoint)
  std::optional<StructureMeasure> mass;   ///< the graft/lesion mass (the lesion nearest the graft site)
  std::optional<StructureMeasure> syrinx; ///< total syrinx (volume 0 when none seen)
  std::optional<StructureMeasure> edema;  ///< total edema (volume 0 when none)
  std::optional<double> cordAp;           ///< maximal cord AP diameter at the graft site [mm]
  std::optional<double> faEpicentre, faRostral, faCaudal;

  // changes vs the previous timepoint (from lesion matching in the common space)
  std::vector<ChangeItem> lesionChanges;
  std::vector<ChangeItem> enhancementChanges;
};

struct Flag
{
  std::string code;
  std::string timepoint;
  std::string status; ///< "suspected", "confirmed", "expected"
  double value = 0.0; ///< measured change (relative changes as fractions, e.g. 0.42 for +42%)
  double threshold = 0.0;
  std::string unit;      ///< "fraction", "mm^3", "mm", "mm^2", "voxels"
  std::string reference; ///< "baseline", "nadir (ses-02)", "previous (ses-01)"
  /// the timepoint that reference names (the previous one for "all earlier scans"; empty for a bare "baseline"), for
  /// pictures of the flag beside that scan; not written (`reference` names it)
  std::string referenceTimepoint;
  double referenceValue = 0.0;
  double currentValue = 0.0;
  std::optional<Point> location;
  std::vector<std::string> evidence;
  std::string message;     ///< one readable sentence
  std::string confirmedBy; ///< timepoint id that confirmed it
};

/// \brief Applies the rules to a series of timepoints (first = baseline). A timepoint whose registration failed
/// gets REGISTRATION_FAILED and no change flags; an acquisition mismatch gets ACQUISITION_MISMATCH (and blocks
/// change flags when the rules say so). Statuses: "expected" within the post-operative window for edema,
/// enhancement, new lesion and cord swelling; otherwise "suspected", upgraded to "confirmed" when the same code
/// is raised on the next scan (within `confirmationDistance` when both have a location).
std::vector<Flag> Evaluate(const std::vector<TimepointData> & timepoints, const Rules & rules);

nlohmann::json ToJson(const Flag & flag);
/// The flags.json document: schema version, rules used, flags.
nlohmann::json FlagsDocument(const std::vector<Flag> & flags, const Rules & rules, const std::string & subject);
} // namespace gw::safety
