#pragma once
/// \file dicom.h
/// \brief DICOM import: recursive scan, series grouping, slice sorting, exact geometry, vendor diffusion tables,
/// pixel decoding (uncompressed, RLE, JPEG, JPEG-LS, JPEG 2000), BIDS-like sidecar and classification.
/// DCMTK is used only inside this module; this header is DCMTK-free.
///
/// Geometry and voxel layout follow dcm2niix (so outputs can be compared voxel for voxel): voxel axis i runs along
/// the DICOM columns (row direction cosine), axis j runs along the rows *reversed* (the first stored row is the last
/// j), axis k runs through the slices in the order dcm2niix uses; the 4th axis is acquisition order.
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/types.h"
#include "gw/io/gradients.h"

namespace gw::dicom
{
namespace fs = std::filesystem;

/// Options of a scan.
struct ScanOptions
{
  bool recursive = true;          ///< descend into sub-directories
  bool includeDerived = true;     ///< keep derived series (ADC, trace, FA...) in the result
  bool includeLocalizers = false; ///< keep localizer/scout series
};

/// Where and how a file's pixel data are stored, found by the scan so that the pixels are read without parsing the
/// header a second time. Offsets are in the file's bytes (after gzip decompression for .gz files).
struct PixelDataInfo
{
  static constexpr std::uint64_t undefinedLength = 0xFFFFFFFFull;
  std::uint64_t elementOffset = 0; ///< start of the top-level (7FE0,0010)/(7FE0,0008) element; 0: unknown
  std::uint64_t valueOffset = 0;   ///< start of its value
  std::uint64_t valueLength = 0;   ///< [bytes]; undefinedLength for encapsulated (compressed) fragments
  std::uint64_t headerEnd = 0;     ///< end of the leading top-level elements of groups <= 0028 (image pixel module)
  unsigned rows = 0, columns = 0, frames = 1, bitsAllocated = 16, samplesPerPixel = 1;
  bool isSigned = false;
  bool isFloat = false;   ///< FloatPixelData (7FE0,0008)
  bool bigEndian = false; ///< transfer syntax byte order
  bool encapsulated = false;
  bool gzip = false; ///< the file is gzip-compressed
};

/// One frame (a 2D image) of a series: a classic file, or one frame of a multi-frame file, or one mosaic tile.
struct FrameRef
{
  fs::path file;
  std::size_t fileIndex = 0;                 ///< index of `file` in the scan (cheap identity for sorting)
  std::string sopInstanceUid;                ///< duplicates (same object in two files) are imported once
  unsigned int frame = 0;                    ///< 0-based frame in a multi-frame file
  std::array<double, 3> position{ 0, 0, 0 }; ///< ImagePositionPatient, LPS [mm]
  int instanceNumber = 0;
  double bValue = -1.0;                      ///< [s/mm^2]; -1 when the frame has no diffusion information
  std::array<double, 3> gradient{ 0, 0, 0 }; ///< LPS unit vector (zero when unknown or b0)
  bool hasGradient = false;
  double acquisitionTime = 0.0;              ///< seconds since midnight (0 when absent)
  int temporalIndex = 0;                     ///< enhanced TemporalPositionIndex or AcquisitionNumber
  std::vector<std::uint32_t> dimensionIndex; ///< enhanced DimensionIndexValues
  double rescaleSlope = 1.0, rescaleIntercept = 0.0;
  PixelDataInfo pixelData; ///< where this frame's file keeps its pixels (shared by the frames of one file)
};

/// A series as found by the scan (headers only, no voxels).
struct SeriesInfo
{
  std::string uid; ///< SeriesInstanceUID (+ "#split" suffix when split by orientation/size/echo)
  int seriesNumber = 0;
  std::string description; ///< SeriesDescription (or ProtocolName)
  std::string modality;
  std::string manufacturer; ///< normalised: Siemens, GE, Philips, Canon, UIH, or the raw value
  unsigned int rows = 0, columns = 0;
  std::array<double, 6> orientation{ 1, 0, 0, 0, 1, 0 };   ///< ImageOrientationPatient (row, column cosines)
  std::array<double, 2> pixelSpacing{ 1, 1 };              ///< [row spacing, column spacing] [mm]
  double sliceThickness = 0.0, spacingBetweenSlices = 0.0; ///< [mm] as stored
  int echoNumber = 0;
  unsigned int bitsAllocated = 16, bitsStored = 16, pixelRepresentation = 0, samplesPerPixel = 1;
  bool multiFrame = false;                       ///< enhanced multi-frame object
  unsigned int mosaicSlices = 0;                 ///< Siemens mosaic: slices per mosaic (0: not a mosaic)
  std::array<double, 3> mosaicNormal{ 0, 0, 0 }; ///< CSA SliceNormalVector (LPS)
  std::string transferSyntax;
  std::vector<FrameRef> frames; ///< all frames, unsorted
  std::vector<std::string> notes;
  nlohmann::json header;      ///< non-identifying header fields used for the sidecar and classification
  std::string classification; ///< T1, T1post, T2, FLAIR, DWI, derived, localizer, other
};

/// Result of a directory scan.
struct ScanResult
{
  std::vector<SeriesInfo> series;
  std::vector<std::string> notes; ///< skipped files (non-DICOM, DICOMDIR, unreadable) with the reason
  std::size_t filesSeen = 0, dicomFiles = 0;
};

/// \brief Scans files and directories (recursively) for DICOM images; gzip-compressed files (.gz) are read in
/// memory. DICOMDIR and non-image objects are skipped with a note; unreadable files are noted, never fatal.
ScanResult ScanDirectories(const std::vector<fs::path> & paths, const ScanOptions & options = {});

/// A decoded series: voxels in their stored integer type (or float for float data), geometry, gradients.
struct LoadedSeries
{
  /// "int16", "uint16", "uint8", "int32", "uint32" or "float32" (dcm2niix rule: unsigned 16-bit data with fewer
  /// than 16 stored bits becomes int16; float32 when the rescale differs between frames).
  std::string pixelType = "int16";
  std::vector<std::uint8_t> voxels; ///< x fastest, then y, z, t (NIfTI order)
  std::array<std::size_t, 4> size{ 1, 1, 1, 1 };
  std::array<double, 3> spacing{ 1, 1, 1 }; ///< [mm]
  double repetitionTime = 0.0;              ///< [s] (4th axis spacing)
  std::array<double, 3> origin{ 0, 0, 0 };  ///< LPS position of voxel (0,0,0) [mm]
  std::array<double, 9> direction{
    1, 0, 0, 0, 1, 0, 0, 0, 1
  };                                         ///< LPS direction cosines, column k = axis k (row-major)
  double sclSlope = 1.0, sclIntercept = 0.0; ///< real value = stored * slope + intercept
  gw::io::GradientTable gradients;           ///< LPS frame; empty when not diffusion
  nlohmann::json sidecar;                    ///< BIDS keys, no patient identifiers
  std::vector<std::string> warnings;
  /// \brief NIfTI RAS affine (4x4 row-major) of the voxel grid.
  std::array<double, 16> RasAffine() const;
  /// \brief Gradients as FSL bvec (image frame, x flipped when det>0), dcm2niix convention.
  gw::io::GradientTable FslGradients() const;
  /// \brief Real values (slope/intercept applied) of voxel `index` (linear).
  double Value(std::size_t index) const;
  std::size_t VoxelCount() const { return size[0] * size[1] * size[2] * size[3]; }
};

/// \brief Decodes a series: sorts slices along the normal, checks spacing (missing slices, irregular spacing,
/// gantry tilt → error or warning), assembles 3D/4D, applies vendor diffusion conventions.
/// Throws Error(Input) for unusable series.
LoadedSeries LoadSeries(const SeriesInfo & series);

/// \brief Converts to the project's float types (slope/intercept applied).
FloatImage::Pointer ToFloatImage(const LoadedSeries & series, unsigned int volume = 0);
Float4DImage::Pointer ToFloat4DImage(const LoadedSeries & series);

/// \brief Classifies a series (T1, T1post, T2, FLAIR, PD, DWI, derived, localizer, other) from its header.
std::string ClassifySeries(const SeriesInfo & series);

/// \brief Output file base name: "<series number>_<sanitized description>" (never path separators or "..").
std::string OutputBaseName(const SeriesInfo & series);

/// \brief Writes a loaded series: image (.nii/.nii.gz with the stored integer type and scl_slope, or .nrrd),
/// sidecar .json, and for diffusion .bval/.bvec (NIfTI) or DWMRI keys (NRRD). Atomic; refuses to overwrite
/// unless `force`. Returns the paths written.
std::vector<fs::path> WriteSeries(const LoadedSeries & series, const fs::path & basePath, const std::string & format,
                                  bool force);

/// Import options and result.
struct ImportOptions
{
  std::string format = "nii.gz"; ///< nii.gz, nii or nrrd
  bool force = false;
  ScanOptions scan;
  /// User classification overrides: key = a series number ("7") or a case-insensitive substring of the series
  /// description ("mprage"); value = the class recorded in the sidecar. Series numbers win over substrings.
  std::map<std::string, std::string> classificationOverrides;
};

/// \brief Reads classification overrides from a JSON object file {"7": "T1post", "mprage": "T1"}.
/// Throws Error(Input) when the file is unreadable or not an object of strings.
std::map<std::string, std::string> ReadClassificationOverrides(const fs::path & file);

/// \brief Applies overrides to a series (see ImportOptions::classificationOverrides); returns true when changed.
bool ApplyClassificationOverrides(SeriesInfo & series, const std::map<std::string, std::string> & overrides);
struct ImportedSeries
{
  std::string name; ///< output base name
  int seriesNumber = 0;
  std::string classification;
  std::vector<fs::path> files;
  std::vector<std::string> warnings;
  std::string error; ///< non-empty when this series failed
};
struct ImportResult
{
  std::vector<ImportedSeries> series;
  std::vector<std::string> notes;
  std::size_t succeeded = 0, failed = 0;
};
/// \brief Machine-readable summaries (used by gw_import --json): one entry per series, with names, numbers,
/// classification, files, warnings and errors; never patient identifiers.
nlohmann::json ToJson(const ScanResult & scan);
nlohmann::json ToJson(const ImportResult & result);

/// \brief Scans, loads and writes every series into `outDir`. A series that fails is reported in the result and
/// does not stop the others.
ImportResult Import(const std::vector<fs::path> & inputs, const fs::path & outDir, const ImportOptions & options);

} // namespace gw::dicom
