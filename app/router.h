// app::Router: the route table over cpp-httplib.
//
// It remembers every (method, pattern) it registers, so the server's error
// hook can tell an unknown route (404) from a known route asked with the
// wrong method (405 + Allow). Write routes (POST, PUT, DELETE) are registered
// through write(), which hands the handler a WriteContext: the only way a
// route writes, and the seam where the idempotency layer stores the reply in
// the same transaction as the change.
#pragma once

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include <httplib.h>

#include "app/http.h"
#include "db/database.h"

namespace app {

class WriteContext;

using ReadHandler = std::function<Reply(const httplib::Request&)>;
using WriteHandler = std::function<Reply(const httplib::Request&, WriteContext&)>;
using Phase = std::function<Reply(db::Tx&)>;

// Wraps a write route's phase. The default runs the phase in one
// Database::write; the idempotency layer installs its own.
class WriteContext {
 public:
  WriteContext(db::Database& db, const httplib::Request& req) : db_(db), req_(req) {}
  virtual ~WriteContext() = default;
  WriteContext(const WriteContext&) = delete;
  WriteContext& operator=(const WriteContext&) = delete;

  // Runs `phase` in one IMMEDIATE transaction and returns its reply. A reply
  // of 5xx rolls back; any other commits. A storage failure (busy, full,
  // internal) rolls back and becomes its problem reply.
  virtual Reply transact(const Phase& phase);

  // True when the client sent an Idempotency-Key (replays are then answered by
  // the idempotency layer, and handlers must not take read-only shortcuts that
  // would skip storing the reply).
  virtual bool has_idempotency_key() const { return false; }

  db::Database& db() noexcept { return db_; }
  const httplib::Request& request() const noexcept { return req_; }

 protected:
  db::Database& db_;
  const httplib::Request& req_;
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
