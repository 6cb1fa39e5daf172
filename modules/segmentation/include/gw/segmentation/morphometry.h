#pragma once
/// \file morphometry.h
/// \brief Morphometry of lesion/syrinx components and of the cord. Metric names follow SCT's sct_analyze_lesion
/// where they overlap ("volume [mm3]", "length [mm]", "max_equivalent_diameter [mm]", "max_axial_damage_ratio []",
/// "dorsal_bridge_width [mm]", "ventral_bridge_width [mm]"). Axial slices are slices along the voxel axis closest to
/// SI; AP/LR extents are physical projections onto the LPS axes (see anatomy.h), so sagittal acquisitions work.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/types.h"
#include "gw/segmentation/anatomy.h"

namespace gw::segmentation
{
/// \brief Per-component measurements. NaN when not defined (e.g. no cord mask given).
struct ComponentMorphometry
{
  std::uint16_t label = 0;
  std::size_t voxels = 0;
  double volume = 0.0;                ///< [mm^3]
  double length = 0.0;                ///< craniocaudal extent: axial slices spanned x slice thickness [mm]
  double maxEquivalentDiameter = 0.0; ///< max over axial slices of 2 sqrt(area / pi) [mm]
  double maxAxialDamageRatio = 0.0;   ///< max over axial slices of component area / cord area []
  double maxApDiameter = 0.0;         ///< max over axial slices of the AP extent [mm]
  double maxLrDiameter = 0.0;         ///< max over axial slices of the LR extent [mm]
  double apRatio = 0.0;               ///< max over axial slices of component AP / cord AP (syrinx/cord) []
  double dorsalBridge = 0.0;          ///< midsagittal tissue bridge, posterior, min over slices [mm]
  double ventralBridge = 0.0;         ///< midsagittal tissue bridge, anterior, min over slices [mm]
  double ranoLongest = 0.0;           ///< largest axial slice: longest diameter [mm]
  double ranoPerpendicular = 0.0;     ///< largest axial slice: longest diameter perpendicular to it [mm]
  int ranoSlice = -1;                 ///< index (along the SI voxel axis) of that slice
  PointType centroid;                 ///< LPS [mm]
};

/// \brief Cord measurements on one axial slice.
struct CordSliceMorphometry
{
  int slice = 0;           ///< index along the SI voxel axis
  double z = 0.0;          ///< SI position of the slice centre (LPS z) [mm]
  double area = 0.0;       ///< cross-sectional area, corrected for the centerline angle [mm^2]
  double areaRaw = 0.0;    ///< area in the slice plane [mm^2]
  double apDiameter = 0.0; ///< [mm]
  double lrDiameter = 0.0; ///< [mm]
  double angleDeg = 0.0;   ///< angle between the centerline and the SI axis [deg]
};

struct Morphometry
{
  std::string kind = "lesion"; ///< "lesion", "syrinx", "enhancement", "edema"
  AnatomicalAxes axes;
  std::vector<ComponentMorphometry> components;
  std::vector<CordSliceMorphometry> cord; ///< empty without a cord mask
};

/// \brief Measures every component of `labels` (each non-zero value is one component) and, when `cord` is given
/// (same grid or resampled nearest), the cord per slice and the cord-relative metrics.
Morphometry ComputeMorphometry(const LabelImage * labels, const MaskImage * cord, const std::string & kind = "lesion");

/// \brief Cord cross-sectional area etc. per axial slice (slices without cord omitted).
std::vector<CordSliceMorphometry> ComputeCordMorphometry(const MaskImage * cord);

/// \brief JSON: {"kind", "axes", "components":[{"label", "volume [mm3]", ...}], "cord":[...]}.
nlohmann::json ToJson(const Morphometry & m);
/// \brief TSV, one row per component, header with the JSON metric names.
std::string ComponentsToTsv(const Morphometry & m);
/// \brief TSV, one row per cord slice.
std::string CordToTsv(const Morphometry & m);
} // namespace gw::segmentation
