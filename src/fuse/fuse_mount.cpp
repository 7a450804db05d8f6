// The FUSE bridge. Theory of operation.
//
// Node ids. The kernel names an inode by a 64-bit node id and counts its lookups;
// every reply that creates a kernel reference (lookup, create, mknod, mkdir,
// symlink, link) hands over one vnode reference (VnodeRef::release), and FORGET
// returns n of them (Vfs::put). So the node id is the Vnode's address: it stays
// valid exactly as long as the kernel can use it, and no table is needed. The root
// is node 1 (FUSE_ROOT_ID); the session holds its reference for the whole mount and
// takes none for the kernel's lookups of it. If a reply fails to reach the kernel
// (an interrupted request), the reference it carried is dropped at once.
//
// Requests run on libfuse's worker threads and call the Vfs directly; the Vfs's own
// locking (vfs.h) is what makes them safe to run concurrently. Errors go back as
// their errno code.
//
// Kernel caches. Timeouts and the page-cache mode come from the filesystem's
// CachePolicy (coherent filesystems: 0 s and direct I/O by default; with
// direct_io_writers, read-only opens use the page cache and a write drops the pages it
// covered before it is answered: the one notify sent from a request handler, safe
// because a direct write holds no page lock, so only READs hold pages it waits for,
// and they do not wait for it). The session is
// the Vfs's KernelHooks while it serves: a coherent filesystem's revocation calls
// them and they become fuse_lowlevel_notify_inval_inode / _inval_entry with the node
// id of the vnode (the same mapping as above: its address, or FUSE_ROOT_ID). A notify
// writes to /dev/fuse and the kernel applies it synchronously; it takes the inode's
// locks and may wait for pages locked by in-flight READs. So it is safe only from a
// thread that no kernel request of that inode waits for: the filesystem's own
// revocation thread, after the VFS dropped its range locks (CacheControl::lower does
// exactly that), never from inside a request handler, but for two that cannot wait
// on a page: the direct writer's above and an attributes-only notify at open
// (close-to-open filesystems, when the file changed underneath). ENOENT (the
// kernel does not know the node, e.g. it forgot it) and every other error are
// ignored: there is nothing cached to drop or nobody to tell.
//
// Shared mappings. Direct-I/O opens may be mapped MAP_SHARED: the session's I/O adds
// FUSE_DIRECT_IO_ALLOW_MMAP to the INIT reply (init_flags.h). The kernel then fills
// and writes back the mapping's pages with READs and WRITEs (writepage) like any
// page cache. A writepage keeps its pages under write-back until answered, and a
// coherent filesystem's revocation may be waiting for exactly those pages: it may
// refuse such a write-back (EAGAIN), and the bridge keeps the stores aside until the
// filesystem takes them (deferred_stores.h). Without the kernel page cache for file
// data, readahead is off: a mapping's fault reads one page, so no kernel READ locks
// pages across two granules while one of them waits for the home node.
#define FUSE_USE_VERSION 312
#include "fuse/fuse_mount.h"

#include <fuse3/fuse_lowlevel.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "fuse/deferred_stores.h"
#include "fuse/init_flags.h"

namespace dfly::fuse {

using vfs::Vfs;
using vfs::Vnode;
using vfs::VnodeRef;

class FuseMount::Session final : public vfs::KernelHooks {
 public:
  fuse_session* se = nullptr;
  bool mounted = false;
  Vfs* vfs = nullptr;
  VnodeRef root;
  MountOptions opt;
  vfs::CachePolicy policy;
  // Shared mappings of direct-I/O opens (coherent mounts open everything that way).
  InitFlags init{kInitDirectIoAllowMmap};
  std::unique_ptr<DeferredStores> deferred;  // while run() serves

