#pragma once
/// \file transform_io.h
/// \brief ITK transform files (.tfm text, .h5 HDF5) that 3D Slicer loads. Double precision.
#include <filesystem>

#include <itkTransform.h>

namespace gw::io
{
using TransformType = itk::Transform<double, 3, 3>;

/// \brief Reads the first transform of a file (a composite is returned as a CompositeTransform).
TransformType::Pointer ReadTransform(const std::filesystem::path & path);

/// \brief Writes a transform (atomic; refuses to overwrite unless `force`).
void WriteTransform(const TransformType * transform, const std::filesystem::path & path, bool force);
} // namespace gw::io
