#!/usr/bin/env bash
# The coherent cluster filesystem with real mounts and real tools, over loopback:
# one `dfly serve` and three `dfly mount` clients (separate processes). Checks:
#   - a wrong secret is refused; TLS with a pinned certificate works, plain TCP to a
#     TLS server is refused;
#   - ping-pong: a writer on mount A and a reader on mount B, ordered by a pipe: every
#     read right after a write returned sees it (appends, overwrites inside a page,
#     across 4 KiB and 64 KiB boundaries, truncates, extends), and stat agrees; the
#     same for a streaming writer (1 MiB writes that go around A's cache);
#   - the randomized coherence checker: 6 processes on 3 mounts, thousands of
#     operations, linearizable; and, as the control that proves the checker can fail,
#     two non-coherent mounts (two dfly hostfs mounts of one directory) are caught;
#   - git commits on one mount, fsck/log/clone on another; sqlite3 from two mounts in
#     turn; a follower on one mount sees every line appended on another, in order;
#   - a fourth mount with --kernel-cache joins the checker; its kernel page cache and a
#     shared read-only mapping see every write made on A (and through its own other
#     descriptors) at once;
#   - shared mappings on the default mounts, writable ones too: reads through them see
#     writes elsewhere at once, stores reach others at msync, a write() elsewhere in
#     the same pages keeps unsynced stores, and two mounts storing concurrently to
#     interleaved pages through mappings lose nothing (nobody fenced);
#   - kill -9 of a client holding MODIFIED data: the others proceed after its lease
#     and its fsynced data survives; kill -9 and restart of the server: clients
#     reconnect and see the data on disk;
#   - `dfly cluster status --json` shows sessions, revocations and push-backs (the
#     ping-pong's reader gets ranges pushed back; its writer lowers at once).
# usage: cluster_test.sh PATH/TO/dfly PATH/TO/coherence_check   (root; 77 = skipped)
set -u
dfly="$(readlink -f "$1")"
checker="$(readlink -f "$2")"
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
  echo "skipped: needs root and /dev/fuse"
  exit 77
fi
for t in python3 git sqlite3 openssl fusermount3 mountpoint; do
  command -v "$t" >/dev/null || { echo "skipped: $t missing"; exit 77; }