  fuse_ino_t nodeid(Vnode& vp) {
    return &vp == root.get() ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(&vp);
  }
  void inval_data(Vnode& vp, uint64_t off, uint64_t len) override {
    (void)fuse_lowlevel_notify_inval_inode(se, nodeid(vp), static_cast<off_t>(off),
                                           static_cast<off_t>(len));
  }
  void inval_attr(Vnode& vp) override {
    (void)fuse_lowlevel_notify_inval_inode(se, nodeid(vp), -1, 0);  // off < 0: attributes
  }
  void inval_entry(Vnode& dir, std::string_view name) override {
    std::string n(name);
    (void)fuse_lowlevel_notify_inval_entry(se, nodeid(dir), n.c_str(), n.size());
  }
};

namespace {

FuseMount::Session& S(fuse_req_t req) {
  return *static_cast<FuseMount::Session*>(fuse_req_userdata(req));
}

Vnode& node(fuse_req_t req, fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return *S(req).root;
  return *reinterpret_cast<Vnode*>(ino);
}

void reply_err(fuse_req_t req, const Error& e) {
  fuse_reply_err(req, e.code());
}

struct stat to_stat(const vfs::Attr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_blksize = 4096;
  st.st_atim = a.atime;
  st.st_mtim = a.mtime;
  st.st_ctim = a.ctime;
  return st;
}

vfs::Cred cred(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return {c->uid, c->gid};
}

void reply_entry(fuse_req_t req, Result<VnodeRef> r) {
  if (!r.ok()) return reply_err(req, r.error());
  VnodeRef vp = std::move(r).value();
  Vfs& v = *S(req).vfs;
  auto a = v.getattr(*vp);
  if (!a.ok()) return reply_err(req, a.error());
  fuse_entry_param e{};
  bool is_root = vp.get() == S(req).root.get();
  e.ino = is_root ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(vp.get());
  e.attr = to_stat(*a);
  e.attr_timeout = S(req).policy.attr_timeout;
  e.entry_timeout = S(req).policy.entry_timeout;
  Vnode* raw = is_root ? nullptr : vp.release();
  if (fuse_reply_entry(req, &e) != 0 && raw) v.put(raw, 1);
}

void reply_attr(fuse_req_t req, Result<vfs::Attr> a) {
  if (!a.ok()) return reply_err(req, a.error());
  struct stat st = to_stat(*a);
  fuse_reply_attr(req, &st, S(req).policy.attr_timeout);
}

void reply_status(fuse_req_t req, const Status& s) {
  fuse_reply_err(req, s.ok() ? 0 : s.error().code());
}

// The session's reads and writes of /dev/fuse, as libfuse's own but for InitFlags.
ssize_t io_read(int fd, void* buf, size_t len, void* ud) {
  ssize_t n = ::read(fd, buf, len);
  if (n > 0) static_cast<FuseMount::Session*>(ud)->init.on_read(buf, static_cast<size_t>(n));
  return n;
}

ssize_t io_writev(int fd, iovec* iov, int count, void* ud) {
  static_cast<FuseMount::Session*>(ud)->init.on_reply(iov, count);
  return ::writev(fd, iov, count);
}

void op_init(void* ud, fuse_conn_info* conn) {
  const vfs::CachePolicy& p = static_cast<FuseMount::Session*>(ud)->policy;
  // The kernel keeps our pages across opens (we are the only path to the data).
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // 1 MiB requests (the kernel's limit with max_pages): a large write() is one round
  // trip and one range lock instead of eight.
  conn->max_write = 1u << 20;
  // Without the page cache for file data, only shared mappings fill it, one page per
  // fault: no kernel READ then locks pages across two granules, one of which a
  // revocation is dropping while the other waits for the home node (coherent
  // filesystems; see the theory of operation above).
  conn->max_readahead = p.kernel_data_cache ? 1u << 20 : 0;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

void op_destroy(void* ud) {
  auto* s = static_cast<FuseMount::Session*>(ud);
  if (s->vfs) s->vfs->sync().ignore_error_on_purpose();  // the kernel has gone
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_entry(req, S(req).vfs->lookup(node(req, parent), name));
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  if (ino != FUSE_ROOT_ID) S(req).vfs->put(&node(req, ino), n);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* f) {
  for (size_t i = 0; i < count; ++i)
    if (f[i].ino != FUSE_ROOT_ID) S(req).vfs->put(&node(req, f[i].ino), f[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  reply_attr(req, S(req).vfs->getattr(node(req, ino)));
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* st, int to_set, fuse_file_info*) {
  using vfs::SetAttr;
  SetAttr s;
  if (to_set & FUSE_SET_ATTR_MODE) s.valid |= SetAttr::kMode, s.mode = st->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) s.valid |= SetAttr::kUid, s.uid = st->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) s.valid |= SetAttr::kGid, s.gid = st->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (st->st_size < 0) return void(fuse_reply_err(req, EINVAL));
    if (Status d = S(req).deferred->drain(node(req, ino), 0, 0); !d.ok())
      return reply_err(req, d.error());
    s.valid |= SetAttr::kSize;
    s.size = static_cast<uint64_t>(st->st_size);
  }
  if (to_set & FUSE_SET_ATTR_ATIME) s.valid |= SetAttr::kAtime, s.atime = st->st_atim;
  if (to_set & FUSE_SET_ATTR_MTIME) s.valid |= SetAttr::kMtime, s.mtime = st->st_mtim;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) s.valid |= SetAttr::kAtimeNow;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) s.valid |= SetAttr::kMtimeNow;
  if (to_set & FUSE_SET_ATTR_CTIME) s.valid |= SetAttr::kCtime, s.ctime = st->st_ctim;
  reply_attr(req, S(req).vfs->setattr(node(req, ino), s));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = S(req).vfs->readlink(node(req, ino));
  if (!r.ok()) return reply_err(req, r.error());
  fuse_reply_readlink(req, r->c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  reply_entry(req, S(req).vfs->mknod(node(req, parent), name, mode, rdev, cred(req)));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply_entry(req, S(req).vfs->mkdir(node(req, parent), name, mode, cred(req)));
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  reply_entry(req, S(req).vfs->symlink(node(req, parent), name, target, cred(req)));
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  reply_entry(req, S(req).vfs->link(node(req, ino), node(req, parent), name));
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, S(req).vfs->unlink(node(req, parent), name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, S(req).vfs->rmdir(node(req, parent), name));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned flags) {
  reply_status(req,
               S(req).vfs->rename(node(req, parent), name, node(req, newparent), newname, flags));
}

// dropped: the VFS found the file changed underneath (close-to-open): the kernel
// drops its pages (no KEEP_CACHE) and its attributes (a notify for attributes only
// takes no page lock, so it is safe from a request handler).
void setup_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, bool dropped) {
  const vfs::CachePolicy& p = S(req).policy;
  bool writer = (fi->flags & O_ACCMODE) != O_RDONLY;
  fi->direct_io =
      (fi->flags & O_DIRECT) || !p.kernel_data_cache || (writer && p.direct_io_writers) ? 1 : 0;
  fi->keep_cache = fi->direct_io || dropped ? 0 : 1;
  if (dropped) (void)fuse_lowlevel_notify_inval_inode(S(req).se, ino, -1, 0);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  bool dropped = false;
  Status s = S(req).vfs->open(node(req, ino), fi->flags, &dropped);
  if (!s.ok()) return reply_err(req, s.error());
  setup_open(req, ino, fi, dropped);
  if (fuse_reply_open(req, fi) != 0) S(req).vfs->release(node(req, ino));
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
  Vfs& v = *S(req).vfs;
  Vnode& dir = node(req, parent);
  auto r = v.mknod(dir, name, (mode & 07777) | S_IFREG, 0, cred(req));
  if (!r.ok() && r.error().code() == EEXIST && !(fi->flags & O_EXCL)) r = v.lookup(dir, name);
  if (!r.ok()) return reply_err(req, r.error());
  VnodeRef vp = std::move(r).value();
  Status s = v.open(*vp, fi->flags);
  if (!s.ok()) return reply_err(req, s.error());
  auto a = v.getattr(*vp);
  if (!a.ok()) {
    v.release(*vp);
    return reply_err(req, a.error());
  }
  setup_open(req, 0, fi, false);  // a new file: nothing cached to drop
  fuse_entry_param e{};
  e.ino = reinterpret_cast<fuse_ino_t>(vp.get());
  e.attr = to_stat(*a);
  e.attr_timeout = S(req).policy.attr_timeout;
  e.entry_timeout = S(req).policy.entry_timeout;
  Vnode* raw = vp.release();
  if (fuse_reply_create(req, &e, fi) != 0) {
    v.release(*raw);
    v.put(raw, 1);
  }
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  thread_local std::vector<std::byte> buf;
  if (off < 0) return void(fuse_reply_err(req, EINVAL));
  if (buf.size() < size) buf.resize(size);
  Vnode& vp = node(req, ino);
  auto kept = S(req).deferred->copy(vp, static_cast<uint64_t>(off), size);  // before the read
  auto n = S(req).vfs->read(vp, static_cast<uint64_t>(off), {buf.data(), size});
  if (!n.ok()) return reply_err(req, n.error());
  size_t got = *n;
  if (!kept.empty())
    DeferredStores::overlay(kept, static_cast<uint64_t>(off), {buf.data(), size}, &got);
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), got);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
              fuse_file_info* fi) {
  if (off < 0) return void(fuse_reply_err(req, EINVAL));
  Vfs& v = *S(req).vfs;
  DeferredStores& d = *S(req).deferred;
  Vnode& vp = node(req, ino);
  const uint64_t at = static_cast<uint64_t>(off);
  std::span<const std::byte> in{reinterpret_cast<const std::byte*>(data), size};
  Result<size_t> n = size_t{0};
  if (fi->writepage) {
    // A write-back of pages stored through a shared mapping: where the pages are,
    // whatever the open's O_APPEND says; newer than anything kept of them. Refused
    // while those pages are being revoked from this node: kept (deferred_stores.h).
    d.supersede(vp, at, size);
    n = v.write_mapped(vp, at, in);
    if (!n.ok() && n.error().code() == EAGAIN) {
      // What the file holds there now: the bytes that differ are the stores. (This
      // node still holds the range until its revocation ends, so the read is served
      // here; failing it, every byte is kept.)
      std::vector<std::byte> base(size);
      auto b = v.read(vp, at, base);
      // The read may have waited for the revocation to end: then the write-back can go
      // now, and the base may already hold another node's newer bytes.
      n = v.write_mapped(vp, at, in);
      if (!n.ok() && n.error().code() == EAGAIN) {
        d.keep(
            vp, at, in,
            b.ok() && *b == size ? std::span<const std::byte>(base) : std::span<const std::byte>());
        n = size;
      }
    }
  } else {
    const bool append = (fi->flags & O_APPEND) != 0;
    if (Status k = d.drain(vp, append ? 0 : at, append ? 0 : size); !k.ok())
      return reply_err(req, k.error());
    n = v.write(vp, at, in, append);
  }
  if (!n.ok()) return reply_err(req, n.error());
  // Read-only opens and shared mappings of this inode may have cached the old bytes
  // (direct_io_writers): drop them before the write returns. Only pages of kernel
  // READs in flight can be locked here, and those never wait for this request. Not
  // for a writepage: its own pages are under write-back until we answer, and they
  // already hold what it wrote.
  if (S(req).policy.direct_io_writers && *n && !fi->writepage)
    (void)fuse_lowlevel_notify_inval_inode(S(req).se, ino, off, static_cast<off_t>(*n));
  fuse_reply_write(req, *n);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  // Stores the kernel wrote back at close and the filesystem could not take yet.
  if (Status k = S(req).deferred->drain(node(req, ino), 0, 0); !k.ok())
    return reply_err(req, k.error());
  if (!S(req).policy.close_to_open) {
    fuse_reply_err(req, 0);
    return;
  }
  reply_status(req, S(req).vfs->write_back(node(req, ino)));
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  S(req).vfs->release(node(req, ino));
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  if (Status k = S(req).deferred->drain(node(req, ino), 0, 0); !k.ok())
    return reply_err(req, k.error());
  reply_status(req, S(req).vfs->fsync(node(req, ino), datasync != 0));
}

