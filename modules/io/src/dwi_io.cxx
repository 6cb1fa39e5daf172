// DWI = image + gradient table, from/to NIfTI+bval/bvec and NRRD DWMRI.
#include "gw/io/dwi_io.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include <itkMetaDataObject.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/io/image_io.h"

namespace gw::io
{
namespace
{
bool
IsNrrd(const fs::path & path)
{
  const std::string ext = SplitExtension(path).second;
  return ext == ".nrrd" || ext == ".nhdr";
}

fs::path
Sibling(const fs::path & image, const std::string & ext)
{
  return image.parent_path() / (SplitExtension(image).first + ext);
}
} // namespace

DwiSeries
ReadDwiSeries(const fs::path & image, const std::optional<fs::path> & bval, const std::optional<fs::path> & bvec)
{
  DwiSeries dwi;
  if (IsNrrd(image) && !bval && !bvec)
  {
    dwi.samples = ReadDwiSamples(image);
    dwi.gradients = ReadNrrdGradients(image);
  }
  else
  {
    const fs::path bvalPath = bval ? *bval : Sibling(image, ".bval");
    const fs::path bvecPath = bvec ? *bvec : Sibling(image, ".bvec");
    if (!fs::exists(bvalPath) || !fs::exists(bvecPath))
      ThrowInput("gradient table of " + image.filename().string() + " not found: expected " +
                 bvalPath.filename().string() + " and " + bvecPath.filename().string() + " (or --bval/--bvec)");
    dwi.samples = ReadDwiSamples(image);
    const GradientTable fsl = ReadFslGradients(bvalPath, bvecPath);
    dwi.gradients = FslToLps(fsl, dwi.samples.Geometry()->GetDirection());
  }
  const unsigned int n = dwi.samples.Volumes();
  if (n != dwi.gradients.entries.size())
    ThrowInput(image.filename().string() + " has " + std::to_string(n) + " volumes but the gradient table has " +
               std::to_string(dwi.gradients.entries.size()) + " entries");
  return dwi;
}

Dwi
ReadDwi(const fs::path & image, const std::optional<fs::path> & bval, const std::optional<fs::path> & bvec)
{
  DwiSeries series = ReadDwiSeries(image, bval, bvec);
  return { series.samples.ToImage(), std::move(series.gradients) };
}

void
WriteDwi(const Dwi & dwi, const fs::path & path, bool force)
{
  if (!dwi.image)
    ThrowInternal("WriteDwi: no image");
  if (dwi.gradients.frame != "lps")
    ThrowInternal("WriteDwi: gradient table must be in the LPS frame");
  const unsigned int n = dwi.image->GetNumberOfComponentsPerPixel();
  if (n != dwi.gradients.entries.size())
    ThrowInternal("WriteDwi: " + std::to_string(n) + " volumes but " + std::to_string(dwi.gradients.entries.size()) +
                  " gradient entries");
  if (IsNrrd(path))
  {
    double bMax = 0.0;
    for (const auto & e : dwi.gradients.entries)
      bMax = std::max(bMax, e.bValue);
    auto copy = DwiImage::New();
    copy->Graft(dwi.image);
    itk::MetaDataDictionary dict;
    itk::EncapsulateMetaData<std::string>(dict, "modality", "DWMRI");
    std::ostringstream b;
    b << std::setprecision(10) << bMax;
    itk::EncapsulateMetaData<std::string>(dict, "DWMRI_b-value", b.str());
    for (unsigned int i = 0; i < n; ++i)
    {
      const auto & e = dwi.gradients.entries[i];
      const double scale = (bMax > 0.0 && e.bValue > 0.0) ? std::sqrt(e.bValue / bMax) : 0.0;
      std::ostringstream key, value;
      key << "DWMRI_gradient_" << std::setw(4) << std::setfill('0') << i;
      value << std::setprecision(10) << e.direction[0] * scale << " " << e.direction[1] * scale << " "
            << e.direction[2] * scale;
      itk::EncapsulateMetaData<std::string>(dict, key.str(), value.str());
    }
    // Gradients are written in LPS world coordinates: identity measurement frame.
    std::vector<std::vector<double>> frame{ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
    itk::EncapsulateMetaData<std::vector<std::vector<double>>>(dict, "NRRD_measurement frame", frame);
    copy->SetMetaDataDictionary(dict);
    WriteImage(copy.GetPointer(), path, force);
    return;
  }
  const fs::path bval = Sibling(path, ".bval");
  const fs::path bvec = Sibling(path, ".bvec");
  if (!force)
    for (const auto & p : { path, bval, bvec })
      if (fs::exists(p))
        ThrowOutput("output exists (use --force to overwrite): " + p.string());
  WriteImage(dwi.image.GetPointer(), path, force);
  WriteFslGradients(LpsToFsl(dwi.gradients, dwi.image->GetDirection()), bval, bvec, force);
}
} // namespace gw::io
