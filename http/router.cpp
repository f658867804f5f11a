#include "http/router.h"

#include <algorithm>

#include "http/idempotency.h"
#include "http/openapi.h"
#include "http/request_scope.h"

namespace app {

core::Result<Reply> refusal_or_failure(const core::Status& status) {
  if (workflow::is_refusal(status)) return problem_for(status);
  return status;
}

WriteContext::~WriteContext() {
  request_scope().tx_attempts += attempts_.transactions;
}

Reply WriteContext::transact(const Phase& phase) {
  Reply reply;
  const workflow::KeySource source =
      key_ != nullptr ? workflow::KeySource(workflow::OpenKey{*key_, workflow::kSinglePhase})
                      : workflow::KeySource(workflow::NoKey{});
  auto done = workflow::atomic_phase(
      db_, keys_, source,
      [&](db::Tx& tx, const workflow::OpenedKey* key) -> core::Result<workflow::Outcome> {
        auto r = phase(tx);
        if (!r) return r.status();
        reply = std::move(*r);
        if (key == nullptr) return workflow::Outcome{workflow::NoOp{}};
        return workflow::Outcome{workflow::Response{to_stored(reply)}};
      },
      attempts_);
  if (!done) return problem_for(done.status());
  if (done->answer != workflow::KeyAnswer::kProceed) {
    // Finished, refused or taken by a concurrent request while this one
    // waited for the write lock: nothing was written.
    answer_ = done->answer;
    return reply_for(*done->key, *key_);
  }
  return reply;
}

void Router::get(const std::string& pattern, ReadHandler handler) {
  routes_.push_back({"GET", pattern, std::regex(pattern)});
  server_.Get(pattern, [h = std::move(handler), label = route_label("GET", pattern)](
                           const httplib::Request& req, httplib::Response& res) {
    request_scope().route = label;
    // Refused by the server's pre-routing hook (http/request_scope.h).
    if (const auto& refusal = request_scope().refusal) return send(res, *refusal);
    send(res, h(req));
  });
}

void Router::post(const std::string& pattern, WriteHandler handler) {
  add_write("POST", pattern, std::move(handler));
}
void Router::put(const std::string& pattern, WriteHandler handler) {
  add_write("PUT", pattern, std::move(handler));
}
void Router::del(const std::string& pattern, WriteHandler handler) {
  add_write("DELETE", pattern, std::move(handler));
}

void Router::add_write(const std::string& method, const std::string& pattern,
                       WriteHandler handler) {
  routes_.push_back({method, pattern, std::regex(pattern)});
  auto fn = [this, h = std::move(handler), label = route_label(method, pattern)](
                const httplib::Request& req, httplib::Response& res) {
    request_scope().route = label;  // for the log line and metrics
    // Refused by the server's pre-routing hook (http/request_scope.h).
    if (const auto& refusal = request_scope().refusal) return send(res, *refusal);
    if (write_layer_) {
      send(res, write_layer_(req, h, db_));
    } else {
      WriteContext ctx(db_, req);
      send(res, h(req, ctx));
    }
  };
  if (method == "POST") server_.Post(pattern, fn);
  if (method == "PUT") server_.Put(pattern, fn);
  if (method == "DELETE") server_.Delete(pattern, fn);
}

std::vector<std::string> Router::allowed_methods(const std::string& path) const {
  std::vector<std::string> out;
  for (const auto& r : routes_) {
    if (std::regex_match(path, r.re) && std::find(out.begin(), out.end(), r.method) == out.end()) {
      out.push_back(r.method);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

}  // namespace app
