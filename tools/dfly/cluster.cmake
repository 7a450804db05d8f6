# The coherent cluster filesystem: dfly serve + three dfly mounts over loopback, real
# tools, the linearizability checker, faults, TLS (label fuse; exit 77 without root).
add_test(NAME cli.cluster
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cluster_test.sh $<TARGET_FILE:dfly> $<TARGET_FILE:coherence_check>)
set_tests_properties(cli.cluster PROPERTIES LABELS fuse TIMEOUT 600 SKIP_RETURN_CODE 77 COST 100)
# A network partition between a client and the server (namespaces, veth link down).
add_test(NAME cli.cluster_partition
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cluster_partition_test.sh $<TARGET_FILE:dfly>)
set_tests_properties(cli.cluster_partition PROPERTIES LABELS fuse TIMEOUT 300 SKIP_RETURN_CODE 77 COST 40)
