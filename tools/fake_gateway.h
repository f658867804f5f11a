// app::FakeGateway: a payment gateway the binary ships for demos and tests
// (--fake-gateway). A real HTTP service on its own listener and port, with
// its own table (gateway_charges), reached by checkout over the network like
// any other gateway.
//
// POST /v1/charges {"amount_cents", "token"} with Idempotency-Key (required):
// one charge per key, whatever happens; a repeated key answers what the first
// request got (plus Idempotent-Replayed: true), without charging again.
//   tok_visa      201 {"id": "ch_...", ...}
//   tok_declined  402 {"error": {"code": "card_declined", ...}}
//   tok_timeout   the charge is made, but the first answer for a key comes
//                 only after `slow_answer_ms` (longer than checkout's
//                 --gateway-timeout); repeats answer at once
//   tok_flaky     500 to the first call for each key (nothing charged), then
//                 as tok_visa
//   other tokens  402, declined
// GET /v1/charges[?idempotency_key=K] -> 200 {"charges": [...], "count": n}.
//
// Threads: its own cpp-httplib server and thread pool. The "first call seen"
// set of tok_flaky is in memory (a restart forgets it).
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"

namespace app {

struct FakeGatewayOptions {
  std::string bind = "127.0.0.1";
  int port = 0;  // 0 = any free port
  core::Millis slow_answer_ms = 3000;
};

class FakeGateway {
 public:
  FakeGateway(db::Database& db, const core::Clock& clock, FakeGatewayOptions options);
  ~FakeGateway();
  FakeGateway(const FakeGateway&) = delete;
  FakeGateway& operator=(const FakeGateway&) = delete;

  // Binds and starts serving on a background thread; returns the port.
  [[nodiscard]] core::Result<int> start();
  // Stops serving (wakes slow answers first); thread-safe, idempotent.
  void stop();
  std::string url() const;

 private:
  void handle_charge(const httplib::Request& req, httplib::Response& res);
  void handle_list(const httplib::Request& req, httplib::Response& res);
  // Sleeps up to `ms`, returning early when stopping.
  void slow_answer(core::Millis ms);

  db::Database& db_;
  const core::Clock& clock_;
  const FakeGatewayOptions options_;
  httplib::Server http_;
  std::thread thread_;
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;               // guarded by mu_
  std::set<std::string> flaky_failed_;  // guarded by mu_: keys tok_flaky already failed once
};

}  // namespace app
