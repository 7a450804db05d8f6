#!/usr/bin/env bash
# cluster benchmarks (issue #9), over loopback, against baselines measured in the same run:
#   cluster_coherence_latency  write() returning on mount A until a read on mount B
#                              returns the new byte, vs one TCP round trip on loopback
#                              (ratio = RTT / latency; the target, <= 2 RTT, is >= 0.5)
#   cluster_disjoint_writers   two clients writing disjoint halves of one file at once,
#                              vs one client writing all of it (ratio = one / two time)
#   cluster_seq_read_vs_sshfs, cluster_seq_write_vs_sshfs, cluster_rand_read_vs_sshfs
#                              fio (1 MiB sequential, 4 KiB random) on a dfly mount of a
#                              directory export vs sshfs of the same directory through
#                              an sshd this script starts on 127.0.0.1; cold caches.
#   cluster_{seq,rand}_read_kcache_vs_sshfs  the same reads on a `--kernel-cache` mount
# The kernel NFS server comparison needs nfsd, which this kernel lacks: when
# /proc/filesystems has no nfsd the _vs_nfs figures are not printed (said on stderr).
# Needs root and /dev/fuse; uses the dfly CLI in the build directory above this one.
set -u
here="$(dirname "$(readlink -f "$0")")"
dfly="$here/../dfly"
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
  echo "cluster_bench: skipped (needs root and /dev/fuse)" >&2
  exit 0
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for m in "$tmp"/m*; do fusermount3 -u -z "$m" 2>/dev/null; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
head -c 32 /dev/urandom | base64 >"$tmp/secret"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$dfly" serve memfs --size 2G --listen "127.0.0.1:$port" --secret-file "$tmp/secret" \
  --control "$tmp/serve.sock" >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/serve.sock" ] && break; sleep 0.1; done
for m in ma mb; do
  mkdir -p "$tmp/$m"
  "$dfly" mount "127.0.0.1:$port" "$tmp/$m" --secret-file "$tmp/secret" --cache 1G \
    --control "$tmp/$m.sock" >"$tmp/$m.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do mountpoint -q "$tmp/$m" && break; sleep 0.1; done
done

python3 - "$tmp/ma" "$tmp/mb" "$dfly" "$tmp/serve.sock" <<'PY'
import json, os, socket, statistics, subprocess, sys, threading, time
a, b, dfly, serve_sock = sys.argv[1:5]

def line(name, value, unit, base, base_value, ratio):
    print(f"dfly-bench name={name} value={value:.1f} unit={unit} baseline={base} "
          f"baseline_value={base_value:.1f} ratio={ratio:.2f}", flush=True)

# One TCP round trip on loopback, 1 byte each way (the baseline).
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def echo():
    c, _ = srv.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (d := c.recv(1)): c.sendall(d)
t = threading.Thread(target=echo, daemon=True); t.start()
cl = socket.create_connection(srv.getsockname()); cl.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
for i in range(2000):
    t0 = time.perf_counter_ns(); cl.sendall(b"x"); cl.recv(1); rtts.append(time.perf_counter_ns() - t0)
cl.close()
rtt = statistics.median(rtts) / 1000

# Coherence latency: A writes a new byte; B (told through a pipe, whose own wake-up
# cost is measured and taken off) reads until it sees it.
p1r, p1w = os.pipe(); p2r, p2w = os.pipe()
fa = os.open(os.path.join(a, "lat"), os.O_CREAT | os.O_RDWR, 0o644)
os.pwrite(fa, b"\0" * 4096, 0)
pid = os.fork()
if pid == 0:
    fb = os.open(os.path.join(b, "lat"), os.O_RDONLY)
    while (m := os.read(p1r, 9)) and m != b"stop00000":
        want = m[:1]
        while os.pread(fb, 1, 0) != want: pass
        os.write(p2w, str(time.perf_counter_ns()).encode().ljust(24))
    os._exit(0)
lat, pipe_cost = [], []
for i in range(300):
    v = bytes([1 + i % 250])
    os.pwrite(fa, v, 0)
    t0 = time.perf_counter_ns()
    os.write(p1w, v * 9)
    t1 = int(os.read(p2r, 24))
    lat.append(t1 - t0)
os.write(p1w, b"stop00000"); os.waitpid(pid, 0)
# pipe wake-up cost: a child answering at once
q1r, q1w = os.pipe(); q2r, q2w = os.pipe()
pid = os.fork()
if pid == 0:
    while os.read(q1r, 1) == b"x": os.write(q2w, str(time.perf_counter_ns()).encode().ljust(24))
    os._exit(0)
