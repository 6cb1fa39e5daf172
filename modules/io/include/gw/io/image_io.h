#pragma once
/// \file image_io.h
/// \brief Reading and writing images: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd).
/// Every reader converts to the fixed pixel types of gw/core/types.h; every writer is atomic and refuses to
/// overwrite without `force`. Geometry is ITK's LPS physical space [mm].
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gw/core/types.h"

namespace gw::io
{
namespace fs = std::filesystem;

/// Header-level facts of an image file, read without loading voxels.
struct ImageInfo
{
  unsigned int dimension = 0;    ///< 2, 3 or 4
  std::vector<std::size_t> size; ///< voxels per axis
  std::vector<double> spacing;   ///< [mm] (4th axis: repetition time or 1)
  std::vector<double> origin;    ///< LPS [mm]
  std::vector<double> direction; ///< row-major dimension x dimension
  unsigned int components = 1;   ///< per-voxel components (e.g. DWI in NRRD, tensors)
  std::string componentType;     ///< "uint8", "int16", "float", ...
  std::string pixelType;         ///< "scalar", "vector", "symmetric_second_rank_tensor", ...
};

/// \brief True when the extension is one we read/write (.nii .nii.gz .nrrd .nhdr .mha .mhd).
bool IsSupportedImageFile(const fs::path & path);

/// \brief Reads the header only. Throws Error(Input) for unreadable or unsupported files.
ImageInfo ReadImageInfo(const fs::path & path);

/// \brief Reads a 3D scalar image as float (any stored type; NIfTI scl_slope/inter applied).
/// A 4D file with one volume is accepted. Throws Error(Input) otherwise.
FloatImage::Pointer ReadFloatImage(const fs::path & path);

/// \brief Reads a 3D mask: any non-zero voxel becomes 1.
MaskImage::Pointer ReadMask(const fs::path & path);

/// \brief Reads a 3D label map (integer values kept; must fit in uint16).
LabelImage::Pointer ReadLabelImage(const fs::path & path);

/// \brief Reads a 4D image (NIfTI 4D, or NRRD/MHA vector image turned into 4D) as float.
Float4DImage::Pointer ReadFloat4DImage(const fs::path & path);

/// \brief Reads a multi-component 3D image (NRRD DWI, vector NIfTI, or 4D NIfTI turned into components).
DwiImage::Pointer ReadVectorImage(const fs::path & path);

/// \brief The samples of a multi-component 3D image (a DWI) voxel by voxel, whatever their layout in memory: a
/// voxel-major vector image, or the volumes of a NIfTI series as the file stores them (volume after volume, the
/// file's sample type), which consumers that visit a few voxels (a tensor fit inside a cord mask) use without
/// converting and reordering the whole series. Copies share the samples; they are never modified.
class DwiSamples
{
public:
  DwiSamples() = default;
  /// voxel-major samples of `image` (shared, not copied)
  explicit DwiSamples(DwiImage::Pointer image);
  /// the grid and component count (its buffer is empty when the samples are stored by volume)
  const DwiImage * Geometry() const { return m_Geometry.GetPointer(); }
  std::size_t Voxels() const { return m_Voxels; }
  unsigned int Volumes() const { return m_Volumes; }
  bool StoredByVolume() const { return static_cast<bool>(m_Stored); }
  /// the Volumes() samples of voxel `voxel` (linear index in the grid) as float
  void Load(std::size_t voxel, float * out) const;
  /// adds the samples of volume `volume` to sums[0, Voxels()), as float (the values Load gives)
  void AddVolume(unsigned int volume, double * sums) const;
  /// the samples as a voxel-major vector image: the image itself for voxel-major samples, a converted copy (on
  /// `threads` threads, 0: all) otherwise
  DwiImage::Pointer ToImage(unsigned int threads = 0) const;

  /// samples stored by volume (internal: made by ReadDwiSamples)
  struct Stored;
  DwiSamples(DwiImage::Pointer geometry, std::shared_ptr<const Stored> stored);

private:
  DwiImage::Pointer m_Geometry;
  std::shared_ptr<const Stored> m_Stored;
  std::size_t m_Voxels = 0;
  unsigned int m_Volumes = 0;
};

/// \brief Reads what ReadVectorImage reads, a single-file NIfTI-1 4D series (.nii, .nii.gz; integer or float32
/// samples, no intensity scaling) stored by volume without conversion, anything else through ReadVectorImage.
DwiSamples ReadDwiSamples(const fs::path & path);

/// \brief Writers: atomic (temporary + rename), refuse an existing file unless `force`. `compress` applies to
/// .nii.gz/.nrrd/.mha (NIfTI .nii.gz is always compressed).
void WriteImage(const FloatImage * image, const fs::path & path, bool force, bool compress = true);
void WriteImage(const MaskImage * image, const fs::path & path, bool force, bool compress = true);
void WriteImage(const LabelImage * image, const fs::path & path, bool force, bool compress = true);
void WriteImage(const Float4DImage * image, const fs::path & path, bool force, bool compress = true);
void WriteImage(const DwiImage * image, const fs::path & path, bool force, bool compress = true);
void WriteImage(const TensorImage * image, const fs::path & path, bool force, bool compress = true);
void WriteImage(const VectorImage3 * image, const fs::path & path, bool force, bool compress = true);

/// \brief Conversions between the 4D (NIfTI) and vector-image (NRRD) layouts of a DWI; geometry of the first
/// three axes is kept.
DwiImage::Pointer ToVectorImage(const Float4DImage * image);
Float4DImage::Pointer ToFloat4DImage(const DwiImage * image);

/// \brief Extracts volume `t` of a 4D image as a 3D image (geometry of the first three axes).
FloatImage::Pointer ExtractVolume(const Float4DImage * image, unsigned int t);
/// \brief Extracts component `c` of a vector image as a 3D image.
FloatImage::Pointer ExtractComponent(const DwiImage * image, unsigned int c);
} // namespace gw::io
