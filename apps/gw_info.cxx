// gw_info: header facts of an image (size, spacing, origin, direction, pixel type) as JSON on stdout.
#include <iostream>

#include <nlohmann/json.hpp>

#include "gw/cli/app.h"
#include "gw/core/files.h"
#include "gw/io/image_io.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app({ "gw_info", "Image information",
                     "Prints the header of an image (NIfTI, NRRD, MetaImage) as JSON on stdout: dimension, size, "
                     "spacing [mm], origin (LPS) [mm], direction cosines, components and pixel type. Voxels are "
                     "not loaded.",
                     "GraftWatch.Utilities" });
  std::string input, output;
  app.Group("Input/output", "Image to describe");
  app.AddImage(input, "input", "Image file").Index(0).Required();
  app.AddFile(output, "output", "Write the JSON to this file instead of stdout").Flag("o").Output().Extensions(".json");
  app.AddReturn("dimension", "Number of axes", gw::cli::Kind::Integer);
  app.AddReturn("components", "Components per voxel", gw::cli::Kind::Integer);

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   const gw::io::ImageInfo info = gw::io::ReadImageInfo(input);
                   nlohmann::json j;
                   j["dimension"] = info.dimension;
                   j["size"] = info.size;
                   j["spacing"] = info.spacing;
                   j["origin"] = info.origin;
                   j["direction"] = info.direction;
                   j["components"] = info.components;
                   j["component_type"] = info.componentType;
                   j["pixel_type"] = info.pixelType;
                   if (output.empty())
                     std::cout << j.dump(2) << "\n";
                   else
                     gw::WriteTextFile(output, j.dump(2) + "\n", ctx.Force());
                   ctx.SetReturn("dimension", info.dimension);
                   ctx.SetReturn("components", info.components);
                 });
}
