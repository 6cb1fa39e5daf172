#pragma once
/// \file cord_profile.h
/// \brief DTI metrics along the spinal cord: per slice, and per region relative to a lesion epicentre.
///
/// Distances are signed along the superior axis of LPS world space (+ = rostral/superior) from the epicentre:
/// d = (p - epicentre) . (0,0,1) [mm]. Regions: "epicentre" |d| <= band/2, "rostral" band/2 < d <= 3 band/2,
/// "caudal" -3 band/2 <= d < -band/2. Slices are those of the image axis closest to superior-inferior.
#include <filesystem>
#include <string>
#include <vector>

#include "gw/core/types.h"
#include "gw/dti/tensor_fit.h"

namespace gw::dti
{
struct MetricSummary
{
  std::size_t voxels = 0;
  double fa = 0.0, md = 0.0, ad = 0.0, rd = 0.0; ///< means; diffusivities [mm^2/s]
  double faSd = 0.0;
};

struct SliceMetrics
{
  int slice = 0;           ///< index along the slice axis
  double distanceMm = 0.0; ///< signed superior distance of the slice's cord centroid from the epicentre [mm]
  MetricSummary metrics;
};

struct RegionMetrics
{
  std::string name;                ///< "epicentre", "rostral", "caudal"
  double fromMm = 0.0, toMm = 0.0; ///< distance range [mm]
  MetricSummary metrics;
};

struct CordProfileResult
{
  PointType epicentre;
  double bandMm = 0.0;
  int sliceAxis = 2;
  std::vector<SliceMetrics> slices; ///< slices holding cord voxels, in index order
  std::vector<RegionMetrics> regions;
};

/// \brief Computes the profile. `cord` may be on another grid (sampled by nearest neighbour at voxel centres);
/// null → every voxel with a non-zero MD. Throws Error(Input) when no voxel is left or bandMm <= 0.
CordProfileResult CordProfile(const ScalarMaps & maps, const MaskImage * cord, const PointType & epicentre,
                              double bandMm);

/// \brief JSON (.json) or TSV (anything else: one row per slice, then one per region). Atomic.
void WriteCordProfile(const CordProfileResult & profile, const std::filesystem::path & path, bool force);
} // namespace gw::dti
