#include "http/idempotency.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "http/auth.h"

namespace app {
namespace {

constexpr char kKeyMismatch[] = "idempotency-key-mismatch";
constexpr char kKeyInUse[] = "idempotency-key-in-use";

}  // namespace

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string request_fingerprint(const std::string& method, const std::string& target,
                                const std::string& body) {
  // Length-prefixed parts, so no two different requests hash the same input.
  std::string input;
  for (const std::string* part : {&method, &target, &body}) {
    input += std::to_string(part->size());
    input += ':';
    input += *part;
  }
  return sha256_hex(input);
}

std::string client_scope(const httplib::Request& req) {
  // Read as the admin check reads it (http/auth.h): "bearer x" and "Bearer  x"
  // are one client.
  const std::string auth = req.get_header_value("Authorization");
  if (const auto token = bearer_token(auth)) return "bearer:" + sha256_hex(std::string(*token));
  return kAnonymousScope;
}

bool valid_idempotency_key(const std::string& key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

db::StoredResponse to_stored(const Reply& reply) {
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [name, value] : reply.headers) headers.push_back({name, value});
  return {reply.status, reply.content_type,
          headers.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), reply.body};
}

Reply replay(const db::StoredResponse& stored) {
  Reply r = from_stored(stored);
  r.header("Idempotent-Replayed", "true");
  return r;
}

Reply from_stored(const db::StoredResponse& stored) {
  Reply r;
  r.status = stored.status;
  r.content_type = stored.content_type;
  r.body = stored.body;
  auto headers = nlohmann::json::parse(stored.headers_json, nullptr, false);
  if (headers.is_array()) {
    for (const auto& h : headers) {
      if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string()) {
        r.header(h[0].get<std::string>(), h[1].get<std::string>());
      }
    }
  }
  return r;
}

Reply idempotency_key_in_use() {
  return problem(409, kKeyInUse, "Idempotency key in use",
                 "a request with this Idempotency-Key is still being processed; retry later "
                 "with the same key")
      .header("Retry-After", "1");
}

Reply reply_for(const workflow::OpenedKey& key, const KeyRef& ref) {
  const db::IdempotencyKeyRow& row = key.row;
  switch (key.answer) {
    case workflow::KeyAnswer::kMismatch: {
      // Anonymous clients share one key space, so the detail says what
      // differs and never echoes the other request (its path may hold an
      // email).
      const char* what = row.method != ref.method ? "a different method"
                         : row.path != ref.path   ? "a different path"
                                                  : "a different query or body";
      return problem(422, kKeyMismatch, "Idempotency key mismatch",
                     std::string("this Idempotency-Key was used with another request (") + what +
                         "); use a new key for a new request");
    }
    case workflow::KeyAnswer::kReplay:
      if (row.response) return replay(*row.response);
      break;
    case workflow::KeyAnswer::kInUse:
      return idempotency_key_in_use();
    case workflow::KeyAnswer::kProceed:
      break;
  }
  return problem_for(core::Status::internal(std::string("no reply for a key that answered ") +
                                            workflow::answer_name(key.answer)));
}

core::metrics::Counter& idempotency_conflicts(std::string_view outcome) {
  return core::metrics::global()
      .counter_family("aftercommit_idempotency_conflicts_total",
                      "Keyed writes refused by their Idempotency-Key record, by outcome: "
                      "mismatch (422, another request used the key), in_use (409, still "
                      "being processed).",
                      {"outcome"})
      .with({std::string(outcome)});
}

void count_key_answer(workflow::KeyAnswer answer) {
  static core::metrics::Counter& replays = core::metrics::idempotent_replays();
  static core::metrics::Counter& mismatches = idempotency_conflicts("mismatch");
  static core::metrics::Counter& in_use = idempotency_conflicts("in_use");
  switch (answer) {
    case workflow::KeyAnswer::kReplay:
      replays.inc();
      break;
    case workflow::KeyAnswer::kMismatch:
      mismatches.inc();
      break;
    case workflow::KeyAnswer::kInUse:
      in_use.inc();
      break;
    case workflow::KeyAnswer::kProceed:
      break;
  }
}

Router::WriteLayer make_idempotency_layer(const core::Clock& clock, core::Millis lock_timeout_ms) {
  return [keys = workflow::KeyEngine(clock, lock_timeout_ms)](
             const httplib::Request& req, const WriteHandler& handler, db::Database& db) -> Reply {
    if (!req.has_header("Idempotency-Key")) {
      WriteContext plain(db, req);
      return handler(req, plain);
    }
    const std::string key = req.get_header_value("Idempotency-Key");
    if (!valid_idempotency_key(key)) {
      return problem(400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                     "the Idempotency-Key header must be 1 to 255 visible ASCII characters "
                     "(no spaces or control characters)");
    }
    const KeyRef ref{client_scope(req), key, req.method, req.path,
                     request_fingerprint(req.method, req.target, req.body)};
    std::optional<workflow::OpenedKey> early;
    core::Status st = db.read([&](db::Conn& c) {
      early = keys.look(c, ref);
      return core::Status::ok();
    });
    if (!st) return problem_for(st);
    if (early) {
      count_key_answer(early->answer);
      return reply_for(*early, ref);
    }
    WriteContext keyed(db, req, &ref, &keys);
    Reply reply = handler(req, keyed);
    count_key_answer(keyed.answer());  // a replay or refusal found inside the transaction
    return reply;
  };
}

}  // namespace app
