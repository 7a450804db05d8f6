#!/usr/bin/env bash
# dfly's stack against the Linux kernel, in a network namespace made for this test
# (it and its TAPs vanish with the last process in it, even on failure):
#   1. `dfly stack run` on TAP dfly0 (198.18.0.2/24); Linux (198.18.0.1) pings it,
#      with small and 1400-byte echoes; dfly's counters and its pcap agree.
#   2. `dfly stack ping` on TAP dfly1 (198.18.1.2/24) pings Linux (198.18.1.1).
# usage: stack_test.sh PATH/TO/dfly      (needs root; exit 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ]; then
  echo "skipped: needs root and /dev/net/tun"
  exit 77
fi
exec timeout 120 unshare --net --fork --kill-child bash -s "$dfly" <<'INNER'
set -u
dfly="$1"
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$tmp"/*.err 2>/dev/null; exit 1; }
wait_link() { for _ in $(seq 200); do ip link show "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
ip link set lo up

"$dfly" stack run --tap dfly0 --addr 198.18.0.2/24 --seconds 60 --json --pcap "$tmp/run.pcap" \
  >"$tmp/run.json" 2>"$tmp/run.err" &
pid=$!
wait_link dfly0 || fail "dfly0 never appeared"
ip addr add 198.18.0.1/24 dev dfly0
ping -c 5 -i 0.2 -W 2 198.18.0.2 >"$tmp/ping.out" || fail "Linux cannot ping dfly: $(cat "$tmp/ping.out")"
ping -c 2 -i 0.2 -W 2 -s 1400 198.18.0.2 >>"$tmp/ping.out" || fail "1400-byte pings failed"
kill -INT "$pid"
wait "$pid" || fail "dfly stack run exited $?"
pid=""
grep -q '"icmp_echo_reply_out": 7' "$tmp/run.json" || fail "counters: $(cat "$tmp/run.json")"
replies=$(tcpdump -r "$tmp/run.pcap" -nn 2>/dev/null | grep -c "ICMP echo reply")
[ "$replies" = 7 ] || fail "pcap holds $replies echo replies, want 7"
echo "ok: Linux pinged dfly 7 times; counters and pcap agree"

"$dfly" stack ping --tap dfly1 --addr 198.18.1.2/24 198.18.1.1 --count 5 --json \
  >"$tmp/ping.json" 2>"$tmp/ping.err" &
pid=$!
wait_link dfly1 || fail "dfly1 never appeared"
ip addr add 198.18.1.1/24 dev dfly1
wait "$pid" || fail "dfly stack ping exited $?"
pid=""
received=$(grep -o '"received": [0-9]*' "$tmp/ping.json" | grep -o '[0-9]*$')
[ "${received:-0}" -ge 3 ] || fail "dfly got ${received:-0} of 5 replies: $(cat "$tmp/ping.json")"
echo "ok: dfly pinged Linux ($received of 5 replies; the first may race the address setup)"
INNER
