#!/usr/bin/env bash
# dfly's stack on a multi-queue TAP against the Linux kernel, in a network namespace
# made for this test (it and its TAP vanish with the last process in it, even on
# failure):
#   `dfly stack run --cpus 2 --queues 2 --echo --discard` on TAP dmq0 (198.18.3.2/24) opens two
#   queues (IFF_MULTI_QUEUE), queue i served by CPU i. Linux (198.18.3.1) pings it,
#   then sends UDP from 64 source ports (64 flows: the kernel spreads them over the
#   queues by its flow hash, dfly over its protocol CPUs by Toeplitz) to echo, every
#   echo checked byte for byte, and to discard, whose counts must be exact. Then
#   32 TCP connections echo 64 KiB each at once. The TAP is steered by dfly's own
#   flow hash (an eBPF program, tap_steering.h), so `dfly stack stats --json` must
#   show no packet handed from one CPU to the other, two queues each with frames
#   received and sent, both at the interface and at the device, and no frame lost.
# usage: stack_mq_test.sh PATH/TO/dfly      (needs root; exit 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
lib="$(dirname "$(readlink -f "$0")")/netns_test_lib.sh"
. "$lib"
need_root_tun
command -v python3 >/dev/null || { echo "skipped: needs python3"; exit 77; }
exec timeout 150 unshare --net --fork --kill-child bash -s "$dfly" "$lib" <<'INNER'
set -u
dfly="$1"
. "$2"  # netns_begin, fail, wait_link
netns_begin

"$dfly" stack run --tap dmq0 --addr 198.18.3.2/24 --cpus 2 --queues 2 --seconds 100 --echo --discard --tcp-echo \
  --control "$tmp/ctl.sock" >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
wait_link dmq0 || fail "dmq0 never appeared"
ip addr add 198.18.3.1/24 dev dmq0
grep -q "2 queue(s)" "$tmp/run.out" ||
  { for _ in $(seq 50); do grep -q "queue(s)" "$tmp/run.out" && break; sleep 0.1; done; }
if grep -q "1 queue(s)" "$tmp/run.out"; then
  echo "skipped: this kernel gave one TAP queue (no IFF_MULTI_QUEUE)"
  exit 77
fi
grep -q "2 queue(s)" "$tmp/run.out" || fail "expected 2 queues: $(cat "$tmp/run.out")"
grep -q "steered by dfly's flow hash" "$tmp/run.out" ||
  fail "the TAP is not steered by dfly's flow hash: $(cat "$tmp/run.out" "$tmp/run.err")"
ping -c 5 -i 0.2 -W 2 198.18.3.2 >"$tmp/ping.out" || fail "Linux cannot ping dfly: $(cat "$tmp/ping.out")"
ping -c 2 -i 0.2 -W 2 -s 3000 198.18.3.2 >>"$tmp/ping.out" || fail "3000-byte (fragmented) pings failed"
echo "ok: Linux pinged dfly over the multi-queue TAP"

# 64 flows x 8 datagrams to echo (every reply checked), then 64 x 8 of 1000 bytes to
# discard. Bounded: each receive waits at most 3 s.
python3 - >"$tmp/udp.out" 2>"$tmp/udp.err" <<'PY' || fail "UDP from 64 flows: $(cat "$tmp/udp.out" "$tmp/udp.err")"
import os, socket, sys
flows, per = 64, 8
socks = []
for i in range(flows):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.18.3.1", 41000 + i))
    s.settimeout(3)
    socks.append(s)
for i, s in enumerate(socks):
    for k in range(per):
        msg = os.urandom(1 + (i * 37 + k * 101) % 1400)
        s.sendto(msg, ("198.18.3.2", 7))
        got, frm = s.recvfrom(2048)
        if got != msg or frm != ("198.18.3.2", 7):
            print(f"flow {i} datagram {k}: echo differs ({len(got)} of {len(msg)} bytes)")
            sys.exit(1)
for s in socks:
    for k in range(per):
        s.sendto(b"d" * 1000, ("198.18.3.2", 9))
