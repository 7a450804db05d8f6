#!/usr/bin/env bash
# Real tools on a mounted dfly memfs (`dfly memfs mount`), each checked:
#   cp -a + diff -r of a /usr/share/doc subset; rsync -a round trip; tar create and
#   extract; git init/add/commit/clone/fsck; sqlite3 with 3000 transactions and
#   PRAGMA integrity_check; fio --verify=crc32c with 4 jobs on one file; stress-ng
#   filesystem stressors for 8 s; dfly_fsx (random I/O and mmap vs a model, also
#   under a 1 MiB buffer cache);
#   dfly_posix_check (errnos, O_APPEND/O_TRUNC/O_EXCL/O_DIRECT, unlink of open
#   files, renames, nlink/ctime, permissions as root and as nobody); ENOSPC at
#   --size; clean unmount on SIGINT; -d/--daemon.
# usage: memfs_test.sh DFLY FSX POSIX_CHECK   (needs root and /dev/fuse; 77 = skipped)
# KEEP_TMP=1 keeps the scratch directory (logs of each tool) for a failed run.
set -u
dfly="$(readlink -f "$1")"
fsx="$(readlink -f "$2")"
posix="$(readlink -f "$3")"
. "$(dirname "$(readlink -f "$0")")/fuse_test_lib.sh"
need_root_fuse
tmp=$(mktemp -d /tmp/dfly-memfs-test.XXXXXX)
chmod 755 "$tmp"
mnt="$tmp/mnt"
small="$tmp/small"
daemon_mnt="$tmp/daemon"
tiny="$tmp/tiny"
mkdir -p "$mnt" "$small" "$daemon_mnt" "$tiny"
mounts=("$mnt" "$small" "$daemon_mnt" "$tiny")

"$dfly" memfs mount "$mnt" --size 1G 2>"$tmp/mount.err" &
pid=$!
pids+=("$pid")
wait_mount "$mnt" || fail "mount never appeared"
grep -q " $mnt fuse.dfly-memfs " /proc/mounts || fail "not in /proc/mounts"

src="$tmp/src"  # a fixed subset of /usr/share/doc, copied locally first
mkdir -p "$src"
cp -a /usr/share/doc/[a-h]* "$src"/ 2>/dev/null
[ "$(find "$src" -type f | wc -l)" -gt 50 ] || fail "too little of /usr/share/doc to test with"

step "cp -a and diff -r"
T cp -a "$src" "$mnt/cp" || fail "cp -a"
T diff -r --no-dereference "$src" "$mnt/cp" >"$tmp/diff.err" || fail "diff -r after cp -a"
meta() { (cd "$1" && find . \( -type d -printf '%p %m %T@\n' \) -o -printf '%p %m %s %T@ %l\n' | sort); }
diff <(meta "$src") <(meta "$mnt/cp") >"$tmp/meta.err" || fail "cp -a lost modes, sizes, mtimes or links"

step "rsync -a round trip"
rsync_round_trip "$mnt"

step "tar create and extract"
T tar -C "$src" -cf "$mnt/doc.tar" . || fail "tar create"
mkdir "$mnt/untar"
T tar -C "$mnt/untar" -xf "$mnt/doc.tar" || fail "tar extract"
T diff -r --no-dereference "$src" "$mnt/untar" >"$tmp/diff.err" || fail "diff after tar"
rm -rf "$mnt/untar" "$mnt/doc.tar" "$mnt/rs" || fail "rm -rf"

step "git init/add/commit/clone/fsck"
git_round_trip "$mnt"
rm -rf "$mnt/repo" "$mnt/clone"

step "sqlite3: 3000 transactions, integrity_check"
{
  echo "PRAGMA journal_mode=DELETE; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
  for i in $(seq 3000); do echo "BEGIN; INSERT INTO t VALUES($i, hex(randomblob(64))); COMMIT;"; done
  echo "BEGIN; UPDATE t SET v = v || 'x' WHERE k % 7 = 0; DELETE FROM t WHERE k % 11 = 0; COMMIT;"
} >"$tmp/sql"
T sqlite3 "$mnt/db.sqlite" <"$tmp/sql" >"$tmp/sqlite.err" 2>&1 || fail "sqlite3 transactions"
[ "$(T sqlite3 "$mnt/db.sqlite" 'PRAGMA integrity_check;')" = ok ] || fail "sqlite integrity_check"
[ "$(T sqlite3 "$mnt/db.sqlite" 'SELECT count(*) FROM t;')" = 2728 ] || fail "sqlite row count"

