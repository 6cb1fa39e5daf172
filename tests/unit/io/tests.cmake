# the direct NIfTI reader is internal to the module (modules/io/src/nifti_direct.h): tested directly
target_include_directories(gw_io_tests PRIVATE ${CMAKE_SOURCE_DIR}/modules/io/src)
