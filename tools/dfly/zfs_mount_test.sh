#!/bin/bash
# zfs_mount_test.sh DFLY CASE: `dfly zfs mount` of the pools make_pools.sh builds with
# zfs-fuse, read by ordinary tools through the kernel's FUSE mount.
# Cases:
#   tree     every dataset, the snapshot and each redundant layout: the metadata find(1)
#            sees (type, mode, links, owner, size, mtime, symlink target) equals
#            zfs-fuse's own view recorded by the fixture; `diff -r` against the source
#            tree; regular files' size, links, mode and mtime against the source; xattrs via getfattr.
#   damage   a mirror side / raidz children overwritten or missing: every byte still
#            right through the mount, healing reported at unmount; a block beyond
#            redundancy: EIO for that file only.
#   rofs     every kind of write fails with EROFS; missing dataset/snapshot/pool
#            refused before mounting; SIGTERM, SIGINT and --daemon + umount end cleanly.
# Exit 77 without root, /dev/fuse or (when no fixture is cached) zfs-fuse.
set -euo pipefail
DFLY=$(realpath "$1")
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root (FUSE mounts): skipping"; exit 77; }
[ -c /dev/fuse ] || { echo "no /dev/fuse: skipping"; exit 77; }
command -v fusermount3 >/dev/null || { echo "no fusermount3: skipping"; exit 77; }
# shellcheck source=SCRIPTDIR/../../src/zfs/fixtures/fixture_lib.sh
. "$HERE/../../src/zfs/fixtures/fixture_lib.sh"
zfs_fixture "$DFLY"

T=$(mktemp -d /tmp/dfly-zfs-mount-test.XXXXXX)
pids=()
cleanup() {
  set +e
  for m in "$T"/mnt*; do mountpoint -q "$m" 2>/dev/null && { fusermount3 -u -z "$m" || umount -l "$m"; }; done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# mount_ds DS IMG: mounts DS in the foreground (background job) on a fresh $T/mnt.N;
# sets MNT and MPID. Waits (bounded) until the mount is live.
n=0
mount_ds() {
  n=$((n + 1))
  MNT=$T/mnt.$n
  mkdir -p "$MNT"
  "$DFLY" zfs mount -d "$2" "$1" "$MNT" 2>"$T/mount.$n.err" &
  MPID=$!
  pids+=("$MPID")
  for _ in $(seq 1 100); do
    mountpoint -q "$MNT" && return 0
    kill -0 "$MPID" 2>/dev/null || break
    sleep 0.1
  done
  bad "$1: not mounted: $(cat "$T/mount.$n.err")"
  return 1
}
# umount_ds [SIGNAL]: ends the current mount with SIGTERM (or SIGNAL); the process must
# exit 0 and leave nothing mounted.
umount_ds() {
  local sig=${1:-TERM} rc=0
  kill -"$sig" "$MPID"
  for _ in $(seq 1 100); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
  wait "$MPID" || rc=$?
  # Reaped: forget the pid (it may be reused).
  local live=() p
  for p in "${pids[@]}"; do [ "$p" = "$MPID" ] || live+=("$p"); done
  pids=("${live[@]}")
  [ "$rc" = 0 ] || bad "mount of $MNT exited $rc after SIG$sig: $(cat "$T/mount.$n.err")"
  if mountpoint -q "$MNT"; then bad "$MNT still mounted after SIG$sig"; fusermount3 -u -z "$MNT"; fi
}
scratch() {  # scratch POOL: a private copy of a pool's images
  rm -rf "${T:?}/${1:?}"
  cp -r "$F/img/$1" "$T/$1"
  echo "$T/$1"
}
# The fixture's record() format (make_pools.sh), run on our mount.
listing() {
  (cd "$1" && find . -mindepth 1 -xdev \( -type l -printf '%y %m %n %U %G %s %T@ %P -> %l\n' \) \
      -o -printf '%y %m %n %U %G %s %T@ %P\n') |
    sed -E 's/^(([^ ]+ ){6}[0-9]+)\.[0-9]+/\1/' |
    grep -Ev '^d [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ (gzip|lzjb|zle|off|nested)$' |
    LC_ALL=C sort
}
# Child datasets show as empty directories in their parent's mount.
EXCL=(-x gzip -x lzjb -x zle -x off -x nested)
# same_tree DS IMG NAME: metadata, bytes and nanosecond mtimes against the fixture.
same_tree() {
  local ds=$1 img=$2 name=$3
  mount_ds "$ds" "$img" || return 0
  listing "$MNT" >"$T/list" || bad "$ds: find failed"
  diff -u "$F/list/$name" "$T/list" >"$T/diff" || bad "$ds: metadata differs from zfs-fuse's view: $(head -20 "$T/diff")"
  diff -r --no-dereference "${EXCL[@]}" "$F/src/$name" "$MNT" >"$T/diff" 2>&1 ||
    bad "$ds: content differs from the source tree: $(head -10 "$T/diff")"
  # zfs-fuse keeps whole seconds of the times it is given (the source has nanoseconds).
  (cd "$F/src/$name" && find . -type f -printf '%P %s %n %m %Ts\n' | LC_ALL=C sort) >"$T/want.t"
  (cd "$MNT" && find . -type f -printf '%P %s %n %m %Ts\n' | LC_ALL=C sort) >"$T/got.t"
  diff -u "$T/want.t" "$T/got.t" >"$T/diff" || bad "$ds: files' size, links, mode or mtime differ from the source: $(head -10 "$T/diff")"
  umount_ds
}

case $CASE in
tree)
  for ds in p1 p1@before p1/lzjb p1/gzip p1/zle p1/off p1/lzjb/nested; do
    same_tree "$ds" "$F/img/p1" "${ds//\//_}"
  done
  for p in p2 p3 p4 p5; do same_tree "$p" "$F/img/$p" "$p"; done
  # Extended attributes, as getfattr sees them (set on the pool before the snapshot;
  # "one" was rewritten afterwards, "dir" kept its own).
  mount_ds p1@before "$F/img/p1"
  [ "$(getfattr --absolute-names --only-values -n user.color "$MNT/one")" = blue ] || bad "xattr in snapshot"
  getfattr --absolute-names -d -m - "$MNT/one" | grep -qx 'user.color="blue"' || bad "listxattr in snapshot"
  { getfattr --absolute-names -n user.absent "$MNT/one" 2>&1 || true; } | grep -q "No such attribute" || bad "absent xattr"
  # Every file's xattrs through the mount equal `dfly zfs xattr` (the unmounted reader).
  (cd "$MNT" && find . -mindepth 1 -path ./fatdir -prune -o -printf '%P\n') | while read -r p; do
    got=$(getfattr -h -d -m - --absolute-names "$MNT/$p" 2>/dev/null | grep -v '^#' | grep -v '^$' || true)
    want=$("$DFLY" zfs xattr -d "$F/img/p1" p1@before "$p")
    [ "$got" = "$want" ] || echo "xattrs of $p: mount '$got', dfly zfs xattr '$want'"
  done >"$T/xdiff"
  [ -s "$T/xdiff" ] && bad "xattrs: $(head -5 "$T/xdiff")"
  umount_ds
  mount_ds p1 "$F/img/p1"
  getfattr --absolute-names -n user.empty "$MNT/dir" | grep -qx 'user.empty=""' || bad "empty xattr on a directory"
  [ -z "$(getfattr --absolute-names -d -m - "$MNT/one")" ] || bad "xattrs of the rewritten file"
  [ "$(find "$MNT/fatdir" -mindepth 1 -maxdepth 1 | wc -l)" = 3001 ] || bad "fat directory entry count"
  [ "$(stat -c %i "$MNT/one")" = "$(stat -c %i "$MNT/fatdir/also-one")" ] || bad "hard link inode numbers"
  cmp -s "$MNT/sparse" "$F/src/p1/sparse" || bad "sparse file"
  df -P "$MNT" | awk 'NR == 2 { exit !($2 > 0 && $4 > 0) }' || bad "statfs: $(df -P "$MNT")"
  umount_ds
  ;;
