# All third-party dependencies are Debian 12 packages installed by scripts/bootstrap.sh.
find_package(ITK 5.2 REQUIRED COMPONENTS
  ITKCommon ITKIOImageBase ITKIONIFTI ITKIONRRD ITKIOMeta ITKIOTransformBase ITKIOTransformHDF5
  ITKIOTransformInsightLegacy ITKTransform ITKImageGrid ITKImageFunction ITKImageIntensity
  ITKImageFilterBase ITKThresholding ITKConnectedComponents ITKDiffusionTensorImage
  ITKRegistrationMethodsv4 ITKOptimizersv4 ITKMetricsv4 ITKImageStatistics ITKSmoothing
  ITKDisplacementField ITKBinaryMathematicalMorphology ITKMathematicalMorphology ITKDistanceMap
  ITKLabelMap ITKImageCompare ITKIOPNG)
include(${ITK_USE_FILE})

find_package(DCMTK REQUIRED CONFIG)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(ZLIB REQUIRED)
# ISA-L (libisal-dev): gzip inflate about 1.6x and level-1 deflate 4-6x zlib's speed on image data (.nii.gz reading
# and every gzip writer). Linked by its full path so that the exported gw::io needs no imported target downstream.
find_path(GW_ISAL_INCLUDE_DIR isa-l/igzip_lib.h REQUIRED)
find_library(GW_ISAL_LIBRARY NAMES isal REQUIRED)
# GNU Nettle (nettle-dev): SHA-256 of inputs and outputs for provenance. Linked by its full path, as ISA-L.
find_path(GW_NETTLE_INCLUDE_DIR nettle/sha2.h REQUIRED)
find_library(GW_NETTLE_LIBRARY NAMES nettle REQUIRED)
find_package(Threads REQUIRED)
if(GW_BUILD_TESTING OR NOT DEFINED GW_BUILD_TESTING)
  find_package(GTest REQUIRED)
endif()
find_program(GW_XMLLINT xmllint)
# Debian's python3 (with numpy, nibabel, dipy) for test helpers and benchmarks, not a pyenv shim.
find_program(GW_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
