// gw_convert: image format conversion (NIfTI <-> NRRD <-> MetaImage); DWI with bval/bvec <-> NRRD DWMRI.
#include "gw/cli/app.h"
#include "gw/core/error.h"
#include "gw/core/provenance.h"
#include "gw/io/dwi_io.h"
#include "gw/io/image_io.h"

int
main(int argc, char ** argv)
{
  gw::cli::App app({ "gw_convert", "Convert image formats",
                     "Converts between NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd). "
                     "With --dwi the input is a diffusion series (NRRD DWMRI, or NIfTI 4D with .bval/.bvec next to "
                     "it or given) and the gradient table is converted too: NRRD gets DWMRI keys with a "
                     "measurement frame (3D Slicer's DWI format), NIfTI gets FSL .bval/.bvec.",
                     "GraftWatch.Utilities" });
  std::string input, output, bval, bvec, kind = "scalar";
  app.Group("Input/output", "Files");
  app.AddImage(input, "input", "Input image").Index(0).Required();
  app.AddImage(output, "output", "Output image; the format follows the extension").Index(1).Required().Output();
  app.Group("Options", "What the image holds");
  app.AddEnum(kind, "kind", "Image kind: scalar (float), label (integers kept), dwi (with gradient table)",
              { "scalar", "label", "dwi" });
  app.AddFile(bval, "bval", "FSL b-values of a NIfTI DWI input (default: input with .bval)").Extensions(".bval");
  app.AddFile(bvec, "bvec", "FSL b-vectors of a NIfTI DWI input (default: input with .bvec)").Extensions(".bvec");

  return app.Run(argc, argv,
                 [&](gw::cli::Context & ctx)
                 {
                   auto & prov = ctx.GetProvenance();
                   prov.AddInput("input", input);
                   if (kind == "dwi")
                   {
                     std::optional<std::filesystem::path> bv, bc;
                     if (!bval.empty())
                       bv = bval;
                     if (!bvec.empty())
                       bc = bvec;
                     const gw::io::Dwi dwi = gw::io::ReadDwi(input, bv, bc);
                     gw::io::WriteDwi(dwi, output, ctx.Force());
                   }
                   else if (kind == "label")
                     gw::io::WriteImage(gw::io::ReadLabelImage(input), output, ctx.Force());
                   else
                     gw::io::WriteImage(gw::io::ReadFloatImage(input), output, ctx.Force());
                   gw::WriteProvenance(output, prov, ctx.Force());
                 });
}
