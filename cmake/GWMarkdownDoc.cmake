# cmake -DAPP=<executable> -DOUT=<file.md> -P GWMarkdownDoc.cmake : writes the app's --markdown reference.
execute_process(COMMAND ${APP} --markdown OUTPUT_FILE ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${APP} --markdown failed (${rc})")
endif()