done
tmp=$(mktemp -d)
pids=()
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do fusermount3 -u -z "$m" 2>/dev/null; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  tail -n 20 "$tmp"/*.log 2>/dev/null
  exit 1
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_mounted() {
  for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.1; done
  return 1
}

head -c 32 /dev/urandom | base64 >"$tmp/secret"
head -c 32 /dev/urandom | base64 >"$tmp/wrong"
port=$(free_port)
"$dfly" serve memfs --listen "127.0.0.1:$port" --secret-file "$tmp/secret" --lease-ms 2000 \
  --control "$tmp/serve.sock" >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/serve.sock" ] && break; sleep 0.1; done
mount_at() {  # name [extra args]: mounts the memfs export at $tmp/<name>
  local name=$1
  shift
  mkdir -p "$tmp/$name"
  "$dfly" mount "127.0.0.1:$port" "$tmp/$name" --secret-file "$tmp/secret" \
    --control "$tmp/m$name.sock" "$@" >"$tmp/m$name.log" 2>&1 &
  pids+=($!)
  mounts+=("$tmp/$name")
  wait_mounted "$tmp/$name" || fail "mount $name never appeared"
}
mount_at a
mount_at b
mount_at c
mount_at k --kernel-cache   # the kernel page cache for read-only opens
A=$tmp/a B=$tmp/b C=$tmp/c K=$tmp/k

mkdir -p "$tmp/refused"
if "$dfly" mount "127.0.0.1:$port" "$tmp/refused" --secret-file "$tmp/wrong" 2>"$tmp/refused.err"; then
  fail "a wrong secret was accepted"
fi
grep -q "dfly: mount: " "$tmp/refused.err" || fail "no error for a wrong secret: $(cat "$tmp/refused.err")"
mountpoint -q "$tmp/refused" && fail "mounted with a wrong secret"
echo "ok: a wrong secret is refused ($(head -c 120 "$tmp/refused.err"))"

python3 - "$A" "$B" <<'PY' || fail "ping-pong"
import os, random, sys
a, b = sys.argv[1], sys.argv[2]
r, w = os.pipe()
r2, w2 = os.pipe()
rng = random.Random(7)
steps = []
model = bytearray()
def wr(off, d):
    global model
    if len(model) < off: model += bytes(off - len(model))
    model[off:off + len(d)] = d
    steps.append(("write", off, d, bytes(model)))
def tr(n):
    global model
    model = model[:n] + bytes(max(0, n - len(model)))
    steps.append(("truncate", n, None, bytes(model)))
for i in range(300):
    k = rng.randrange(6)
    if k == 0:    # append
        wr(len(model), bytes([65 + i % 26]) * rng.randrange(1, 9000))
    elif k == 1 and model:  # overwrite inside one 4 KiB page
        off = rng.randrange(len(model))
        wr(off, bytes([97 + i % 26]) * min(rng.randrange(1, 100), 4096 - off % 4096))
    elif k == 2:  # across a 4 KiB or 64 KiB boundary
        edge = rng.choice([4096, 65536, 131072]) * rng.randrange(1, 3)
        wr(max(0, edge - rng.randrange(1, 50)), bytes([48 + i % 10]) * 100)
    elif k == 3:  # truncate shorter
        tr(rng.randrange(0, len(model) + 1))
    elif k == 4:  # extend by truncate
        tr(len(model) + rng.randrange(1, 70000))
    else:         # extend by writing past the end
        wr(len(model) + rng.randrange(1, 5000), b"X" * 10)
pid = os.fork()
if pid == 0:  # the writer, on mount A
    os.close(r); os.close(w2)
    fd = os.open(os.path.join(a, "pp"), os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
    for s in steps:
        if s[0] == "write": os.pwrite(fd, s[2], s[1])
        else: os.ftruncate(fd, s[1])
        os.write(w, b"."); os.read(r2, 1)   # the reader checks before the next step
    os._exit(0)
os.close(w); os.close(r2)
bad = 0
for i, s in enumerate(steps):
    assert os.read(r, 1) == b"."
    want = s[-1]
    st = os.stat(os.path.join(b, "pp"))
    with open(os.path.join(b, "pp"), "rb") as f:
        got = f.read()
    if got != want or st.st_size != len(want):
        print(f"step {i} {s[0]} {s[1]}: reader saw {len(got)} bytes (stat {st.st_size}), wanted {len(want)}")
        bad += 1
        if bad > 3: break
    os.write(w2, b".")
if bad: os.kill(pid, 9)
os.waitpid(pid, 0)
sys.exit(1 if bad else 0)
PY
echo "ok: ping-pong: 300 writes/truncates on A, each seen at once by B (content and size)"

# A streaming writer (1 MiB writes, 24 MiB: past the 8 MiB after which they go around
# A's cache as pipelined WRITEs) while B, which cached the old contents, checks each
# chunk right after its write returned; then cmp of the whole file on B and C.
head -c $((24 << 20)) /dev/urandom >"$tmp/stream.src"
python3 - "$A" "$B" "$tmp/stream.src" <<'PY' || fail "streaming writes"
import os, sys
a, b, src = sys.argv[1:]
data = open(src, "rb").read()
mib = 1 << 20
with open(os.path.join(a, "stream"), "wb") as f: f.write(bytes(len(data)))
fb = os.open(os.path.join(b, "stream"), os.O_RDONLY)
assert os.pread(fb, len(data), 0) == bytes(len(data))  # B caches the zeros
fa = os.open(os.path.join(a, "stream"), os.O_WRONLY)
for off in range(0, len(data), mib):
    assert os.pwrite(fa, data[off:off + mib], off) == mib
    start = max(off - 1, 0)  # and the byte before: the previous write's last
    got = os.pread(fb, off + mib - start, start)
    want = data[start:off + mib]
    assert got == want, f"B at {off >> 20} MiB: {len(got)} bytes, first difference at " \
        f"{next(i for i in range(min(len(got), len(want))) if got[i] != want[i]) if len(got) == len(want) else 'length'}"
os.fsync(fa)
PY
cmp "$tmp/stream.src" "$B/stream" || fail "streaming writes: B's copy differs"
cmp "$tmp/stream.src" "$C/stream" || fail "streaming writes: C's copy differs"
"$dfly" cluster status --control "$tmp/ma.sock" --json >"$tmp/ma.json" || fail "status of a"
streamed=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[0]['cache']['streamed'])" "$tmp/ma.json")
[ "$streamed" -ge 8 ] || fail "streaming writes: A streamed only $streamed writes"
echo "ok: streaming writes: 24 MiB in 1 MiB writes on A ($streamed around A's cache), each MiB seen at once by B, cmp on B and C"

"$checker" --mount "$A" --mount "$B" --mount "$C" --mount "$K" --procs-per-mount 2 --ops 700 --seed 11 \
  >"$tmp/check.out" 2>&1 || fail "coherence: $(head -c 3000 "$tmp/check.out")"
grep -q " linearizable " "$tmp/check.out" || fail "coherence: $(cat "$tmp/check.out")"
echo "ok: $(head -1 "$tmp/check.out")"

# The control: two dfly hostfs mounts of one directory cache independently (1 s
# attribute and page caches): the same checker must find them incoherent.
mkdir -p "$tmp/plain" "$tmp/p1" "$tmp/p2"
for p in p1 p2; do
  "$dfly" hostfs mount "$tmp/plain" "$tmp/$p" >"$tmp/$p.log" 2>&1 &
  pids+=($!)
  mounts+=("$tmp/$p")
  wait_mounted "$tmp/$p" || fail "hostfs mount $p"
done
if "$checker" --mount "$tmp/p1" --mount "$tmp/p2" --ops 500 --seed 3 >"$tmp/control.out" 2>&1; then
  fail "the checker passed two non-coherent mounts: $(cat "$tmp/control.out")"
fi
grep -q "NOT linearizable" "$tmp/control.out" || fail "control: $(cat "$tmp/control.out")"
fusermount3 -u "$tmp/p1"
fusermount3 -u "$tmp/p2"
echo "ok: control: two non-coherent mounts are caught ($(head -1 "$tmp/control.out" | cut -c1-90))"

(
  set -e
  cd "$A"
  git init -q repo
  cd repo
  git config user.email t@example.invalid
  git config user.name test
  for i in $(seq 20); do echo "line $i" >"f$i.txt"; done
  git add .
  git commit -q -m "first from A"
  echo more >>f1.txt
  git commit -q -am "second from A"
) >"$tmp/git.log" 2>&1 || fail "git on A"
(cd "$B/repo" && git fsck --strict && git log --oneline | grep -q "second from A" &&
  git clone -q "$B/repo" "$C/clone" && [ "$(cat "$C/clone/f1.txt")" = "line 1
more" ]) >>"$tmp/git.log" 2>&1 || fail "git on B/C: $(tail -5 "$tmp/git.log")"
echo "ok: git: commits on A, fsck and log on B, clone onto C"

sqlite3 "$A/db.sqlite" "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);" || fail "sqlite create"
for i in $(seq 50); do echo "BEGIN; INSERT INTO t(v) VALUES ('a$i'); INSERT INTO t(v) VALUES (randomblob(300)); COMMIT;"; done |
  sqlite3 "$A/db.sqlite" || fail "sqlite on A"
for i in $(seq 50); do echo "BEGIN; INSERT INTO t(v) VALUES ('b$i'); COMMIT;"; done |
  sqlite3 "$B/db.sqlite" || fail "sqlite on B"
[ "$(sqlite3 "$A/db.sqlite" 'SELECT count(*) FROM t;')" = 150 ] || fail "sqlite: A does not see B's rows"
[ "$(sqlite3 "$C/db.sqlite" 'PRAGMA integrity_check;')" = ok ] || fail "sqlite integrity on C"
echo "ok: sqlite3: transactions from A then B, A sees all 150 rows, integrity_check ok on C"

python3 - "$A/log" "$B/log" <<'PY' || fail "follow"
import os, sys, time
wpath, rpath = sys.argv[1], sys.argv[2]
open(wpath, "w").close()
pid = os.fork()
if pid == 0:
    with open(wpath, "a") as f:
        for i in range(300):
            f.write(f"event {i}\n"); f.flush()
            if i % 50 == 0: time.sleep(0.01)
    os._exit(0)
seen = b""
deadline = time.monotonic() + 60
with open(rpath, "rb") as f:
    while seen.count(b"\n") < 300 and time.monotonic() < deadline:
        chunk = f.read()
        if chunk: seen += chunk
        else: time.sleep(0.005)
os.waitpid(pid, 0)
want = "".join(f"event {i}\n" for i in range(300)).encode()
if seen != want:
    lines = seen.count(b"\n")
    n = min(len(seen), len(want))
    first = next((i for i in range(n) if seen[i] != want[i]), n)
    print(f"follower saw {lines} lines; first difference at byte {first}")
    sys.exit(1)
PY
echo "ok: a follower on B saw every line appended on A, in order"

# The kernel page cache on a client mount (--kernel-cache: read-only opens) and shared
# mappings: K's cached pages and its existing MAP_SHARED mapping see every write another
# mount (or K itself, through another descriptor) made before, as soon as it returned.
python3 - "$A" "$K" <<'PY' || fail "page cache / mmap coherence"
import errno, mmap, os, random, sys
a, b = sys.argv[1], sys.argv[2]
size = 256 << 10
model = bytearray(b"a" * size)
fa = os.open(os.path.join(a, "mm"), os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
os.pwrite(fa, bytes(model), 0)
fb = os.open(os.path.join(b, "mm"), os.O_RDONLY)     # page cache
fbw = os.open(os.path.join(b, "mm"), os.O_RDWR)      # direct I/O
m = mmap.mmap(fb, size, mmap.MAP_SHARED, mmap.PROT_READ)
assert m[:] == model, "mapping before any write"
assert os.pread(fb, size, 0) == model
rng = random.Random(5)
for i in range(200):
    off = rng.randrange(size - 200)
    n = rng.randrange(1, 200)
    d = bytes([rng.randrange(256)]) * n
    writer = fa if i % 3 else fbw          # another mount, or B's own other descriptor
    os.pwrite(writer, d, off)
    model[off:off + n] = d
    lo, hi = max(0, off - 5000), min(size, off + n + 5000)
    got_map, got_read = m[lo:hi], os.pread(fb, hi - lo, lo)
    if got_map != model[lo:hi] or got_read != model[lo:hi]:
        print(f"round {i}: write of {n} at {off} by {'A' if i % 3 else 'B'}: "
              f"mapping ok={got_map == model[lo:hi]} read ok={got_read == model[lo:hi]}")
        sys.exit(1)
    if i % 50 == 0:  # and A sees B's writes
        assert os.pread(fa, size, 0) == model, f"round {i}: A"
assert m[:] == model and os.pread(fb, size, 0) == model
m.close()
PY
echo "ok: --kernel-cache: page cache and a shared read mapping on K see 200 writes from A and from K itself at once"

# Shared mappings on the default (direct I/O) mounts, writable ones included: reads
# through a mapping see every write another mount completed; stores reach the others
# at msync (and A's own reads at once); a write() elsewhere in the same pages keeps
# A's unsynced stores; two mounts storing to interleaved pages of one file through
# their mappings, with msync, lose nothing and nobody is fenced.
python3 - "$A" "$B" "$C" <<'PY' || fail "shared mappings"
import mmap, os, random, sys
a, b, c = sys.argv[1], sys.argv[2], sys.argv[3]
P = mmap.PAGESIZE
size = 64 * P
model = bytearray(b"m" * size)
fa = os.open(os.path.join(a, "shm"), os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
os.pwrite(fa, bytes(model), 0)
fb = os.open(os.path.join(b, "shm"), os.O_RDWR)
fc = os.open(os.path.join(c, "shm"), os.O_RDONLY)
ma = mmap.mmap(fa, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
mb = mmap.mmap(fb, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
mc = mmap.mmap(fc, size, mmap.MAP_SHARED, mmap.PROT_READ)
rng = random.Random(9)
def check(what):
    for name, got in (("A map", ma[:]), ("B map", mb[:]), ("C map", mc[:]),
                      ("B read", os.pread(fb, size, 0)), ("C read", os.pread(fc, size, 0))):
        if got != model:
            bad = next(i for i in range(size) if got[i] != model[i])
            print(f"{what}: {name} differs first at byte {bad}"); sys.exit(1)
for i in range(300):
    kind = rng.randrange(4)
    off = rng.randrange(size - 300)
    n = rng.randrange(1, 300)
    d = bytes([rng.randrange(256)]) * n
    model_before = bytes(model)
    if kind == 0:    # a write() on B: every mapping sees it at once
        os.pwrite(fb, d, off)
        model[off:off + n] = d
        if ma[off:off + n] != d or mc[off:off + n] != d:
            print(f"{i}: a mapping missed B's write"); sys.exit(1)
    elif kind == 1:  # a store through A's mapping: A's own read sees it at once
        ma[off:off + n] = d
        model[off:off + n] = d
        if os.pread(fa, n, off) != d:
            print(f"{i}: A's read after its own store"); sys.exit(1)
    elif kind == 2:  # a store through B's mapping, then msync: everyone sees it
        mb[off:off + n] = d
        mb.flush()
        model[off:off + n] = d
        check(f"{i}: after B's msync")
    else:            # msync on A: everyone sees A's stores
        ma.flush()
        check(f"{i}: after A's msync")
ma.flush()
check("end")
for m in (ma, mb, mc):
    m.close()
# Concurrent stores to interleaved pages through mappings on A and B, msync every 4.
fa2 = os.open(os.path.join(a, "shm2"), os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
os.ftruncate(fa2, size)
fb2 = os.open(os.path.join(b, "shm2"), os.O_RDWR)
def stores(seed, parity):
    r = random.Random(seed)
    for k in range(400):
        p = r.randrange(size // P // 2) * 2 + parity
        yield k, p * P + r.randrange(P), (k % 255) + 1
pid = os.fork()
if pid == 0:
    m = mmap.mmap(fb2, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    for k, o, v in stores(1, 1):
        m[o] = v
        if k % 4 == 0: m.flush()
    m.flush()
    os._exit(0)
m = mmap.mmap(fa2, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
for k, o, v in stores(2, 0):
    m[o] = v
    if k % 4 == 0: m.flush()
m.flush()
_, st = os.waitpid(pid, 0)
if st != 0:
    print(f"the storing process on B failed ({st})"); sys.exit(1)
want = bytearray(size)
for seed, parity in ((1, 1), (2, 0)):
    for k, o, v in stores(seed, parity):
        want[o] = v
fc2 = os.open(os.path.join(c, "shm2"), os.O_RDONLY)
got = os.pread(fc2, size, 0)
if got != want:
    bad = [i for i in range(size) if got[i] != want[i]]
    print(f"concurrent stores: {len(bad)} bytes lost, first at {bad[0]}"); sys.exit(1)
PY
"$dfly" cluster status --control "$tmp/ma.sock" --control "$tmp/mb.sock" --json >"$tmp/mstatus.json" ||
  fail "cluster status of A and B"
python3 - "$tmp/mstatus.json" <<'PY' || fail "a client was fenced during the mapping tests: $(cat "$tmp/mstatus.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert all(c["reconnects"] == 0 for c in s), [c["reconnects"] for c in s]
PY
echo "ok: shared mappings on default mounts: reads see writes at once, stores at msync, concurrent stores through two mappings all kept ($(python3 -c "import json;print(sum(c['mapped_in_window'] for c in json.load(open('$tmp/mstatus.json'))))") write-backs refused during revocations, kept aside and written later)"

"$dfly" cluster status --control "$tmp/serve.sock" --control "$tmp/ma.sock" --json >"$tmp/status.json" ||
  fail "cluster status"
python3 - "$tmp/status.json" <<'PY' || fail "status: $(head -c 1500 "$tmp/status.json")"
import json, sys
s, a = json.load(open(sys.argv[1]))
assert s["role"] == "server" and len([c for c in s["clients"] if c["connected"]]) >= 3, s["clients"]
assert s["home"]["revokes_sent"] > 0 and s["home"]["revokes_acked"] > 0, s["home"]
assert a["role"] == "client" and a["connected"] and a["revokes"] > 0, a
# The ping-pong's reader got ranges pushed back; its writer lowered at once.
assert s["home"]["pushes"] > 0 and s["home"]["contended"] > 0 and a["downgrades"] > 0, (s["home"], a)
PY
echo "ok: cluster status: $(python3 -c "import json;s=json.load(open('$tmp/status.json'))[0];print(len(s['clients']),'sessions,',s['home']['revokes_sent'],'revocations,',s['home']['pushes'],'pushes')")"

# kill -9 a client holding MODIFIED data: its fsynced file survives, and the others
# get its ranges once its lease (2 s) has run out.
python3 - "$C" <<'PY' || fail "writing on C"
import os, sys
c = sys.argv[1]
fd = os.open(os.path.join(c, "durable"), os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"D" * 100000); os.fsync(fd); os.close(fd)
fd = os.open(os.path.join(c, "volatile"), os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"V" * 100000); os.close(fd)   # no fsync: C holds it MODIFIED
PY
cpid=$(pgrep -f "dfly mount 127.0.0.1:$port $C " | head -1)
[ -n "$cpid" ] || fail "no mount process for C"
kill -9 "$cpid"
fusermount3 -u -z "$C"
start=$(date +%s)
timeout 30 python3 - "$B" <<'PY' || fail "B after C was killed"
import os, sys
b = sys.argv[1]
assert open(os.path.join(b, "durable"), "rb").read() == b"D" * 100000
v = open(os.path.join(b, "volatile"), "rb").read()
assert v in (b"", b"V" * 100000), len(v)   # never a torn mix
open(os.path.join(b, "volatile"), "wb").write(b"after")
PY
echo "ok: kill -9 of client C: B read its fsynced file and took over its ranges after the lease ($(($(date +%s) - start)) s)"

# kill -9 and restart of a server exporting a directory: the mount reconnects.
mkdir -p "$tmp/export" "$tmp/d"
port2=$(free_port)
serve_dir() {
  "$dfly" serve "$tmp/export" --listen "127.0.0.1:$port2" --secret-file "$tmp/secret" --lease-ms 2000 \
    --control "$tmp/serve2.sock" >>"$tmp/serve2.log" 2>&1 &
  spid=$!
  pids+=($spid)
  for _ in $(seq 50); do [ -S "$tmp/serve2.sock" ] && break; sleep 0.1; done
}
serve_dir
"$dfly" mount "127.0.0.1:$port2" "$tmp/d" --secret-file "$tmp/secret" --control "$tmp/md.sock" >"$tmp/md.log" 2>&1 &
pids+=($!)
mounts+=("$tmp/d")
wait_mounted "$tmp/d" || fail "mount d"
python3 -c "
import os; fd = os.open('$tmp/d/kept', os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'kept\n'); os.fsync(fd); os.close(fd)"
[ "$(cat "$tmp/export/kept")" = kept ] || fail "fsync did not reach the export"
kill -9 "$spid"
rm -f "$tmp/serve2.sock"
sleep 0.5
serve_dir
ok=""
for _ in $(seq 100); do
  if [ "$(cat "$tmp/d/kept" 2>/dev/null)" = kept ]; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || fail "after the server restart the mount never saw its data again"
echo after >"$tmp/d/new" || fail "write after the server restart"
[ "$(cat "$tmp/d/new")" = after ] || fail "read back after the server restart"
"$dfly" cluster status --control "$tmp/md.sock" --json >"$tmp/md.json" || fail "status of d"
python3 -c "import json,sys;j=json.load(open('$tmp/md.json'))[0];sys.exit(0 if j['reconnects']>=1 and j['connected'] else 1)" ||
  fail "no reconnect recorded: $(cat "$tmp/md.json")"
echo "ok: server killed and restarted: the mount reconnected and reads and writes again"

# TLS: a self-signed certificate, pinned by the client.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || fail "openssl"
port3=$(free_port)
"$dfly" serve memfs --listen "127.0.0.1:$port3" --secret-file "$tmp/secret" --tls-cert "$tmp/cert.pem" \
  --tls-key "$tmp/key.pem" --control "$tmp/serve3.sock" >"$tmp/serve3.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/serve3.sock" ] && break; sleep 0.1; done
mkdir -p "$tmp/t" "$tmp/u"
if timeout 20 "$dfly" mount "127.0.0.1:$port3" "$tmp/u" --secret-file "$tmp/secret" 2>"$tmp/plain.err"; then
  fail "plain TCP to a TLS server was accepted"
fi
"$dfly" mount "127.0.0.1:$port3" "$tmp/t" --secret-file "$tmp/secret" --tls --tls-pin "$tmp/cert.pem" \
  --control "$tmp/mt.sock" >"$tmp/mt.log" 2>&1 &
pids+=($!)
mounts+=("$tmp/t")
wait_mounted "$tmp/t" || fail "TLS mount"
echo secure >"$tmp/t/x" && [ "$(cat "$tmp/t/x")" = secure ] || fail "I/O over TLS"
echo "ok: TLS 1.3 with a pinned certificate works; plain TCP to the TLS server is refused"
