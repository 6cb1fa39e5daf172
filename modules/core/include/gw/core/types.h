#pragma once
/// \file types.h
/// \brief The fixed set of pixel and image types used across GraftWatch. Convert at the IO boundary.
#include <cstdint>

#include <itkDiffusionTensor3D.h>
#include <itkImage.h>
#include <itkVector.h>
#include <itkVectorImage.h>

namespace gw
{
constexpr unsigned int Dimension = 3;

using FloatImage = itk::Image<float, 3>;         ///< intensities, scalar maps (FA, MD [mm^2/s])
using MaskImage = itk::Image<std::uint8_t, 3>;   ///< binary masks: 0 background, 1 inside
using LabelImage = itk::Image<std::uint16_t, 3>; ///< label maps (lesion instances, tissue classes)
using Label32Image = itk::Image<std::uint32_t, 3>;
using Float4DImage = itk::Image<float, 4>;         ///< time series / DWI as a 4D volume (NIfTI layout)
using DwiImage = itk::VectorImage<float, 3>;       ///< DWI, one component per gradient (NRRD layout)
using TensorPixel = itk::DiffusionTensor3D<float>; ///< upper-triangular xx,xy,xz,yy,yz,zz [mm^2/s]
using TensorImage = itk::Image<TensorPixel, 3>;
using VectorPixel = itk::Vector<float, 3>;
using VectorImage3 = itk::Image<VectorPixel, 3>; ///< displacement fields, eigenvectors, colour FA

using PointType = FloatImage::PointType;     ///< physical point, LPS [mm]
using SpacingType = FloatImage::SpacingType; ///< [mm]
using DirectionType = FloatImage::DirectionType;
using IndexType = FloatImage::IndexType;
using SizeType = FloatImage::SizeType;
using RegionType = FloatImage::RegionType;
} // namespace gw
