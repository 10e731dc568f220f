// Asymmetric multiprocessing: three roles in their own processes — one answers requests, one
// runs analytics over what was served, one does background jobs — supervised by a
// crew::process_group. This program (the client) sends requests while it kills each role in
// turn with SIGKILL: the killed role is restarted, the others never notice, and every request is
// answered (a request lost with a killed "requests" process is sent again after a timeout).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include <crew/crew.hpp>

using namespace std::chrono_literals;

struct request {
  int id = 0;
  int value = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, value);
  }
};

int main() {
  // Made before start(): every role inherits them.
  auto requests = crew::shared_queue<request>::create(1 << 16);
  auto replies = crew::shared_queue<request>::create(1 << 16);
  auto served = crew::shared_counter::create();
  auto analysed = crew::shared_counter::create();
  auto jobs_done = crew::shared_counter::create();

  crew::process_group group{
      {.strategy = crew::restart_strategy::one_for_one, .max_restarts = 3, .restart_window = 5s}};
  group.add("requests",
            [&](crew::role_context& ctx) {
              ctx.ready();
              while (auto r = requests.pop()) {
                replies.push({r->id, r->value * r->value});
                ++served;
              }
            },
            {.await_ready = true});
  group.add("analytics",
            [&](crew::role_context& ctx) {
              ctx.ready();
              for (;;) {
                analysed.fetch_add(served.load() > analysed.load() ? 1 : 0);
                std::this_thread::sleep_for(1ms);
              }
            },
            {.await_ready = true});
  group.add("background",
            [&](crew::role_context& ctx) {
              ctx.ready();
              for (;;) {
                ++jobs_done;
                std::this_thread::sleep_for(5ms);
              }
            },
            {.await_ready = true});
  group.start();

  constexpr int total = 300;
  const char* victims[] = {"analytics", "background", "requests"};
  int resent = 0;
  long long sum = 0;
  for (int id = 0; id < total; ++id) {
    if (id % 100 == 50) ::kill(group.pid(victims[id / 100]), SIGKILL);
    requests.push({id, id});
    for (;;) {
      auto reply = replies.pop_for(500ms);
      if (reply && reply->id == id) {
        sum += reply->value;
        break;
      }
      if (!reply) {  // lost with a killed process: ask again
        ++resent;
        requests.push({id, id});
      }
    }
  }
  group.stop();  // in reverse order: background, analytics, requests

  std::printf("answered %d of %d requests, sum of squares %lld\n", total, total, sum);
  for (const auto& role : group.status())
    std::printf("%s: started %u times, last end: %s\n", role.name.c_str(), role.starts,
                role.last_exit.c_str());
  std::printf("(%d requests sent again after a timeout; %lld background jobs ran)\n", resent,
              static_cast<long long>(jobs_done.load()));
  return 0;
}
