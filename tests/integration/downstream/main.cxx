// Downstream use of an installed GraftWatch: write an image with gw::io, read it back, compare.
#include <cmath>
#include <filesystem>
#include <iostream>

#include "gw/core/error.h"
#include "gw/core/provenance.h"
#include "gw/io/image_io.h"

int
main(int argc, char ** argv)
{
  if (argc != 2)
  {
    std::cerr << "usage: downstream SCRATCH_DIR\n";
    return 2;
  }
  try
  {
    const std::filesystem::path file = std::filesystem::path(argv[1]) / "ramp.nii.gz";
    auto image = gw::FloatImage::New();
    gw::FloatImage::SizeType size{ { 5, 4, 3 } };
    image->SetRegions(size);
    gw::FloatImage::SpacingType spacing;
    spacing[0] = 0.5;
    spacing[1] = 1.0;
    spacing[2] = 2.5;
    image->SetSpacing(spacing);
    image->Allocate();
    float v = 0.0f;
    for (auto * p = image->GetBufferPointer(); p != image->GetBufferPointer() + size[0] * size[1] * size[2]; ++p)
      *p = (v += 0.25f);
    gw::io::WriteImage(image.GetPointer(), file, true);
    const auto back = gw::io::ReadFloatImage(file);
    for (unsigned int d = 0; d < 3; ++d)
      if (back->GetLargestPossibleRegion().GetSize()[d] != size[d] ||
          std::abs(back->GetSpacing()[d] - spacing[d]) > 1e-6) // geometry tolerance 1e-6 mm
      {
        std::cerr << "geometry differs after the round trip (axis " << d << ")\n";
        return 1;
      }
    const std::size_t n = size[0] * size[1] * size[2];
    for (std::size_t i = 0; i < n; ++i)
      if (back->GetBufferPointer()[i] != image->GetBufferPointer()[i]) // float NIfTI: exact
      {
        std::cerr << "voxel " << i << " differs after the round trip\n";
        return 1;
      }
    std::cout << "GraftWatch " << gw::Version() << ": gw::io round trip of " << n << " voxels exact\n";
    return 0;
  }
  catch (const gw::Error & e)
  {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
