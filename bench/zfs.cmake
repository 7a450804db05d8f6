# zfs: checksum and decompression inner loops vs byte loops (figures zfs_fletcher4,
# zfs_lzjb_decode, zfs_lz4_decode).
dfly_bench(zfs_bench zfs_bench.cpp)
target_link_libraries(zfs_bench PRIVATE dfly_zfs_format)
