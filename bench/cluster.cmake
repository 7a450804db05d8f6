# cluster: coherence latency and disjoint writers over loopback mounts (issue #9).
# Needs root and /dev/fuse; uses the dfly CLI of this build.
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cluster_bench.sh ${PROJECT_BINARY_DIR}/bench/cluster_bench
               COPYONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
               GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
