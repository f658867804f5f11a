// app::Router: the route table over cpp-httplib.
//
// It remembers every (method, pattern) it registers, so the server's error
// hook can tell an unknown route (404) from a known route asked with the
// wrong method (405 + Allow). Write routes (POST, PUT, DELETE) are registered
// through write(), which hands the handler a WriteContext: the only way a
// route writes, and the seam where the key engine (workflow/) stores the
// reply in the same transaction as the change.
#pragma once

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include <httplib.h>

#include "db/database.h"
#include "http/http.h"
#include "workflow/atomic_phase.h"
#include "workflow/key_engine.h"

namespace app {

class WriteContext;

using ReadHandler = std::function<Reply(const httplib::Request&)>;
using WriteHandler = std::function<Reply(const httplib::Request&, WriteContext&)>;
// A write route's phase: a reply commits (and, with an Idempotency-Key, is
// stored with the key); an error Status rolls back and becomes its problem
// reply (a failure: the client's retry runs afresh). A refusal the client
// must get again is a reply: refusal_or_failure.
using Phase = std::function<core::Result<Reply>(db::Tx&)>;

// A service's error inside a phase, as the phase returns it: a refusal
// (invalid, not found, conflict; workflow::is_refusal) is the request's own
// answer, committed and stored like any reply; any other error rolls back.
core::Result<Reply> refusal_or_failure(const core::Status& status);

// What a write route writes through: the request's key, when it sent one,
// and the one workflow::atomic_phase that runs its phase. Made by the
// router's write layer (http/idempotency.h), one per request.
class WriteContext {
 public:
  // `key` and `keys` are null for a request without an Idempotency-Key.
  WriteContext(db::Database& db, const httplib::Request& req,
               const workflow::KeyRequest* key = nullptr, const workflow::KeyEngine* keys = nullptr)
      : db_(db), req_(req), key_(key), keys_(keys) {}
  // Adds the write attempts this request made to its log line.
  ~WriteContext();
  WriteContext(const WriteContext&) = delete;
  WriteContext& operator=(const WriteContext&) = delete;

  // Runs `phase` as one atomic phase (one IMMEDIATE transaction). With a
  // key, the key is opened in that transaction (insert-or-nothing, then
  // lock) and finished with the reply; a replay, mismatch or in-use answer
  // found there is returned instead and the phase does not run. A storage
  // failure (busy, full, internal) rolls back and becomes its problem reply.
  Reply transact(const Phase& phase);

  // True when the client sent an Idempotency-Key (replays are then answered by
  // the idempotency layer, and handlers must not take read-only shortcuts that
  // would skip storing the reply).
  bool has_idempotency_key() const noexcept { return key_ != nullptr; }
  const workflow::KeyRequest* key() const noexcept { return key_; }
  const workflow::KeyEngine* keys() const noexcept { return keys_; }

  // What the key answered inside a transaction (kProceed when the request
  // ran), for the layer's metrics.
  workflow::KeyAnswer answer() const noexcept { return answer_; }
  void set_answer(workflow::KeyAnswer answer) noexcept { answer_ = answer; }
  workflow::Attempts& attempts() noexcept { return attempts_; }

  db::Database& db() noexcept { return db_; }
  const httplib::Request& request() const noexcept { return req_; }

 private:
  db::Database& db_;
  const httplib::Request& req_;
  const workflow::KeyRequest* key_;
  const workflow::KeyEngine* keys_;
  workflow::KeyAnswer answer_ = workflow::KeyAnswer::kProceed;
  workflow::Attempts attempts_;
};

class Router {
 public:
  Router(httplib::Server& server, db::Database& db) : server_(server), db_(db) {}

  void get(const std::string& pattern, ReadHandler handler);
  void post(const std::string& pattern, WriteHandler handler);
  void put(const std::string& pattern, WriteHandler handler);
  void del(const std::string& pattern, WriteHandler handler);

  // Methods registered for routes whose pattern matches `path` (for Allow).
  std::vector<std::string> allowed_methods(const std::string& path) const;
  std::vector<std::pair<std::string, std::string>> routes() const;  // (method, pattern)

  // Installs the wrapper that every write route runs through. Set once,
  // before the server starts; the default makes a plain WriteContext.
  using WriteLayer =
      std::function<Reply(const httplib::Request&, const WriteHandler&, db::Database&)>;
  void set_write_layer(WriteLayer layer) { write_layer_ = std::move(layer); }

 private:
  void add_write(const std::string& method, const std::string& pattern, WriteHandler handler);
  struct Route {
    std::string method;
    std::string pattern;
    std::regex re;
  };
  httplib::Server& server_;
  db::Database& db_;
  std::vector<Route> routes_;
  WriteLayer write_layer_;
};

}  // namespace app
