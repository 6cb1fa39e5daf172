// Reading a 3D NIfTI-1 file straight into a float image (internal to the io module; tested directly).
#pragma once

#include <filesystem>

#include <itkImageIOBase.h>

#include "gw/core/types.h"

namespace gw::io::detail
{
/// A NIfTI-1 single-file 3D scalar image (.nii or .nii.gz; a 4D one of one volume) read straight into a float image:
/// the file read in pieces of 4 MiB (a .nii.gz inflated by ISA-L as it is read: about 1.7x zlib's speed, CRC-32
/// checked), each piece's samples converted into the image. The image is the only buffer of its size: ITK's reader
/// holds the file's samples and then the image, twice the memory. Null when the file is anything else (NIfTI-2,
/// intensity scaling, an unsupported datatype, a multi-member gzip, bytes that do not add up): the caller then reads
/// through ITK. Geometry comes from `io` (ITK's header reading of the same file), so it is exactly what the ITK path
/// gives.
FloatImage::Pointer ReadNiftiScalarDirect(const std::filesystem::path & path, const itk::ImageIOBase * io);
} // namespace gw::io::detail
