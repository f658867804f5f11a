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
// Adding a kind is one function and one line in register_builtin_handlers().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"

namespace db {
class Tx;
}

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

struct Handler {
  std::function<core::Status(const Job&)> perform;                           // may be empty
  std::function<core::Status(const Job&, db::Tx&, core::Millis now)> apply;  // may be empty
};

// Not thread-safe to modify; built at start-up, then only read.
class Registry {
 public:
  void add(std::string kind, Handler handler) { handlers_[std::move(kind)] = std::move(handler); }
  const Handler* find(const std::string& kind) const {
    auto it = handlers_.find(kind);
    return it == handlers_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, Handler> handlers_;
};

// The kinds API.md lists that exist so far (send_welcome_email ...).
void register_builtin_handlers(Registry& registry);

}  // namespace jobs
