// What an operator reads when an outgoing call (payment gateway, webhook)
// gets no answer: what happened, in words, never cpp-httplib's enum names
// ("Read", "Connection").
#include <doctest/doctest.h>

#include <set>

#include "services/outbound_http.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

// A port nothing listens on: bound, then closed.
int closed_port() {
  httplib::Server probe;
  return probe.bind_to_any_port("127.0.0.1");
}

std::string checkout_body(const std::string& token) {
  return nlohmann::json{{"email", "ann@example.com"},
                        {"phone", "+15550100200"},
                        {"items", {{{"sku", "mug"}, {"quantity", 1}, {"unit_price_cents", 100}}}},
                        {"payment_token", token}}
      .dump();
}

void check_in_words(const std::string& text) {
  CAPTURE(text);
  for (const char* enum_name : {": Read", ": Connection", ": Write", ": ConnectionTimeout",
                                ": Unknown", "(Read)", "(Connection)"}) {
    CHECK(text.find(enum_name) == std::string::npos);
  }
}

}  // namespace

TEST_CASE("every cpp-httplib error has its own words") {
  std::set<std::string> seen;
  for (int e = static_cast<int>(httplib::Error::Unknown);
       e <= static_cast<int>(httplib::Error::ConnectionTimeout); ++e) {
    const std::string words = services::describe_http_failure(static_cast<httplib::Error>(e));
    CAPTURE(e);
    CHECK(words.find(' ') != std::string::npos);  // a phrase, not an enum name
    CHECK(words != httplib::to_string(static_cast<httplib::Error>(e)));
    seen.insert(words);
  }
  CHECK(seen.size() >= 12);
}

TEST_CASE("a checkout whose gateway cannot be reached says so in its 503") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.payment_gateway_url = "http://127.0.0.1:" + std::to_string(closed_port());
  testing::InProcessServer server(cfg);
  auto http = server.client();
  auto r = request(http, "POST", "/checkout", checkout_body("tok_visa"), "application/json",
                   {{"Idempotency-Key", "words-1"}});
  REQUIRE(r.status == 503);
  const std::string detail = r.json()["detail"];
  // cpp-httplib 0.11 reports a refused connection as a failed read.
  CHECK(detail.find("the connection was refused") != std::string::npos);
  check_in_words(detail);
}

TEST_CASE("a checkout whose gateway answers too late says so in its 503") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.fake_gateway = true;
  cfg.gateway_timeout_ms = 300;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  auto r = request(http, "POST", "/checkout", checkout_body("tok_timeout"), "application/json",
                   {{"Idempotency-Key", "words-2"}});
  REQUIRE(r.status == 503);
  const std::string detail = r.json()["detail"];
  CHECK(detail.find("no answer came") != std::string::npos);
  CHECK(detail.find("the timeout passed") != std::string::npos);
  check_in_words(detail);
}

TEST_CASE("a webhook whose receiver cannot be reached records why, in words") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.webhook_urls = {"http://127.0.0.1:" + std::to_string(closed_port()) + "/hooks"};
  cfg.webhook_secret = "s";
  cfg.webhook_timeout_ms = 500;
  testing::InProcessServer server(cfg);
  auto http = server.client();
  REQUIRE(request(http, "PUT", "/users/hook%40example.com").status == 201);
  std::string message;
  REQUIRE(testing::eventually([&] {
    auto jobs = request(http, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
    if (jobs.empty() || jobs[0]["errors"].empty()) return false;
    message = jobs[0]["errors"][0]["message"].get<std::string>();
    return true;
  }));
  CHECK(message.find("the connection was refused") != std::string::npos);
  check_in_words(message);
}
