// Field codec of the cluster protocol: how each field type of a message body is laid
// out (docs/cluster-protocol.md, "Encoding"). Internal to proto; messages.h uses it.
//
// Every integer is little-endian and fixed-width. Strings and byte arrays are a u32
// length then the bytes; lists are a u32 count then the elements; a message body is
// its fields in declaration order with nothing between them. Each variable-length
// type carries its limit in its type (Str<255> is a name), and the decoder checks the
// length against both that limit and the bytes left before it allocates anything, so
// a hostile length can never make us reserve more than the frame already holds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ccms/ccms.h"

namespace dfly::cluster::proto {

// A string of at most Max bytes (any bytes: names are not required to be UTF-8).
template <size_t Max>
struct Str : std::string {
  static constexpr size_t kMax = Max;
  using std::string::string;
  Str() = default;
  Str(std::string s) : std::string(std::move(s)) {}
  Str(std::string_view s) : std::string(s) {}
  friend bool operator==(const Str&, const Str&) = default;
};

// A byte array of at most Max bytes.
template <size_t Max>
struct Bytes : std::vector<std::byte> {
  static constexpr size_t kMax = Max;
  using std::vector<std::byte>::vector;
  Bytes() = default;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

// A list of at most Max elements.
template <typename T, size_t Max>
struct List : std::vector<T> {
  static constexpr size_t kMax = Max;
  using std::vector<T>::vector;
  List() = default;
  friend bool operator==(const List&, const List&) = default;
};

// 32 raw bytes (nonces, HMAC-SHA256 proofs): no length prefix.
using Bytes32 = std::array<std::byte, 32>;

// Message structs list their fields once; encode, decode and == all follow from it.
#define DFLY_PROTO_FIELDS(...)    \
  auto tie() {                    \
    return std::tie(__VA_ARGS__); \
  }                               \
  auto tie() const {              \
    return std::tie(__VA_ARGS__); \
  }
#define DFLY_PROTO_NO_FIELDS \
  auto tie() {               \
    return std::tie();       \
  }                          \
  auto tie() const {         \
    return std::tie();       \
  }

namespace codec {

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  template <typename U>
  void le(U v) {
    static_assert(std::is_unsigned_v<U>);
    for (size_t i = 0; i < sizeof(U); ++i) out_.push_back(std::byte(uint8_t(v >> (8 * i))));
  }
  void raw(const void* p, size_t n) {
    auto b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }

