// HTTP building blocks shared by every route: the Reply value a handler
// returns, RFC 9457 problem documents, JSON body parsing with the API's
// 400/413/415 rules, and the one mapping from core::Status to HTTP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/status.h"

namespace app {

inline constexpr char kJsonType[] = "application/json; charset=utf-8";
inline constexpr char kProblemType[] = "application/problem+json";

// What a handler answers. Plain data, so the idempotency layer can store and
// replay it byte for byte.
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = kJsonType;
  std::vector<std::pair<std::string, std::string>> headers;

  Reply& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

Reply json_reply(int status, const nlohmann::json& body);
Reply no_content();

// {"type": "/problems/<slug>", "title", "status", "detail"}.
Reply problem(int status, const std::string& slug, const std::string& title,
              const std::string& detail);

// The one place a core::Status becomes HTTP: invalid 422, not found 404,
// conflict 409, busy 409 /problems/busy + Retry-After, storage full 507,
// unavailable 503, internal 500.
Reply problem_for(const core::Status& status);

// Writes a Reply into cpp-httplib's response.
void send(httplib::Response& res, const Reply& reply);

// Parses a JSON object body: 415 when the Content-Type is not JSON, 400 when
// the body is not JSON or not an object. Size (413) is enforced earlier, by
// the server's payload limit.
struct JsonBody {
  nlohmann::json value;
  std::optional<Reply> error;
};
JsonBody parse_json_object(const httplib::Request& req);

// A positive 64-bit id from a path segment, or nullopt.
std::optional<std::int64_t> parse_id(const std::string& text);

}  // namespace app
