#!/usr/bin/env bash
# The cluster filesystem across a network partition, in namespaces made for this test:
# `dfly serve` in namespace "srv" (198.18.30.2), client A in the test's own namespace
# (198.18.30.1, over a veth pair), client B inside "srv". A writes without fsync and
# then its link goes down:
#   - B's read of that file waits for A's revoke deadline and lease (2 s each), then
#     proceeds without A's unsynced data and never sees a torn mix;
#   - the server fenced A (cluster status counts it);
#   - when the link comes back, A (which dropped its cache once its lease ran out
#     without a word from the server) reconnects with a new session and sees B's view;
#     writes flow both ways again.
# usage: cluster_partition_test.sh PATH/TO/dfly     (needs root; exit 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v nsenter >/dev/null; then
  echo "skipped: needs root, /dev/fuse and nsenter"
  exit 77
fi
exec timeout 240 unshare --net --mount --fork --kill-child bash -s "$dfly" <<'INNER'
set -u
dfly="$1"
mount --make-rprivate / && mkdir -p /run/netns && mount -t tmpfs dfly-netns /run/netns ||
  { echo "FAIL: private /run/netns"; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for m in "$tmp/a" "$tmp/b"; do fusermount3 -u -z "$m" 2>/dev/null; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  # Whatever still runs in srv (a process that missed its signal) goes too.
  ip netns pids srv 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del srv 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  tail -n 15 "$tmp"/*.log 2>/dev/null
  exit 1
}
wait_mounted() {
  for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.1; done
  return 1
}
# Background processes in srv are started with nsenter itself (it execs the command,
# so $! is the process to stop), never through this function: a backgrounded
# function is a subshell, and killing it would orphan the dfly process inside.
in_srv() { nsenter --net=/run/netns/srv "$@"; }

ip link set lo up
ip netns add srv
ip link add vc type veth peer name vs
ip link set vs netns srv
ip addr add 198.18.30.1/24 dev vc
ip link set vc up
in_srv ip link set lo up
in_srv ip addr add 198.18.30.2/24 dev vs
in_srv ip link set vs up
head -c 32 /dev/urandom | base64 >"$tmp/secret"
nsenter --net=/run/netns/srv "$dfly" serve memfs --listen 198.18.30.2:7400 --secret-file "$tmp/secret" --lease-ms 2000 \
  --control "$tmp/serve.sock" >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/serve.sock" ] && break; sleep 0.1; done
mkdir -p "$tmp/a" "$tmp/b"
"$dfly" mount 198.18.30.2:7400 "$tmp/a" --secret-file "$tmp/secret" --control "$tmp/ma.sock" \
  >"$tmp/ma.log" 2>&1 &
pids+=($!)
nsenter --net=/run/netns/srv "$dfly" mount 198.18.30.2:7400 "$tmp/b" --secret-file "$tmp/secret" --control "$tmp/mb.sock" \
  >"$tmp/mb.log" 2>&1 &
pids+=($!)
wait_mounted "$tmp/a" || fail "mount A"
wait_mounted "$tmp/b" || fail "mount B"

printf 'synced\n' >"$tmp/a/f"
python3 -c "import os;fd=os.open('$tmp/a/f',os.O_RDWR);os.fsync(fd)"
[ "$(cat "$tmp/b/f")" = synced ] || fail "B does not see A's write"
python3 -c "
import os; fd = os.open('$tmp/a/f', os.O_WRONLY | os.O_TRUNC); os.write(fd, b'U' * 70000); os.close(fd)"
ip link set vc down
start=$(date +%s)
got=$(timeout 60 cat "$tmp/b/f") || fail "B's read never completed while A was cut off"
took=$(($(date +%s) - start))
case "$got" in
  synced | "" | "$(printf 'U%.0s' $(seq 70000))") ;;
  *) fail "B saw a torn mix (${#got} bytes)" ;;
esac
echo "ok: with A cut off, B read the file after $took s (A's revoke deadline and lease), ${#got} bytes, not torn"
"$dfly" cluster status --control "$tmp/serve.sock" --json >"$tmp/s.json" || fail "status"
python3 -c "import json,sys;h=json.load(open('$tmp/s.json'))[0]['home'];sys.exit(0 if h['fenced_revoke']+h['fenced_lease']>=1 else 1)" ||
  fail "the server did not fence A: $(cat "$tmp/s.json")"
echo "ok: the server fenced A"
printf 'from B\n' >"$tmp/b/f"
sleep 2.5  # past A's own lease: A has given up its cache by now
ip link set vc up
ok=""
for _ in $(seq 150); do
  if [ "$(timeout 5 cat "$tmp/a/f" 2>/dev/null)" = "from B" ]; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "A never saw B's write after the link came back"
"$dfly" cluster status --control "$tmp/ma.sock" --json >"$tmp/a.json" || fail "status of A"
python3 -c "import json,sys;j=json.load(open('$tmp/a.json'))[0];sys.exit(0 if j['reconnects']>=1 and j['connected'] else 1)" ||
  fail "A did not reconnect: $(cat "$tmp/a.json")"
printf 'from A again\n' >"$tmp/a/g" || fail "write on A after the partition"
[ "$(cat "$tmp/b/g")" = "from A again" ] || fail "B does not see A's new write"
echo "ok: link back: A reconnected with a new session, sees B's write, and its new writes reach B"
INNER
