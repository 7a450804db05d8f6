// Theory of operation: see lincheck.h. The history becomes a doubly linked list of
// call and return events in time order. Walking it, a call whose operation the
// model can apply with the recorded result is tentatively linearized: the model
// advances, the operation's two events are lifted out of the list, and the walk
// restarts at the head. Reaching a return event means its operation had to take
// effect by then and no tentative order allowed it: undo the most recent choice and
// try the next call after it. A configuration (set of linearized operations, model
// state) seen before is never explored twice, which is what keeps the search fast.
#include "cluster/check/lincheck.h"

#include <errno.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_set>

namespace dfly::cluster::check {
namespace {

struct File {
  std::shared_ptr<const std::string> bytes;
  uint64_t hash = 0;
};

// The model's state: few names, so a sorted vector; contents shared between states.
struct State {
  std::vector<std::pair<std::string, File>> files;  // sorted by name

  const File* find(const std::string& n) const {
    auto it = std::lower_bound(files.begin(), files.end(), n,
                               [](const auto& f, const std::string& k) { return f.first < k; });
    return it != files.end() && it->first == n ? &it->second : nullptr;
  }
  void put(const std::string& n, File f) {
    auto it = std::lower_bound(files.begin(), files.end(), n,
                               [](const auto& e, const std::string& k) { return e.first < k; });
    if (it != files.end() && it->first == n) {
      it->second = std::move(f);
    } else {
      files.insert(it, {n, std::move(f)});
    }
  }
  void erase(const std::string& n) {
    files.erase(std::remove_if(files.begin(), files.end(), [&](auto& e) { return e.first == n; }),
                files.end());
  }
  uint64_t hash() const {
    uint64_t h = 1469598103934665603ull;
    for (auto& [n, f] : files) {
      h = (h ^ std::hash<std::string>{}(n)) * 1099511628211ull;
      h = (h ^ f.hash) * 1099511628211ull;
    }
    return h;
  }
};

File make_file(std::string s) {
  File f;
  f.hash = std::hash<std::string>{}(s);
  f.bytes = std::make_shared<const std::string>(std::move(s));
  return f;
}

// Applies op to s if the model's result equals the recorded one.
bool apply(const State& s, const Op& op, State& out) {
  if (op.kind == OpKind::kReplace) {
    if (op.err != 0) return false;
    out = s;
    out.put(op.name, make_file(op.data));
    return true;
  }
  const File* f = s.find(op.name);
  if (!f) {  // every operation on a missing name fails with ENOENT, changing nothing
    if (op.err != ENOENT) return false;
    out = s;
    return true;
  }
  if (op.err != 0) return false;
  const std::string& b = *f->bytes;
  switch (op.kind) {
    case OpKind::kRead: {
      std::string want = op.off >= b.size() ? std::string() : b.substr(op.off, op.len);
      if (want != op.data) return false;
      out = s;
      return true;
    }
    case OpKind::kStat:
      if (b.size() != op.size) return false;
      out = s;
      return true;
    case OpKind::kWrite: {
      std::string n = b;
      if (n.size() < op.off + op.data.size()) n.resize(op.off + op.data.size(), '\0');
      std::copy(op.data.begin(), op.data.end(), n.begin() + long(op.off));
      out = s;
      out.put(op.name, make_file(std::move(n)));
      return true;
    }
    case OpKind::kTruncate: {
      std::string n = b;
      n.resize(op.len, '\0');
      out = s;
      out.put(op.name, make_file(std::move(n)));
      return true;
    }
    case OpKind::kReplace:
      return false;  // handled above
    case OpKind::kRename:
      out = s;
      if (op.to != op.name) {
        File moved = *f;
        out.erase(op.name);
        out.put(op.to, std::move(moved));
      }
      return true;
  }
  return false;
}

struct Entry {
  bool is_call = false;
  size_t id = 0;  // index into the history
  uint64_t time = 0;
  Entry* prev = nullptr;
  Entry* next = nullptr;
  Entry* match = nullptr;  // a call's return
};

void lift(Entry* e) {
  e->prev->next = e->next;
  if (e->next) e->next->prev = e->prev;
  Entry* r = e->match;
  r->prev->next = r->next;
  if (r->next) r->next->prev = r->prev;
}

void unlift(Entry* e) {
  Entry* r = e->match;
  r->prev->next = r;
  if (r->next) r->next->prev = r;
  e->prev->next = e;
  if (e->next) e->next->prev = e;
}

struct Config {
  std::vector<uint64_t> bits;
  uint64_t state;
  bool operator==(const Config&) const = default;
};
struct ConfigHash {
  size_t operator()(const Config& c) const {
    uint64_t h = c.state;
    for (uint64_t w : c.bits) h = (h ^ w) * 0x100000001b3ull;
    return size_t(h);
  }
};

std::string printable(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 24; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 32 && c < 127) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 24) out += "...";
  return out;
}

}  // namespace

