#pragma once
/// \file dwi_io.h
/// \brief A DWI with its gradient table, read from NIfTI+bval+bvec or NRRD DWMRI, written to either.
#include <filesystem>
#include <optional>

#include "gw/core/types.h"
#include "gw/io/gradients.h"
#include "gw/io/image_io.h"

namespace gw::io
{
struct Dwi
{
  DwiImage::Pointer image; ///< one component per gradient entry
  GradientTable gradients; ///< directions in LPS
};

/// \brief Reads a DWI: NRRD DWMRI (gradients from the header) or NIfTI 4D with bval/bvec (paths default to the
/// image path with .bval/.bvec). Throws Error(Input) on count mismatch.
Dwi ReadDwi(const fs::path & image, const std::optional<fs::path> & bval = {},
            const std::optional<fs::path> & bvec = {});

/// \brief A DWI for voxel-wise fitting: its samples as the file stores them (see DwiSamples) and its gradient table.
struct DwiSeries
{
  DwiSamples samples;
  GradientTable gradients; ///< directions in LPS
};

/// \brief Reads what ReadDwi reads, keeping a NIfTI series' samples as stored (see ReadDwiSamples).
DwiSeries ReadDwiSeries(const fs::path & image, const std::optional<fs::path> & bval = {},
                        const std::optional<fs::path> & bvec = {});

/// \brief Writes a DWI: .nrrd/.nhdr → NRRD DWMRI (measurement frame identity, gradients in LPS... as Slicer);
/// .nii/.nii.gz → NIfTI 4D + .bval/.bvec next to it. Atomic, refuses to overwrite unless `force`.
void WriteDwi(const Dwi & dwi, const fs::path & path, bool force);
} // namespace gw::io