void op_opendir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  std::vector<char> buf(size);
  size_t pos = 0;
  Status s =
      S(req).vfs->readdir(node(req, ino), static_cast<uint64_t>(off), [&](const vfs::DirEntry& d) {
        struct stat st {};
        st.st_ino = d.ino;
        st.st_mode = d.type;
        std::string name(d.name);
        size_t n = fuse_add_direntry(req, buf.data() + pos, size - pos, name.c_str(), &st,
                                     static_cast<off_t>(d.cookie));
        if (n > size - pos) return false;
        pos += n;
        return true;
      });
  if (!s.ok()) return reply_err(req, s.error());
  fuse_reply_buf(req, buf.data(), pos);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  reply_status(req, S(req).vfs->fsync(node(req, ino), datasync != 0));
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto r = S(req).vfs->statfs();
  if (!r.ok()) return reply_err(req, r.error());
  struct statvfs sv {};
  sv.f_bsize = sv.f_frsize = r->bsize;
  sv.f_blocks = r->blocks;
  sv.f_bfree = r->bfree;
  sv.f_bavail = r->bavail;
  sv.f_files = r->files;
  sv.f_ffree = sv.f_favail = r->ffree;
  sv.f_namemax = r->namemax;
  fuse_reply_statfs(req, &sv);
}

