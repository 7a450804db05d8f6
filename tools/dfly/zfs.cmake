# dfly zpool / dfly zfs against pools made by zfs-fuse (label zfs; exit 77 without it).
foreach(case tree damage errors import)
  add_test(NAME zfs.cli_${case}
           COMMAND ${PROJECT_SOURCE_DIR}/src/zfs/fixtures/zfs_test.sh $<TARGET_FILE:dfly> ${case})
  set_tests_properties(zfs.cli_${case} PROPERTIES LABELS zfs TIMEOUT 600 SKIP_RETURN_CODE 77 COST 20)
endforeach()
# dfly zfs mount: the same pools through the VFS and a real FUSE mount, read by
# find, diff, cat, getfattr (label zfs; exit 77 without root, /dev/fuse or zfs-fuse).
foreach(case tree damage rofs)
  add_test(NAME zfs.mount_${case}
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/zfs_mount_test.sh $<TARGET_FILE:dfly> ${case})
  set_tests_properties(zfs.mount_${case} PROPERTIES LABELS zfs TIMEOUT 600 SKIP_RETURN_CODE 77 COST 30)
endforeach()