for i in range(300):
    t0 = time.perf_counter_ns(); os.write(q1w, b"x"); pipe_cost.append(int(os.read(q2r, 24)) - t0)
os.write(q1w, b"q"); os.waitpid(pid, 0)
latency = max(statistics.median(lat) - statistics.median(pipe_cost), 1) / 1000
line("cluster_coherence_latency", latency, "us", "tcp_loopback_rtt", rtt, rtt / latency)

# Disjoint writers: 256 MiB in 1 MiB writes, then fsync.
size, chunk = 256 << 20, 1 << 20
buf = os.urandom(chunk)
def write_range(path, lo, hi):
    fd = os.open(path, os.O_WRONLY)
    for off in range(lo, hi, chunk): os.pwrite(fd, buf, off)
    os.fsync(fd); os.close(fd)
def prepare(name):
    fd = os.open(os.path.join(a, name), os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    os.ftruncate(fd, size); os.close(fd)
# Warm-up: the first writes of each mount and of the server pay for fresh memory
# (page faults; the server's memory is reused only after a few rounds), which would
# make whichever case runs first look slower. So three rounds of both cases warm up,
# then six are measured, alternating which case goes first (each file is removed
# before the next case, so both start from the same server memory), and the medians
# reported.
def one_client():
    prepare("one")
    t0 = time.perf_counter(); write_range(os.path.join(a, "one"), 0, size)
    t = time.perf_counter() - t0
    os.unlink(os.path.join(a, "one"))
    return t
def two_clients():
    prepare("two")
    t0 = time.perf_counter()
    kids = []
    for mnt, lo, hi in ((a, 0, size // 2), (b, size // 2, size)):
        pid = os.fork()
        if pid == 0:
            write_range(os.path.join(mnt, "two"), lo, hi); os._exit(0)
        kids.append(pid)
    for k in kids: os.waitpid(k, 0)
    t = time.perf_counter() - t0
    os.unlink(os.path.join(a, "two"))
    return t
for _ in range(3): one_client(); two_clients()
# Context on stderr: how many CPUs one client keeps busy (two clients can be at most
# ncpu / that much faster), and the home node's revocations while two clients write
# (range granularity: a few per round — the attribute token and the first writes
# near the other writer's half — not one per write).
def cpu_ticks():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]
def revokes():
    r = subprocess.run([dfly, "cluster", "status", "--control", serve_sock, "--json"],
                       capture_output=True, text=True)
    try: return json.loads(r.stdout)[0]["home"]["revokes_sent"]
    except (ValueError, KeyError, IndexError): return None
ones, twos = [], []
busy = total = 0
revoked = 0
for i in range(6):  # alternating which case goes first (each disturbs the next)
    for case in ((two_clients, one_client) if i % 2 else (one_client, two_clients)):
        t0, r0 = cpu_ticks(), revokes() if case is two_clients else None
        (ones if case is one_client else twos).append(case())
        t1 = cpu_ticks()
        if case is one_client:
            total += t1[0] - t0[0]; busy += (t1[0] - t0[0]) - (t1[1] - t0[1])
        elif r0 is not None and (r1 := revokes()) is not None:
            revoked += r1 - r0
one, two = statistics.median(ones), statistics.median(twos)
mb = size / (1 << 20)
line("cluster_disjoint_writers", mb / two, "MiB/s", "one_client", mb / one, one / two)
ncpu = os.cpu_count() or 1
cpus = ncpu * busy / max(total, 1)
print(f"cluster_bench: one writer keeps {cpus:.2f} of {ncpu} CPUs busy (two can be at most "
      f"~{ncpu / max(cpus, 0.01):.2f}x faster here); revocations while two wrote: {revoked}",
      file=sys.stderr, flush=True)
PY

grep -qw nfsd /proc/filesystems ||
  echo "cluster_bench: no nfsd in this kernel: the _vs_nfs figures are not measured" >&2
for t in sshfs sshd fio ssh-keygen; do
  command -v "$t" >/dev/null || { echo "cluster_bench: $t missing: no _vs_sshfs figures" >&2; exit 0; }
done
# A directory export and the same directory over sshfs.
mkdir -p "$tmp/export" "$tmp/mdir" "$tmp/mkc" "$tmp/msshfs" /run/sshd
port2=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$dfly" serve "$tmp/export" --listen "127.0.0.1:$port2" --secret-file "$tmp/secret" \
  --control "$tmp/serve2.sock" >"$tmp/serve2.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/serve2.sock" ] && break; sleep 0.1; done
sport=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
ssh-keygen -q -t ed25519 -N "" -f "$tmp/hostkey"
ssh-keygen -q -t ed25519 -N "" -f "$tmp/id"
cp "$tmp/id.pub" "$tmp/authorized_keys"
chmod 600 "$tmp/authorized_keys"
/usr/sbin/sshd -D -e -f /dev/null -o Port="$sport" -o ListenAddress=127.0.0.1 -o HostKey="$tmp/hostkey" \
  -o AuthorizedKeysFile="$tmp/authorized_keys" -o PermitRootLogin=prohibit-password -o StrictModes=no \
  -o PidFile=none -o "Subsystem=sftp internal-sftp" >"$tmp/sshd.log" 2>&1 &
pids+=($!)
sleep 0.5
mount_dfly() {  # the default mount at mdir, and one with --kernel-cache at mkc
  "$dfly" mount "127.0.0.1:$port2" "$tmp/mdir" --secret-file "$tmp/secret" --cache 1G \
    --control "$tmp/mdir.sock" >"$tmp/mdir.log" 2>&1 &
  pids+=($!)
  "$dfly" mount "127.0.0.1:$port2" "$tmp/mkc" --secret-file "$tmp/secret" --cache 1G \
    --kernel-cache --control "$tmp/mkc.sock" >"$tmp/mkc.log" 2>&1 &
  pids+=($!)
  for m in mdir mkc; do
    for _ in $(seq 100); do mountpoint -q "$tmp/$m" && break; sleep 0.1; done
  done
}
mount_sshfs() {
  sshfs -p "$sport" -o IdentityFile="$tmp/id",StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null \
    root@127.0.0.1:"$tmp/export" "$tmp/msshfs" || return 1
}
remount() {
  fusermount3 -u "$tmp/mdir" 2>/dev/null; fusermount3 -u "$tmp/mkc" 2>/dev/null
  fusermount3 -u "$tmp/msshfs" 2>/dev/null
  sleep 0.3
  sync; echo 3 >/proc/sys/vm/drop_caches
  mount_dfly
  mount_sshfs
}
mount_dfly
mount_sshfs || { echo "cluster_bench: sshfs would not mount: $(tail -3 "$tmp/sshd.log")" >&2; exit 0; }
fio_bw() {  # dir rw bs -> KiB/s
  (cd "$1" && fio --name=b --filename="$4" --rw="$2" --bs="$3" --size=256m --ioengine=psync \
    --runtime=5 --time_based=$5 --end_fsync=1 --output-format=json 2>/dev/null) |
    python3 -c 'import json,sys;j=json.load(sys.stdin)["jobs"][0];print(j["read"]["bw"]+j["write"]["bw"])'
}
w_dfly=$(fio_bw "$tmp/mdir" write 1m seqd 0)
w_ssh=$(fio_bw "$tmp/msshfs" write 1m seqs 0)
remount
r_dfly=$(fio_bw "$tmp/mdir" read 1m seqd 1)
r_ssh=$(fio_bw "$tmp/msshfs" read 1m seqs 1)
remount
r_kc=$(fio_bw "$tmp/mkc" read 1m seqd 1)
remount
rr_dfly=$(fio_bw "$tmp/mdir" randread 4k seqd 1)
rr_ssh=$(fio_bw "$tmp/msshfs" randread 4k seqs 1)
remount
rr_kc=$(fio_bw "$tmp/mkc" randread 4k seqd 1)
line() {  # name dfly base unit
  python3 -c "import sys;n,d,b,u=sys.argv[1:];d=float(d)/1024;b=float(b)/1024
print(f'dfly-bench name={n} value={d:.1f} unit={u} baseline=sshfs baseline_value={b:.1f} ratio={d/b if b else 0:.2f}')" "$@"
}
line cluster_seq_write_vs_sshfs "$w_dfly" "$w_ssh" MiB/s
line cluster_seq_read_vs_sshfs "$r_dfly" "$r_ssh" MiB/s
line cluster_rand_read_vs_sshfs "$rr_dfly" "$rr_ssh" MiB/s
# The same reads on a --kernel-cache mount (opt-in: read-only opens use the page cache).
line cluster_seq_read_kcache_vs_sshfs "$r_kc" "$r_ssh" MiB/s
line cluster_rand_read_kcache_vs_sshfs "$rr_kc" "$rr_ssh" MiB/s
