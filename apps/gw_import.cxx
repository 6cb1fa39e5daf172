// gw_import: DICOM folders (any vendor, classic/mosaic/enhanced, compressed) -> NIfTI/NRRD + JSON sidecars.
#include <iostream>

#include <nlohmann/json.hpp>

#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/log.h"
#include "gw/dicom/dicom.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app({ "gw_import", "DICOM import",
                     "Scans DICOM folders recursively (any file names, gzip-compressed files, DICOMDIR ignored, "
                     "non-DICOM files skipped with a note), groups images into series, sorts slices along the slice "
                     "normal and writes one image per series (NIfTI with the stored integer type and scl_slope, or "
                     "NRRD) with a JSON sidecar (BIDS keys, no patient identifiers, series classification) and, for "
                     "diffusion series, FSL .bval/.bvec (NIfTI) or DWMRI keys (NRRD). Output names are "
                     "<series number>_<sanitized description>. Series that fail are reported and do not stop the "
                     "others; exit 3 when nothing usable was found.",
                     "GraftWatch.Import" });
  std::vector<std::string> inputs;
  std::string output, format = "nii.gz", classes;
  bool json = false, list = false;
  app.Group("Input/output", "DICOM folders and the output folder");
  app.AddFiles(inputs, "inputs", "DICOM folders or files (searched recursively)", gw::cli::Kind::Directory)
    .Index(0)
    .Required();
  app.AddDirectory(output, "output", "Output folder").Flag("o").Output(gw::cli::OutputKind::Directory);
  app.Group("Options", "Output format and reporting");
  app.AddEnum(format, "format", "Image format", { "nii.gz", "nii", "nrrd" });
  app.AddFlag(json, "json", "Print the import summary (or the series list) as JSON on stdout");
  app.AddFlag(list, "list", "Only list the series found; nothing is written");
  app
    .AddFile(classes, "classes",
             "JSON object overriding the series classification: {\"7\": \"T1post\", \"mprage\": \"T1\"} (keys: "
             "series number or description substring)")
    .Extensions(".json");
  app.AddReturn("series_written", "Number of series written", gw::cli::Kind::Integer);
  app.AddReturn("series_failed", "Number of series that could not be converted", gw::cli::Kind::Integer);

  return app.Run(
    argc, argv,
    [&](gw::cli::Context & ctx)
    {
      const std::vector<std::filesystem::path> paths(inputs.begin(), inputs.end());
      if (list)
      {
        const gw::dicom::ScanResult scan = gw::dicom::ScanDirectories(paths);
        const nlohmann::json j = gw::dicom::ToJson(scan);
        if (json)
          std::cout << j.dump(2) << "\n";
        else
          for (const auto & s : j)
            std::cout << s["name"].get<std::string>() << "\t" << s["classification"].get<std::string>() << "\t"
                      << s["frames"] << " frames\n";
        if (scan.series.empty())
          gw::ThrowInput("no DICOM image series found (" + std::to_string(scan.filesSeen) + " files examined)");
        return;
      }
      if (output.empty())
        gw::ThrowUsage("--output/-o is required unless --list is given");
      gw::dicom::ImportOptions options;
      if (!classes.empty())
        options.classificationOverrides = gw::dicom::ReadClassificationOverrides(classes);
      options.format = format;
      options.force = ctx.Force();
      const gw::dicom::ImportResult result = gw::dicom::Import(paths, output, options);
      for (const auto & s : result.series)
      {
        if (!s.error.empty())
          gw::log::Error("series " + s.name + " failed: " + s.error);
        for (const auto & w : s.warnings)
          gw::log::Warning("series " + s.name + ": " + w);
      }
      if (json)
        std::cout << gw::dicom::ToJson(result).dump(2) << "\n";
      gw::log::Info(std::to_string(result.succeeded) + " series written, " + std::to_string(result.failed) +
                    " failed, " + std::to_string(result.notes.size()) + " files skipped (see --json)");
      ctx.SetReturn("series_written", static_cast<double>(result.succeeded));
      ctx.SetReturn("series_failed", static_cast<double>(result.failed));
      if (result.succeeded == 0)
        gw::ThrowInput("nothing usable: no series could be converted");
    });
}
