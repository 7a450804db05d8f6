# dfly's stack on a multi-queue TAP (--queues 2: one queue per CPU) against Linux peers
# (label net; exit 77 without root or without IFF_MULTI_QUEUE).
add_test(NAME cli.stack_multiqueue
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/stack_mq_test.sh $<TARGET_FILE:dfly>)
set_tests_properties(cli.stack_multiqueue PROPERTIES LABELS net TIMEOUT 200 SKIP_RETURN_CODE 77)
