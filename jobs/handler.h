// Job handlers: what a job kind does, and the registry of kinds.
//
// A handler has up to two parts:
// - perform: runs outside any transaction (network calls, computation). It
//   may run more than once for one job (at-least-once execution), so it must
//   be safe to repeat or pass an idempotency key to whoever it calls.
// - apply: runs inside the one transaction that also marks the job
//   completed, so an effect in this database happens exactly once: if the
//   transaction fails, neither the effect nor the completion is written.
//
// Failures: a handler reports one by returning a non-ok Status (an exception
// thrown by it counts the same). The job is retried with backoff until its
// max_attempts, except for Code::kInvalid (`do_not_retry()`): bad args, or a
// receiver that refuses the request for good (a 4xx), which no retry can fix,
// so the job is discarded at once.
//
// Adding a kind is one function and one line in register_builtin_handlers():
//
//   core::Status send_sms(const Job& job, db::Tx& tx, core::Millis now) { ... }
//   registry.add("send_sms", Handler{nullptr, send_sms}, KindOptions{.max_attempts = 3});
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"

namespace db {
class Database;
class Tx;
}  // namespace db

namespace jobs {

// What a handler sees of the job it runs.
struct Job {
  std::int64_t id = 0;
  std::string kind;
  int attempt = 0;
  int max_attempts = 0;
  nlohmann::json args;
  core::Millis created_at = 0;
};

// Both parts may be called from several worker threads at once (for
// different jobs), so they must be thread-safe.
struct Handler {
  std::function<core::Status(const Job&)> perform;                           // may be empty
  std::function<core::Status(const Job&, db::Tx&, core::Millis now)> apply;  // may be empty
};

// A kind's defaults. Written to the job_kinds table at start-up
// (save_kind_defaults), so that db::stage_job applies them to every job of
// the kind staged without its own values.
struct KindOptions {
  int max_attempts = 5;
  // An attempt running longer than this is failed (and its late completion
  // fenced out). 0 = no limit: the heartbeat keeps the lease as long as the
  // handler runs.
  core::Millis timeout_ms = 60000;
};

// A failure that retrying cannot fix: the job is discarded at once.
inline core::Status do_not_retry(std::string message) {
  return core::Status::invalid(std::move(message));
}
inline bool is_retryable(const core::Status& st) noexcept {
  return st.code() != core::Code::kInvalid;
}

// Not thread-safe to modify; built at start-up, then only read.
class Registry {
 public:
  void add(std::string kind, Handler handler, KindOptions options = {}) {
    kinds_[std::move(kind)] = Entry{std::move(handler), options};
  }
  const Handler* find(const std::string& kind) const {
    auto it = kinds_.find(kind);
    return it == kinds_.end() ? nullptr : &it->second.handler;
  }
  const KindOptions* options(const std::string& kind) const {
    auto it = kinds_.find(kind);
    return it == kinds_.end() ? nullptr : &it->second.options;
  }
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [kind, entry] : kinds_) fn(kind, entry.options);
  }

 private:
  struct Entry {
    Handler handler;
    KindOptions options;
  };
  std::map<std::string, Entry> kinds_;
};

// The kinds API.md lists that exist so far (send_welcome_email ...).
void register_builtin_handlers(Registry& registry);

// Writes every registered kind's defaults to the job_kinds table (one
// transaction). Call once after registering, before serving.
[[nodiscard]] core::Status save_kind_defaults(db::Database& db, const Registry& registry);

}  // namespace jobs
