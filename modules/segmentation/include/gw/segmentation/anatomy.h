#pragma once
/// \file anatomy.h
/// \brief Anatomical (LPS) axes of an image grid, grid comparison, nearest-neighbour resampling of masks and label
/// maps, connected components and metric morphology. "Axial", "AP", "LR" and "SI" always refer to patient
/// directions derived from the direction cosines, never to voxel-index axes, so sagittal and axial acquisitions
/// give the same answers.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gw/core/types.h"

namespace gw::segmentation
{
/// Anatomical axes in LPS order: 0 = LR (x, towards patient Left), 1 = AP (y, towards Posterior),
/// 2 = SI (z, towards Superior).
enum AnatomicalAxis : unsigned int
{
  LR = 0,
  AP = 1,
  SI = 2
};

/// \brief Which voxel axis is closest to each anatomical axis.
struct AnatomicalAxes
{
  std::array<unsigned int, 3> axis{ { 0, 1, 2 } }; ///< voxel axis of LR, AP, SI
  std::array<int, 3> sign{ { 1, 1, 1 } };          ///< +1 when increasing that index moves towards L / P / S
  std::array<double, 3> spacing{ { 1, 1, 1 } };    ///< voxel spacing along LR, AP, SI voxel axes [mm]
  double obliquityDeg = 0.0;                       ///< largest angle between a voxel axis and its LPS axis [deg]
  /// In-plane pixel area of an axial slice (voxel axes of LR and AP) [mm^2].
  double AxialPixelArea() const { return spacing[LR] * spacing[AP]; }
};

/// \brief Anatomical axes of a grid from its direction cosines. Throws Error(Input) for a degenerate direction.
AnatomicalAxes GetAnatomicalAxes(const itk::ImageBase<3> * image);

/// \brief True when both grids have the same size, and origin/spacing/direction within `tolerance` [mm].
bool SameGrid(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b, double tolerance = 1e-4);

/// \brief An axis is a thick slice axis when its spacing exceeds this many times the grid's finest spacing.
constexpr double kThickSliceRatio = 1.5;

/// \brief The axis of a grid's largest spacing (the first of equal ones).
int CoarsestAxis(const itk::ImageBase<3> * grid);

/// \brief The thick slice axis of a grid (2D multi-slice acquisition): the axis of the largest spacing (the first
/// of equal ones) when it exceeds kThickSliceRatio times the finest spacing; -1 when there is none.
int ThickSliceAxis(const itk::ImageBase<3> * grid);

/// \brief A mask (or label map) on the grid of `reference`, nearest neighbour; a copy when grids already agree.
/// External masks (SCT, Slicer label maps) go through this.
MaskImage::Pointer ResampleMaskNearest(const MaskImage * mask, const itk::ImageBase<3> * reference);
LabelImage::Pointer ResampleLabelsNearest(const LabelImage * labels, const itk::ImageBase<3> * reference);

/// \brief One connected component.
struct Component
{
  std::uint16_t label = 0;
  std::size_t voxels = 0;
  double volume = 0.0; ///< [mm^3]
  PointType centroid;  ///< LPS [mm]
};

/// \brief Labels 26-connected components of a mask (non-zero = inside), dropping those with fewer than
/// `minVoxels` voxels or less than `minVolume` [mm^3]; labels 1..n ordered by decreasing volume.
LabelImage::Pointer LabelComponents(const MaskImage * mask, std::size_t minVoxels, double minVolume,
                                    std::vector<Component> * components = nullptr);

/// \brief Hysteresis on a map: the 26-connected components of its voxels above `grow` that hold a voxel above `seed`,
/// or at least `extentVoxels` voxels (0: no such rule); a 0/1 mask on the map's grid.
MaskImage::Pointer HysteresisMask(const FloatImage * map, double seed, double grow, std::size_t extentVoxels = 0);

/// \brief Components of an existing label map (each non-zero label value is one component).
std::vector<Component> DescribeLabels(const LabelImage * labels);

/// \brief Binary mask of a label map (non-zero → 1) and the reverse (each non-zero voxel → label 1).
MaskImage::Pointer LabelsToMask(const LabelImage * labels);

/// \brief Euclidean distance [mm] from every voxel to the nearest non-zero voxel of `mask` (0 inside);
/// exact separable transform honouring anisotropic spacing. A huge value when the mask is empty.
FloatImage::Pointer DistanceMap(const MaskImage * mask);

/// \brief Metric morphology with a Euclidean ball of radius [mm].
MaskImage::Pointer DilateMm(const MaskImage * mask, double radius);
MaskImage::Pointer ErodeMm(const MaskImage * mask, double radius);

/// \brief Number of non-zero voxels.
std::size_t CountNonZero(const MaskImage * mask);
} // namespace gw::segmentation
