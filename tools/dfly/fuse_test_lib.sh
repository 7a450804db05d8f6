# Helpers shared by the tests that mount a dfly filesystem and run real tools on it
# (memfs_test.sh, hostfs_test.sh). Source it after setting $tmp (the test's scratch
# directory); put every mount point in `mounts` and every background pid in `pids`:
# the EXIT trap unmounts and stops them, and removes $tmp unless KEEP_TMP is set.

# Exit 77 (skipped) unless this process can mount FUSE filesystems.
need_root_fuse() {
  if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
    echo "skipped: needs root, /dev/fuse and fusermount3"
    exit 77
  fi
}

mounts=()
pids=()
cleanup() {
  cd /
  for m in "${mounts[@]}"; do
    mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${tmp:-}" ] || return 0
  [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

# Print the reason and the tail of every *.err log the test kept, then fail.
fail() {
  echo "FAIL: $*"
  cat "$tmp"/*.err 2>/dev/null | tail -20
  exit 1
}
step() { echo "== $*"; }
# Wait (at most 5 s) until $1 is a mount point.
wait_mount() {
  for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.05; done
  return 1
}
T() { timeout 60 "$@"; }  # every tool bounded

# git, bounded, as a fixed user with a fixed default branch.
G() { T git -c user.name=dfly -c user.email=dfly@localhost -c init.defaultBranch=main "$@"; }

# rsync -a of $src to $1/rs and back to $tmp/back: the copy back must equal $src.
rsync_round_trip() {
  T rsync -a "$src/" "$1/rs/" || fail "rsync to the mount"
  T rsync -a "$1/rs/" "$tmp/back/" || fail "rsync from the mount"
  T diff -r --no-dereference "$src" "$tmp/back" >"$tmp/diff.err" || fail "diff after rsync round trip"
  rm -rf "$tmp/back"
}

# In $1: a repository of $src's files with two commits, cloned, the clone fsck'ed
# (--strict), its log counted and its tree diffed against the repository's.
git_round_trip() {
  (
    set -e
    cd "$1"
    G init -q repo
    cp -a "$src"/* repo/
    G -C repo add -A
    G -C repo commit -q -m "docs"
    echo change >>repo/new-file
    G -C repo add new-file
    G -C repo commit -q -m "second"
    G clone -q repo clone
    G -C clone fsck --full --strict 2>&1
    [ "$(G -C clone log --oneline | wc -l)" = 2 ]
    diff -r --no-dereference --exclude=.git repo clone
  ) >"$tmp/git.err" 2>&1 || fail "git: $(tail -5 "$tmp/git.err")"
}
