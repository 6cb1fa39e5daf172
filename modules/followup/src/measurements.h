// Robust statistics and partial-volume measurements shared by the follow-up steps: internal to the follow-up module.
#pragma once

#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "gw/core/types.h"
#include "gw/dti/tensor_fit.h"
#include "gw/segmentation/lesion.h"

namespace gw::followup::detail
{
/// \brief The q-quantile (0..1, nearest rank: element round(q (n - 1)) of the sorted values) of `values`, which it
/// reorders; NaN when empty.
double Percentile(std::vector<float> & values, double q);

/// \brief The median (element n/2 of the sorted values) of `values`, which it reorders; NaN when empty.
double Median(std::vector<float> & values);

/// \brief Mean of the values between the 25th and the 75th percentile (nearest ranks) of `values`, which it sorts; NaN
/// when empty. As robust as the median to a few outliers, and smoother where the values come from two tissues (the
/// median of a grey/white matter mixture jumps between the two modes with the noise).
double InterquartileMean(std::vector<float> & values);

/// \brief Median and robust sigma (1.4826 x median absolute deviation) of `values`, which it reorders; NaN when
/// empty.
std::pair<double, double> MedianAndSigma(std::vector<float> & values);

/// \brief Partial-volume volume of each component of `labels` [mm^3], for a structure brighter than uniform
/// surroundings (a CSF-filled cavity on T2w, 2-3 times as bright as cord). A structure a few voxels across is mostly
/// boundary: its binary (thresholded) volume moves by +/-20% with the grid position, enough to cross a 25% expansion
/// rule between two scans of an unchanged structure. Here every voxel of the component and of the outside layer
/// touching it (26-neighbourhood, inside `tissue`) counts with its structure fraction, linear mixing of the
/// structure and its surroundings: f = (I - b) / (s - b), clamped to [0, 1], where s = insideLevel(label) is the
/// intensity of the pure structure and b = median of the `nearest` nearest voxels of the next layer outward inside
/// `tissue` (what surrounds that part of the structure), or `outsideLevel` when there are fewer of them. Without
/// contrast (s <= b) a voxel counts 1 inside the component and 0 outside. Surroundings that vary by a sizeable part
/// of the contrast (grey and white matter around a graft) count as partial volume: use IsoSurfaceVolumes there.
/// `image`, `labels` and `tissue` share one grid.
std::map<int, double> PartialVolumes(const FloatImage * image, const LabelImage * labels, const MaskImage * tissue,
                                     const std::function<double(int label)> & insideLevel, double outsideLevel,
                                     std::size_t nearest = 8);

/// \brief Volume of each component of `labels` [mm^3] inside the iso-surface at `threshold(label)` of the
/// trilinearly interpolated image, counted on `subsamples`^3 points per voxel within two 26-neighbourhood layers
/// around the component (component voxels, and voxels inside `tissue` and in no other component). For a structure
/// brighter than its surroundings with the threshold half-way between the two, this is the volume inside the
/// half-maximum surface: unlike a voxel count at the same threshold, it does not move by a voxel layer with the
/// grid position. `image`, `labels` and `tissue` share one grid.
std::map<int, double> IsoSurfaceVolumes(const FloatImage * image, const LabelImage * labels, const MaskImage * tissue,
                                        const std::function<double(int label)> & threshold, int subsamples = 3);

/// \brief The intensity of each component's pure structure: the interquartile mean of its interior voxels (those whose
/// 6 face neighbours all belong to the component) when it has at least `minInterior` of them, else the 95th percentile
/// of all its voxels (a component too thin to have an interior is all partial volume; its brightest voxels come closest
/// to the pure structure).
std::map<int, double> InteriorLevels(const FloatImage * image, const LabelImage * labels, std::size_t minInterior = 4);
/// \brief Fraction of each voxel of `reference` covered by `mask` (another grid of the same frame), from
/// `subsamples`^3 points per voxel looked up by nearest neighbour; computed where `where` (on the reference grid) is
/// set, 0 elsewhere.
FloatImage::Pointer CoveredFraction(const MaskImage * mask, const itk::ImageBase<3> * reference,
                                    const MaskImage * where, int subsamples = 4);

/// What CorrectBorderFa did.
struct BorderFaCorrection
{
  double referenceMd = 0.0;  ///< MD of the cord interior [mm^2/s] (0: too few interior voxels, nothing corrected)
  std::size_t interior = 0;  ///< ROI voxels entirely inside the cord and outside the edema
  std::size_t border = 0;    ///< ROI voxels on the cord border (outside the edema)
  std::size_t edema = 0;     ///< ROI voxels touching the edema
  std::size_t corrected = 0; ///< border and edema voxels whose MD was above the reference
};

/// \brief FA of the cord with the free water of CSF partial volume and of edema removed: a first-order free-water
/// correction in the tensor domain (after Pasternak et al. 2009, MRM 62:717, with the tissue diffusivity taken from
/// the cord interior instead of fitted). A DWI voxel across the cord border holds CSF, whose signal (S0 ~2.5 x the
/// cord's, isotropic, 3e-3 mm^2/s) adds a nearly isotropic part to the apparent tensor: 10% of CSF by volume takes
/// the FA of white matter from 0.70 to 0.57. Vasogenic edema is the same extracellular free water inside the cord
/// (Pasternak's model was made for it): its signal, stronger than white matter's, makes a voxel's FA fall by more
/// than the edema's share of the voxel. The border voxels are those of `roi` (on the grid of `fa` and `md`) not
/// entirely covered by `cordMask` (any grid of the same frame; CoveredFraction); the edema voxels those touching
/// `edemaMask` (optional, any grid). Their MD in excess of the reference (median MD of the ROI voxels entirely
/// inside the cord and away from the edema) is taken as that isotropic part and removed: the deviatoric part of the
/// tensor is unchanged, so FA' = sqrt(1.5 dev^2 / (dev^2 + 3 ref^2)) with dev^2 = 3 MD^2 FA^2 / (1.5 - FA^2).
/// Interior voxels, and corrected candidates not above the reference, keep their FA. Returns the corrected FA map
/// (a copy; nothing changes when fewer than 10 interior voxels).
FloatImage::Pointer CorrectBorderFa(const dti::ScalarMaps & maps, const MaskImage * cordMask, const MaskImage * roi,
                                    BorderFaCorrection * info = nullptr, const MaskImage * edemaMask = nullptr);
/// \brief Connected voxels above the grow threshold that count as a scan's enhancement when a later focus is
/// tested for having enhanced before: as few as this (a cluster needs seg::EnhancementParams::minVoxels, 3).
/// A thin vessel or dura cut by thick slices can enhance in two voxels on one scan and in a cluster on the next
/// (the TCGA exam re-imaged: 3 of 5 false NEW_ENHANCEMENT flags over twelve pitched re-scans). Two adjacent voxels
/// above 3.5 sigmas are not noise: white noise gives about 0.3 such pairs in a whole brain's 400,000 voxels (26
/// neighbours, p = 2.3e-4 each), against 90 lone voxels.
constexpr std::size_t kEarlierEnhancementMinVoxels = 2;

/// \brief Where a scan enhanced, on its T1w grid and wherever its tissue mask reached: connected voxels of its z
/// map (seg::EnhancementResult::zMap) above the clusters' grow threshold, at least kEarlierEnhancementMinVoxels of
/// them or holding one above the seed threshold. A lone voxel of noise above the grow threshold is not enhancement.
MaskImage::Pointer EnhancingAnywhere(const segmentation::EnhancementResult & e);
} // namespace gw::followup::detail
