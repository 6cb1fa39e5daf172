#pragma once
/// \file lesion.h
/// \brief Intensity abnormalities inside a tissue mask (cord or brain): T2-hyperintense / T1-hypointense lesions,
/// syrinx (intramedullary CSF-like cavity), contrast enhancement (T1 post minus pre) and edema around a lesion or
/// graft. All thresholds come from robust statistics of normal-appearing tissue: median and sigma = 1.4826 MAD.
#include <cstddef>
#include <optional>
#include <vector>

#include "gw/core/types.h"
#include "gw/segmentation/anatomy.h"

namespace gw::segmentation
{
/// \brief A segmentation made of components.
struct LesionResult
{
  MaskImage::Pointer mask;           ///< union of kept components
  LabelImage::Pointer labels;        ///< components 1..n by decreasing volume
  std::vector<Component> components; ///< same order as labels
  double tissueMedian = 0.0;         ///< median of the reference tissue (intensity units)
  double tissueSigma = 0.0;          ///< 1.4826 MAD of the reference tissue
  double seedThreshold = 0.0;        ///< intensity (or z) a component must reach
  double growThreshold = 0.0;        ///< intensity (or z) a component grows into
};

/// \brief Parameters of SegmentLesions (T2/FLAIR hyperintense, or T1 hypointense with `hypointense`).
struct LesionParams
{
  bool hypointense = false;      ///< T1-hypointense lesions instead of hyperintense
  double kSeed = 4.0;            ///< seeds: |I - median| > kSeed sigma
  double kGrow = 3.0;            ///< hysteresis: grow into voxels with |I - median| > kGrow sigma
  double halfMaxFraction = 0.0;  ///< >0: per component also require I beyond median + f (peak - median)
  std::size_t minVoxels = 3;     ///< smallest component [voxels]
  double minVolume = 3.0;        ///< smallest component [mm^3]
  double tissueErosion = 1.0;    ///< erode the tissue mask (partial volume with CSF at its border) [mm]
  bool borderGrowth = true;      ///< let lesions grow back into the eroded rim (voxels above kGrow)
  bool regularize = true;        ///< closing (6-neighbourhood) + hole filling + majority rim (>= 10 of 27)
  std::optional<PointType> seed; ///< seeded mode: only the component grown from this point (LPS [mm])
};

/// \brief Lesions inside `tissue` (resampled to the image grid when grids differ). Throws Error(Input) for an
/// empty tissue mask.
LesionResult SegmentLesions(const FloatImage * image, const MaskImage * tissue, const LesionParams & params = {});

/// \brief Parameters of SegmentSyrinx.
struct SyrinxParams
{
  double cordErosion = 0.0;      ///< erode the cord mask before the search [mm]
  double csfFraction = 0.5;      ///< T2 threshold: cord + f (CSF - cord), CSF level measured around the cord
  double kSeed = 4.0;            ///< seeds must also exceed cord median + kSeed sigma
  double minElongation = 1.5;    ///< craniocaudal length / max axial equivalent diameter
  double csfLikeFraction = 0.75; ///< component median must exceed cord + f (CSF - cord) (lesions are darker)
  std::size_t minVoxels = 5;     ///< smallest cavity [voxels]
  double minVolume = 3.0;        ///< smallest cavity [mm^3]
  double csfShell = 2.5;         ///< thickness of the shell around the cord where CSF is measured [mm]
  /// With a FLAIR: the CSF-like test is on this percentile of the component's T2 (the cavity's core; partial
  /// volume lowers only its rim, which is most of a cavity 2 voxels across) ...
  double corePercentile = 0.9;
  /// ... and the component's median FLAIR must be below cord + f (CSF - cord) on the FLAIR (CSF is suppressed;
  /// lesions and edema are FLAIR bright)
  double flairDarkFraction = 0.5;
};

/// \brief Syrinx: T2-bright (CSF-like) cavity inside the cord, T1-dark when `t1` is given (same grid required),
/// elongated along the cord (length >= minElongation x max axial equivalent diameter), with a median intensity
/// near the CSF level measured in a shell around the cord (lesions are brighter than cord but darker than CSF);
/// voxels of `exclude` (e.g. a lesion mask) are never syrinx. Throws Error(Processing) when the shell is not
/// brighter than the cord (not a T2 image).
LesionResult SegmentSyrinx(const FloatImage * t2, const FloatImage * t1, const MaskImage * cord,
                           const MaskImage * exclude, const SyrinxParams & params = {});

/// \brief As above, with a FLAIR on the T2 grid (null: as above). A small cavity is mostly partial-volume rim, so
/// its median T2 falls short of the CSF level while its core reaches it; the FLAIR tells the cavity (suppressed,
/// dark) from a lesion (bright) instead: a component is kept when its `corePercentile` T2 reaches the
/// `csfLikeFraction` level and its median FLAIR is below the `flairDarkFraction` level.
LesionResult SegmentSyrinx(const FloatImage * t2, const FloatImage * t1, const FloatImage * flair,
                           const MaskImage * cord, const MaskImage * exclude, const SyrinxParams & params = {});

/// \brief Parameters of SegmentEnhancement.
struct EnhancementParams
{
  double kSeed = 5.0; ///< seeds: z > kSeed
  double kGrow = 3.5; ///< grow into z > kGrow
  /// a cluster of z > kGrow at least this large [mm^3] is enhancement without a seed voxel (0: off). A nodule 6 mm
  /// across (+120 %) planted in a real exam of 5.5 mm slices, resampled by the follow-up and the T1w pair's
  /// alignment, peaked at 4.7 sigmas over 16 voxels (71 mm^3) above kGrow and was missed by the seed alone.
  double extentMm3 = 50.0;
  std::size_t minVoxels = 3;  ///< smallest cluster [voxels]
  double minVolume = 3.0;     ///< smallest cluster [mm^3]
  bool matchIntensity = true; ///< scale post to pre by the ratio of tissue medians before subtracting
  /// not searched: voxels where pre or post is exactly zero (no data) and within this distance of one [mm]
  double noDataMarginMm = 2.0;
  /// when > 0: not searched: voxels within fatMarginMm of fat that reaches in from outside the tissue mask (pre
  /// above this many times its median in the tissue, connected to voxels outside it)
  double outsideFatRatio = 0.0;
  double fatMarginMm = 2.0;
};

/// \brief Enhancement result: clusters plus the normalized difference map.
struct EnhancementResult : LesionResult
{
  /// (post - pre - median) / sigma, the median and sigma of the difference within tissue; on the whole grid
  /// (clusters are only searched inside tissue), so that a follow-up can read a location's earlier enhancement
  /// wherever its own tissue mask reaches
  FloatImage::Pointer zMap;
};

/// \brief Enhancement: registered T1 post minus pre (same grid required), normalized by the robust sigma of the
/// difference inside `tissue` (when null: voxels above 10 % of the pre image's 99th percentile).
EnhancementResult SegmentEnhancement(const FloatImage * pre, const FloatImage * post, const MaskImage * tissue,
                                     const EnhancementParams & params = {});

/// \brief Parameters of SegmentEdema.
struct EdemaParams
{
  double distance = 10.0;    ///< search band around the lesion/graft [mm]
  double kSeed = 3.0;        ///< seeds: I > median + kSeed sigma (normal tissue outside the band)
  double kGrow = 2.0;        ///< grow into I > median + kGrow sigma
  std::size_t minVoxels = 3; ///< smallest component [voxels]
  double minVolume = 3.0;    ///< smallest component [mm^3]
};

/// \brief Edema: T2/FLAIR hyperintensity within `distance` of `lesion` (lesion or graft mask), inside `tissue`
/// (null: everything), excluding the lesion itself; components must touch the band's inner part (within 1 voxel
/// of the lesion or connected to it through hyperintense voxels).
LesionResult SegmentEdema(const FloatImage * image, const MaskImage * tissue, const MaskImage * lesion,
                          const EdemaParams & params = {});
} // namespace gw::segmentation