void reply_sized(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) return static_cast<void>(fuse_reply_xattr(req, data.size()));
  if (data.size() > size) return static_cast<void>(fuse_reply_err(req, ERANGE));
  fuse_reply_buf(req, data.data(), data.size());
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
  reply_status(req, S(req).vfs->setxattr(node(req, ino), name, {value, size}, flags));
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto r = S(req).vfs->getxattr(node(req, ino), name);
  if (!r.ok()) return reply_err(req, r.error());
  reply_sized(req, *r, size);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto r = S(req).vfs->listxattr(node(req, ino));
  if (!r.ok()) return reply_err(req, r.error());
  std::string all;
  for (auto& n : *r) all.append(n).push_back('\0');
  reply_sized(req, all, size);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  reply_status(req, S(req).vfs->removexattr(node(req, ino), name));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info*) {
  if (off < 0 || len <= 0) return void(fuse_reply_err(req, EINVAL));
  if (Status k = S(req).deferred->drain(node(req, ino), 0, 0); !k.ok())
    return reply_err(req, k.error());
  reply_status(req, S(req).vfs->fallocate(node(req, ino), mode, static_cast<uint64_t>(off),
                                          static_cast<uint64_t>(len)));
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info*) {
  if (off < 0) return void(fuse_reply_err(req, ENXIO));
  auto r = S(req).vfs->lseek(node(req, ino), static_cast<uint64_t>(off), whence);
  if (!r.ok()) return reply_err(req, r.error());
  fuse_reply_lseek(req, static_cast<off_t>(*r));
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.destroy = op_destroy;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.symlink = op_symlink;
  o.link = op_link;
  o.unlink = op_unlink;
  o.rmdir = op_rmdir;
  o.rename = op_rename;
  o.open = op_open;
  o.create = op_create;
  o.read = op_read;
  o.write = op_write;
  o.flush = op_flush;
  o.release = op_release;
  o.fsync = op_fsync;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.releasedir = op_releasedir;
  o.fsyncdir = op_fsyncdir;
  o.statfs = op_statfs;
  o.setxattr = op_setxattr;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.removexattr = op_removexattr;
  o.fallocate = op_fallocate;
  o.lseek = op_lseek;
  return o;
}

}  // namespace

