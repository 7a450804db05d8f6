#!/usr/bin/env bash
# dfly as a router between two Linux network namespaces whose only path is dfly:
#   ns1 (198.18.20.1) --TAP rt0-- dfly (198.18.20.2 | 198.18.21.2, 2 CPUs) --TAP rt1-- ns2 (198.18.21.1)
# The TAPs are created by `dfly stack run` in a private namespace (with a private
# /run/netns, so nothing outlives the test), then their
# kernel ends are moved into ns1 and ns2. Checks: ping both ways (with fragments),
# a bounded ping flood, UDP through socat, and that `dfly stack route del` stops
# traffic at once (and `route add` brings it back), read from `dfly stack stats`.
# usage: router_test.sh PATH/TO/dfly      (needs root; exit 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
lib="$(dirname "$(readlink -f "$0")")/netns_test_lib.sh"
. "$lib"
need_root_tun
exec timeout 150 unshare --net --mount --fork --kill-child bash -s "$dfly" "$lib" <<'INNER'
set -u
dfly="$1"
. "$2"  # fail, wait_link
# Named namespaces live under /run/netns: give this test a private one, so they
# vanish with the test even if it is killed before its trap runs.
mount --make-rprivate / && mkdir -p /run/netns && mount -t tmpfs dfly-netns /run/netns ||
  { echo "FAIL: private /run/netns"; exit 1; }
tmp=$(mktemp -d)
ns1="dfly-rt1-$$"
ns2="dfly-rt2-$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  ip netns pids "$ns2" 2>/dev/null | xargs -r kill 2>/dev/null
  wait 2>/dev/null
  ip netns del "$ns1" 2>/dev/null
  ip netns del "$ns2" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns1" || fail "ip netns add"
ip netns add "$ns2" || fail "ip netns add"
ctl="$tmp/ctl.sock"
"$dfly" stack run --tap rt0 --addr 198.18.20.2/24 --tap rt1 --addr 198.18.21.2/24 --cpus 2 \
  --control "$ctl" --seconds 100 --json >"$tmp/run.json" 2>"$tmp/run.err" &
pid=$!
wait_link rt0 && wait_link rt1 || fail "the TAPs never appeared"
ip link set rt0 netns "$ns1" && ip link set rt1 netns "$ns2" || fail "moving the TAPs"
ip -n "$ns1" link set lo up && ip -n "$ns2" link set lo up
ip -n "$ns1" addr add 198.18.20.1/24 dev rt0 && ip -n "$ns1" link set rt0 up
ip -n "$ns2" addr add 198.18.21.1/24 dev rt1 && ip -n "$ns2" link set rt1 up
ip -n "$ns1" route add 198.18.21.0/24 via 198.18.20.2
ip -n "$ns2" route add 198.18.20.0/24 via 198.18.21.2
in1() { ip netns exec "$ns1" "$@"; }
in2() { ip netns exec "$ns2" "$@"; }

for _ in 1 2 3; do in1 ping -c 1 -W 1 198.18.21.1 >/dev/null 2>&1 && break; done  # ARP both sides
in1 ping -c 3 -i 0.2 -W 2 198.18.21.1 >"$tmp/p1.out" || fail "ns1 cannot ping ns2 through dfly: $(cat "$tmp/p1.out")"
in2 ping -c 3 -i 0.2 -W 2 -s 3000 198.18.20.1 >"$tmp/p2.out" ||
  fail "ns2 cannot ping ns1 with 3000-byte fragments through dfly: $(cat "$tmp/p2.out")"
echo "ok: ns1 <-> ns2 ping through the dfly router, fragments included"

in1 ping -f -c 500 -W 2 198.18.21.1 >"$tmp/flood.out" 2>&1
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$tmp/flood.out")
[ "${got:-0}" -ge 495 ] || fail "ping flood: ${got:-0} of 500 replies: $(cat "$tmp/flood.out")"
echo "ok: ping flood through the router, $got of 500 replies"

in2 socat -T 10 UDP-LISTEN:5555,reuseaddr,fork PIPE 2>"$tmp/socat2.err" &
sleep 0.3
for size in 1 1400 4000; do
  head -c "$size" /dev/urandom >"$tmp/u.in"
  : >"$tmp/u.out"
  for _ in 1 2 3; do
    in1 timeout 5 socat -t 1 STDIO UDP:198.18.21.1:5555 <"$tmp/u.in" >"$tmp/u.out" 2>>"$tmp/socat1.err"
    [ -s "$tmp/u.out" ] && break
  done
  cmp -s "$tmp/u.in" "$tmp/u.out" || fail "UDP $size bytes through the router came back different"
done
echo "ok: UDP (1, 1400, 4000 bytes) through the router both ways, intact"

"$dfly" stack stats --control "$ctl" --json >"$tmp/stats.json" || fail "dfly stack stats"
grep -q '"forwarded"' "$tmp/stats.json" || fail "stats without forwarded: $(head -c 400 "$tmp/stats.json")"
grep -q "\"mbufs\"" "$tmp/stats.json" || fail "stats without mbuf cache use"
fwd=$(grep -o '"forwarded": [0-9]*' "$tmp/stats.json" | awk '{s+=$2} END{print s+0}')
[ "$fwd" -ge 1000 ] || fail "only $fwd packets counted forwarded"
echo "ok: dfly stack stats --json shows $fwd forwarded (summed over interfaces and CPUs)"

"$dfly" stack route del 198.18.21.0/24 --control "$ctl" || fail "route del"
if in1 ping -c 2 -i 0.2 -W 1 198.18.21.1 >"$tmp/p3.out" 2>&1; then
  fail "ping still works after the route was deleted: $(cat "$tmp/p3.out")"
fi
"$dfly" stack stats --control "$ctl" --json >"$tmp/stats2.json" || fail "dfly stack stats"
grep -q '"no_route": [1-9]' "$tmp/stats2.json" || fail "no no_route drops counted"
echo "ok: route deleted on the fly: traffic stopped, drops counted no_route"
"$dfly" stack route add 198.18.21.0/24 via 198.18.21.1 --control "$ctl" || fail "route add"
in1 ping -c 2 -i 0.2 -W 2 198.18.21.1 >"$tmp/p4.out" || fail "ping after route add: $(cat "$tmp/p4.out")"
echo "ok: route added back via 198.18.21.1: traffic flows again"
"$dfly" stack route del 198.18.99.0/24 --control "$ctl" 2>"$tmp/del.err" && fail "deleting a missing route succeeded"
grep -q "^dfly: stack route del: " "$tmp/del.err" || fail "route del error not in dfly: form: $(cat "$tmp/del.err")"
kill -INT "$pid"
wait "$pid" || fail "dfly stack run exited $?"
pid=""
echo "ok: dfly router stopped cleanly"
INNER
