// The steering program's generator (theory in tap_steering.h).
//
// Register use (eBPF socket filter; LD_ABS/LD_IND read the packet through r6 = ctx and
// leave their value in r0, clobbering r1-r5): r7 = IPv4 header length in bytes, r8 =
// 1 if the ports are hashed (TCP or UDP, not a fragment), r9 = the hash so far.
// The Toeplitz hash is linear: it is the XOR of one 32-bit key window per set input
// bit, and the window of bit i is the hash of an input holding only bit i, so the
// windows come from the same hasher net/ip uses and cannot drift from it.
#include "net/dev/tap_steering.h"

#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "net/flow/toeplitz.h"

namespace dfly::net {
namespace {

constexpr int kNet = SKF_NET_OFF;  // loads relative to the network (IPv4) header

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

class Emitter {
 public:
  size_t pc() const { return code_.size(); }
  void mov_imm(int dst, int32_t v) { put(insn(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, v)); }
  void mov_reg(int dst, int src) { put(insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)); }
  void alu_imm(int op, int dst, int32_t v) { put(insn(BPF_ALU | op | BPF_K, dst, 0, 0, v)); }
  void ld_abs(int size, int32_t off) { put(insn(BPF_LD | BPF_ABS | size, 0, 0, 0, off)); }
  void ld_ind(int size, int src, int32_t off) {
    put(insn(BPF_LD | BPF_IND | size, 0, src, 0, off));
  }
  void ldx_ctx_word(int dst, int16_t off) { put(insn(BPF_LDX | BPF_MEM | BPF_W, dst, 6, off, 0)); }
  // A conditional or plain jump to a label fixed later with bind().
  size_t jmp_imm(int op, int dst, int32_t v) {
    put(insn(BPF_JMP | op | BPF_K, dst, 0, 0, v));
    return pc() - 1;
  }
  size_t ja() {
    put(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
    return pc() - 1;
  }
  void bind(size_t at, size_t target) { code_[at].off = int16_t(target - at - 1); }
  void exit() { put(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)); }
  const std::vector<bpf_insn>& code() const { return code_; }

 private:
  void put(bpf_insn i) { code_.push_back(i); }
  std::vector<bpf_insn> code_;
};

// r9 ^= window(first_bit + j) for every set bit j of r0's low `bits` bits (bit
// bits-1 is the first input bit: loads are in host order, hashed in network order).
void hash_bits(Emitter& e, const Toeplitz& t, int first_bit, int bits) {
  for (int j = 0; j < bits; j++) {
    int bit = first_bit + j;
    uint8_t in[Toeplitz::kMaxInput] = {};
    in[bit / 8] = uint8_t(0x80u >> (bit % 8));
    uint32_t window = t.hash_bytes(in);
    size_t set = e.jmp_imm(BPF_JSET, 0, int32_t(1u << (bits - 1 - j)));
    size_t skip = e.ja();
    e.bind(set, e.pc());
    e.alu_imm(BPF_XOR, 9, int32_t(window));
    e.bind(skip, e.pc());
  }
}

long bpf(int cmd, bpf_attr& attr) {
  return syscall(SYS_bpf, cmd, &attr, sizeof attr);
}

}  // namespace

