#pragma once
/// \file writer.h
/// \brief Writes MR DICOM series the way a scanner does (classic single-frame MR Image Storage, one file per slice,
/// uncompressed explicit VR little endian), used by the phantom generator and by tests. DCMTK stays inside the
/// .cxx: this header exposes only GraftWatch types.
///
/// Geometry: ImagePositionPatient of slice k = origin + k * spacing[2] * direction column 2 (LPS [mm]);
/// ImageOrientationPatient = direction columns 0 (row direction) and 1 (column direction); PixelSpacing =
/// spacing[1]\\spacing[0] (row spacing first, as DICOM); SliceThickness = SpacingBetweenSlices = spacing[2].
/// Pixels: Rows = size[1], Columns = size[0]; stored uint16. When every voxel lies in [0, 65535] the stored value is
/// round(v) and no rescale is written; otherwise RescaleSlope/Intercept map the full range to 0..65535.
///
/// Diffusion (classic per-slice form): every slice of every volume is one file. Standard tags at the top level:
/// DiffusionBValue (0018,9087), DiffusionGradientOrientation (0018,9089) in the patient (LPS) frame (absent for
/// b0), DiffusionDirectionality (0018,9075) "DIRECTIONAL"/"NONE". Optionally the Siemens private convention:
/// creator (0019,0010) "SIEMENS MR HEADER", B_value (0019,100C) IS, DiffusionDirectionality (0019,100D) CS,
/// DiffusionGradientDirection (0019,100E) FD x3 in the patient frame (absent for b0).
///
/// UIDs are derived deterministically from `uidSeed` (2.25.<decimal of 128 bits of SHA-256>), so the same
/// descriptor gives byte-identical files.
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "gw/core/types.h"
#include "gw/io/gradients.h"

namespace gw::dicom
{
namespace fs = std::filesystem;

/// Everything written besides pixels and geometry. Patient fields are written verbatim (callers pass a
/// pseudonym or test markers); nothing here is ever logged.
struct SeriesDescriptor
{
  // patient
  std::string patientName = "PHANTOM^GRAFTWATCH";
  std::string patientId = "GWPHANTOM01";
  std::string patientBirthDate; ///< YYYYMMDD; empty: written empty (type 2)
  std::string patientSex = "O";
  // study (the same for every series of one visit)
  std::string uidSeed = "graftwatch";  ///< seed of the derived UIDs (study, series, frame of reference, instances)
  std::string studyInstanceUid;        ///< empty: derived from uidSeed + studyDate
  std::string frameOfReferenceUid;     ///< empty: derived from uidSeed + studyDate
  std::string studyDate = "20240101";  ///< YYYYMMDD (also series/acquisition/content date)
  std::string studyTime = "090000.00"; ///< HHMMSS.FF
  std::string studyId = "1";
  std::string accessionNumber;
  std::string studyDescription = "SPINE CORD FOLLOW-UP";
  std::string institutionName;
  std::string referringPhysicianName;
  // series
  std::string seriesInstanceUid; ///< empty: derived from uidSeed + studyDate + seriesNumber
  int seriesNumber = 1;
  std::string seriesDescription;
  std::string protocolName;
  std::string bodyPartExamined = "CSPINE";
  std::string contrastBolusAgent; ///< non-empty: ContrastBolusAgent (0018,0010) and route IV (post-contrast)
  std::string manufacturer = "GraftWatch";
  std::string manufacturerModelName = "gw_phantom";
  std::string scanningSequence = "SE"; ///< SE, GR, IR, EP (backslash-separated)
  std::string sequenceVariant = "NONE";
  std::string sequenceName;
  std::string mrAcquisitionType = "2D";
  std::string patientPosition = "HFS";
  std::vector<std::string> imageType = { "ORIGINAL", "PRIMARY", "M", "ND" };
  double echoTime = 0.0;              ///< [ms]; 0: absent
  double repetitionTime = 0.0;        ///< [ms]; 0: absent
  double inversionTime = 0.0;         ///< [ms]; 0: absent
  double flipAngle = 90.0;            ///< [deg]
  double magneticFieldStrength = 3.0; ///< [T]
};

/// Which diffusion tags a DWI series carries.
enum class DiffusionConvention
{
  Standard,          ///< (0018,9087/9089/9075) only
  Siemens,           ///< Siemens private (0019,100C/100D/100E) only
  StandardAndSiemens ///< both
};

/// \brief A deterministic DICOM UID "2.25.<decimal>" from 128 bits of SHA-256(seed) (≤ 44 characters).
std::string MakeUid(const std::string & seed);

/// \brief Writes a 3D image as one MR series into `dir` (created; must be absent or empty unless `force`):
/// files IM00001.dcm ... one per slice (InstanceNumber = slice index + 1). Returns the files written, in order.
/// Throws Error(Output) when the directory is not empty and `force` is false or a file cannot be written,
/// Error(Input) for an empty image.
std::vector<fs::path> WriteDicomSeries(const FloatImage * image, const fs::path & dir, const SeriesDescriptor & info,
                                       bool force);

/// \brief Writes a DWI (one component per entry of `gradients`, directions in LPS: `gradients.frame` must be
/// "lps") as one classic MR series: volume v, slice k → InstanceNumber v * slices + k + 1,
/// TemporalPositionIdentifier v + 1. ImageType gets DIFFUSION. Throws Error(Input) on a count mismatch.
std::vector<fs::path> WriteDicomDwiSeries(const DwiImage * image, const io::GradientTable & gradients,
                                          const fs::path & dir, const SeriesDescriptor & info,
                                          DiffusionConvention convention, bool force);

/// One file as read back by ReadBackSeriesForTest.
struct ReadBackSlice
{
  fs::path file;
  int instanceNumber = 0;
  int seriesNumber = 0;
  int temporalPosition = 0;
  std::array<double, 3> position{};     ///< ImagePositionPatient [mm]
  std::array<double, 6> orientation{};  ///< ImageOrientationPatient
  std::array<double, 2> pixelSpacing{}; ///< row spacing, column spacing [mm]
  double sliceThickness = 0.0;          ///< [mm]
  unsigned int rows = 0, columns = 0;
  std::vector<float> pixels; ///< row-major, rescale applied
  bool hasStandardDiffusion = false;
  double bValue = 0.0;               ///< (0018,9087) [s/mm^2]
  std::array<double, 3> direction{}; ///< (0018,9089), zero when absent
  bool hasSiemensDiffusion = false;
  double siemensBValue = 0.0;               ///< (0019,100C)
  std::array<double, 3> siemensDirection{}; ///< (0019,100E), zero when absent
  std::string patientName, patientId, studyDate, seriesDescription, contrastBolusAgent, modality;
  std::string studyInstanceUid, seriesInstanceUid, sopInstanceUid, frameOfReferenceUid;
};

/// \brief Minimal reader for tests of the writer (not the import path, which is gw/dicom/dicom.h): every *.dcm in
/// `dir`, sorted by InstanceNumber, with geometry, pixels and diffusion tags as stored. Throws Error(Input) when a
/// file cannot be parsed.
std::vector<ReadBackSlice> ReadBackSeriesForTest(const fs::path & dir);
} // namespace gw::dicom
