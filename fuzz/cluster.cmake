# cluster wire protocol (seeds: one frame of every request and reply, see
# fuzz/corpus/cluster_proto_fuzz, made by cluster_proto_test --gtest_filter=*Seeds*).
dfly_fuzz(cluster_proto_fuzz cluster_proto_fuzz.cpp dfly_cluster_proto)
