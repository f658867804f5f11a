#include "http/http.h"

#include <charconv>

#include "core/log.h"
#include "http/request_scope.h"

namespace app {

Reply json_reply(int status, const nlohmann::json& body) {
  Reply r;
  r.status = status;
  // Replace invalid UTF-8 rather than throw: echoed input must never crash a reply.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Reply no_content() {
  Reply r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Reply problem(int status, const std::string& slug, const std::string& title,
              const std::string& detail) {
  Reply r = json_reply(
      status,
      {{"type", "/problems/" + slug}, {"title", title}, {"status", status}, {"detail", detail}});
  r.content_type = kProblemType;
  return r;
}

Reply problem_for(const core::Status& status) {
  switch (status.code()) {
    case core::Code::kOk:
      return problem(500, "internal", "Internal error", "a success was reported as an error");
    case core::Code::kInvalid:
      return problem(422, "invalid", "Invalid request", status.message());
    case core::Code::kNotFound:
      return problem(404, "not-found", "Not found", status.message());
    case core::Code::kConflict:
      return problem(409, "conflict", "Conflict", status.message());
    case core::Code::kBusy:
      return problem(409, "busy", "Database busy",
                     "another request is being processed at this moment")
          .header("Retry-After", "1");
    case core::Code::kStorageFull:
      return problem(507, "storage-full", "Insufficient storage",
                     "the database has no space left; nothing was written");
    case core::Code::kUnavailable:
      return problem(503, "unavailable", "Service unavailable", status.message())
          .header("Retry-After", "1");
    case core::Code::kInternal:
      break;
  }
  // The message of an internal error can carry storage details: log it here,
  // once per reply, with the request id the client got in X-Request-Id (empty
  // off a request thread), but answer with a generic detail.
  core::log::error("internal_error",
                   {{"request_id", request_scope().request_id}, {"message", status.message()}});
  return problem(500, "internal", "Internal error",
                 "the server failed to process the request; it was logged");
}

void send(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
  if (!reply.content_type.empty()) {
    res.set_content(reply.body, reply.content_type.c_str());
  } else {
    res.body.clear();
  }
}

namespace {

bool is_json_content_type(const std::string& ct) {
  // media type up to ';', case-insensitive: application/json or application/<x>+json.
  std::string media = ct.substr(0, ct.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (media == "application/json") return true;
  return media.rfind("application/", 0) == 0 && media.size() > 5 &&
         media.compare(media.size() - 5, 5, "+json") == 0;
}

// Deepest array/object nesting accepted in a body. nlohmann's parser is
// iterative, but destroying and dumping a json value recurse, so a 64 KiB body
// of '[' would otherwise cost ~64k stack frames.
constexpr int kMaxJsonDepth = 64;

// True when brackets outside strings nest deeper than kMaxJsonDepth. A plain
// scan: the parser that follows rejects whatever is not JSON anyway.
bool nests_too_deep(const std::string& body) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

JsonBody parse_json_object(const httplib::Request& req) {
  JsonBody out;
  const std::string ct = req.get_header_value("Content-Type");
  if (!is_json_content_type(ct)) {
    out.error = problem(415, "unsupported-media-type", "Unsupported media type",
                        "send the body as application/json");
    return out;
  }
  if (nests_too_deep(req.body)) {
    out.error = problem(400, "malformed-json", "Malformed JSON",
                        "the body nests arrays or objects deeper than " +
                            std::to_string(kMaxJsonDepth) + " levels");
    return out;
  }
  out.value = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (out.value.is_discarded()) {
    out.error = problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON");
  } else if (!out.value.is_object()) {
    out.error = problem(400, "malformed-json", "Malformed JSON", "the body must be a JSON object");
  }
  return out;
}

std::optional<std::int64_t> parse_id(const std::string& text) {
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || v <= 0) return std::nullopt;
  return v;
}

}  // namespace app