Result<TapSteering> TapSteering::load(std::span<const uint8_t> queue_of_owner) {
  if (queue_of_owner.empty() || queue_of_owner.size() > 128)
    return Error(EINVAL, "tap steering: 1 to 128 flow owners");
  static const Toeplitz hasher = Toeplitz::symmetric();  // as net/ip's input
  Emitter e;
  e.mov_reg(6, 1);  // LD_ABS/LD_IND need the context in r6
  e.ldx_ctx_word(0, int16_t(offsetof(__sk_buff, protocol)));
  size_t not_ip = e.jmp_imm(BPF_JNE, 0, htons(0x0800));
  // Ported: TCP (6) or UDP (17) and neither MF nor a fragment offset.
  e.mov_imm(8, 0);
  e.ld_abs(BPF_B, kNet + 9);
  size_t tcp = e.jmp_imm(BPF_JEQ, 0, 6);
  size_t udp = e.jmp_imm(BPF_JEQ, 0, 17);
  size_t unported = e.ja();
  e.bind(tcp, e.pc());
  e.bind(udp, e.pc());
  e.ld_abs(BPF_H, kNet + 6);
  size_t frag = e.jmp_imm(BPF_JSET, 0, 0x3fff);
  e.mov_imm(8, 1);
  e.bind(frag, e.pc());
  e.bind(unported, e.pc());
  e.ld_abs(BPF_B, kNet + 0);  // header length for the port loads
  e.mov_reg(7, 0);
  e.alu_imm(BPF_AND, 7, 0x0f);
  e.alu_imm(BPF_LSH, 7, 2);
  e.mov_imm(9, 0);
  e.ld_abs(BPF_W, kNet + 12);  // saddr: input bits 0..31
  hash_bits(e, hasher, 0, 32);
  e.ld_abs(BPF_W, kNet + 16);  // daddr: 32..63
  hash_bits(e, hasher, 32, 32);
  size_t no_ports = e.jmp_imm(BPF_JEQ, 8, 0);
  e.ld_ind(BPF_H, 7, kNet + 0);  // sport: 64..79
  hash_bits(e, hasher, 64, 16);
  e.ld_ind(BPF_H, 7, kNet + 2);  // dport: 80..95
  hash_bits(e, hasher, 80, 16);
  e.bind(no_ports, e.pc());
  // The owner as cpu_of(): (hash & 127) % owners; then its queue.
  e.alu_imm(BPF_AND, 9, 127);
  e.alu_imm(BPF_MOD, 9, int32_t(queue_of_owner.size()));
  std::vector<size_t> done;
  for (size_t i = 0; i < queue_of_owner.size(); i++) {
    e.mov_imm(0, queue_of_owner[i]);
    done.push_back(e.jmp_imm(BPF_JEQ, 9, int32_t(i)));
  }
  e.bind(not_ip, e.pc());
  e.mov_imm(0, 0);
  for (size_t d : done) e.bind(d, e.pc());
  e.exit();

  static char license[] = "Dual BSD/GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(e.code().data());
  attr.insn_cnt = uint32_t(e.code().size());
  attr.license = reinterpret_cast<uint64_t>(license);
  // The verifier gives up with EAGAIN when a signal arrives meanwhile: try again.
  long fd = -1;
  for (int tries = 0; tries < 5; tries++) {
    fd = bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0 || errno != EAGAIN) break;
  }
  if (fd < 0) {
    int err = errno;
    // Load once more with the verifier's log, for the reason (its last line).
    std::string log(1 << 20, '\0');
    attr.log_buf = reinterpret_cast<uint64_t>(log.data());
    attr.log_size = uint32_t(log.size());
    attr.log_level = 1;
    fd = bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0) return TapSteering(int(fd));  // the failure was passing after all
    log.resize(strnlen(log.data(), log.size()));
    while (!log.empty() && log.back() == '\n') log.pop_back();
    size_t cut = log.rfind('\n');
    std::string last = cut == std::string::npos ? log : log.substr(cut + 1);
    return Error(err, "tap steering: loading the eBPF program: " + std::string(strerror(err)) +
                          (last.empty() ? "" : " (verifier: " + last + ")"));
  }
  return TapSteering(int(fd));
}

Result<uint32_t> TapSteering::run(std::span<const uint8_t> frame) const {
  bpf_attr attr{};
  attr.test.prog_fd = uint32_t(fd_);
  attr.test.data_in = reinterpret_cast<uint64_t>(frame.data());
  attr.test.data_size_in = uint32_t(frame.size());
  attr.test.repeat = 1;
  if (bpf(BPF_PROG_TEST_RUN, attr) != 0)
    return Error(errno, "tap steering: test run: " + std::string(strerror(errno)));
  return attr.test.retval;
}

TapSteering& TapSteering::operator=(TapSteering&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

TapSteering::~TapSteering() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace dfly::net
