#pragma once
/// \file tractography.h
/// \brief Deterministic tensor tractography (principal eigenvector, 4th-order Runge-Kutta, trilinear tensor
/// interpolation), tractogram IO (MRtrix .tck, legacy VTK polydata for 3D Slicer) and along-tract profiles.
///
/// Points are LPS world coordinates [mm] in memory. Files: .tck holds RAS "scanner" coordinates as MRtrix3
/// expects; .vtk is written in RAS with the header tag "SPACE=RAS" by default, which is what SlicerDMRI assumes
/// for fibre bundles (and what Slicer's model reader honours when the tag is present); `vtkLps` writes LPS with
/// "SPACE=LPS" instead.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gw/core/types.h"
#include "gw/dti/tensor_fit.h"

namespace gw::dti
{
namespace fs = std::filesystem;

using Streamline = std::vector<PointType>; ///< LPS [mm]

struct Tractogram
{
  std::vector<Streamline> streamlines;
};

struct TrackingOptions
{
  unsigned int seedsPerVoxel = 1; ///< 1: voxel centre; >1: deterministic jitter inside the voxel
  std::uint64_t seed = 1;         ///< jitter seed
  double stepMm = 0.0;            ///< RK4 step [mm]; 0 = half the smallest voxel spacing
  double faThreshold = 0.15;      ///< stop when the interpolated FA drops below
  double angleDegrees = 45.0;     ///< stop when the direction turns more than this in one step
  double minLengthMm = 10.0;      ///< discard shorter streamlines
  double maxLengthMm = 500.0;     ///< stop (and keep) at this length
  unsigned int threads = 0;       ///< 0 = hardware concurrency
};

/// Include/exclude/stopping regions (any may be null). Masks on another grid are sampled by nearest neighbour.
struct TrackingRegions
{
  const MaskImage * seeds = nullptr;      ///< required
  const MaskImage * stopMask = nullptr;   ///< tracking allowed only inside (e.g. the brain/cord mask)
  std::vector<const MaskImage *> include; ///< a streamline must visit every include mask
  std::vector<const MaskImage *> exclude; ///< a streamline visiting any exclude mask is discarded
};

/// \brief Tracks from every seed in both directions and joins the halves. Output order is deterministic
/// (seed order) whatever the number of threads. Throws Error(Input) when the seed mask is empty or missing.
Tractogram TrackTensors(const TensorImage * tensor, const TrackingRegions & regions, const TrackingOptions & options);

/// \brief Length of one streamline [mm].
double StreamlineLength(const Streamline & s);

struct TractogramStats
{
  std::size_t count = 0;
  double meanLengthMm = 0.0, sdLengthMm = 0.0, minLengthMm = 0.0, medianLengthMm = 0.0, maxLengthMm = 0.0;
};
TractogramStats ComputeStats(const Tractogram & tractogram);

/// \brief MRtrix3 .tck (Float32LE, RAS coordinates). Atomic, refuses existing files unless `force`.
void WriteTck(const Tractogram & tractogram, const fs::path & path, bool force);
/// \brief Reads a .tck (Float32LE/BE, Float64LE/BE); returns LPS points. Throws Error(Input).
Tractogram ReadTck(const fs::path & path);
/// \brief Legacy VTK polydata (binary), RAS with "SPACE=RAS" unless `lps`. Per-point FA is written as point data
/// when `fa` is given.
void WriteVtk(const Tractogram & tractogram, const fs::path & path, bool force, bool lps = false,
              const FloatImage * fa = nullptr);

/// Along-tract profile: streamlines resampled to `nodes` equidistant points, oriented consistently (each one
/// flipped if that brings it closer to the longest streamline), scalar maps sampled trilinearly at the nodes.
struct TractProfile
{
  unsigned int nodes = 0;
  std::size_t streamlines = 0;
  std::vector<PointType> meanPosition;       ///< LPS [mm] per node
  std::vector<std::string> names;            ///< "FA", "MD", "AD", "RD"
  std::vector<std::vector<double>> mean, sd; ///< [metric][node]; diffusivities in [mm^2/s]
};

TractProfile AlongTractProfile(const Tractogram & tractogram, const ScalarMaps & maps, unsigned int nodes = 100);

/// \brief Writes the profile as JSON (.json) or TSV (anything else). Atomic, refuses existing unless `force`.
void WriteTractProfile(const TractProfile & profile, const fs::path & path, bool force);
} // namespace gw::dti