 private:
  std::vector<std::byte>& out_;
};

// Reads fields from a body; the first failure sticks (later reads yield zeros) and
// names what was wrong, for the log line of the connection it closes.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  template <typename U>
  U le() {
    static_assert(std::is_unsigned_v<U>);
    if (!need(sizeof(U), "truncated")) return 0;
    U v = 0;
    for (size_t i = 0; i < sizeof(U); ++i)
      v |= U(std::to_integer<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += sizeof(U);
    return v;
  }
  // A view of the next n bytes, or an empty span after failing.
  std::span<const std::byte> take(size_t n) {
    if (!need(n, "truncated")) return {};
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  size_t left() const { return bad_ ? 0 : in_.size() - pos_; }
  bool bad() const { return bad_ != nullptr; }
  const char* why() const { return bad_; }
  void fail(const char* why) {
    if (!bad_) bad_ = why;
  }

 private:
  bool need(size_t n, const char* why) {
    if (bad_) return false;
    if (in_.size() - pos_ < n) {
      fail(why);
      return false;
    }
    return true;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  const char* bad_ = nullptr;
};

template <typename T>
concept Tied = requires(T t) {
  t.tie();
};

// Encoding ------------------------------------------------------------------------
inline void put(Writer& w, uint8_t v) {
  w.le(v);
}
inline void put(Writer& w, uint16_t v) {
  w.le(v);
}
inline void put(Writer& w, uint32_t v) {
  w.le(v);
}
inline void put(Writer& w, uint64_t v) {
  w.le(v);
}
inline void put(Writer& w, int32_t v) {
  w.le(uint32_t(v));
}
inline void put(Writer& w, int64_t v) {
  w.le(uint64_t(v));
}
inline void put(Writer& w, bool v) {
  w.le(uint8_t(v ? 1 : 0));
}
inline void put(Writer& w, ccms::State v) {
  w.le(uint8_t(v));
}
inline void put(Writer& w, const Bytes32& v) {
  w.raw(v.data(), v.size());
}
template <size_t M>
void put(Writer& w, const Str<M>& v) {
  w.le(uint32_t(v.size()));
  w.raw(v.data(), v.size());
}
template <size_t M>
void put(Writer& w, const Bytes<M>& v) {
  w.le(uint32_t(v.size()));
  w.raw(v.data(), v.size());
}
template <Tied T>
void put(Writer& w, const T& v);
template <typename T, size_t M>
void put(Writer& w, const List<T, M>& v) {
  w.le(uint32_t(v.size()));
  for (auto& e : v) put(w, e);
}
template <Tied T>
void put(Writer& w, const T& v) {
  std::apply([&](const auto&... f) { (put(w, f), ...); }, v.tie());
}

// Decoding ------------------------------------------------------------------------
inline void get(Reader& r, uint8_t& v) {
  v = r.le<uint8_t>();
}
inline void get(Reader& r, uint16_t& v) {
  v = r.le<uint16_t>();
}
inline void get(Reader& r, uint32_t& v) {
  v = r.le<uint32_t>();
}
inline void get(Reader& r, uint64_t& v) {
  v = r.le<uint64_t>();
}
inline void get(Reader& r, int32_t& v) {
  v = int32_t(r.le<uint32_t>());
}
inline void get(Reader& r, int64_t& v) {
  v = int64_t(r.le<uint64_t>());
}
inline void get(Reader& r, bool& v) {
  uint8_t b = r.le<uint8_t>();
  if (b > 1) r.fail("boolean not 0 or 1");
  v = b == 1;
}
inline void get(Reader& r, ccms::State& v) {
  uint8_t b = r.le<uint8_t>();
  if (b > uint8_t(ccms::State::kModified)) r.fail("cache state out of range");
  v = ccms::State(b);
}
inline void get(Reader& r, Bytes32& v) {
  auto s = r.take(v.size());
  if (!s.empty()) std::memcpy(v.data(), s.data(), v.size());
}
// The length check comes before any allocation: limit first, then the bytes left.
inline size_t get_len(Reader& r, size_t max, const char* what) {
  uint32_t n = r.le<uint32_t>();
  if (n > max) {
    r.fail(what);
    return 0;
  }
  if (n > r.left()) {
    r.fail("truncated");
    return 0;
  }
  return n;
}
template <size_t M>
void get(Reader& r, Str<M>& v) {
  size_t n = get_len(r, M, "string longer than its limit");
  auto s = r.take(n);
  v.assign(reinterpret_cast<const char*>(s.data()), s.size());
}
template <size_t M>
void get(Reader& r, Bytes<M>& v) {
  size_t n = get_len(r, M, "byte array longer than its limit");
  auto s = r.take(n);
  v.assign(s.begin(), s.end());
}
template <Tied T>
void get(Reader& r, T& v);
template <typename T, size_t M>
void get(Reader& r, List<T, M>& v) {
  // Every element takes at least one byte, so count <= bytes left bounds the reserve.
  size_t n = get_len(r, M, "list longer than its limit");
  v.clear();
  v.reserve(n);
  for (size_t i = 0; i < n && !r.bad(); ++i) get(r, v.emplace_back());
}
// A struct may add `bool valid() const` for rules beyond its fields' own limits.
template <Tied T>
void get(Reader& r, T& v) {
  std::apply([&](auto&... f) { (get(r, f), ...); }, v.tie());
  if constexpr (requires { v.valid(); })
    if (!r.bad() && !v.valid()) r.fail("field out of range");
}

}  // namespace codec
}  // namespace dfly::cluster::proto
