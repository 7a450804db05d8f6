# dfly's TCP under load and damage against Linux peers (label net; exit 77 without root).
# 1 GiB each way in the release build; the sanitizer builds (scripts/test runs it
# under ASan) move 128 MiB: the same code paths, at a fraction of the time.
if(DFLY_SANITIZE)
  set(DFLY_TCP_BULK 134217728)
else()
  set(DFLY_TCP_BULK 1073741824)
endif()
add_test(NAME cli.tcp_stress
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tcp_stress_test.sh $<TARGET_FILE:dfly> ${DFLY_TCP_BULK})
set_tests_properties(cli.tcp_stress PROPERTIES LABELS net TIMEOUT 900 SKIP_RETURN_CODE 77 COST 80)
