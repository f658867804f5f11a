// tools::ChargeStore: the fake payment gateway's own storage, a SQLite file
// of its own (never the production database, whatever engine that is). A
// real gateway keeps its charges in its own system; so does this one, so
// that a crash of the server beside it (kill -9 in the torture test) never
// makes it forget a charge it answered: the file is synchronous=FULL. It is
// SQLite whatever the server's engine, so it sits in db/sqlite/ (only the
// SQLite driver's folder uses SQLite), in the tool's own target.
//
// One row per gateway idempotency key, whatever the outcome, so a replayed
// request answers what the first one did and a key is charged at most once.
//
// Threads: every method is thread-safe (one connection and its statements,
// prepared once, under a mutex: a development tool, not a hot path). Errors throw
// std::runtime_error with SQLite's message; the HTTP side answers them as 500.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace tools {

struct Charge {
  std::int64_t id = 0;
  std::string charge_id;
  std::string idempotency_key;
  std::int64_t amount_cents = 0;
  std::string token;
  std::string status;  // "succeeded" or "declined"
  core::Millis created_at = 0;
};

class ChargeStore {
 public:
  // Opens (creating it and its one table if absent) the file at `path`.
  // Throws std::runtime_error naming the path when it cannot.
  explicit ChargeStore(const std::string& path);
  ~ChargeStore();
  ChargeStore(const ChargeStore&) = delete;
  ChargeStore& operator=(const ChargeStore&) = delete;

  // Inserts `charge` unless its idempotency key is stored already (ON
  // CONFLICT DO NOTHING); either way returns the row stored under the key.
  Charge insert_if_absent(const Charge& charge, core::Millis now);
  std::optional<Charge> find_by_key(const std::string& idempotency_key);
  // Oldest first; every charge when `idempotency_key` is empty, else every
  // charge made under it exactly or under a key derived from it by checkout
  // ("<key> ac_<random>": the client's key, a space, our per-operation part).
  std::vector<Charge> list(const std::string& idempotency_key);

  const std::string& path() const noexcept { return path_; }

 private:
  std::optional<Charge> find_locked(const std::string& idempotency_key);

  const std::string path_;
  std::mutex mu_;
  // Guarded by mu_: the connection and its statements, prepared once.
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<SQLite::Statement> insert_, find_, list_all_, list_for_key_;
};

}  // namespace tools
