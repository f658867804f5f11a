// tools::FakeGateway: a payment gateway shipped for demos and tests, a
// development tool outside the production program: its own build target
// (aftercommit_fake_gateway, linked into the server for `--fake-gateway`, and
// the standalone `aftercommit-fake-gateway` several server nodes can share),
// its own listener and port, its own storage (db/sqlite/charge_store.h, a
// SQLite file of its own, never the production database), reached by
// checkout over the network like any other gateway. It sits in http/ because
// only the HTTP layer speaks HTTP, but belongs to the tool's target, never to
// the server's own routes.
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
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/status.h"
#include "db/sqlite/charge_store.h"

namespace tools {

struct FakeGatewayOptions {
  std::string bind = "127.0.0.1";
  int port = 0;  // 0 = any free port
  core::Millis slow_answer_ms = 3000;
  // The store's file (created if absent). Kept across restarts: a charge
  // answered once is answered the same way after any crash.
  std::string store_path;
};

class FakeGateway {
 public:
  FakeGateway(const core::Clock& clock, FakeGatewayOptions options);
  ~FakeGateway();
  FakeGateway(const FakeGateway&) = delete;
  FakeGateway& operator=(const FakeGateway&) = delete;

  // Opens the store, binds and starts serving on a background thread;
  // returns the port. kUnavailable naming the store or the address when
  // either cannot be had.
  [[nodiscard]] core::Result<int> start();
  // Stops serving (wakes slow answers first); thread-safe, idempotent.
  void stop();
  std::string url() const;

 private:
  void handle_charge(const httplib::Request& req, httplib::Response& res);
  void handle_list(const httplib::Request& req, httplib::Response& res);
  // Sleeps up to `ms`, returning early when stopping.
  void slow_answer(core::Millis ms);

  std::unique_ptr<ChargeStore> store_;  // set by start()
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

}  // namespace tools
