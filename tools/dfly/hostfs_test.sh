#!/usr/bin/env bash
# Real tools on a host directory served by `dfly hostfs mount DIR MOUNTPOINT`, each
# checked, and each checked against the host directory itself (what the tools wrote
# through the mount must be what DIR holds):
#   cp -a + diff -r of a /usr/share/doc subset (on the mount and in DIR); rsync -a
#   round trip; git init/add/commit/clone/fsck (and git fsck on DIR directly); sqlite3
#   with 500 transactions and PRAGMA integrity_check (also on DIR's file); files made
#   on the host appear on the mount; close-to-open both ways (what a closed file
#   holds, DIR's file holds at once; an open on the mount sees what the host wrote
#   before it); symlinks to outside DIR stay links; dfly_fsx and
#   dfly_posix_check on the mount; clean unmount on SIGINT; -d/--daemon; usage errors.
# usage: hostfs_test.sh DFLY FSX POSIX_CHECK   (needs root and /dev/fuse; 77 = skipped)
# KEEP_TMP=1 keeps the scratch directory (logs of each tool) for a failed run.
set -u
dfly="$(readlink -f "$1")"
fsx="$(readlink -f "$2")"
posix="$(readlink -f "$3")"
. "$(dirname "$(readlink -f "$0")")/fuse_test_lib.sh"
need_root_fuse
tmp=$(mktemp -d /tmp/dfly-hostfs-test.XXXXXX)
chmod 755 "$tmp"
exp="$tmp/export"
mnt="$tmp/mnt"
daemon_mnt="$tmp/daemon"
mkdir -p "$exp" "$mnt" "$daemon_mnt"
mounts=("$mnt" "$daemon_mnt")

echo "made on the host" >"$exp/hostfile"
ln -s "$tmp" "$exp/escape"
"$dfly" hostfs mount "$exp" "$mnt" 2>"$tmp/mount.err" &
pid=$!
pids+=("$pid")
wait_mount "$mnt" || fail "mount never appeared"
grep -q " $mnt fuse.dfly-hostfs " /proc/mounts || fail "not in /proc/mounts"

step "host files and confinement"
[ "$(cat "$mnt/hostfile")" = "made on the host" ] || fail "host file not seen"
[ "$(readlink "$mnt/escape")" = "$tmp" ] || fail "symlink target not verbatim"
[ -L "$mnt/escape" ] || fail "symlink not a symlink"
# Through the mount the link resolves in the caller's namespace (the kernel follows
# it, as for any symlink); the server itself never followed it: lstat shows a link.
echo "made later on the host" >"$exp/later"
[ "$(cat "$mnt/later")" = "made later on the host" ] || fail "later host file not seen"

step "close-to-open: a closed file's data is in the host file at once"
# The write-back interval is seconds; close must not wait for it.
head -c 3000000 /dev/urandom >"$tmp/rand"
for n in 1 4097 65536 200000 3000000; do
  head -c "$n" "$tmp/rand" >"$mnt/c2o.$n" || fail "write c2o.$n"
  cmp "$tmp/rand" "$exp/c2o.$n" -n "$n" 2>/dev/null || fail "host file c2o.$n lacks data after close"
  [ "$(stat -c %s "$exp/c2o.$n")" = "$n" ] || fail "host file c2o.$n has the wrong size after close"
done
printf 'overwritten' | dd of="$mnt/c2o.200000" bs=1 seek=70000 conv=notrunc status=none
[ "$(dd if="$exp/c2o.200000" bs=1 skip=70000 count=11 status=none)" = overwritten ] ||
  fail "an overwrite is not in the host file after close"
rm -f "$mnt"/c2o.* "$tmp/rand"

step "close-to-open: the host's changes are seen at the next open on the mount"
echo "first version" >"$exp/h2m"
[ "$(cat "$mnt/h2m")" = "first version" ] || fail "h2m: first version"
for v in "second, longer version" "third version, same len" "4th"; do
  echo "$v" >"$exp/h2m"
  [ "$(cat "$mnt/h2m")" = "$v" ] || fail "h2m: the mount shows '$(cat "$mnt/h2m")', the host wrote '$v'"
done
rm -f "$exp/h2m"

src="$tmp/src"  # a fixed subset of /usr/share/doc, copied locally first
mkdir -p "$src"
cp -a /usr/share/doc/[a-h]* "$src"/ 2>/dev/null
[ "$(find "$src" -type f | wc -l)" -gt 50 ] || fail "too little of /usr/share/doc to test with"

step "cp -a and diff -r (mount and host directory)"
T cp -a "$src" "$mnt/cp" || fail "cp -a"
T diff -r --no-dereference "$src" "$mnt/cp" >"$tmp/diff.err" || fail "diff -r after cp -a"
meta() { (cd "$1" && find . \( -type d -printf '%p %m %T@\n' \) -o -printf '%p %m %s %T@ %l\n' | sort); }
diff <(meta "$src") <(meta "$mnt/cp") >"$tmp/meta.err" || fail "cp -a lost modes, sizes, mtimes or links"
sync "$mnt/cp" 2>/dev/null
T diff -r --no-dereference "$src" "$exp/cp" >"$tmp/diff.err" || fail "host directory differs after cp -a"
diff <(meta "$src") <(meta "$exp/cp") >"$tmp/meta.err" || fail "host directory lost metadata"

