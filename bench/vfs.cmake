# vfs: the buffer cache in-process vs pread on tmpfs (vfs_cached_read_inproc), and
# fio on a dfly memfs mount vs a minimal libfuse passthrough of /dev/shm
# (vfs_seq_read, vfs_seq_write, vfs_rand_read, vfs_rand_write).
dfly_bench(vfs_cached_read_bench vfs_cached_read_bench.cpp)
target_link_libraries(vfs_cached_read_bench PRIVATE dfly_vfs dfly_memfs)

dfly_bench(vfs_fio_bench vfs_fio_bench.cpp)
find_package(PkgConfig REQUIRED)
pkg_check_modules(FUSE3_BENCH REQUIRED IMPORTED_TARGET fuse3)
target_link_libraries(vfs_fio_bench PRIVATE dfly_fuse dfly_memfs PkgConfig::FUSE3_BENCH
                      nlohmann_json::nlohmann_json)
