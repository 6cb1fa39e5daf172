// libFuzzer target: image header reading and loading (gw::io::ReadImageInfo, then ReadFloatImage or
// ReadFloat4DImage and ReadDwiSamples / ReadVectorImage as the header says). The input is written to a private folder
// under a name whose extension follows its content: NRRD magic -> .nrrd, gzip magic -> .nii.gz, MetaImage keys -> .mha,
// otherwise .nii. gw::Error is the documented outcome of bad input and is ignored; anything else (another
// exception type, a crash, a sanitizer report, an allocation beyond -malloc_limit_mb: a header claiming a huge
// image must be refused before allocating) is a finding.
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "gw/core/error.h"
#include "gw/io/image_io.h"

namespace
{
bool
StartsWith(const std::uint8_t * data, std::size_t size, const char * prefix)
{
  const std::size_t n = std::strlen(prefix);
  return size >= n && std::memcmp(data, prefix, n) == 0;
}
} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t * data, std::size_t size)
{
  std::string name = "image.nii";
  if (StartsWith(data, size, "NRRD"))
    name = "image.nrrd";
  else if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
    name = "image.nii.gz";
  else if (StartsWith(data, size, "ObjectType") || StartsWith(data, size, "NDims"))
    name = "image.mha";
  const auto path = gw::fuzz::FreshDir() / name;
  gw::fuzz::WriteFile(path, data, size);
  try
  {
    const gw::io::ImageInfo info = gw::io::ReadImageInfo(path);
    if (info.components > 1)
      gw::io::ReadVectorImage(path);
    else if (info.dimension == 4)
    {
      gw::io::ReadFloat4DImage(path);
      // gw_dti's reader: the series as stored, voxels converted on demand
      const gw::io::DwiSamples samples = gw::io::ReadDwiSamples(path);
      std::vector<float> one(samples.Volumes());
      std::vector<double> sums(samples.Voxels(), 0.0);
      if (samples.Voxels() > 0 && samples.Volumes() > 0)
      {
        samples.Load(0, one.data());
        samples.Load(samples.Voxels() - 1, one.data());
        samples.AddVolume(samples.Volumes() - 1, sums.data());
      }
      samples.ToImage(1);
    }
    else
      gw::io::ReadFloatImage(path);
  }
  catch (const gw::Error &)
  {
  }
  return 0;
}
