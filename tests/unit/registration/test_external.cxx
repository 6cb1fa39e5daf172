// Registration on real images (../shared/data) with known random rigid transforms, and agreement with the
// longitudinal_ms reference transforms. Suites *External (few trials, default) and *Slow (the full 20 trials).
#include <cmath>
#include <iostream>

#include <itkCompositeTransform.h>
#include <itkMatrixOffsetTransformBase.h>
#include <itkTransformFactory.h>

#include "gw/io/image_io.h"
#include "gw/io/transform_io.h"
#include "gw/registration/registration.h"
#include "gw/testing/testing.h"

namespace gw::registration
{
namespace
{
MaskImage::Pointer
Foreground(const FloatImage * image, float threshold)
{
  auto m = gw::testing::MakeMask(image->GetLargestPossibleRegion().GetSize(), image->GetSpacing(), image->GetOrigin());
  m->SetDirection(image->GetDirection());
  for (std::size_t i = 0; i < m->GetBufferedRegion().GetNumberOfPixels(); ++i)
    m->GetBufferPointer()[i] = image->GetBufferPointer()[i] > threshold;
  return m;
}

/// `trials` random rigid motions (rotation ≤ 10 deg per axis, shift ≤ 10 mm per axis, seeded): the moving image is
/// the fixed image resampled (B-spline) through the inverse motion plus 1% Gaussian noise. Returns the fraction of
/// trials with mean TRE over the foreground below 0.5 voxel (error vector in voxel units of the fixed grid).
double
KnownRigidTrials(const std::filesystem::path & file, float foreground, unsigned int trials, std::uint64_t seed)
{
  const auto fixed = gw::io::ReadFloatImage(file);
  const auto mask = Foreground(fixed, foreground);
  gw::testing::Rng rng(seed);
  const PointType centre = GridCenter(fixed);
  float maxValue = 0;
  for (std::size_t i = 0; i < fixed->GetBufferedRegion().GetNumberOfPixels(); ++i)
    maxValue = std::max(maxValue, fixed->GetBufferPointer()[i]);
  unsigned int pass = 0;
  for (unsigned int t = 0; t < trials; ++t)
  {
    std::array<double, 3> rot, shift;
    for (unsigned d = 0; d < 3; ++d)
      rot[d] = (2 * rng.Uniform() - 1) * 10.0;
    for (unsigned d = 0; d < 3; ++d)
      shift[d] = (2 * rng.Uniform() - 1) * 10.0;
    const auto truth = MakeRigidTransform(rot, shift, centre);
    auto moving = Resample(fixed, fixed, truth->GetInverseTransform(), Interpolation::BSpline);
    for (std::size_t i = 0; i < moving->GetBufferedRegion().GetNumberOfPixels(); ++i)
      moving->GetBufferPointer()[i] += static_cast<float>(0.01 * maxValue * rng.Normal());
    RegistrationOptions o;
    o.inverseConsistency = false;
    const RegistrationResult r = Register(fixed, moving, o);
    const PointDistance tre = TransformDistance(r.transform, truth, fixed, mask, 2);
    const bool ok = tre.meanVoxels < 0.5;
    pass += ok;
    std::cout << file.filename().string() << " trial " << t << ": rot " << rot[0] << "," << rot[1] << "," << rot[2]
              << " deg, shift " << shift[0] << "," << shift[1] << "," << shift[2] << " mm -> TRE " << tre.mean
              << " mm = " << tre.meanVoxels << " voxel (max " << tre.max << " mm), " << r.qa.seconds << " s"
              << (ok ? "" : "  FAIL") << "\n";
  }
  return static_cast<double>(pass) / trials;
}

TEST(RegistrationExternal, SctT2KnownRigid)
{
  GW_REQUIRE_EXTERNAL(t2, "nifti/sct_testing/t2/t2.nii.gz");
  EXPECT_GE(KnownRigidTrials(t2, 40.0f, 3, 11), 0.95) << "TRE < 0.5 voxel in >= 95% of trials";
}

TEST(RegistrationExternal, FlairKnownRigid)
{
  GW_REQUIRE_EXTERNAL(flair, "nifti/longitudinal_ms/patient01/study1_FLAIR.nii.gz");
  EXPECT_GE(KnownRigidTrials(flair, 1.0f, 2, 12), 0.95) << "TRE < 0.5 voxel in >= 95% of trials";
}

TEST(RegistrationSlow, SctT2KnownRigid20)
{
  GW_REQUIRE_EXTERNAL(t2, "nifti/sct_testing/t2/t2.nii.gz");
  EXPECT_GE(KnownRigidTrials(t2, 40.0f, 20, 21), 0.95) << "TRE < 0.5 voxel in >= 95% of 20 trials";
}

TEST(RegistrationSlow, FlairKnownRigid20)
{
  GW_REQUIRE_EXTERNAL(flair, "nifti/longitudinal_ms/patient01/study1_FLAIR.nii.gz");
  EXPECT_GE(KnownRigidTrials(flair, 1.0f, 20, 22), 0.95) << "TRE < 0.5 voxel in >= 95% of 20 trials";
}

// study2 → study1 FLAIR against the provided transforms to the common space. The files map common-space points to
// each study (ITK resampling convention), so the reference fixed(study1) → moving(study2) map is T2 ∘ T1^-1.
TEST(RegistrationSlow, LongitudinalFlairAgreesWithProvidedTransforms)
{
  GW_REQUIRE_EXTERNAL(dir, "nifti/longitudinal_ms/patient01");
  // The files name MatrixOffsetTransformBase_double_3_3, which ITK's factory does not register by default
  // (gw::io::ReadTransform should register it; see the report).
  itk::TransformFactory<itk::MatrixOffsetTransformBase<double, 3, 3>>::RegisterTransform();
  const auto s1 = gw::io::ReadFloatImage(dir / "study1_FLAIR.nii.gz");
  const auto s2 = gw::io::ReadFloatImage(dir / "study2_FLAIR.nii.gz");
  const auto t1 = gw::io::ReadTransform(dir / "study1_FLAIR_to_common_space.txt");
  const auto t2 = gw::io::ReadTransform(dir / "study2_FLAIR_to_common_space.txt");
  auto reference = itk::CompositeTransform<double, 3>::New();
  reference->AddTransform(t2);
  reference->AddTransform(t1->GetInverseTransform());
  const auto brain = Foreground(s1, 1.0f);
  RegistrationOptions o;
  const RegistrationResult r = Register(s1, s2, o);
  const PointDistance d = TransformDistance(r.transform, reference, s1, brain, 2);
  std::cout << "study2->study1 FLAIR: mean distance to provided transforms over the brain " << d.mean << " mm ("
            << d.meanVoxels << " voxel), max " << d.max << " mm; registration " << r.qa.seconds << " s, QA "
            << r.qa.qaSeconds << " s, inverse consistency " << r.qa.inverseConsistencyMm << " mm, gate "
            << (r.qa.gate.passed ? "pass" : "fail") << "\n";
  EXPECT_LT(d.mean, r.qa.voxelSizeMm) << "agreement within one (geometric-mean) voxel [mm]";
  EXPECT_TRUE(r.qa.gate.passed);
}
} // namespace
} // namespace gw::registration
