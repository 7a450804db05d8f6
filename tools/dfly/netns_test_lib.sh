# Helpers shared by the tests that run dfly's stack against the Linux kernel in a
# network namespace of their own (stack_test.sh, router_test.sh, tcp_test.sh).
# Outside the namespace: need_root_tun. Inside (the script's INNER part sources this
# file again): netns_begin, fail and wait_link.

# Exit 77 (skipped) unless we can make TAP devices and namespaces.
need_root_tun() {
  if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ]; then
    echo "skipped: needs root and /dev/net/tun"
    exit 77
  fi
}

# Print the reason and the head of every *.err log the test kept, then fail.
fail() {
  echo "FAIL: $*"
  cat "$tmp"/*.err 2>/dev/null | head -60
  exit 1
}

# Wait (at most 10 s) for the network interface $1 to exist.
wait_link() {
  for _ in $(seq 200); do
    ip link show "$1" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# Inside: makes $tmp (the test's scratch directory) and $pid (the dfly process a
# step is running, or empty), brings loopback up, and on exit, whatever happens,
# stops $pid and removes $tmp.
netns_begin() {
  tmp=$(mktemp -d)
  pid=""
  trap netns_end EXIT
  ip link set lo up
}
netns_end() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
