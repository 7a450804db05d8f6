#!/usr/bin/env bash
# dfly's TCP against Linux peers, in a network namespace made for this test:
# `dfly stack run --cpus 2 --http DIR --tcp-echo --tcp-discard --chargen` on TAP
# dtcp0 (198.18.3.2/24), Linux at 198.18.3.1. Checks:
#   - curl downloads files of 0 B, 1 B, 4097 B, 1 MiB + 7 and 64 MiB: sha256 match;
#     HEAD, 404, path traversal refused, 405 for POST;
#   - socat through TCP echo (8 MiB both ways) comes back identical;
#   - TCP discard counts 16 MiB exactly; chargen sends RFC 864 lines;
#   - 200 connections opened and closed (curl in a loop) all succeed;
#   - the counters (dfly stack stats --json) agree.
# usage: tcp_test.sh PATH/TO/dfly      (needs root; exit 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
lib="$(dirname "$(readlink -f "$0")")/netns_test_lib.sh"
. "$lib"
need_root_tun
for t in curl socat sha256sum; do
  command -v "$t" >/dev/null || { echo "skipped: $t missing"; exit 77; }
done
exec timeout 240 unshare --net --fork --kill-child bash -s "$dfly" "$lib" <<'INNER'
set -u
dfly="$1"
. "$2"  # netns_begin, fail, wait_link
netns_begin
mkdir -p "$tmp/www/sub"
: >"$tmp/www/empty"
printf x >"$tmp/www/one"
head -c 4097 /dev/urandom >"$tmp/www/sub/odd"
head -c 1048583 /dev/urandom >"$tmp/www/mib"
head -c 67108864 /dev/urandom >"$tmp/www/big"
echo spaced >"$tmp/www/with space"
echo secret >"$tmp/outside"
ln -s ../outside "$tmp/www/link-out"
"$dfly" stack run --tap dtcp0 --addr 198.18.3.2/24 --cpus 2 --http "$tmp/www" --tcp-echo \
  --tcp-discard --chargen --control "$tmp/ctl.sock" --seconds 200 >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
wait_link dtcp0 || fail "dtcp0 never appeared"
ip addr add 198.18.3.1/24 dev dtcp0
ip link set dtcp0 up
url=http://198.18.3.2
for _ in $(seq 20); do curl -s -o /dev/null -m 1 "$url/one" && break; sleep 0.1; done

for f in empty one sub/odd mib big; do
  curl -sS -m 60 -o "$tmp/got" "$url/$f" 2>>"$tmp/curl.err" || fail "curl $f"
  [ "$(sha256sum <"$tmp/got")" = "$(sha256sum <"$tmp/www/$f")" ] || fail "curl $f: content differs"
done
echo "ok: curl fetched 0 B, 1 B, 4097 B, 1 MiB + 7 and 64 MiB with matching sha256"
code() { curl -s -m 10 -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$url/nope")" = 404 ] || fail "missing file not 404"
[ "$(curl -sS -m 10 "$url/with%20space")" = spaced ] || fail "percent-encoded path"
[ "$(code "$url/a%00b")" = 400 ] || fail "NUL escape not 400"
[ "$(code --path-as-is "$url/../outside")" = 404 ] || fail "path traversal not refused"
[ "$(code "$url/link-out")" = 404 ] || fail "symlink out of the root not refused"
[ "$(code -X POST -d x "$url/one")" = 405 ] || fail "POST not 405"
len=$(curl -sS -m 10 -I "$url/mib" | tr -d '\r' | sed -n 's/^Content-Length: //p')
[ "$len" = 1048583 ] || fail "HEAD Content-Length $len"
echo "ok: 404, traversal and symlink escapes refused, %-escapes decoded (%00 is 400), 405 for POST, HEAD gives the length"

head -c 8388608 /dev/urandom >"$tmp/echo.in"
timeout 60 socat -t 10 - TCP:198.18.3.2:7 <"$tmp/echo.in" >"$tmp/echo.out" 2>>"$tmp/socat.err" ||
  fail "socat to echo failed"
cmp -s "$tmp/echo.in" "$tmp/echo.out" || fail "TCP echo of 8 MiB came back different ($(stat -c %s "$tmp/echo.out") bytes)"
echo "ok: 8 MiB through TCP echo, identical"

