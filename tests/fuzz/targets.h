// Fuzz entry points, shared by the libFuzzer binaries (`make fuzz`, built with
// clang -fsanitize=fuzzer,address,undefined) and by the regression suite
// (tests/fuzz_regressions_test.cpp) that replays every file under
// tests/fuzz/regressions/<target>/ in `make test`.
//
// Each target runs the same code the server runs on untrusted bytes and
// checks properties that must hold for any input; a broken property aborts,
// which libFuzzer reports as a crash and saves as a regression input.
//
// Adding a target: a function here, a fuzz_<name>.cpp main beside it, its
// name in the Makefile's FUZZ_TARGETS, and a corpus folder. Planned: the
// Idempotency-Key parser (once it exists) and the products/anagrams/checkout
// body validators.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "app/http.h"
#include "services/email.h"

namespace fuzz {

#define FUZZ_REQUIRE(cond)                                                                   \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

// The email rules of API.md as properties of normalize_email's output.
inline void check_normalized(const std::string& e) {
  FUZZ_REQUIRE(!e.empty() && e.size() <= 254);
  FUZZ_REQUIRE(e.find('@') != std::string::npos && e.find('@') == e.rfind('@'));
  FUZZ_REQUIRE(e.find('@') >= 1 && e.find('@') <= 64);
  for (char c : e) {
    FUZZ_REQUIRE(c > 0x20 && c < 0x7f);
    FUZZ_REQUIRE(!(c >= 'A' && c <= 'Z'));
  }
  // Normalizing is idempotent.
  auto again = services::normalize_email(e);
  FUZZ_REQUIRE(again && *again == e);
}

inline void email(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto e = services::normalize_email(raw);
  if (e) check_normalized(*e);
}

// A problem reply as app/http.h promises: JSON with type/status = HTTP status.
inline void check_problem(const app::Reply& r) {
  FUZZ_REQUIRE(r.status >= 400 && r.status < 500);
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  FUZZ_REQUIRE(body.is_object() && body["status"] == r.status && body["type"].is_string());
}

// JSON request bodies: parse_json_object, then each JSON route's validation
// as its handler does it (today POST /api/users; later products, anagrams,
// checkout). Any reply built from the input must serialize.
inline void json_body(const std::uint8_t* data, std::size_t size) {
  httplib::Request req;
  req.set_header("Content-Type", "application/json");
  req.body.assign(reinterpret_cast<const char*>(data), size);
  app::JsonBody body = app::parse_json_object(req);
  if (body.error) {
    FUZZ_REQUIRE(body.error->status == 400);
    check_problem(*body.error);
    return;
  }
  FUZZ_REQUIRE(body.value.is_object());
  // POST /api/users {"email"}
  auto it = body.value.find("email");
  if (it != body.value.end() && it->is_string()) {
    const std::string raw = it->get<std::string>();
    auto e = services::normalize_email(raw);
    if (e) check_normalized(*e);
    // The 422 detail echoes the input: it must still be valid JSON.
    check_problem(app::problem(422, "invalid-email", "Invalid email address", "'" + raw + "'"));
  }
  // Echoing any parsed body back (views, stored replies) must not throw.
  const app::Reply echoed = app::json_reply(200, body.value);
  FUZZ_REQUIRE(nlohmann::json::parse(echoed.body, nullptr, false).is_object());
}

}  // namespace fuzz