step "rsync -a round trip"
rsync_round_trip "$mnt"
T rsync -a --checksum --dry-run --itemize-changes "$src/" "$mnt/rs/" >"$tmp/rsync.out" || fail "rsync check"
[ ! -s "$tmp/rsync.out" ] || fail "rsync --checksum finds differences: $(head -3 "$tmp/rsync.out")"
rm -rf "$mnt/rs" || fail "rm -rf"
[ ! -e "$exp/rs" ] || fail "rm -rf on the mount left the host directory"

step "git init/add/commit/clone/fsck"
git_round_trip "$mnt"
# The host directory holds the same repository at once (close-to-open).
(
  set -e
  G -c safe.directory='*' -C "$exp/repo" fsck --full --strict 2>&1
  [ "$(G -c safe.directory='*' -C "$exp/repo" log --oneline | wc -l)" = 2 ]
) >"$tmp/githost.err" 2>&1 || fail "git on the host directory: $(tail -5 "$tmp/githost.err")"
rm -rf "$mnt/repo" "$mnt/clone"

step "sqlite3: 500 transactions, integrity_check"
{
  echo "PRAGMA journal_mode=DELETE; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
  for i in $(seq 500); do echo "BEGIN; INSERT INTO t VALUES($i, hex(randomblob(64))); COMMIT;"; done
  echo "BEGIN; UPDATE t SET v = v || 'x' WHERE k % 7 = 0; DELETE FROM t WHERE k % 11 = 0; COMMIT;"
} >"$tmp/sql"
T sqlite3 "$mnt/db.sqlite" <"$tmp/sql" >"$tmp/sqlite.err" 2>&1 || fail "sqlite3 transactions"
[ "$(T sqlite3 "$mnt/db.sqlite" 'PRAGMA integrity_check;')" = ok ] || fail "sqlite integrity_check"
[ "$(T sqlite3 "$mnt/db.sqlite" 'SELECT count(*) FROM t;')" = 455 ] || fail "sqlite row count"
# sqlite fsyncs each commit: the host file is complete without any further sync.
[ "$(T sqlite3 "$exp/db.sqlite" 'PRAGMA integrity_check;')" = ok ] || fail "host db integrity_check"
[ "$(T sqlite3 "$exp/db.sqlite" 'SELECT count(*) FROM t;')" = 455 ] || fail "host db row count"

step "fsx: random I/O, truncate, punch and mmap vs a model"
T "$fsx" "$mnt/fsx1" --ops 3000 --seed 1 >"$tmp/fsx1.err" 2>&1 &
f1=$!
T "$fsx" "$mnt/fsx2" --ops 3000 --seed 2 >"$tmp/fsx2.err" 2>&1 || fail "fsx seed 2"
wait "$f1" || fail "fsx seed 1"

step "POSIX semantics and errnos"
mkdir "$mnt/posix" && chmod 755 "$mnt/posix"
T "$posix" "$mnt/posix" >"$tmp/posix.err" 2>&1 || fail "posix checks"

step "clean unmount on SIGINT"
kill -INT "$pid"
timeout 20 bash -c "while kill -0 $pid 2>/dev/null; do sleep 0.05; done" || fail "mount process still running"
wait "$pid"
rc=$?
[ "$rc" = 0 ] || fail "dfly hostfs mount exited $rc after SIGINT"
mountpoint -q "$mnt" && fail "still mounted after SIGINT"
[ "$(cat "$exp/hostfile")" = "made on the host" ] || fail "host directory damaged"

step "--daemon, over the exported directory itself"
T "$dfly" hostfs mount -d "$exp" "$exp" 2>"$tmp/daemon.err" || fail "mount -d"
mountpoint -q "$exp" || fail "daemon mount missing"
[ "$(cat "$exp/hostfile")" = "made on the host" ] || fail "mount over the export does not show it"
echo hi >"$exp/x" && [ "$(cat "$exp/x")" = hi ] || fail "daemon mount unusable"
fusermount3 -u "$exp" || fail "unmount of the daemon mount"
[ "$(cat "$exp/x")" = hi ] || fail "file written through the mount missing underneath"

step "usage errors"
"$dfly" hostfs mount "$tmp/missing" "$mnt" 2>"$tmp/usage.err" && fail "mount of a missing directory succeeded"
grep -q "^dfly: hostfs mount: " "$tmp/usage.err" || fail "error not in the dfly: format"
"$dfly" hostfs mount "$exp" "$mnt" --cache 12Q 2>/dev/null
[ $? = 2 ] || fail "bad --cache must be a usage error"
echo "all hostfs tests passed"
