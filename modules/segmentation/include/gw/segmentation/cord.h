#pragma once
/// \file cord.h
/// \brief Automatic spinal cord segmentation on T2 (cord dark in bright CSF) or T1 (cord bright in dark CSF),
/// sagittal or axial acquisitions. Two steps: (1) centerline: per axial slice a ring detector (dark disc with
/// bright surroundings on all four sides for T2, the reverse for T1) proposes candidates, dynamic programming
/// along the superior axis picks a smooth path, a robust LOESS trend (Tukey biweight) replaces outlying slices
/// (e.g. a bright lesion hiding the dark cord on T2), a running median + mean smooths it; (2) per axial slice a
/// star-shaped active contour: radial intensity profiles around the centerline, edge strength along each ray, a
/// circular dynamic program (smoothness between neighbouring rays), run twice: the second pass is pulled towards
/// the robust trend of each ray's radius along the cord (3D shape prior), then a median across 5 slices.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gw/core/types.h"

namespace gw::segmentation
{
/// Contrast of the cord against CSF.
enum class CordContrast
{
  T2, ///< cord dark, CSF bright
  T1  ///< cord bright, CSF dark
};

/// \brief Parameters of SegmentCord / DetectCenterline.
struct CordParams
{
  CordContrast contrast = CordContrast::T2;
  std::optional<PointType> seed;     ///< a point inside the cord (LPS [mm]); the centerline passes through it
  std::vector<PointType> centerline; ///< a given centerline (LPS [mm]); skips detection when not empty
  double minRadius = 2.5;            ///< smallest cord radius searched by the ring detector [mm]
  double maxRadius = 6.5;            ///< largest cord radius searched by the ring detector [mm]
  double maxContourRadius = 9.0;     ///< contour search range around the centerline [mm]
  double maxSlope = 1.0;             ///< largest in-plane centerline shift per mm along SI [mm/mm]
  unsigned int rays = 64;            ///< rays of the star-shaped contour
  double trendBandwidth = 20.0;      ///< half-width of the robust (LOESS) trend of centerline and radii along SI [mm]
  double outlierDistance = 2.0;      ///< a centerline point farther than this from the trend is replaced [mm]
  double radiusTolerance = 1.5;      ///< contour radii deviating more than this from their trend are penalised [mm]
};

/// \brief Cord segmentation result.
struct CordResult
{
  MaskImage::Pointer mask;           ///< cord mask on the image grid
  MaskImage::Pointer centerlineMask; ///< one voxel per axial slice
  std::vector<PointType> centerline; ///< one LPS point [mm] per axial slice, inferior to superior
  std::vector<double> meanRadius;    ///< mean contour radius per centerline point [mm]
  /// Per slice with a contour: SI position of its centre (LPS z) and the extent along the LPS AP axis of the contour
  /// of the edges alone (sub-voxel: radii on a 0.25 mm grid; without the smoothness prior along the cord, which
  /// pulls a local swelling back toward its trend), inferior to superior [mm]
  struct ContourSlice
  {
    double z = 0.0;
    double apDiameter = 0.0;
  };
  std::vector<ContourSlice> contour;
};

/// \brief Detects the cord centerline: one LPS point [mm] per axial slice (inferior → superior).
/// Throws Error(Processing) when no cord-like structure is found.
std::vector<PointType> DetectCenterline(const FloatImage * image, const CordParams & params = {});

/// \brief Segments the cord. Throws Error(Processing) when it fails.
CordResult SegmentCord(const FloatImage * image, const CordParams & params = {});

/// \brief One point per axial slice: the centroid of the mask in that slice (LPS [mm]), inferior → superior.
std::vector<PointType> CenterlineFromMask(const MaskImage * mask);

/// \brief A centerline as a mask (one voxel per point) on the grid of `reference`.
MaskImage::Pointer CenterlineToMask(const std::vector<PointType> & points, const itk::ImageBase<3> * reference);

/// \brief Writes {"coordinate_system":"LPS","units":"mm","points":[[x,y,z],...]} atomically.
void WriteCenterlineJson(const std::vector<PointType> & points, const std::filesystem::path & path, bool force);

/// \brief Reads a centerline: our JSON (or a bare JSON list of [x,y,z] LPS points), or an image whose non-zero
/// voxels are the centerline (e.g. SCT's *_centerline.nii.gz; one centroid per axial slice).
std::vector<PointType> ReadCenterline(const std::filesystem::path & path);
} // namespace gw::segmentation
