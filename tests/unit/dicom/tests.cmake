# gw_dicom_tests: zlib reads the reference NIfTI files (.nii.gz) in the external comparisons.
target_link_libraries(gw_dicom_tests PRIVATE ZLIB::ZLIB)
# the app tests in test_dicom.cxx run gw_import
if(TARGET gw_import)
  add_dependencies(gw_dicom_tests gw_import)
endif()
