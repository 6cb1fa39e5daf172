#pragma once
/// \file image_io.h
/// \brief Reading and writing images: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd).
/// Every reader converts to the fixed pixel types of gw/core/types.h; every writer is atomic and refuses to
/// overwrite without `force`. Geometry is ITK's LPS physical space [mm].
#include <filesystem>
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
