# dfly hostfs on a real FUSE mount: real tools (cp, rsync, git, sqlite3), the fsx-style
# checker and the POSIX/errno checks, each also checked on the host directory.
add_test(NAME cli.hostfs_real_tools
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/hostfs_test.sh $<TARGET_FILE:dfly>
                 $<TARGET_FILE:dfly_fsx> $<TARGET_FILE:dfly_posix_check>)
set_tests_properties(cli.hostfs_real_tools PROPERTIES LABELS fuse TIMEOUT 300 SKIP_RETURN_CODE 77 COST 90)
