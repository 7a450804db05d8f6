#!/bin/bash
# zfs_mount_bench [DFLY]: reading a ZFS pool through `dfly zfs mount` against the same
# pool mounted by zfs-fuse (Debian's userland ZFS, its default /etc/zfs/zfsrc), cold:
#   zfs_seq_read   one 512 MiB file of random data, read sequentially (MiB/s)
#   zfs_tree_read  a tree of 20,000 files (100 directories, 0.5-7.5 KiB each): find,
#                  then read every file (seconds, lower is better)
# The pool (one 1.2 GB sparse file vdev, compression off) is made by zfs-fuse in a
# temporary directory and exported. Each side then runs cold, three times, alternating:
# zfs-fuse imports the pool afresh (its ARC starts empty) and dfly mounts it afresh
# (its buffer cache starts empty), and the kernel's page cache is dropped before each
# run (it holds both the FUSE pages and the image file). Median of three.
# Installed as build/<preset>/bench/zfs_mount_bench; prints dfly-bench lines
# (bench/report.h's format). Needs root, /dev/fuse and zfs-fuse; otherwise says why
# on stderr and prints nothing. Everything is removed on exit, whatever happens.
set -euo pipefail
DFLY=$(realpath "${1:-$(dirname "$0")/../dfly}")
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v zfs-fuse >/dev/null; then
  echo "zfs_mount_bench: needs root, /dev/fuse and zfs-fuse: skipped" >&2
  exit 0
fi
RUNS=${ZFS_BENCH_RUNS:-3}  # ZFS_BENCH_IMG/ZFS_BENCH_POOL: reuse a pool (development)
T=$(mktemp -d /tmp/dfly-zfs-bench.XXXXXX)
pidfile=$T/zfs-fuse.pid
pool=dflybench$$
dpid=
cleanup() {
  set +e
  if [ -n "$dpid" ]; then
    kill -TERM "$dpid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
  fi
  mountpoint -q "$T/dfly" && fusermount3 -u -z "$T/dfly"
  zfs_fuse_stop "$pidfile" "$pool"
  rm -rf "$T"
}
# shellcheck source=/dev/null
. "@DFLY_ZFS_FUSE_LIB@"
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$T/img" "$T/alt" "$T/dfly"
zfs_fuse_start "$pidfile"
if [ -n "${ZFS_BENCH_IMG:-}" ]; then
  # Development: an exported pool made by an earlier run (ZFS_BENCH_POOL names it).
  rmdir "$T/img"
  ln -s "$(realpath "$ZFS_BENCH_IMG")" "$T/img"
  pool=${ZFS_BENCH_POOL:?ZFS_BENCH_POOL names the pool in ZFS_BENCH_IMG}
  zpool import -d "$T/img" -R "$T/alt" "$pool"
  zmnt=$(zfs get -H -o value mountpoint "$pool")
else
  truncate -s 1200M "$T/img/d0.img"
  zpool create -o cachefile=none -R "$T/alt" "$pool" "$T/img/d0.img"
  zmnt=$(zfs get -H -o value mountpoint "$pool")
  echo "zfs_mount_bench: writing the data through zfs-fuse" >&2
  head -c $((512 << 20)) /dev/urandom >"$zmnt/big"
  for d in $(seq -w 0 99); do
    mkdir "$zmnt/tree$d"
    # 200 files of one size per directory: 512 B .. 7.5 KiB by directory.
    head -c $((200 * 512 * (1 + 10#$d % 15))) /dev/urandom |
      split -b $((512 * (1 + 10#$d % 15))) -a 3 - "$zmnt/tree$d/f"
  done
fi
sha_big=$(sha256sum "$zmnt/big" | cut -d' ' -f1)
nfiles=$(find "$zmnt" -type f -path '*/tree*' | wc -l)
[ "$nfiles" = 20000 ] || { echo "zfs_mount_bench: made $nfiles files, not 20000" >&2; exit 1; }
zfs_export "$pool"

now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# seq MNT: MiB/s reading big; tree MNT: seconds for find + reading every file.
seq_read() {
  local t0 t1
  drop
  t0=$(now)
  timeout 300 cat "$1/big" >/dev/null
  t1=$(now)
  echo "512 / ($t1 - $t0)" | bc -l
}
tree_read() {
  local t0 t1
  drop
  t0=$(now)
  (cd "$1" && timeout 600 find . -path './tree*' -type f -print0 | xargs -0 cat >/dev/null)
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
zfs_up() {
  zpool import -d "$T/img" -R "$T/alt" "$pool"
  zmnt=$(zfs get -H -o value mountpoint "$pool")
}
zfs_down() { zfs_export "$pool"; }
dfly_up() {
  "$DFLY" zfs mount -d "$T/img" "$pool" "$T/dfly" &
  dpid=$!
  for _ in $(seq 1 100); do mountpoint -q "$T/dfly" && return 0; sleep 0.1; done
  echo "zfs_mount_bench: dfly did not mount" >&2
  return 1
}
dfly_down() {
  kill -TERM "$dpid"
  wait "$dpid"
  dpid=
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: >"$T/seq.zfs"; : >"$T/seq.dfly"; : >"$T/tree.zfs"; : >"$T/tree.dfly"
for r in $(seq 1 "$RUNS"); do
  echo "zfs_mount_bench: run $r of $RUNS" >&2
  zfs_up
  seq_read "$zmnt" >>"$T/seq.zfs"
  zfs_down
  zfs_up
  tree_read "$zmnt" >>"$T/tree.zfs"
  zfs_down
  dfly_up
  [ "$r" = 1 ] && { [ "$(sha256sum <"$T/dfly/big" | cut -d' ' -f1)" = "$sha_big" ] || {
    echo "zfs_mount_bench: dfly read wrong data" >&2
    exit 1
  }; }
  dfly_down
  dfly_up
  seq_read "$T/dfly" >>"$T/seq.dfly"
  dfly_down
  dfly_up
  tree_read "$T/dfly" >>"$T/tree.dfly"
  dfly_down
done
report() {  # report NAME UNIT higher|lower DFLY ZFS
  awk -v n="$1" -v u="$2" -v b="$3" -v d="$4" -v z="$5" 'BEGIN {
    r = b == "higher" ? (z > 0 ? d / z : 0) : (d > 0 ? z / d : 0)
    printf "dfly-bench name=%s value=%.4g unit=%s baseline=zfs-fuse baseline_value=%.4g ratio=%.3f\n", n, d, u, z, r
  }'
}
report zfs_seq_read MiB/s higher "$(median <"$T/seq.dfly")" "$(median <"$T/seq.zfs")"
report zfs_tree_read s lower "$(median <"$T/tree.dfly")" "$(median <"$T/tree.zfs")"