FuseMount::FuseMount(std::unique_ptr<Session> s) : s_(std::move(s)) {}

Result<std::unique_ptr<FuseMount>> FuseMount::mount(const std::string& mountpoint,
                                                    const MountOptions& options) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) return errno_error("fuse: mount point " + mountpoint);
  if (!S_ISDIR(st.st_mode))
    return Error(ENOTDIR, "fuse: mount point " + mountpoint + ": not a directory");
  auto s = std::make_unique<Session>();
  s->opt = options;
  std::string o = "fsname=" + options.fsname + ",default_permissions";
  if (!options.subtype.empty()) o += ",subtype=" + options.subtype;
  if (geteuid() == 0) o += ",allow_other";
  std::vector<std::string> argv = {"dfly", "-o", o};
  if (options.debug) argv.push_back("-d");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  static const fuse_lowlevel_ops ops = make_ops();
  s->se = fuse_session_new(&args, &ops, sizeof ops, s.get());
  fuse_opt_free_args(&args);  // the session may have copied argv into args
  if (!s->se) return Error(EIO, "fuse: cannot create a session (bad options?)");
  if (fuse_session_mount(s->se, mountpoint.c_str()) != 0) {
    fuse_session_destroy(s->se);
    s->se = nullptr;
    return Error(EPERM, "fuse: cannot mount " + mountpoint + " (needs /dev/fuse and rights)");
  }
  s->mounted = true;
  static const fuse_custom_io io = {io_writev, io_read, nullptr, nullptr};
  if (int rc = fuse_session_custom_io(s->se, &io, fuse_session_fd(s->se)); rc != 0) {
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    s->se = nullptr;
    return Error(-rc, "fuse: cannot set the session's I/O");
  }
  return std::unique_ptr<FuseMount>(new FuseMount(std::move(s)));
}

