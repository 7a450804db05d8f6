#!/usr/bin/env bash
# dfly's stack against the Linux kernel, in a network namespace made for this test
# (it and its TAPs vanish with the last process in it, even on failure):
#   1. `dfly stack run` on TAP dfly0 (198.18.0.2/24); Linux (198.18.0.1) pings it,
#      with small and 1400-byte echoes; dfly's counters and its pcap agree.
#   2. `dfly stack ping` on TAP dfly1 (198.18.1.2/24) pings Linux (198.18.1.1).
#   3. `dfly stack run --cpus 2 --echo --discard` on TAP dfly2 (198.18.2.2/24): Linux sends
#      UDP with socat to echo (1, 512, 1472 bytes; the echoes must match byte for
#      byte) and 101 datagrams to discard, whose byte count must be exact at exit.
# usage: stack_test.sh PATH/TO/dfly      (needs root; exit 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
lib="$(dirname "$(readlink -f "$0")")/netns_test_lib.sh"
. "$lib"
need_root_tun
exec timeout 120 unshare --net --fork --kill-child bash -s "$dfly" "$lib" <<'INNER'
set -u
dfly="$1"
. "$2"  # netns_begin, fail, wait_link
netns_begin

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

"$dfly" stack run --tap dfly2 --addr 198.18.2.2/24 --cpus 2 --seconds 60 --json --echo --discard \
  >"$tmp/udp.json" 2>"$tmp/udp.err" &
pid=$!
wait_link dfly2 || fail "dfly2 never appeared"
ip addr add 198.18.2.1/24 dev dfly2
for size in 1 512 1472; do
  head -c "$size" /dev/urandom >"$tmp/echo.in"
  : >"$tmp/echo.out"
  for _ in 1 2 3; do  # the first datagram may race the address setup
    timeout 5 socat -t 1 STDIO UDP:198.18.2.2:7 <"$tmp/echo.in" >"$tmp/echo.out" 2>>"$tmp/socat.err"
    [ -s "$tmp/echo.out" ] && break
  done
  cmp -s "$tmp/echo.in" "$tmp/echo.out" ||
    fail "UDP echo of $size bytes: got $(stat -c %s "$tmp/echo.out") bytes back, or different ones"
done
echo "ok: UDP echo returned 1, 512 and 1472 bytes intact"
ping -f -c 300 -W 2 198.18.2.2 >"$tmp/flood.out" 2>&1
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$tmp/flood.out")
[ "${got:-0}" -ge 297 ] || fail "ping flood: ${got:-0} of 300 replies: $(cat "$tmp/flood.out")"
echo "ok: ping flood of 300 echoes, $got replies (2 protocol CPUs)"
# 100 datagrams of 1472 bytes and one of 7: socat sends one datagram per read.
head -c 147207 /dev/urandom >"$tmp/discard.in"
timeout 10 socat -u -b 1472 OPEN:"$tmp/discard.in" UDP-SENDTO:198.18.2.2:9 2>>"$tmp/socat.err" ||
  fail "socat to discard failed"
for _ in $(seq 50); do  # SIGUSR1 dumps the counters; poll (bounded) until all arrived
  kill -USR1 "$pid"
  sleep 0.1
  grep -q '"bytes": 147207' "$tmp/udp.json" && break
done
kill -INT "$pid"
wait "$pid" || fail "dfly stack run --echo --discard exited $?"
pid=""
final=$(awk '/^{/{doc=""} {doc=doc $0 "\n"} END{printf "%s", doc}' "$tmp/udp.json")
discard=$(printf '%b' "$final" | sed -n '/"udp_discard"/,/}/p')
echo "$discard" | grep -q '"bytes": 147207' || fail "discard bytes: $discard"
echo "$discard" | grep -q '"datagrams": 101' || fail "discard datagrams: $discard"
echo "ok: UDP discard counted 101 datagrams and 147207 bytes exactly"
INNER