damage)
  # Self-healing through the mount: one mirror side garbage.
  d=$(scratch p2)
  dd if=/dev/urandom of="$d/d0.img" bs=1M seek=4 count=56 conv=notrunc status=none
  mount_ds p2 "$d"
  diff -r --no-dereference "$F/src/p2" "$MNT" >"$T/diff" 2>&1 || bad "damaged mirror: $(head -5 "$T/diff")"
  umount_ds
  grep -q "d0.img: 0 read and [1-9][0-9]* checksum errors" "$T/mount.$n.err" ||
    bad "mirror healing not reported at unmount: $(cat "$T/mount.$n.err")"
  # raidz1 with one child garbage, raidz2 with two, raidz3 with one missing and one bad.
  d=$(scratch p3)
  dd if=/dev/urandom of="$d/d1.img" bs=1M seek=4 count=56 conv=notrunc status=none
  mount_ds p3 "$d"
  diff -r --no-dereference "$F/src/p3" "$MNT" >"$T/diff" 2>&1 || bad "damaged raidz1: $(head -5 "$T/diff")"
  umount_ds
  d=$(scratch p4)
  dd if=/dev/urandom of="$d/d0.img" bs=1M seek=4 count=56 conv=notrunc status=none
  dd if=/dev/urandom of="$d/d3.img" bs=1M seek=4 count=56 conv=notrunc status=none
  mount_ds p4 "$d"
  diff -r --no-dereference "$F/src/p4" "$MNT" >"$T/diff" 2>&1 || bad "damaged raidz2: $(head -5 "$T/diff")"
  umount_ds
  d=$(scratch p5)
  rm "$d/d4.img"
  dd if=/dev/urandom of="$d/d1.img" bs=1M seek=4 count=56 conv=notrunc status=none
  mount_ds p5 "$d"
  diff -r --no-dereference "$F/src/p5" "$MNT" >"$T/diff" 2>&1 || bad "damaged raidz3: $(head -5 "$T/diff")"
  umount_ds
  # Beyond redundancy: the only copy of one file's first block on a single disk.
  d=$(scratch p1)
  off=$(grep -obUa -m1 "dfly-zfs-victim-block" "$d/d0.img" | head -1 | cut -d: -f1)
  [ -n "$off" ] || bad "victim block not found"
  dd if=/dev/urandom of="$d/d0.img" bs=512 seek=$((off / 512)) count=8 conv=notrunc status=none
  mount_ds p1/off "$d"
  if cat "$MNT/victim" >/dev/null 2>"$T/err"; then bad "damaged file read without error"; fi
  grep -q "Input/output error" "$T/err" || bad "EIO through the mount: $(cat "$T/err")"
  [ "$(stat -c %s "$MNT/victim")" = 200000 ] || bad "stat of the damaged file"
  diff -r --no-dereference -x victim "$F/src/p1_off" "$MNT" >"$T/diff" 2>&1 || bad "other files after EIO: $(head -5 "$T/diff")"
  umount_ds
  grep -q "checksum mismatch" "$T/mount.$n.err" || bad "EIO not logged by the mount: $(cat "$T/mount.$n.err")"
  ;;
