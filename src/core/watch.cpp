#include "crew/detail/watch.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace crew::detail {
namespace {

struct subscription {
  std::shared_ptr<watcher> who;
  std::size_t tag = 0;
};

class fan_out;

/// The fan-out of each watched state that is not ready yet. One lock for all: watching is not
/// a hot path (waiting calls, not task submission), and a single table keeps the lifetime rules
/// simple — a fan-out leaves the table, under this lock, before it delivers and deletes itself.
struct table {
  std::mutex mu;
  std::unordered_map<const state_base*, fan_out*> by_state;  // guarded by mu
};

table& the_table() {
  static table* t = new table;  // never destroyed: continuations may fire during exit
  return *t;
}

class fan_out final : public continuation {
 public:
  std::vector<subscription> subs;  // guarded by the table's mu

  void on_ready(state_base& state) noexcept override {
    std::vector<subscription> mine;
    {
      table& t = the_table();
      std::lock_guard lock{t.mu};
      t.by_state.erase(&state);
      mine = std::move(subs);
    }
    for (subscription& s : mine) s.who->on_ready(s.tag);
    delete this;
    // The reference taken in watch(): the completing party holds another one during publish(),
    // so this never destroys the state under its own feet.
    state.release();
  }
};

}  // namespace

void watch(state_base& state, std::shared_ptr<watcher> w, std::size_t tag) {
  fan_out* fresh = nullptr;
  {
    table& t = the_table();
    std::lock_guard lock{t.mu};
    if (!state.is_ready()) {
      auto it = t.by_state.find(&state);
      if (it != t.by_state.end()) {
        it->second->subs.push_back({std::move(w), tag});
        return;
      }
      fresh = new fan_out;
      fresh->subs.push_back({std::move(w), tag});
      // Keeps the state alive while it is in the table, so that its address cannot be reused
      // by another state that would find this fan-out. (A state destroyed unready would
      // otherwise leave it behind; every executor completes every state it makes.)
      state.add_ref();
      t.by_state.emplace(&state, fresh);
    }
  }
  if (fresh == nullptr) {
    w->on_ready(tag);  // ready already
    return;
  }
  // Outside the lock: a state that became ready meanwhile runs the fan-out from here, and its
  // on_ready takes the lock.
  state.set_continuation(fresh);
}

void unwatch(state_base& state, const watcher* w) noexcept {
  table& t = the_table();
  std::lock_guard lock{t.mu};
  auto it = t.by_state.find(&state);
  if (it == t.by_state.end()) return;
  auto& subs = it->second->subs;
  subs.erase(std::remove_if(subs.begin(), subs.end(),
                            [w](const subscription& s) { return s.who.get() == w; }),
             subs.end());
}

}  // namespace crew::detail
