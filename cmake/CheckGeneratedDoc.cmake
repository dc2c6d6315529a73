# Fails, with the command that fixes it, when a committed generated document
# differs from what the build generates. Run with -DGENERATED=... -DCOMMITTED=...
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${GENERATED} ${COMMITTED}
                RESULT_VARIABLE differs)
if(differs)
  message(FATAL_ERROR "${COMMITTED} is stale: the ODS definitions changed. "
                      "Run `cmake --build build --target update-docs` and commit it.")
endif()
message(STATUS "${COMMITTED} matches the ODS definitions")