rofs)
  mount_ds p1 "$F/img/p1"
  expect_rofs() {  # expect_rofs CMD...: fails, saying "Read-only file system"
    if "$@" >/dev/null 2>"$T/err"; then bad "succeeded on a read-only mount: $*"; return; fi
    grep -q "Read-only file system" "$T/err" || bad "'$*': want EROFS, got: $(cat "$T/err")"
  }
  expect_rofs touch "$MNT/new"
  expect_rofs sh -c "echo x >>'$MNT/one'"
  expect_rofs sh -c "echo x >'$MNT/one'"
  expect_rofs dd if=/dev/zero of="$MNT/big" bs=1 count=1 conv=notrunc status=none
  expect_rofs mkdir "$MNT/newdir2"
  expect_rofs rm "$MNT/one"
  expect_rofs rmdir "$MNT/newdir"
  expect_rofs mv "$MNT/one" "$MNT/two"
  expect_rofs ln -s x "$MNT/sym"
  expect_rofs ln "$MNT/one" "$MNT/hard"
  expect_rofs chmod 777 "$MNT/one"
  expect_rofs chown 1:1 "$MNT/one"
  expect_rofs touch -d 2000-01-01 "$MNT/one"
  expect_rofs truncate -s 0 "$MNT/one"
  expect_rofs setfattr -n user.x -v y "$MNT/one"
  expect_rofs setfattr -x user.empty "$MNT/dir"
  expect_rofs fallocate -l 4096 "$MNT/one"
  cmp -s "$MNT/one" "$F/src/p1/one" || bad "file changed by refused writes"
  umount_ds INT
  # Nothing is mounted for a name that does not exist.
  mkdir -p "$T/mnt.x"
  for spec in "p1@absent:no snapshot 'p1@absent'" "p1/absent:no dataset 'p1/absent'" "nopool:no pool 'nopool'"; do
    ds=${spec%%:*} want=${spec#*:}
    if timeout 20 "$DFLY" zfs mount -d "$F/img/p1" "$ds" "$T/mnt.x" 2>"$T/err"; then bad "mounted $ds"; fi
    grep -q "^dfly: zfs mount $ds: .*$want" "$T/err" || bad "mount $ds: want /$want/, got: $(cat "$T/err")"
    mountpoint -q "$T/mnt.x" && bad "$ds: something got mounted"
  done
  # --daemon: returns once mounted; a plain umount ends the server.
  mkdir -p "$T/mnt.d"
  "$DFLY" zfs mount --daemon -d "$F/img/p1" p1 "$T/mnt.d" || bad "--daemon mount failed"
  if mountpoint -q "$T/mnt.d"; then
    dpid=
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/exe" 2>/dev/null)" = "$DFLY" ] || continue
      tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T/mnt.d" && dpid=${p#/proc/}
    done
    [ -n "$dpid" ] && pids+=("$dpid")
    cmp -s "$T/mnt.d/big" "$F/src/p1/big" || bad "--daemon mount content"
    umount "$T/mnt.d"
    if [ -n "$dpid" ]; then
      for _ in $(seq 1 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$dpid" 2>/dev/null; then bad "daemon still running after umount"; fi
    else
      bad "--daemon: no dfly process serving $T/mnt.d"
    fi
  else
    bad "--daemon: not mounted"
  fi
  ;;
*)
  echo "unknown case $CASE"
  exit 2
  ;;
esac
if [ "$fails" -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "ok"
