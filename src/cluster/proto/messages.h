// The messages of the dfly cluster protocol (docs/cluster-protocol.md is the spec;
// this header is its code). One plain struct per request and per reply body; the
// op table at the bottom pairs each opcode with its request and reply types.
//
// Field order is wire order, and both are frozen within a protocol version (this is
// version 2): add a new opcode (or a new version) rather than change a struct. Opcode values reach
// the wire: never renumber.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>

#include "cluster/proto/codec.h"

namespace dfly::cluster::proto {

// Limits (a larger length on the wire is a protocol error: the connection closes).
inline constexpr size_t kMaxName = 255;          // a directory entry or xattr name
inline constexpr size_t kMaxTarget = 4096;       // a symlink target
inline constexpr size_t kMaxXattrValue = 65536;  // one xattr value
inline constexpr size_t kMaxIo = 1 << 20;        // one READ or WRITE
inline constexpr size_t kMaxPeerName = 64;       // HELLO client/server names
inline constexpr size_t kMaxErrorText = 1024;    // the text of an error reply
inline constexpr size_t kMaxListxattr = 65536;   // names in one LISTXATTR reply
inline constexpr size_t kMaxDirEntries = 65536;  // entries in one READDIR reply
inline constexpr size_t kMaxCounters = 4096;     // STATUS counters
inline constexpr size_t kMaxAckExtents = 4096;   // written-back extents in one REVOKE_ACK

using State = ccms::State;  // kInvalid 0, kShared 1, kExclusive 2, kModified 3
using Name = Str<kMaxName>;

template <codec::Tied T>
bool operator==(const T& a, const T& b) {
  return a.tie() == b.tie();
}

// Shared pieces -------------------------------------------------------------------
struct Time {  // 12 bytes; nsec < 1e9 (checked by decode)
  int64_t sec = 0;
  uint32_t nsec = 0;
  DFLY_PROTO_FIELDS(sec, nsec)
  bool valid() const { return nsec < 1000000000u; }
};
struct Attr {  // 84 bytes, fixed
  uint64_t ino = 0;
  uint32_t mode = 0, nlink = 0, uid = 0, gid = 0;
  uint64_t rdev = 0, size = 0, blocks = 0;
  Time atime, mtime, ctime;
  DFLY_PROTO_FIELDS(ino, mode, nlink, uid, gid, rdev, size, blocks, atime, mtime, ctime)
};
struct Cred {
  uint32_t uid = 0, gid = 0;
  DFLY_PROTO_FIELDS(uid, gid)
};
struct Empty {
  DFLY_PROTO_NO_FIELDS
};

// Handshake -----------------------------------------------------------------------
inline constexpr uint32_t kMagic = 0x594c4644;  // "DFLY" as bytes on the wire
// Version 2: ACQUIRE asks for data with the grant (data_max), GRANTED carries it, and
// REVOKE_ACK carries the written-back data. Version 3: readers that lost a range to a
// writer get it back pushed with its data (GRANT push, REVOKE_ACK used, GRANTED
// contended). docs/cluster-protocol.md, sections 7 and 9.
inline constexpr uint16_t kVersion = 3;
inline constexpr uint16_t kMinVersion = 3;
enum HelloFlags : uint32_t { kHelloTls = 1 };  // the sender is speaking inside TLS

struct Hello {
  uint32_t magic = kMagic;
  uint16_t version = kVersion, min_version = kMinVersion;
  Str<kMaxPeerName> name;
  uint32_t flags = 0;
  DFLY_PROTO_FIELDS(magic, version, min_version, name, flags)
  bool valid() const { return magic == kMagic && min_version <= version; }
};
struct HelloReply {
  uint16_t version = kVersion;  // the version both sides now speak
  Str<kMaxPeerName> name;
  uint32_t flags = 0;
  Bytes32 server_nonce{};
  DFLY_PROTO_FIELDS(version, name, flags, server_nonce)
};
struct Auth {
  Bytes32 proof{};  // HMAC-SHA256(secret, "dfly-cluster-v1 client" || sn || cn)
  Bytes32 client_nonce{};
  DFLY_PROTO_FIELDS(proof, client_nonce)
};
struct AuthReply {
  Bytes32 proof{};  // HMAC-SHA256(secret, "dfly-cluster-v1 server" || cn || sn)
  uint64_t session = 0;
  uint32_t lease_ms = 0;
  DFLY_PROTO_FIELDS(proof, session, lease_ms)
};

// Filesystem (mirrors vfs::Filesystem) -----------------------------------------------
struct Getattr {
  uint64_t ino = 0;
  DFLY_PROTO_FIELDS(ino)
};
struct AttrReply {
  Attr attr;
  DFLY_PROTO_FIELDS(attr)
};
struct Lookup {
  uint64_t dir = 0;
  Name name;
  DFLY_PROTO_FIELDS(dir, name)
};
struct Mknod {
  uint64_t dir = 0;
  Name name;
  uint32_t mode = 0;
  uint64_t rdev = 0;
  Cred cred;
  DFLY_PROTO_FIELDS(dir, name, mode, rdev, cred)
};
struct Mkdir {
  uint64_t dir = 0;
  Name name;
  uint32_t mode = 0;
  Cred cred;
  DFLY_PROTO_FIELDS(dir, name, mode, cred)
};
struct Symlink {
  uint64_t dir = 0;
  Name name;
  Str<kMaxTarget> target;
  Cred cred;
  DFLY_PROTO_FIELDS(dir, name, target, cred)
};
struct Link {
  uint64_t ino = 0, dir = 0;
  Name name;
  DFLY_PROTO_FIELDS(ino, dir, name)
};
struct Unlink {
  uint64_t dir = 0;
  Name name;
  DFLY_PROTO_FIELDS(dir, name)
};
struct Rmdir {
  uint64_t dir = 0;
  Name name;
  DFLY_PROTO_FIELDS(dir, name)
};
struct Rename {
  uint64_t dir = 0;
  Name name;
  uint64_t newdir = 0;
  Name newname;
  uint32_t flags = 0;  // vfs::kRenameNoReplace, kRenameExchange
  DFLY_PROTO_FIELDS(dir, name, newdir, newname, flags)
};
struct Readlink {
  uint64_t ino = 0;
  DFLY_PROTO_FIELDS(ino)
};
struct ReadlinkReply {
  Str<kMaxTarget> target;
  DFLY_PROTO_FIELDS(target)
};
struct Setattr {
  uint64_t ino = 0;
  uint32_t valid = 0;  // vfs::SetAttr bits
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  Time atime, mtime, ctime;
  DFLY_PROTO_FIELDS(ino, valid, mode, uid, gid, size, atime, mtime, ctime)
};
struct Readdir {
  uint64_t dir = 0;
  uint64_t after = 0;      // cookie; 0 = from the start
  uint32_t max_bytes = 0;  // of encoded entries; the server caps it at kMaxIo
  DFLY_PROTO_FIELDS(dir, after, max_bytes)
};
struct DirEnt {
  Name name;
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits
  uint64_t cookie = 0;
  DFLY_PROTO_FIELDS(name, ino, type, cookie)
};
struct ReaddirReply {
  List<DirEnt, kMaxDirEntries> entries;
  bool eof = false;
  DFLY_PROTO_FIELDS(entries, eof)
};
struct Read {
  uint64_t ino = 0, off = 0;
  uint32_t len = 0;  // <= kMaxIo, else the request is malformed
  DFLY_PROTO_FIELDS(ino, off, len)
  bool valid() const { return len <= kMaxIo; }
};
struct ReadReply {
  Bytes<kMaxIo> data;  // short only at end of file; holes read as zeros
  DFLY_PROTO_FIELDS(data)
};
struct Write {
  uint64_t ino = 0, off = 0;
  Bytes<kMaxIo> data;
  DFLY_PROTO_FIELDS(ino, off, data)
};
struct WriteReply {
  uint32_t written = 0;
  DFLY_PROTO_FIELDS(written)
};
struct Fsync {
  uint64_t ino = 0;
  bool datasync = false;
  DFLY_PROTO_FIELDS(ino, datasync)
};
struct Statfs {
  DFLY_PROTO_NO_FIELDS
};
struct StatfsReply {
  uint64_t bsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0;
  uint32_t namemax = 0;
  DFLY_PROTO_FIELDS(bsize, blocks, bfree, bavail, files, ffree, namemax)
};
struct Getxattr {
  uint64_t ino = 0;
  Name name;
  DFLY_PROTO_FIELDS(ino, name)
};
struct GetxattrReply {
  Bytes<kMaxXattrValue> value;
  DFLY_PROTO_FIELDS(value)
};
struct Setxattr {
  uint64_t ino = 0;
  Name name;
  Bytes<kMaxXattrValue> value;
  int32_t flags = 0;  // XATTR_CREATE, XATTR_REPLACE
  DFLY_PROTO_FIELDS(ino, name, value, flags)
};
struct Listxattr {
  uint64_t ino = 0;
  DFLY_PROTO_FIELDS(ino)
};
struct ListxattrReply {
  List<Name, kMaxListxattr> names;
  DFLY_PROTO_FIELDS(names)
};
struct Removexattr {
  uint64_t ino = 0;
  Name name;
  DFLY_PROTO_FIELDS(ino, name)
};
struct Fallocate {
  uint64_t ino = 0;
  int32_t mode = 0;
  uint64_t off = 0, len = 0;
  DFLY_PROTO_FIELDS(ino, mode, off, len)
};
struct Seek {
  uint64_t ino = 0, off = 0;
  int32_t whence = 0;  // SEEK_DATA, SEEK_HOLE
  DFLY_PROTO_FIELDS(ino, off, whence)
};
struct SeekReply {
  uint64_t off = 0;
  DFLY_PROTO_FIELDS(off)
};
struct Reserve {
  uint64_t ino = 0, off = 0, len = 0;
  DFLY_PROTO_FIELDS(ino, off, len)
};
struct Forget {
  uint64_t ino = 0;
  DFLY_PROTO_FIELDS(ino)
};

// Coherence (CCMS states on byte ranges [beg, end) of an inode; end may be ccms::kEnd)
struct Acquire {
  uint64_t ino = 0, beg = 0, end = 0;
  State want = State::kShared;
  uint64_t desired_beg = 0, desired_end = 0;  // the server may widen up to this
  // Nonzero: send the file's data from beg (at most this many bytes, <= kMaxIo, and
  // not past end) with the grant, read after every conflicting state was lowered.
  uint32_t data_max = 0;
  DFLY_PROTO_FIELDS(ino, beg, end, want, desired_beg, desired_end, data_max)
  bool valid() const { return data_max <= kMaxIo; }
};
struct Granted {
  uint64_t ino = 0, beg = 0, end = 0;
  State state = State::kInvalid;
  // With data_max: the data at the request's beg (short only at end of file: what a
  // READ would return); empty and not sent when data_max was 0.
  bool has_data = false;
  Bytes<kMaxIo> data;
  // Another client was reading [beg, end) and wants it back (version 3): write what
  // you change there back, and lower to SHARED, before the write returns.
  bool contended = false;
  DFLY_PROTO_FIELDS(ino, beg, end, state, has_data, data, contended)
  bool valid() const { return has_data || data.empty(); }
};
struct Grant {  // push (version 3): a state the client did not ask for, with its data
  uint64_t ino = 0, beg = 0, end = 0;
  State state = State::kInvalid;
  bool has_data = false;
  Bytes<kMaxIo> data;  // the file's data from beg (short only at end of file)
  DFLY_PROTO_FIELDS(ino, beg, end, state, has_data, data)
  bool valid() const { return (has_data || data.empty()) && beg < end; }
};
struct Release {
  uint64_t ino = 0, beg = 0, end = 0;
  State to = State::kInvalid;
  DFLY_PROTO_FIELDS(ino, beg, end, to)
};
struct Revoke {  // push
  uint64_t ino = 0, beg = 0, end = 0;
  State to = State::kInvalid;
  uint32_t deadline_ms = 0;
  DFLY_PROTO_FIELDS(ino, beg, end, to, deadline_ms)
};
struct Extent {  // file data at off
  uint64_t off = 0;
  Bytes<kMaxIo> data;
  DFLY_PROTO_FIELDS(off, data)
};
struct RevokeAck {
  State state = State::kInvalid;  // what the client now holds there (<= to)
  // The dirty data the lowering wrote back, in write order: the server writes it to
  // the revoked inode before it counts the ack (instead of WRITE round trips).
  List<Extent, kMaxAckExtents> written;
  // The client used the revoked range since it got it (version 3): it wants it back.
  bool used = false;
  DFLY_PROTO_FIELDS(state, written, used)
};
struct InvalEntry {  // push
  uint64_t dir = 0;
  Name name;
  DFLY_PROTO_FIELDS(dir, name)
};
struct InvalAttr {  // push
  uint64_t ino = 0;
  DFLY_PROTO_FIELDS(ino)
};
struct LeaseNotice {          // push
  uint32_t remaining_ms = 0;  // 0: the lease expired and the client's states are gone
  DFLY_PROTO_FIELDS(remaining_ms)
};
struct Renew {
  DFLY_PROTO_NO_FIELDS
};
struct RenewReply {
  uint32_t lease_ms = 0;
  DFLY_PROTO_FIELDS(lease_ms)
};
struct GetStatus {
  DFLY_PROTO_NO_FIELDS
};
struct Counter {
  Name name;
  uint64_t value = 0;
  DFLY_PROTO_FIELDS(name, value)
};
struct StatusReply {
  List<Counter, kMaxCounters> counters;
  DFLY_PROTO_FIELDS(counters)
};

// The op table ----------------------------------------------------------------------
// X(name, NAME, value, direction, Request, Reply). Direction: C = client to server (frame
// kind request), S = server to client (frame kind push), H = handshake (request,
// only before AUTH completes).
#define DFLY_CLUSTER_OPS(X)                                    \
  X(kHello, "HELLO", 1, H, Hello, HelloReply)                  \
  X(kAuth, "AUTH", 2, H, Auth, AuthReply)                      \
  X(kGetattr, "GETATTR", 16, C, Getattr, AttrReply)            \
  X(kLookup, "LOOKUP", 17, C, Lookup, AttrReply)               \
  X(kMknod, "MKNOD", 18, C, Mknod, AttrReply)                  \
  X(kMkdir, "MKDIR", 19, C, Mkdir, AttrReply)                  \
  X(kSymlink, "SYMLINK", 20, C, Symlink, AttrReply)            \
  X(kLink, "LINK", 21, C, Link, AttrReply)                     \
  X(kUnlink, "UNLINK", 22, C, Unlink, Empty)                   \
  X(kRmdir, "RMDIR", 23, C, Rmdir, Empty)                      \
  X(kRename, "RENAME", 24, C, Rename, Empty)                   \
  X(kReadlink, "READLINK", 25, C, Readlink, ReadlinkReply)     \
  X(kSetattr, "SETATTR", 26, C, Setattr, AttrReply)            \
  X(kReaddir, "READDIR", 27, C, Readdir, ReaddirReply)         \
  X(kRead, "READ", 28, C, Read, ReadReply)                     \
  X(kWrite, "WRITE", 29, C, Write, WriteReply)                 \
  X(kFsync, "FSYNC", 30, C, Fsync, Empty)                      \
  X(kStatfs, "STATFS", 31, C, Statfs, StatfsReply)             \
  X(kGetxattr, "GETXATTR", 32, C, Getxattr, GetxattrReply)     \
  X(kSetxattr, "SETXATTR", 33, C, Setxattr, Empty)             \
  X(kListxattr, "LISTXATTR", 34, C, Listxattr, ListxattrReply) \
  X(kRemovexattr, "REMOVEXATTR", 35, C, Removexattr, Empty)    \
  X(kFallocate, "FALLOCATE", 36, C, Fallocate, Empty)          \
  X(kSeek, "SEEK", 37, C, Seek, SeekReply)                     \
  X(kReserve, "RESERVE", 38, C, Reserve, Empty)                \
  X(kForget, "FORGET", 39, C, Forget, Empty)                   \
  X(kAcquire, "ACQUIRE", 64, C, Acquire, Granted)              \
  X(kRelease, "RELEASE", 65, C, Release, Empty)                \
  X(kRenew, "RENEW", 66, C, Renew, RenewReply)                 \
  X(kStatus, "STATUS", 67, C, GetStatus, StatusReply)          \
  X(kRevoke, "REVOKE", 96, S, Revoke, RevokeAck)               \
  X(kInvalEntry, "INVAL_ENTRY", 97, S, InvalEntry, Empty)      \
  X(kInvalAttr, "INVAL_ATTR", 98, S, InvalAttr, Empty)         \
  X(kLeaseNotice, "LEASE_NOTICE", 99, S, LeaseNotice, Empty)   \
  X(kGrant, "GRANT", 100, S, Grant, Empty)

enum class Op : uint16_t {
#define DFLY_X(name, str, value, dir, Req, Rep) name = value,
  DFLY_CLUSTER_OPS(DFLY_X)
#undef DFLY_X
};

// Each request type knows its opcode and reply type: Req::kOp, typename Req::Reply
// through OpOf<Req> / ReplyOf<Req>.
template <typename Req>
struct OpTraits;
#define DFLY_X(name, str, value, dir, Req, Rep) \
  template <>                                   \
  struct OpTraits<Req> {                        \
    static constexpr Op kOp = Op::name;         \
    static constexpr char kDir = #dir[0];       \
    using Reply = Rep;                          \
  };
DFLY_CLUSTER_OPS(DFLY_X)
#undef DFLY_X
template <typename Req>
inline constexpr Op kOpOf = OpTraits<Req>::kOp;
template <typename Req>
using ReplyOf = typename OpTraits<Req>::Reply;

// "GETATTR" (the spec's name), or nullptr for an opcode this version does not know.
const char* op_name(Op op);
// 'H', 'C' or 'S' (see the table), or 0 for an unknown opcode.
char op_direction(Op op);

// Calls f(std::type_identity<Req>{}) for op's request type; false if op is unknown.
template <typename F>
bool with_op(Op op, F&& f) {
  switch (op) {
#define DFLY_X(name, str, value, dir, Req, Rep) \
  case Op::name:                                \
    f(std::type_identity<Req>{});               \
    return true;
    DFLY_CLUSTER_OPS(DFLY_X)
#undef DFLY_X
  }
  return false;
}

}  // namespace dfly::cluster::proto
