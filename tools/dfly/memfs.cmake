# dfly memfs on a real FUSE mount: real tools (cp, rsync, tar, git, sqlite3, fio,
# stress-ng), the fsx-style checker and the POSIX/errno checks (memfs_test.sh).
add_test(NAME cli.memfs_real_tools
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/memfs_test.sh $<TARGET_FILE:dfly>
                 $<TARGET_FILE:dfly_fsx> $<TARGET_FILE:dfly_posix_check>)
set_tests_properties(cli.memfs_real_tools PROPERTIES LABELS fuse TIMEOUT 300 SKIP_RETURN_CODE 77 COST 90)
