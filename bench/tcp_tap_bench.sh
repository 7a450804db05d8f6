#!/usr/bin/env bash
# tcp_bulk_tap: one TCP connection, Linux -> dfly over a TAP (dfly's TCP discard
# service, `dfly stack run --cpus 2`), vs Linux -> Linux over a veth pair between two
# namespaces (socat discarding), the same sender (socat reading /dev/zero), same run.
# Everything happens in network namespaces this script makes (198.18.20.0/24 and
# 198.18.21.0/24) inside a private mount of /run/netns; nothing outlives it.
# Needs root and /dev/net/tun; uses the dfly CLI in the build directory above this one.
set -u
here="$(dirname "$(readlink -f "$0")")"
dfly="$here/../dfly"
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v socat >/dev/null; then
  echo "tcp_tap_bench: skipped (needs root, /dev/net/tun and socat)" >&2
  exit 0
fi
exec timeout 300 unshare --net --mount --fork --kill-child bash -s "$dfly" <<'INNER'
set -u
dfly="$1"
bytes=$((512 << 20))
mount --make-rprivate / && mkdir -p /run/netns && mount -t tmpfs dfly-netns /run/netns || exit 1
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  ip netns pids dfly-bench-b 2>/dev/null | xargs -r kill 2>/dev/null
  wait 2>/dev/null
  ip netns del dfly-bench-b 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ip link set lo up
# send HOST: seconds to push $bytes through socat to HOST:9
send() {
  local t0 t1
  t0=$(date +%s.%N)
  head -c "$bytes" /dev/zero | socat -u -b 262144 - TCP:"$1":9 || return 1
  t1=$(date +%s.%N)
  python3 -c "print($bytes / ($t1 - $t0) / 1e6)"
}

"$dfly" stack run --tap dtb0 --addr 198.18.20.2/24 --cpus 2 --tcp-discard --control "$tmp/ctl.sock" \
  >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 200); do ip link show dtb0 >/dev/null 2>&1 && break; sleep 0.05; done
ip addr add 198.18.20.1/24 dev dtb0
ip link set dtb0 up
for _ in $(seq 50); do socat -u /dev/null TCP:198.18.20.2:9 2>/dev/null && break; sleep 0.1; done

ip netns add dfly-bench-b
ip link add vba type veth peer name vbb
ip link set vbb netns dfly-bench-b
ip addr add 198.18.21.1/24 dev vba
ip link set vba up
ip netns exec dfly-bench-b ip addr add 198.18.21.2/24 dev vbb
ip netns exec dfly-bench-b ip link set vbb up
ip netns exec dfly-bench-b ip link set lo up
ip netns exec dfly-bench-b socat -u TCP-LISTEN:9,reuseaddr,fork /dev/null &
for _ in $(seq 50); do socat -u /dev/null TCP:198.18.21.2:9 2>/dev/null && break; sleep 0.1; done

d=() l=()
for r in 1 2 3; do
  d+=("$(send 198.18.20.2)") || exit 1
  l+=("$(send 198.18.21.2)") || exit 1
done
python3 - "${d[@]}" "${l[@]}" <<'PY'
import statistics, sys
v = [float(x) for x in sys.argv[1:]]
d, l = statistics.median(v[:3]), statistics.median(v[3:])
print(f"dfly-bench name=tcp_bulk_tap value={d:.1f} unit=MB/s baseline=linux_veth_tcp "
      f"baseline_value={l:.1f} ratio={d / l:.3f}", flush=True)
PY
INNER
