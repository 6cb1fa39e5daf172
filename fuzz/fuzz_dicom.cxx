// libFuzzer target: DICOM parsing and series assembly (gw::dicom::ScanDirectories + LoadSeries + ToFloatImage).
// The input is written to a private folder as one file (name ending .gz when it starts with the gzip magic);
// when it contains the separator "GWFUZZ-NEXT-FILE" it is split into several files, so that multi-file series
// assembly (sorting, spacing checks, 4D/diffusion) is reached too. gw::Error is the documented outcome of bad
// input and is ignored; anything else escaping (another exception type, a crash, a sanitizer report, an
// allocation beyond -malloc_limit_mb) is a finding.
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "gw/core/error.h"
#include "gw/dicom/dicom.h"

namespace
{
constexpr std::string_view Separator = "GWFUZZ-NEXT-FILE";
}

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t * data, std::size_t size)
{
  const auto & dir = gw::fuzz::FreshDir();
  const std::string_view all(reinterpret_cast<const char *>(data), size);
  std::size_t start = 0;
  for (int index = 0; index < 16 && start <= all.size(); ++index)
  {
    std::size_t end = all.find(Separator, start);
    if (end == std::string_view::npos)
      end = all.size();
    const std::string_view part = all.substr(start, end - start);
    const bool gz =
      part.size() >= 2 && static_cast<unsigned char>(part[0]) == 0x1f && static_cast<unsigned char>(part[1]) == 0x8b;
    gw::fuzz::WriteFile(dir / ("f" + std::to_string(index) + (gz ? ".dcm.gz" : ".dcm")),
                        reinterpret_cast<const std::uint8_t *>(part.data()), part.size());
    if (end == all.size())
      break;
    start = end + Separator.size();
  }
  try
  {
    const gw::dicom::ScanResult scan = gw::dicom::ScanDirectories({ dir });
    for (const auto & series : scan.series)
    {
      try
      {
        const gw::dicom::LoadedSeries loaded = gw::dicom::LoadSeries(series);
        if (loaded.size[3] > 1)
          gw::dicom::ToFloat4DImage(loaded);
        else
          gw::dicom::ToFloatImage(loaded);
        (void)loaded.RasAffine();
        if (!loaded.gradients.entries.empty())
          (void)loaded.FslGradients();
      }
      catch (const gw::Error &)
      {
      }
    }
  }
  catch (const gw::Error &)
  {
  }
  return 0;
}