step "fio --verify=crc32c, 4 jobs on one file"
T fio --name=verify --filename="$mnt/fio.dat" --size=8M --offset_increment=8M --numjobs=4 \
  --rw=randwrite --bs=4k --ioengine=psync --verify=crc32c --do_verify=1 --verify_fatal=1 \
  --verify_state_save=0 \
  --group_reporting >"$tmp/fio.err" 2>&1 || fail "fio verify: $(grep -i -m3 'verify\|err' "$tmp/fio.err")"
grep -q "err= 0" "$tmp/fio.err" || fail "fio reported errors"
rm -f "$mnt/fio.dat"

step "stress-ng filesystem stressors, 8 s"
mkdir "$mnt/stress"
T stress-ng --temp-path "$mnt/stress" --timeout 8s --dir 1 --link 1 --symlink 1 --rename 1 \
  --hdd 1 --hdd-bytes 8M --dentry 1 --fallocate 1 --fallocate-bytes 8M --metrics-brief \
  >"$tmp/stress.err" 2>&1 || fail "stress-ng: $(grep -m5 -i 'fail\|error' "$tmp/stress.err")"
rm -rf "$mnt/stress"

step "fsx: random I/O, truncate, punch and mmap vs a model"
T "$fsx" "$mnt/fsx1" --ops 3000 --seed 1 >"$tmp/fsx1.err" 2>&1 &
f1=$!
T "$fsx" "$mnt/fsx2" --ops 3000 --seed 2 >"$tmp/fsx2.err" 2>&1 || fail "fsx seed 2"
wait "$f1" || fail "fsx seed 1"

step "fsx under a 1 MiB cache: ranges evicted, split and merged all the time"
"$dfly" memfs mount "$tiny" --size 64M --cache 1M 2>"$tmp/tiny.err" &
pids+=($!)
wait_mount "$tiny" || fail "tiny-cache mount never appeared"
T "$fsx" "$tiny/fsx3" --ops 3000 --seed 3 --max-size 4194304 >"$tmp/fsx3.err" 2>&1 &
f3=$!
T "$fsx" "$tiny/fsx4" --ops 3000 --seed 4 --max-size 4194304 >"$tmp/fsx4.err" 2>&1 || fail "fsx seed 4 (1M cache)"
wait "$f3" || fail "fsx seed 3 (1M cache)"
fusermount3 -u "$tiny" || fail "fusermount3 -u of the tiny-cache mount"

step "POSIX semantics and errnos"
mkdir "$mnt/posix" && chmod 755 "$mnt/posix"
T "$posix" "$mnt/posix" >"$tmp/posix.err" 2>&1 || fail "posix checks"

step "ENOSPC at --size"
"$dfly" memfs mount "$small" --size 16M 2>"$tmp/small.err" &
pids+=($!)
wait_mount "$small" || fail "small mount never appeared"
T "$posix" --fill "$small" >"$tmp/fill.err" 2>&1 || fail "no ENOSPC at --size 16M"
[ "$(df --output=avail -k "$small" | tail -1)" -lt 1024 ] || fail "statfs does not show it full"
rm "$small/fill" || fail "rm of the full file"
echo again >"$small/after" || fail "space not returned after rm"
fusermount3 -u "$small" || fail "fusermount3 -u"

step "clean unmount on SIGINT"
kill -INT "$pid"
timeout 20 bash -c "while kill -0 $pid 2>/dev/null; do sleep 0.05; done" || fail "mount process still running"
wait "$pid"
rc=$?
[ "$rc" = 0 ] || fail "dfly memfs mount exited $rc after SIGINT"
mountpoint -q "$mnt" && fail "still mounted after SIGINT"

step "--daemon"
T "$dfly" memfs mount -d "$daemon_mnt" 2>"$tmp/daemon.err" || fail "mount -d"
mountpoint -q "$daemon_mnt" || fail "daemon mount missing"
echo hi >"$daemon_mnt/x" && [ "$(cat "$daemon_mnt/x")" = hi ] || fail "daemon mount unusable"
fusermount3 -u "$daemon_mnt" || fail "unmount of the daemon mount"

step "usage errors"
"$dfly" memfs mount "$tmp/missing" 2>/dev/null && fail "mount of a missing directory succeeded"
"$dfly" memfs mount "$mnt" --size 12Q 2>/dev/null
[ $? = 2 ] || fail "bad --size must be a usage error"
echo "all memfs tests passed"
