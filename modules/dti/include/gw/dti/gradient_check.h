#pragma once
/// \file gradient_check.h
/// \brief Gradient-table self-check in the spirit of MRtrix3's dwigradcheck: the b-vectors are expressed in the
/// image axes (the frame of an FSL bvec file), every axis permutation and sign flip is tried (24 tables that
/// differ modulo the irrelevant global sign), a tensor field is fitted for each and deterministic streamlines are
/// grown from the most anisotropic voxels; the table that gives the longest mean streamline has the most coherent
/// fibre orientation field.
#include <array>
#include <string>
#include <vector>

#include "gw/core/types.h"
#include "gw/io/dwi_io.h"

namespace gw::dti
{
/// One candidate table: axis `permutation[i]` of the given table becomes axis i, then multiplied by `sign[i]`.
struct GradientCandidate
{
  std::array<int, 3> permutation{ 0, 1, 2 };
  std::array<int, 3> sign{ 1, 1, 1 };
  std::string label;         ///< "x y z", "-x y z", "y x z", ... in image axes (i=x, j=y, k=z)
  double meanLengthMm = 0.0; ///< mean streamline length [mm]
  std::size_t streamlines = 0;
};

struct GradientCheckOptions
{
  std::size_t maxSeeds = 2000; ///< seeds: the voxels of highest FA in the mask, at most this many
  double seedFa = 0.25;        ///< seed voxels need FA >= this (given table)
  double stopFa = 0.1;         ///< tracking stops below this FA
  double angleDegrees = 45.0;  ///< maximum turn per step
  unsigned int threads = 0;
};

struct GradientCheckResult
{
  std::vector<GradientCandidate> candidates; ///< best first
  std::size_t givenRank = 0;                 ///< 0 when the given table is (one of) the best
  double givenScoreRatio = 1.0;              ///< given mean length / best mean length
  bool givenIsBest = true;                   ///< within 2% of the best score
  /// \brief The table corrected with the best candidate (LPS), equal to the input when givenIsBest.
  io::GradientTable best;
};

/// \brief Applies a candidate (defined on the image axes of `direction`) to an LPS table.
io::GradientTable ApplyCandidate(const io::GradientTable & lps, const DirectionType & direction,
                                 const GradientCandidate & candidate);

/// \brief Runs the check. `mask` null → automatic mask. Throws Error(Processing) when no seed voxel is found.
GradientCheckResult CheckGradients(const io::Dwi & dwi, const MaskImage * mask = nullptr,
                                   const GradientCheckOptions & options = {});
} // namespace gw::dti
