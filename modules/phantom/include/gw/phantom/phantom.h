#pragma once
/// \file phantom.h
/// \brief Synthetic spinal-cord follow-up studies with analytic ground truth (the demo study and the test data of
/// every module).
///
/// Anatomy (phantom frame, LPS [mm], cord along S-I = +z, graft site at (0, 0, graftLevel)): body of soft tissue,
/// vertebral bodies with discs every 15 mm anteriorly, a bony ring around an elliptic vertebral canal
/// (19 x 16 mm, LR x AP) filled with CSF, an elliptic cord (12 x 8 mm) with a butterfly of grey matter. Structures
/// with analytic volumes: the graft mass (ellipsoid, T2 bright / T1 dark), an enhancing focus inside it (bright on
/// post-gadolinium T1 only), edema (ellipsoid halo around the mass, inside the cord, T2/FLAIR bright), a syrinx
/// (CSF-like ellipsoidal cavity 30 mm rostral to the graft), cord swelling (raised-cosine increase of the cord
/// radii over +/-20 mm around the graft) and an FA decline (WM/GM FA scaled within +/-10 mm of the graft).
///
/// Each timepoint places the phantom in the scanner with its own rigid pose (world = R q + t + table offset) on
/// its own grid, renders T2w, T1w, T1w post-gadolinium, FLAIR and a DWI (3 b0 + 30 electrostatic-repulsion
/// directions at b = 800 s/mm^2 by default) simulated from the tensor field, S = S0 exp(-b g^T D g), with fibres
/// along the cord. Partial volume = average over n^3 sub-voxel samples; label masks = voxel centre inside the
/// structure; then a smooth multiplicative bias field and Rician noise (sigma = WM signal / SNR).
///
/// Expected safety flags are obtained by running gw::safety::Evaluate with the default rules on the analytic
/// truth, so they follow the rules exactly; flags whose value lies within 5% of the threshold are marked
/// "borderline" (mass_growth_40 sits at the thresholds by design).
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/types.h"
#include "gw/io/gradients.h"