print("ok")
PY
echo "ok: UDP echo from 64 flows, 512 datagrams, every one intact"

# 32 TCP connections at once to echo, 64 KiB each way, every byte checked. Without
# steering, Linux's TAP sends a new flow's first segments to a queue of its own choice.
python3 - >"$tmp/tcp.out" 2>"$tmp/tcp.err" <<'PY' || fail "TCP echo from 32 connections: $(cat "$tmp/tcp.out" "$tmp/tcp.err")"
import os, socket, sys, threading
bad = []
def one(i):
    try:
        data = os.urandom(65536)
        s = socket.create_connection(("198.18.3.2", 7), timeout=10)
        threading.Thread(target=lambda: s.sendall(data), daemon=True).start()
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            if not chunk: break
            got += chunk
        s.close()
        if got != data: bad.append(f"connection {i}: {len(got)} of {len(data)} bytes echoed intact")
    except Exception as e:
        bad.append(f"connection {i}: {e}")
ts = [threading.Thread(target=one, args=(i,)) for i in range(32)]
for t in ts: t.start()
for t in ts: t.join(30)
if bad or any(t.is_alive() for t in ts):
    print("\n".join(bad) or "a connection hung"); sys.exit(1)
print("ok")
PY
echo "ok: TCP echo over 32 concurrent connections, 2 MiB each way, every byte intact"

stats() { "$dfly" stack stats --control "$tmp/ctl.sock" --json >"$tmp/stats.json" 2>"$tmp/stats.err"; }
for _ in $(seq 50); do  # bounded wait until every discard datagram was counted
  stats || fail "dfly stack stats failed: $(cat "$tmp/stats.err")"
  python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["udp_discard"]["datagrams"] != 512)' \
    "$tmp/stats.json" && break
  sleep 0.1
done
python3 - "$tmp/stats.json" <<'PY' || fail "per-queue counters: $(cat "$tmp/stats.json")"
import json, sys
j = json.load(open(sys.argv[1]))
d = j["udp_discard"]
assert d["datagrams"] == 512 and d["bytes"] == 512000, f"discard counted {d}"
assert j["udp_echo"]["datagrams"] == 512, f"echo counted {j['udp_echo']}"
qs = j["queues"]
assert len(qs) == 2, f"{len(qs)} queues"
assert sorted(q["cpu"] for q in qs) == [0, 1], "queue i must be served by CPU i"
for q in qs:
    dev = q["device"]
    assert q["rx_frames"] > 0 and q["tx_frames"] > 0, f"queue {q['queue']} idle"
    assert dev["rx_frames"] > 0 and dev["tx_frames"] > 0, f"device queue {q['queue']} idle"
    assert dev["rx_frames"] == q["rx_frames"] and dev["tx_frames"] == q["tx_frames"], \
        f"queue {q['queue']}: interface and device disagree"
    assert sum(dev["tx_drops"].values()) == 0 and sum(dev["rx_drops"].values()) == 0, dev
assert sum(q["rx_frames"] for q in qs) == j["rx_frames"], "queues do not add up"
nonzero = {k: v for k, v in j["drops"].items() if v and k not in ("other_host", "unknown_ethertype")}
assert not nonzero, f"drops: {nonzero}"
# Steered: every frame arrived on the queue of the CPU that owns its flow.
assert j["handoffs_in"] == 0, f"{j['handoffs_in']} packets arrived on another CPU's queue"
PY
python3 - "$tmp/stats.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for q in j["queues"]:
    print(f"ok: queue {q['queue']} (cpu {q['cpu']}): rx_frames {q['rx_frames']} "
          f"tx_frames {q['tx_frames']}")
for c in j["cpus"]:
    print(f"ok: cpu {c['cpu']}: udp_in {c['udp_in']}, handoffs_in {c['handoffs_in']} "
          "(frames received on the other CPU's queue)")
PY
kill -INT "$pid"
wait "$pid" || fail "dfly stack run exited $?"
pid=""
echo "ok: both queues carried traffic both ways; discard counted 512 datagrams exactly"
INNER
