// Between the VFS's types and their wire forms (messages.h): both ends of the
// cluster protocol speak vfs::Filesystem, so both convert the same way.
#pragma once

#include <time.h>

#include "cluster/proto/messages.h"
#include "vfs/filesystem.h"

namespace dfly::cluster::proto {

inline Time to_wire(const timespec& t) {
  return {int64_t(t.tv_sec), uint32_t(t.tv_nsec)};
}
inline timespec from_wire(const Time& t) {
  timespec s;
  s.tv_sec = time_t(t.sec);
  s.tv_nsec = long(t.nsec < 1000000000u ? t.nsec : 0);  // decode rejects the rest anyway
  return s;
}

inline Attr to_wire(const vfs::Attr& a) {
  Attr w;
  w.ino = a.ino, w.mode = a.mode, w.nlink = a.nlink, w.uid = a.uid, w.gid = a.gid;
  w.rdev = a.rdev, w.size = a.size, w.blocks = a.blocks;
  w.atime = to_wire(a.atime), w.mtime = to_wire(a.mtime), w.ctime = to_wire(a.ctime);
  return w;
}
inline vfs::Attr from_wire(const Attr& w) {
  vfs::Attr a;
  a.ino = w.ino, a.mode = w.mode, a.nlink = w.nlink, a.uid = w.uid, a.gid = w.gid;
  a.rdev = w.rdev, a.size = w.size, a.blocks = w.blocks;
  a.atime = from_wire(w.atime), a.mtime = from_wire(w.mtime), a.ctime = from_wire(w.ctime);
  return a;
}

inline Cred to_wire(const vfs::Cred& c) {
  return {c.uid, c.gid};
}
inline vfs::Cred from_wire(const Cred& c) {
  return {c.uid, c.gid};
}

}  // namespace dfly::cluster::proto
