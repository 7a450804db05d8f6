# zfs: checksum and decompression inner loops vs byte loops (figures zfs_fletcher4,
# zfs_lzjb_decode, zfs_lz4_decode).
dfly_bench(zfs_bench zfs_bench.cpp)
target_link_libraries(zfs_bench PRIVATE dfly_zfs_format)

# zfs_seq_read, zfs_tree_read: `dfly zfs mount` vs zfs-fuse on a pool the script makes
# (needs root, /dev/fuse, zfs-fuse; uses the dfly CLI next to the bench directory).
set(DFLY_ZFS_FUSE_LIB ${PROJECT_SOURCE_DIR}/src/zfs/fixtures/zfs_fuse_lib.sh)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/zfs_mount_bench.sh ${PROJECT_BINARY_DIR}/bench/zfs_mount_bench
               @ONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
               GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
