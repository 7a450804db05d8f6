// A vnode: the VFS's in-memory handle on one inode of one Filesystem. Internal to
// vfs/; callers see only the opaque Vnode through VnodeRef (vfs.h).
//
// Ownership: the Vfs's vnode table maps each referenced inode to its one Vnode.
// refs and dying are guarded by the table's mutex. When refs drops to zero the
// dropper becomes the vnode's destroyer: it writes back the data (unless the inode
// has no names left), then deletes the vnode unless a lookup revived it meanwhile.
// If the revived vnode is still referenced, the last of the new references repeats
// all this later; if the new references are already gone again (they may have
// written), they only mark it `revived` and the destroyer writes back once more.
// A revocation from a coherent filesystem (CacheControl) pins the vnode instead of
// referencing it (so it never becomes the destroyer on a filesystem thread); the
// destroyer waits for the pins to go after taking the vnode out of the table.
// Anonymous vnodes are in no table and simply die with their last reference.
#pragma once

#include "vfs/vm_object.h"

namespace dfly::vfs {

class Vnode {
 public:
  Vnode(Vfs::Impl& owner, Ino ino, uint32_t type, Filesystem& fs, Cache& cache, uint64_t size,
        bool anonymous = false)
      : impl(owner), ino(ino), type(type), anon(anonymous), vm(fs, ino, cache, size, anonymous) {}

  Vfs::Impl& impl;
  const Ino ino;
  const uint32_t type;   // S_IFMT bits; an inode never changes type
  const bool anon;       // anonymous memory (Vfs::anon): in no table, no filesystem inode
  uint64_t refs = 0;     // guarded by Impl::mu_
  bool dying = false;    // guarded by Impl::mu_
  bool revived = false;  // referenced and dropped while dying; guarded by Impl::mu_
  uint32_t pins = 0;     // revocations using it (CacheControl); guarded by Impl::mu_
  VmObject vm;           // every vnode has one, directories included (then unused)
};

}  // namespace dfly::vfs
