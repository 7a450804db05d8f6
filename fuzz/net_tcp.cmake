# net/tcp fuzz targets: the TCP wire parser, and a connection in each state fed
# arbitrary segments and socket calls.
dfly_fuzz(net_tcp_wire_fuzz net_tcp_wire_fuzz.cpp dfly_net_wire)
dfly_fuzz(net_tcp_conn_fuzz net_tcp_conn_fuzz.cpp dfly_net_tcp)
dfly_fuzz(net_tcp_listener_fuzz net_tcp_listener_fuzz.cpp dfly_net_tcp)
