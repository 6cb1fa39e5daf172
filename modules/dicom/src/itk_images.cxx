// Conversion of loaded series to the project's float ITK images (slope/intercept applied).
#include "gw/core/error.h"
#include "gw/dicom/dicom.h"
#include "internal.h"

namespace gw::dicom
{
namespace
{
template <typename TImage>
void
SetGeometry(TImage * image, const LoadedSeries & s)
{
  typename TImage::SpacingType spacing;
  typename TImage::PointType origin;
  typename TImage::DirectionType direction;
  direction.SetIdentity();
  spacing.Fill(1.0);
  origin.Fill(0.0);
  for (unsigned r = 0; r < 3; ++r)
  {
    spacing[r] = s.spacing[r];
    origin[r] = s.origin[r];
    for (unsigned c = 0; c < 3; ++c)
      direction(r, c) = s.direction[r * 3 + c];
  }
  if (TImage::ImageDimension == 4)
    spacing[TImage::ImageDimension - 1] = s.repetitionTime > 0 ? s.repetitionTime : 1.0;
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
}
} // namespace

FloatImage::Pointer
ToFloatImage(const LoadedSeries & s, unsigned int volume)
{
  if (volume >= s.size[3])
    ThrowUsage("volume " + std::to_string(volume) + " out of range (" + std::to_string(s.size[3]) + " volumes)");
  auto image = FloatImage::New();
  FloatImage::SizeType size;
  for (unsigned d = 0; d < 3; ++d)
    size[d] = s.size[d];
  image->SetRegions(size);
  SetGeometry(image.GetPointer(), s);
  image->Allocate();
  const std::size_t n = s.size[0] * s.size[1] * s.size[2];
  detail::ToFloat(s, volume * n, n, image->GetBufferPointer());
  return image;
}

Float4DImage::Pointer
ToFloat4DImage(const LoadedSeries & s)
{
  auto image = Float4DImage::New();
  Float4DImage::SizeType size;
  for (unsigned d = 0; d < 4; ++d)
    size[d] = s.size[d];
  image->SetRegions(size);
  SetGeometry(image.GetPointer(), s);
  image->Allocate();
  const std::size_t n = s.VoxelCount();
  detail::ToFloat(s, 0, n, image->GetBufferPointer());
  return image;
}
} // namespace gw::dicom
