// Brain extraction (BET surface) on head phantoms with known anatomy, and on real heads.
#include <array>
#include <cmath>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

#include <itkImageRegionIteratorWithIndex.h>

#include "gw/core/error.h"
#include "gw/io/image_io.h"
#include "gw/segmentation/anatomy.h"
#include "gw/segmentation/brain.h"
#include "gw/testing/testing.h"

namespace
{
namespace seg = gw::segmentation;

/// Normalised squared radius of p in the ellipsoid of semi-axes `a` grown by `grow` [mm] on every axis.
double
R2(const gw::PointType & p, const std::array<double, 3> & a, double grow)
{
  double r = 0.0;
  for (int k = 0; k < 3; ++k)
    r += p[k] * p[k] / ((a[k] + grow) * (a[k] + grow));
  return r;
}

/// Intensities of a head phantom's layers, inside out.
struct Contrast
{
  double whiteMatter, greyMatter, csf, skull, scalp;
};

/// A head on a 1 x 1 x 4 mm grid (thick axial slices, as in clinical 2D acquisitions): a brain ellipsoid (semi-axes
/// 60 x 70 x 55 mm; white matter with a 4 mm grey-matter rim), a 3 mm CSF layer, a 6 mm skull, a 5 mm scalp;
/// Gaussian noise sigma 4. `truth` receives the brain (without CSF) and `intracranial` the brain with its CSF.
gw::FloatImage::Pointer
Head(const Contrast & c, gw::MaskImage::Pointer & brain, gw::MaskImage::Pointer & intracranial)
{
  const gw::SizeType size = { { 170, 190, 44 } };
  gw::SpacingType spacing;
  spacing[0] = 1.0;
  spacing[1] = 1.0;
  spacing[2] = 4.0;
  gw::PointType origin;
  origin[0] = -84.5;
  origin[1] = -94.5;
  origin[2] = -86.0;
  auto img = gw::testing::MakeImage(size, spacing, origin);
  brain = gw::testing::MakeMask(size, spacing, origin);
  intracranial = gw::testing::MakeMask(size, spacing, origin);
  gw::testing::Rng rng(7);
  const std::array<double, 3> a{ 60.0, 70.0, 55.0 };
  itk::ImageRegionIteratorWithIndex<gw::FloatImage> it(img, img->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    gw::PointType p;
    img->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    double v = 0.0;
    if (R2(p, a, -4.0) <= 1.0)
      v = c.whiteMatter;
    else if (R2(p, a, 0.0) <= 1.0)
      v = c.greyMatter;
    else if (R2(p, a, 3.0) <= 1.0)
      v = c.csf;
    else if (R2(p, a, 9.0) <= 1.0)
      v = c.skull;
    else if (R2(p, a, 14.0) <= 1.0)
      v = c.scalp;
    brain->SetPixel(it.GetIndex(), R2(p, a, 0.0) <= 1.0);
    intracranial->SetPixel(it.GetIndex(), R2(p, a, 3.0) <= 1.0);
    it.Set(float(std::abs(v + 4.0 * rng.Normal())));
  }
  return img;
}

TEST(BrainExtraction, T1LikeHeadStopsAtTheBrainSurface)
{
  // T1w/FLAIR-like: dark CSF and skull, bright scalp fat
  gw::MaskImage::Pointer brain, intracranial;
  const auto img = Head({ 100.0, 70.0, 15.0, 10.0, 160.0 }, brain, intracranial);
  const auto r = seg::ExtractBrain(img);
  ASSERT_TRUE(r.mask);
  const double dBrain = gw::testing::Dice(r.mask, brain), dIcv = gw::testing::Dice(r.mask, intracranial);
  std::cout << "T1-like: Dice vs brain " << dBrain << ", vs intracranial " << dIcv << ", volume " << r.volume
            << " mm^3\n";
  // brain 967 mL, intracranial 1119 mL: the surface lies at the brain/CSF border or in the 3 mm CSF layer
  EXPECT_GE(std::max(dBrain, dIcv), 0.95) << "the mask is the brain or the brain with its CSF";
  // skull and scalp: at most the partial-volume layer of one thick slice at the top and bottom (1% of the mask)
  std::size_t outside = 0;
  for (std::size_t i = 0; i < r.mask->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    outside += r.mask->GetBufferPointer()[i] && !intracranial->GetBufferPointer()[i];
  EXPECT_LT(double(outside), 0.01 * r.volume) << "voxels of the skull and scalp in the mask";
}

TEST(BrainExtraction, T2LikeHeadStopsAtTheSkull)
{
  // T2w-like: bright CSF, dark skull, bright scalp
  gw::MaskImage::Pointer brain, intracranial;
  const auto img = Head({ 70.0, 90.0, 200.0, 10.0, 160.0 }, brain, intracranial);
  const auto r = seg::ExtractBrain(img);
  const double dIcv = gw::testing::Dice(r.mask, intracranial);
  std::cout << "T2-like: Dice vs intracranial " << dIcv << ", volume " << r.volume << " mm^3\n";
  EXPECT_GE(dIcv, 0.95) << "the mask is the intracranial space (brain and CSF, 1119 mL)";
  std::size_t outside = 0;
  for (std::size_t i = 0; i < r.mask->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    outside += r.mask->GetBufferPointer()[i] && !intracranial->GetBufferPointer()[i];
  EXPECT_LT(double(outside), 0.01 * r.volume) << "voxels of the skull and scalp in the mask";
}

TEST(BrainExtraction, RefusesAnImageWithoutContrast)
{
  const gw::SizeType size = { { 20, 20, 10 } };
  gw::SpacingType spacing;
  spacing.Fill(1.0);
  gw::PointType origin;
  origin.Fill(0.0);
  EXPECT_THROW(seg::ExtractBrain(gw::testing::MakeImage(size, spacing, origin, 5.0f)), gw::Error);
}

TEST(BrainExtractionExternal, RealHeadsGiveAnAdultIntracranialVolume)
{
  // FLAIR (MS patient01, 0.72 x 0.72 x 4 mm) and T2w (TCGA brain tumour exam, 0.9 x 0.9 x 5.5 mm): no manual
  // masks. An adult intracranial volume is 1.2-1.9 L; BET's surface also takes some soft tissue of the skull base
  // and, over thick slices, some scalp at the vertex: measured 1.25 L (FLAIR) and 1.99 L (T2w). The head's outline
  // (Otsu, as the pipeline used before) holds 1.8 and 2.9 L.
  GW_REQUIRE_EXTERNAL(ms, "nifti/longitudinal_ms/patient01/study1_FLAIR.nii.gz");
  GW_REQUIRE_EXTERNAL(gd, "nifti/pre_post_gadolinium/t2.nii.gz");
  for (const auto & path : { ms, gd })
  {
    const auto img = gw::io::ReadFloatImage(path);
    const auto r = seg::ExtractBrain(img);
    std::cout << path.filename() << ": " << r.volume / 1000.0 << " mL\n";
    EXPECT_GT(r.volume, 1.1e6) << path;
    EXPECT_LT(r.volume, 2.1e6) << path;
  }
}
} // namespace
