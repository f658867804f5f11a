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
// name in the Makefile's FUZZ_TARGETS, and a corpus folder. Targets:
// json_body (parse_json_object + the users route's validation), email,
// idempotency_key (valid_idempotency_key and the fingerprint), and
// product/anagram/checkout bodies (the validators each route runs before it
// writes anything).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "http/http.h"
#include "http/idempotency.h"
#include "services/anagrams.h"
#include "services/checkout.h"
#include "services/email.h"
#include "services/products.h"

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

// A problem reply as http/http.h promises: JSON with type/status = HTTP status.
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

// The Idempotency-Key header value: valid exactly when it is 1-255 visible
// ASCII characters (0x21-0x7E), as API.md says; the stored fingerprint is a
// 64-character lowercase hex digest that depends on the key's request only.
inline void idempotency_key(const std::uint8_t* data, std::size_t size) {
  const std::string key(reinterpret_cast<const char*>(data), size);
  bool visible = !key.empty() && key.size() <= 255;
  for (char c : key) visible = visible && c >= 0x21 && c <= 0x7e;
  FUZZ_REQUIRE(app::valid_idempotency_key(key) == visible);
  const std::string fp = app::request_fingerprint("POST", "/checkout", key);
  FUZZ_REQUIRE(fp.size() == 64);
  for (char c : fp) FUZZ_REQUIRE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  FUZZ_REQUIRE(fp == app::request_fingerprint("POST", "/checkout", key));
}

// Parses `data` as a JSON request body; nullopt when the body is refused
// (400, checked to be a proper problem).
inline std::optional<nlohmann::json> parsed_body(const std::uint8_t* data, std::size_t size) {
  httplib::Request req;
  req.set_header("Content-Type", "application/json");
  req.body.assign(reinterpret_cast<const char*>(data), size);
  app::JsonBody body = app::parse_json_object(req);
  if (body.error) {
    FUZZ_REQUIRE(body.error->status == 400);
    check_problem(*body.error);
    return std::nullopt;
  }
  return std::move(body.value);
}

// POST /products {"name", "owner_email"}: a name accepted is 1-200
// characters without control characters, already trimmed, and normalizing it
// again changes nothing.
inline void product_body(const std::uint8_t* data, std::size_t size) {
  auto body = parsed_body(data, size);
  if (!body) return;
  auto name = body->find("name");
  if (name != body->end() && name->is_string()) {
    auto n = services::normalize_product_name(name->get<std::string>());
    if (n) {
      FUZZ_REQUIRE(!n->empty() && n->size() <= 4 * services::kMaxProductNameChars);
      for (unsigned char c : *n) FUZZ_REQUIRE(c >= 0x20 && c != 0x7f);
      FUZZ_REQUIRE(n->front() != ' ' && n->back() != ' ');
      auto again = services::normalize_product_name(*n);
      FUZZ_REQUIRE(again && *again == *n);
      check_problem(app::problem(422, "invalid-name", "Invalid product name", *n));
    } else {
      check_problem(
          app::problem(422, "invalid-name", "Invalid product name", n.status().message()));
    }
  }
  auto owner = body->find("owner_email");
  if (owner != body->end() && owner->is_string()) {
    auto e = services::normalize_email(owner->get<std::string>());
    if (e) check_normalized(*e);
  }
}

// POST /anagrams {"words": [...]}: each accepted word is 1-64 letters a-z,
// its key is a permutation of it, and the refusal detail is valid JSON.
inline void anagram_body(const std::uint8_t* data, std::size_t size) {
  auto body = parsed_body(data, size);
  if (!body) return;
  auto words = body->find("words");
  if (words == body->end() || !words->is_array()) return;
  for (const auto& item : *words) {
    if (!item.is_string()) continue;
    auto w = services::normalize_word(item.get<std::string>());
    if (!w) {
      check_problem(app::problem(422, "invalid-word", "Invalid word", w.status().message()));
      continue;
    }
    FUZZ_REQUIRE(!w->empty() && w->size() <= services::kMaxWordLetters);
    for (char c : *w) FUZZ_REQUIRE(c >= 'a' && c <= 'z');
    const std::string key = services::anagram_key(*w);
    std::string sorted = *w;
    std::sort(sorted.begin(), sorted.end());
    FUZZ_REQUIRE(key == sorted);
  }
}

// POST /checkout: a body validate_checkout accepts satisfies every rule of
// API.md (the CHECK constraints of orders and order_items would reject it
// otherwise, as a 500), and its total is the sum of the items.
inline void checkout_body(const std::uint8_t* data, std::size_t size) {
  auto body = parsed_body(data, size);
  if (!body) return;
  services::CheckoutRequest req;
  auto bad = services::validate_checkout(*body, &req);
  if (bad) {
    FUZZ_REQUIRE(bad->slug == "invalid-email" || bad->slug == "invalid-checkout");
    check_problem(app::problem(422, bad->slug, "Invalid checkout", bad->detail));
    return;
  }
  check_normalized(req.email);
  auto phone = services::normalize_phone(req.phone);
  FUZZ_REQUIRE(phone && *phone == req.phone);
  FUZZ_REQUIRE(!req.payment_token.empty() && req.payment_token.size() <= 255);
  FUZZ_REQUIRE(!req.items.empty() && req.items.size() <= services::kMaxItems);
  std::int64_t total = 0;
  for (const auto& item : req.items) {
    FUZZ_REQUIRE(!item.sku.empty() && item.sku.size() <= 64);
    FUZZ_REQUIRE(item.quantity >= 1 && item.quantity <= services::kMaxQuantity);
    FUZZ_REQUIRE(item.unit_price_cents >= 0 &&
                 item.unit_price_cents <= services::kMaxUnitPriceCents);
    total += item.quantity * item.unit_price_cents;
  }
  FUZZ_REQUIRE(total == req.total_cents && total >= 0);
}

}  // namespace fuzz
