#pragma once
/// \file study.h
/// \brief A subject's study: timepoints with their images by role, read from a BIDS dataset
/// (sub-*/ses-*/anat/*_T2w, *_T1w, *_ce-gadolinium_T1w, *_FLAIR; dwi/*_dwi + .bval/.bvec) or a study JSON.
#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gw::followup
{
namespace fs = std::filesystem;

/// Image roles used by the pipeline.
namespace role
{
constexpr const char * T2 = "T2w";
constexpr const char * T1 = "T1w";
constexpr const char * T1Post = "T1w_ce";
constexpr const char * Flair = "FLAIR";
constexpr const char * Dwi = "dwi";
constexpr const char * CordMask = "cord_mask"; ///< optional external masks (SCT, Slicer)
constexpr const char * LesionMask = "lesion_mask";
} // namespace role

struct Timepoint
{
  std::string id;                            ///< "ses-01"
  std::optional<std::string> date;           ///< ISO date "2025-03-01" when known
  std::optional<double> days;                ///< days since baseline (from dates, or given)
  std::optional<double> daysSinceTransplant; ///< given directly (sessions.tsv column days_since_transplant)
  std::map<std::string, fs::path> images;    ///< role -> file
  std::optional<fs::path> bval, bvec;        ///< for the DWI (default: next to it)
  std::optional<fs::path> dicomDir;          ///< a DICOM folder to import on the fly
};

struct Study
{
  std::string subject;                            ///< "sub-01"; never a patient name
  std::optional<std::string> transplantDate;      ///< ISO date
  std::optional<double> transplantDay;            ///< days since baseline of the transplant (negative: before)
  std::optional<std::array<double, 3>> graftSite; ///< LPS [mm] in the baseline image space
  std::vector<Timepoint> timepoints;              ///< ordered: baseline first
};

/// \brief Reads a study: a BIDS subject folder (sub-XX), a BIDS dataset root with exactly one subject (or pick
/// `subject`), or a study JSON file. Throws Error(Input) with the reason when nothing usable is found.
Study ReadStudy(const fs::path & path, const std::string & subject = "");

/// \brief Lists the subjects of a BIDS dataset root (sorted).
std::vector<std::string> ListBidsSubjects(const fs::path & root);

/// \brief Days between two ISO dates (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss), b - a.
double DaysBetween(const std::string & a, const std::string & b);

/// \brief Days since transplant of each timepoint (nullopt when unknown).
std::optional<double> DaysSinceTransplant(const Study & study, const Timepoint & tp);

nlohmann::json ToJson(const Study & study);
} // namespace gw::followup