Status FuseMount::run(vfs::Vfs& v) {
  s_->vfs = &v;
  s_->policy = v.cache_policy();
  s_->root = TRY(v.root());
  if (s_->opt.handle_signals) {
    // libfuse only takes signals left at their defaults; a shell starts background
    // jobs with SIGINT ignored, and the user still means "unmount" by it.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
    if (fuse_set_signal_handlers(s_->se) != 0)
      return Error(EIO, "fuse: cannot install signal handlers");
  }
  v.set_kernel_hooks(s_.get());
  s_->deferred = std::make_unique<DeferredStores>(v);
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, s_->opt.max_threads);
  fuse_loop_cfg_set_idle_threads(cfg, s_->opt.max_threads);
  int rc = fuse_session_loop_mt(s_->se, cfg);
  fuse_loop_cfg_destroy(cfg);
  s_->deferred.reset();         // offers what it still keeps, before the final sync
  v.set_kernel_hooks(nullptr);  // waits for notifications in progress
  if (s_->opt.handle_signals) fuse_remove_signal_handlers(s_->se);
  fuse_session_unmount(s_->se);
  s_->mounted = false;
  // Destroying the session runs op_destroy (a final sync) while vfs is alive.
  fuse_session_destroy(s_->se);
  s_->se = nullptr;
  s_->root.reset();
  if (rc < 0) return Error(-rc, "fuse: session loop failed");
  return {};
}

Status FuseMount::daemonize() {
  if (fuse_daemonize(0) != 0) return Error(EIO, "fuse: cannot daemonize");
  return {};
}

void FuseMount::stop() {
  if (s_->se) fuse_session_exit(s_->se);
}

FuseMount::~FuseMount() {
  if (!s_->se) return;
  if (s_->mounted) fuse_session_unmount(s_->se);
  fuse_session_destroy(s_->se);
}

}  // namespace dfly::fuse