head -c 16777216 /dev/zero | timeout 60 socat -u - TCP:198.18.3.2:9 2>>"$tmp/socat.err" ||
  fail "socat to discard failed"
timeout 5 socat -u TCP:198.18.3.2:19 - 2>/dev/null | head -c 7400 >"$tmp/chargen"
python3 - "$tmp/chargen" <<'PY' || fail "chargen output is not RFC 864"
import sys
data = open(sys.argv[1], "rb").read()
assert len(data) == 7400, len(data)
chars = bytes(range(32, 127))
want = b"".join((chars * 2)[k % 95 : k % 95 + 72] + b"\r\n" for k in range(100))
assert data == want
PY
echo "ok: TCP discard took 16 MiB; chargen sent 100 RFC 864 lines"

for i in $(seq 200); do
  curl -s -m 10 -o /dev/null "$url/one" || fail "connection $i failed"
done
echo "ok: 200 sequential connections opened and closed"

for _ in $(seq 50); do
  "$dfly" stack stats --control "$tmp/ctl.sock" --json >"$tmp/stats.json" || fail "stack stats"
  python3 - "$tmp/stats.json" <<'PY' && break
import json, sys
j = json.load(open(sys.argv[1]))
assert j["tcp_discard"]["bytes_in"] == 16777216, j["tcp_discard"]
PY
  sleep 0.1
done
python3 - "$tmp/stats.json" <<'PY' || fail "stats disagree: $(head -c 600 "$tmp/stats.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["tcp_discard"]["bytes_in"] == 16777216, j["tcp_discard"]
assert j["tcp_echo"]["bytes_in"] == 8388608 and j["tcp_echo"]["bytes_out"] == 8388608, j["tcp_echo"]
assert j["http"]["requests"] >= 213, j["http"]
assert j["tcp_out"] > 0 and j["tcp_in"] > 0
PY
echo "ok: stats agree (discard 16777216 bytes, echo 8388608 each way, $(python3 -c "import json;print(json.load(open('$tmp/stats.json'))['http']['requests'])") HTTP requests)"
kill -INT "$pid"
wait "$pid" || fail "dfly stack run exited $?"
pid=""

# The client side: dfly connects out (its own stack on TAP dtcp1) and Linux listens,
# then Linux connects to dfly's `stack recv`.
socat -u TCP-LISTEN:6000,reuseaddr - 2>>"$tmp/socat.err" | sha256sum >"$tmp/linux.sha" &
spid=$!
"$dfly" stack send --tap dtcp1 --addr 198.18.4.2/24 198.18.4.1:6000 --bytes 33554441 --json \
  >"$tmp/send.json" 2>"$tmp/send.err" &
pid=$!
wait_link dtcp1 || fail "dtcp1 never appeared"
ip addr add 198.18.4.1/24 dev dtcp1
ip link set dtcp1 up
wait "$pid" || fail "dfly stack send exited $?: $(cat "$tmp/send.err")"
pid=""
wait "$spid"
sent=$(python3 -c "import json,sys;print(json.load(open('$tmp/send.json'))['sha256'])")
[ "$sent  -" = "$(cat "$tmp/linux.sha")" ] || fail "dfly sent $sent, Linux got $(cat "$tmp/linux.sha")"
echo "ok: dfly stack send: 32 MiB + 9 to Linux socat, sha256 matches"

head -c 20000003 /dev/urandom >"$tmp/up.bin"
"$dfly" stack recv --tap dtcp2 --addr 198.18.5.2/24 --port 6001 --json >"$tmp/recv.json" 2>"$tmp/recv.err" &
pid=$!
wait_link dtcp2 || fail "dtcp2 never appeared"
ip addr add 198.18.5.1/24 dev dtcp2
ip link set dtcp2 up
for _ in $(seq 50); do
  timeout 30 socat -u OPEN:"$tmp/up.bin" TCP:198.18.5.2:6001 2>/dev/null && break
  sleep 0.1
done
wait "$pid" || fail "dfly stack recv exited $?: $(cat "$tmp/recv.err")"
pid=""
got=$(python3 -c "import json;print(json.load(open('$tmp/recv.json'))['sha256'])")
[ "$got  -" = "$(sha256sum <"$tmp/up.bin")" ] || fail "dfly received $got"
echo "ok: dfly stack recv: 20 MB from Linux socat, sha256 matches"
INNER