std::string describe(const Op& op) {
  std::ostringstream o;
  o << "p" << op.process << " [" << op.call << ", " << op.ret << "] ";
  switch (op.kind) {
    case OpKind::kWrite:
      o << "write(" << op.name << ", off " << op.off << ", " << op.data.size() << " bytes \""
        << printable(op.data) << "\")";
      break;
    case OpKind::kRead:
      o << "read(" << op.name << ", off " << op.off << ", len " << op.len << ") -> "
        << op.data.size() << " bytes \"" << printable(op.data) << "\"";
      break;
    case OpKind::kTruncate:
      o << "truncate(" << op.name << ", " << op.len << ")";
      break;
    case OpKind::kStat:
      o << "stat(" << op.name << ") -> size " << op.size;
      break;
    case OpKind::kRename:
      o << "rename(" << op.name << ", " << op.to << ")";
      break;
    case OpKind::kReplace:
      o << "replace(" << op.name << ", " << op.data.size() << " bytes \"" << printable(op.data)
        << "\")";
      break;
  }
  if (op.err) o << " = errno " << op.err;
  return o.str();
}

Verdict check(const std::vector<Op>& history,
              const std::vector<std::pair<std::string, std::string>>& initial, uint64_t max_steps) {
  Verdict v;
  const size_t n = history.size();
  std::vector<Entry> events(2 * n);
  for (size_t i = 0; i < n; i++) {
    events[2 * i] = {true, i, history[i].call};
    events[2 * i + 1] = {false, i, std::max(history[i].ret, history[i].call)};
    events[2 * i].match = &events[2 * i + 1];
  }
  std::vector<Entry*> order;
  for (auto& e : events) order.push_back(&e);
  // At equal times calls come first: such operations count as concurrent.
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    if (a->time != b->time) return a->time < b->time;
    return a->is_call && !b->is_call;
  });
  Entry head;
  Entry* last = &head;
  for (Entry* e : order) {
    last->next = e;
    e->prev = last;
    last = e;
  }

  State state;
  for (auto& [name, bytes] : initial) state.put(name, make_file(bytes));
  std::vector<uint64_t> lin((n + 63) / 64, 0);
  std::unordered_set<Config, ConfigHash> seen;
  struct Frame {
    Entry* call;
    State before;
  };
  std::vector<Frame> stack;
  size_t deepest = 0;
  size_t stuck_at = SIZE_MAX;  // the return that ended the deepest attempt

  Entry* e = head.next;
  while (head.next) {
    if (++v.steps > max_steps) {
      v.decided = false;
      v.explanation = "search bound reached after " + std::to_string(stack.size()) + " of " +
                      std::to_string(n) + " operations";
      return v;
    }
    if (e->is_call) {
      State next;
      if (apply(state, history[e->id], next)) {
        lin[e->id / 64] |= 1ull << (e->id % 64);
        Config c{lin, next.hash()};
        if (seen.insert(std::move(c)).second) {
          stack.push_back({e, std::move(state)});
          state = std::move(next);
          lift(e);
          e = head.next;
          continue;
        }
        lin[e->id / 64] &= ~(1ull << (e->id % 64));
      }
      e = e->next;
      continue;
    }
    // A return whose operation no order placed in time: back up one choice.
    if (stack.size() >= deepest) {
      deepest = stack.size();
      stuck_at = e->id;
    }
    if (stack.empty()) break;
    Frame f = std::move(stack.back());
    stack.pop_back();
    state = std::move(f.before);
    lin[f.call->id / 64] &= ~(1ull << (f.call->id % 64));
    unlift(f.call);
    e = f.call->next;
  }
  if (!head.next) {
    v.linearizable = true;
    return v;
  }
  std::ostringstream o;
  o << "no order explains the history past " << deepest << " of " << n << " operations";
  if (stuck_at != SIZE_MAX) {
    const Op& bad = history[stuck_at];
    o << "; it cannot place: " << describe(bad) << "\noperations overlapping it:";
    int shown = 0;
    for (const Op& op : history)
      if (&op != &bad && op.call <= bad.ret && op.ret >= bad.call && shown++ < 16)
        o << "\n  " << describe(op);
  }
  v.explanation = o.str();
  return v;
}

}  // namespace dfly::cluster::check
