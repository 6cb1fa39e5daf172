#pragma once
/// \file snapshot.h
/// \brief Slice pictures for reports: a plane through a physical point, resampled to square pixels, windowed
/// by robust percentiles, with mask contours drawn in colour. Written as PNG (atomic, no overwrite without force).
#include <array>
#include <filesystem>
#include <optional>
#include <vector>

#include "gw/core/types.h"

namespace gw::report
{
enum class Plane
{
  Axial,    ///< perpendicular to S (looking from feet: patient left on the picture's right, radiological)
  Sagittal, ///< perpendicular to L (anterior on the left, superior up)
  Coronal   ///< perpendicular to P (patient left on the right, superior up)
};

struct Overlay
{
  const MaskImage * mask = nullptr; ///< contour of its non-zero region (any grid: sampled in physical space)
  std::array<unsigned char, 3> rgb{ 255, 0, 0 };
};

struct SnapshotOptions
{
  double fieldOfView = 0.0; ///< [mm] square side; 0 = the image extent in that plane
  double pixelSize = 0.0;   ///< [mm]; 0 = the smallest voxel spacing
  int maxPixels = 512;      ///< cap on the picture side
  double lowPercentile = 1.0;
  double highPercentile = 99.5;
  std::optional<std::array<double, 2>> window; ///< a fixed grey window [black, white] instead of the percentiles
  bool crosshair = false;                      ///< mark the centre point
};

/// \brief Renders the plane through `center` (LPS [mm]) and writes `png`.
void WriteSnapshot(const FloatImage * image, const std::vector<Overlay> & overlays, const PointType & center,
                   Plane plane, const std::filesystem::path & png, bool force, const SnapshotOptions & options = {});

/// \brief The physical centre of an image's grid (LPS [mm]).
PointType ImageCenter(const itk::ImageBase<3> * image);
} // namespace gw::report