namespace gw::phantom
{
namespace fs = std::filesystem;

/// Output layout.
enum class OutputFormat
{
  Bids,  ///< sub-XX/ses-YY/{anat,dwi}/..., derivatives/truth/...
  Nifti, ///< flat: ses-YY_T2w.nii.gz ..., truth/...
  Dicom  ///< dicom/ses-YY/<series>/IM*.dcm (one series per contrast), truth/... in NIfTI
};

/// The realism knobs (each can be turned off).
struct Realism
{
  bool noise = true;
  double snr = 30.0; ///< WM signal / Rician sigma (anatomical contrasts and DWI b0)
  bool biasField = true;
  double biasAmplitude = 0.15; ///< maximal relative deviation of the multiplicative field
  bool poseChange = true;
  double maxRotationDeg = 3.0; ///< per axis [deg]
  double maxShiftMm = 2.0;     ///< per axis [mm]
  bool voxelJitter = true;     ///< follow-ups get a different voxel size (baseline nominal)
  double inPlaneJitter = 0.1;  ///< maximal relative change of the in-plane spacing
  double sliceJitterMm = 0.2;  ///< maximal change of the slice spacing [mm] (below ACQUISITION_MISMATCH's 0.5)
  bool partialVolume = true;
  int supersampling = 3; ///< sub-samples per axis when partialVolume
};

/// Everything that defines a study. Same options → byte-identical outputs.
struct StudyOptions
{
  std::string scenario = "stable"; ///< one of ScenarioNames()
  int timepoints = 3;              ///< 1..8
  std::uint64_t seed = 1;
  OutputFormat format = OutputFormat::Bids;
  std::string subject = "01"; ///< BIDS label (sub-<subject>)
  Realism realism;
  std::array<unsigned int, 3> anatSize{ 64, 64, 48 };
  std::array<double, 3> anatSpacing{ 1.0, 1.0, 2.5 }; ///< [mm]
  std::array<unsigned int, 3> dwiSize{ 32, 32, 40 };
  std::array<double, 3> dwiSpacing{ 1.5, 1.5, 3.0 }; ///< [mm]
  double graftLevel = 0.0;                           ///< S-I position of the graft site in the phantom [mm], |.| <= 10
  int b0Volumes = 3;
  int directions = 30;
  double bValue = 800.0;                     ///< [s/mm^2]
  std::string transplantDate = "2024-03-04"; ///< ISO date
  // DICOM only
  std::string patientName = "PHANTOM^GRAFTWATCH"; ///< a pseudonym by default; PHI tests pass marker strings
  std::string patientId = "GWPHANTOM01";
  std::string diffusionConvention = "standard"; ///< standard | siemens | both
  bool force = false;                           ///< overwrite a non-empty output directory
};

/// \brief The scenario names: stable, mass_growth_25, mass_growth_40, mass_growth_100, new_enhancement, new_edema,
/// new_syrinx, syrinx_expansion, cord_swelling, fa_decline, transient_edema, combined.
std::vector<std::string> ScenarioNames();

/// \brief One-sentence description of a scenario (Error(Usage) for an unknown name).
std::string DescribeScenario(const std::string & scenario);

/// \brief Days since transplant of each timepoint of a scenario (baseline 14 days after transplant, then 3, 6,
/// 12, 18, 24, 36, 48 months; transient_edema: 14, 49, 84 days, then 6, 12, 18, 24, 36 months).
std::vector<int> ScheduleDays(const std::string & scenario, int timepoints);

/// \brief The diffusion table: `b0s` b0 volumes interleaved (first, then evenly spaced) with `directions` unit
/// vectors from antipodal electrostatic repulsion (deterministic), all at `bValue`. Frame "lps".
io::GradientTable MakeGradientTable(int b0s, int directions, double bValue);

/// Tissue classes of the truth segmentation (dseg) image.
enum Tissue : std::uint16_t
{
  Air = 0,
  SoftTissue = 1,
  Bone = 2,
  VertebralBody = 3,
  Disc = 4,
  Csf = 5,
  WhiteMatter = 6,
  GreyMatter = 7,
  Mass = 8,
  Edema = 9,
  Enhancing = 10,
  Syrinx = 11
};
/// \brief Name of a tissue class ("csf", "white_matter", ...).
const char * TissueName(std::uint16_t tissue);

/// One simulated timepoint, in memory.
struct TimepointImages
{
  std::string id;                                  ///< "ses-01"
  std::map<std::string, FloatImage::Pointer> anat; ///< "T2w", "T1w", "ce-gadolinium_T1w", "FLAIR"
  DwiImage::Pointer dwi;                           ///< one component per gradient entry
  io::GradientTable gradients;                     ///< LPS
  std::map<std::string, MaskImage::Pointer> masks; ///< anat grid: lesion, enhancement, edema, syrinx, cord, csf
  LabelImage::Pointer dseg;                        ///< anat grid, Tissue codes at voxel centres
  MaskImage::Pointer dwiCord;                      ///< DWI grid: cord mask
  TensorImage::Pointer tensor;                     ///< DWI grid: true tensor at voxel centres, LPS [mm^2/s]
  FloatImage::Pointer s0, fa, md;                  ///< DWI grid: true S0, FA, MD [mm^2/s] at voxel centres
  nlohmann::json truth;                            ///< this timepoint's entry of the truth document
};

/// \brief Simulates timepoint `index` (0 = baseline) of a study. Deterministic in (options, index).
/// Throws Error(Usage) for bad options.
TimepointImages SimulateTimepoint(const StudyOptions & options, int index);

/// \brief Generates a whole study into `outDir` (created; refused when not empty unless options.force) and returns
/// the truth document (also written as truth JSON): scenario, options, per timepoint the date, pose, grids, files,
/// structures (analytic and rasterized volumes [mm^3], diameters [mm], lengths [mm]), cord AP diameter [mm], FA of
/// the epicentre/rostral/caudal bands, and the expected flags (code, timepoint, status, value, threshold,
/// borderline).
nlohmann::json GenerateStudy(const StudyOptions & options, const fs::path & outDir);

/// \brief The expected flags of a series of timepoint truths (the `truth` of SimulateTimepoint, baseline first):
/// gw::safety::Evaluate with the default rules on the analytic values (mass as the one T2 lesion, classified
/// enlarging/shrinking at +/-50% and >= 10 mm^3 as gw::longitudinal does; enhancement "new" when absent before).
/// Each flag is safety::ToJson plus "borderline" (value within 5% of the threshold).
nlohmann::json ExpectedFlags(const nlohmann::json & timepointTruths);

/// \brief Parses "bids" | "nifti" | "dicom" (Error(Usage) otherwise).
OutputFormat ParseFormat(const std::string & text);
} // namespace gw::phantom
