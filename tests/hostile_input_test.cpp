// Hostile input: a catalogue of bad requests for every route, and the limits
// that bound what a slow or greedy client can cost.
//
// Each catalogue entry is sent to the real server (in process, real HTTP)
// and must get its documented 4xx problem document (RFC 9457 body, problem
// content type, `status` equal to the HTTP status) while the row counts of
// every table stay unchanged. Requests that cpp-httplib's client would refuse
// to send (CR/LF in a header, oversized lines) go over a raw socket.
//
// When a route is added, add its bad requests here (docs/RELIABILITY.md).
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"
#include "tests/support/raw_conn.h"

using testing::RawConn;
using testing::request;

namespace {

int status_of(const std::string& raw_response) {
  // "HTTP/1.1 431 ..."
  if (raw_response.size() < 12 || raw_response.rfind("HTTP/1.", 0) != 0) return 0;
  return std::stoi(raw_response.substr(9, 3));
}

struct Counts {
  std::int64_t users, actions, jobs, mailbox;
  std::int64_t products, product_meta, product_changes, words, orders, order_items, keys,
      jobs_not_completed;
  bool operator==(const Counts&) const = default;
};

Counts counts(const std::string& db_path) {
  auto n = [&](const char* sql) { return testing::query_int(db_path, sql); };
  return {n("SELECT count(*) FROM users"),
          n("SELECT count(*) FROM user_actions"),
          n("SELECT count(*) FROM jobs"),
          n("SELECT count(*) FROM mailbox"),
          n("SELECT count(*) FROM products"),
          n("SELECT count(*) FROM product_meta"),
          n("SELECT count(*) FROM product_state_changes"),
          n("SELECT count(*) FROM anagram_words"),
          n("SELECT count(*) FROM orders"),
          n("SELECT count(*) FROM order_items"),
          n("SELECT count(*) FROM idempotency_keys"),
          n("SELECT count(*) FROM jobs WHERE state != 'completed'")};
}

// A valid checkout body with one field replaced.
std::string checkout_with(const std::string& field, nlohmann::json value) {
  nlohmann::json body = {
      {"email", "buyer@example.com"},
      {"phone", "+15550001111"},
      {"items", {{{"sku", "sku-1"}, {"quantity", 1}, {"unit_price_cents", 100}}}},
      {"payment_token", "tok_visa"}};
  body[field] = std::move(value);
  return body.dump();
}

std::string item_with(const std::string& field, nlohmann::json value) {
  nlohmann::json item = {{"sku", "sku-1"}, {"quantity", 1}, {"unit_price_cents", 100}};
  item[field] = std::move(value);
  return checkout_with("items", nlohmann::json::array({item}));
}

httplib::Headers key(const std::string& k) {
  return {{"Idempotency-Key", k}};
}

struct Case {
  std::string name;
  std::string method;
  std::string path;
  std::string body;
  std::string content_type = "application/json";
  int status;
  std::string type;  // expected problem type
  httplib::Headers headers = {};
};

std::string nested(int depth) {
  return R"({"email": "deep@example.com", "x": )" + std::string(depth, '[') +
         std::string(depth, ']') + "}";
}

// The catalogue. Every route that exists appears; each entry names what is wrong.
// The fixture holds a published product (id 1), the word "listen" and a
// completed job (id 1) for the entries that need an existing row.
std::vector<Case> catalogue() {
  const std::string big(70 * 1024, 'a');
  const std::string ok_user = R"({"email": "keyed@example.com"})";
  const std::string j = "application/json";
  nlohmann::json many_items = nlohmann::json::array();
  for (int i = 0; i < 101; ++i) {
    many_items.push_back({{"sku", "s"}, {"quantity", 1}, {"unit_price_cents", 1}});
  }
  nlohmann::json many_words = nlohmann::json::array();
  for (int i = 0; i < 1001; ++i) many_words.push_back("abc");
  return {
      // POST /products
      {"product: truncated JSON", "POST", "/products", R"({"name": "x")", j, 400,
       "/problems/malformed-json"},
      {"product: text/plain body", "POST", "/products",
       R"({"name": "x", "owner_email": "o@example.com"})", "text/plain", 415,
       "/problems/unsupported-media-type"},
      {"product: name missing", "POST", "/products", R"({"owner_email": "o@example.com"})", j, 422,
       "/problems/invalid-name"},
      {"product: name is a number", "POST", "/products",
       R"({"name": 7, "owner_email": "o@example.com"})", j, 422, "/problems/invalid-name"},
      {"product: name empty", "POST", "/products",
       R"({"name": "", "owner_email": "o@example.com"})", j, 422, "/problems/invalid-name"},
      {"product: CR/LF in the name", "POST", "/products",
       R"({"name": "a\r\nX-Injected: yes", "owner_email": "o@example.com"})", j, 422,
       "/problems/invalid-name"},
      {"product: NUL in the name", "POST", "/products",
       R"({"name": "a\u0000b", "owner_email": "o@example.com"})", j, 422, "/problems/invalid-name"},
      {"product: name of 201 characters", "POST", "/products",
       R"({"name": ")" + std::string(201, 'n') + R"(", "owner_email": "o@example.com"})", j, 422,
       "/problems/invalid-name"},
      {"product: owner_email missing", "POST", "/products", R"({"name": "Widget"})", j, 422,
       "/problems/invalid-email"},
      {"product: owner_email look-alike", "POST", "/products",
       "{\"name\": \"Widget\", \"owner_email\": \"j\xd0\xb0ne@example.com\"}", j, 422,
       "/problems/invalid-email"},
      {"product: SQL as owner_email", "POST", "/products",
       R"({"name": "Widget", "owner_email": "' OR 1=1 --"})", j, 422, "/problems/invalid-email"},
      // GET /products/{id}, POST /products/{id}/approve
      {"product: id not a number", "GET", "/products/abc", "", "", 404, "/problems/not-found"},
      {"product: id overflows", "GET", "/products/99999999999999999999", "", "", 404,
       "/problems/not-found"},
      {"product: id with SQL", "GET", "/products/1%20OR%201=1", "", "", 404, "/problems/not-found"},
      {"approve: unknown product", "POST", "/products/999999/approve", "", "", 404,
       "/problems/not-found"},
      {"approve: id not a number", "POST", "/products/..%2F1/approve", "", "", 404,
       "/problems/not-found"},
      {"approve: already published", "POST", "/products/1/approve", "", "", 409,
       "/problems/invalid-transition"},
      // POST /anagrams, GET and DELETE /anagrams/{word}
      {"anagrams: truncated JSON", "POST", "/anagrams", R"({"words": ["ab")", j, 400,
       "/problems/malformed-json"},
      {"anagrams: words missing", "POST", "/anagrams", R"({"word": "ab"})", j, 422,
       "/problems/invalid-word"},
      {"anagrams: words is a string", "POST", "/anagrams", R"({"words": "ab"})", j, 422,
       "/problems/invalid-word"},
      {"anagrams: words empty", "POST", "/anagrams", R"({"words": []})", j, 422,
       "/problems/invalid-word"},
      {"anagrams: 1001 words", "POST", "/anagrams", nlohmann::json{{"words", many_words}}.dump(), j,
       422, "/problems/invalid-word"},
      {"anagrams: a number among words", "POST", "/anagrams", R"({"words": ["ab", 12]})", j, 422,
       "/problems/invalid-word"},
      {"anagrams: one bad word refuses all", "POST", "/anagrams",
       R"({"words": ["silent", "enlist", "l1sten"]})", j, 422, "/problems/invalid-word"},
      {"anagrams: word of 65 letters", "POST", "/anagrams",
       R"({"words": [")" + std::string(65, 'a') + R"("]})", j, 422, "/problems/invalid-word"},
      {"anagrams: empty word", "POST", "/anagrams", R"({"words": [""]})", j, 422,
       "/problems/invalid-word"},
      {"anagrams: Cyrillic letter", "POST", "/anagrams", "{\"words\": [\"sil\xd0\xb5nt\"]}", j, 422,
       "/problems/invalid-word"},
      {"anagrams: SQL as a word", "POST", "/anagrams", R"({"words": ["a'); DROP TABLE x;--"]})", j,
       422, "/problems/invalid-word"},
      {"anagrams: CR/LF in a word", "POST", "/anagrams", R"({"words": ["ab\r\nX-Injected: 1"]})", j,
       422, "/problems/invalid-word"},
      {"anagrams: get a non-word", "GET", "/anagrams/ab1", "", "", 422, "/problems/invalid-word"},
      {"anagrams: get a traversal", "GET", "/anagrams/..%2F..%2Fetc", "", "", 404,
       "/problems/not-found"},
      {"anagrams: delete an unknown word", "DELETE", "/anagrams/zzzq", "", "", 404,
       "/problems/not-found"},
      {"anagrams: delete a non-word", "DELETE", "/anagrams/a%27b", "", "", 422,
       "/problems/invalid-word"},
      // POST /checkout: the key first, then the body.
      {"checkout: no Idempotency-Key", "POST", "/checkout", checkout_with("phone", "+15550001111"),
       j, 400, "/problems/idempotency-key-required"},
      {"checkout: truncated JSON", "POST", "/checkout", R"({"email": "a@example.com")", j, 400,
       "/problems/malformed-json", key("co-1")},
      {"checkout: text/plain body", "POST", "/checkout", checkout_with("phone", "+15550001111"),
       "text/plain", 415, "/problems/unsupported-media-type", key("co-2")},
      {"checkout: email look-alike", "POST", "/checkout",
       checkout_with("email", "j\u0430ne@example.com"), j, 422, "/problems/invalid-email",
       key("co-3")},
      {"checkout: phone with letters", "POST", "/checkout", checkout_with("phone", "+1555CALLME"),
       j, 422, "/problems/invalid-checkout", key("co-4")},
      {"checkout: phone of 6 digits", "POST", "/checkout", checkout_with("phone", "123456"), j, 422,
       "/problems/invalid-checkout", key("co-5")},
      {"checkout: phone is a number", "POST", "/checkout", checkout_with("phone", 15550001111LL), j,
       422, "/problems/invalid-checkout", key("co-6")},
      {"checkout: no items", "POST", "/checkout", checkout_with("items", nlohmann::json::array()),
       j, 422, "/problems/invalid-checkout", key("co-7")},
      {"checkout: 101 items", "POST", "/checkout", checkout_with("items", many_items), j, 422,
       "/problems/invalid-checkout", key("co-8")},
      {"checkout: items is an object", "POST", "/checkout", checkout_with("items", {{"sku", "s"}}),
       j, 422, "/problems/invalid-checkout", key("co-9")},
      {"checkout: quantity 0", "POST", "/checkout", item_with("quantity", 0), j, 422,
       "/problems/invalid-checkout", key("co-10")},
      {"checkout: quantity 1001", "POST", "/checkout", item_with("quantity", 1001), j, 422,
       "/problems/invalid-checkout", key("co-11")},
      {"checkout: quantity 1.5", "POST", "/checkout", item_with("quantity", 1.5), j, 422,
       "/problems/invalid-checkout", key("co-12")},
      {"checkout: quantity a string", "POST", "/checkout", item_with("quantity", "1"), j, 422,
       "/problems/invalid-checkout", key("co-13")},
      {"checkout: negative price", "POST", "/checkout", item_with("unit_price_cents", -1), j, 422,
       "/problems/invalid-checkout", key("co-14")},
      {"checkout: price over 10,000,000", "POST", "/checkout",
       item_with("unit_price_cents", 10000001), j, 422, "/problems/invalid-checkout", key("co-15")},
      {"checkout: huge price", "POST", "/checkout",
       R"({"email": "b@example.com", "phone": "+15550001111", "items": [{"sku": "s", )"
       R"("quantity": 1, "unit_price_cents": 99999999999999999999999}], "payment_token": "t"})",
       j, 422, "/problems/invalid-checkout", key("co-16")},
      {"checkout: empty sku", "POST", "/checkout", item_with("sku", ""), j, 422,
       "/problems/invalid-checkout", key("co-17")},
      {"checkout: sku of 65", "POST", "/checkout", item_with("sku", std::string(65, 's')), j, 422,
       "/problems/invalid-checkout", key("co-18")},
      {"checkout: empty payment_token", "POST", "/checkout", checkout_with("payment_token", ""), j,
       422, "/problems/invalid-checkout", key("co-19")},
      {"checkout: payment_token missing", "POST", "/checkout",
       checkout_with("payment_token", nullptr), j, 422, "/problems/invalid-checkout", key("co-20")},
      // GET /orders/{id}
      {"order: id not a number", "GET", "/orders/abc", "", "", 404, "/problems/not-found"},
      {"order: unknown id", "GET", "/orders/999999", "", "", 404, "/problems/not-found"},
      {"order: negative id", "GET", "/orders/-1", "", "", 404, "/problems/not-found"},
      {"order: id with SQL", "GET", "/orders/1%20OR%201=1", "", "", 404, "/problems/not-found"},
      // Job retry and cancel of a job in the wrong state (job 1 completed).
      {"retry of a completed job", "POST", "/jobs/1/retry", "", "", 409,
       "/problems/invalid-transition"},
      {"cancel of a completed job", "POST", "/jobs/1/cancel", "", "", 409,
       "/problems/invalid-transition"},
      {"cancel of a negative id", "POST", "/jobs/-1/cancel", "", "", 404, "/problems/not-found"},
      // Idempotency-Key: 1-255 visible ASCII characters, on any write.
      {"Idempotency-Key of 256", "POST", "/api/users", ok_user, j, 400,
       "/problems/invalid-idempotency-key", key(std::string(256, 'k'))},
      {"Idempotency-Key with a space", "POST", "/api/users", ok_user, j, 400,
       "/problems/invalid-idempotency-key", key("a b")},
      {"Idempotency-Key with a tab", "POST", "/api/users", ok_user, j, 400,
       "/problems/invalid-idempotency-key", key("a\tb")},
      {"Idempotency-Key with DEL", "POST", "/api/users", ok_user, j, 400,
       "/problems/invalid-idempotency-key", key("a\x7f")},
      {"Idempotency-Key in UTF-8", "POST", "/api/users", ok_user, j, 400,
       "/problems/invalid-idempotency-key", key("\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87")},
      {"Idempotency-Key of 256 on checkout", "POST", "/checkout",
       checkout_with("phone", "+15550001111"), j, 400, "/problems/invalid-idempotency-key",
       key(std::string(256, 'k'))},
      {"Idempotency-Key with a space on PUT", "PUT", "/users/keyed%40example.com", "", "", 400,
       "/problems/invalid-idempotency-key", key("a b")},
      {"Idempotency-Key with a space on DELETE", "DELETE", "/anagrams/listen", "", "", 400,
       "/problems/invalid-idempotency-key", key("a b")},
      // POST /api/users: the JSON body.
      {"truncated JSON", "POST", "/api/users", R"({"email": "a@example.com")", "application/json",
       400, "/problems/malformed-json"},
      {"not JSON at all", "POST", "/api/users", "email=a@example.com", "application/json", 400,
       "/problems/malformed-json"},
      {"empty body", "POST", "/api/users", "", "application/json", 400, "/problems/malformed-json"},
      {"JSON array, not object", "POST", "/api/users", R"(["a@example.com"])", "application/json",
       400, "/problems/malformed-json"},
      {"JSON string, not object", "POST", "/api/users", R"("a@example.com")", "application/json",
       400, "/problems/malformed-json"},
      {"trailing garbage", "POST", "/api/users", R"({"email": "a@example.com"} x)",
       "application/json", 400, "/problems/malformed-json"},
      {"invalid UTF-8 in a string", "POST", "/api/users", "{\"email\": \"\xff\xfe@example.com\"}",
       "application/json", 400, "/problems/malformed-json"},
      {"overlong UTF-8 encoding of '@'", "POST", "/api/users",
       "{\"email\": \"a\xc0\x80@example.com\"}", "application/json", 400,
       "/problems/malformed-json"},
      {"nesting 1000 deep", "POST", "/api/users", nested(1000), "application/json", 400,
       "/problems/malformed-json"},
      {"nesting 65 deep", "POST", "/api/users", nested(65), "application/json", 400,
       "/problems/malformed-json"},
      {"email is a number", "POST", "/api/users", R"({"email": 42})", "application/json", 422,
       "/problems/invalid-email"},
      {"email is a huge number", "POST", "/api/users",
       R"({"email": 123456789012345678901234567890123456789})", "application/json", 422,
       "/problems/invalid-email"},
      {"email is 1e99999 (out of range)", "POST", "/api/users", R"({"email": 1e99999})",
       "application/json", 400, "/problems/malformed-json"},
      {"email is null", "POST", "/api/users", R"({"email": null})", "application/json", 422,
       "/problems/invalid-email"},
      {"email is an array", "POST", "/api/users", R"({"email": ["a@example.com"]})",
       "application/json", 422, "/problems/invalid-email"},
      {"email is an object", "POST", "/api/users", R"({"email": {"$ne": ""}})", "application/json",
       422, "/problems/invalid-email"},
      {"email missing", "POST", "/api/users", R"({"mail": "a@example.com"})", "application/json",
       422, "/problems/invalid-email"},
      {"text/plain body", "POST", "/api/users", R"({"email": "a@example.com"})", "text/plain", 415,
       "/problems/unsupported-media-type"},
      {"form body", "POST", "/api/users", "email=a%40example.com",
       "application/x-www-form-urlencoded", 415, "/problems/unsupported-media-type"},
      {"body over 64 KiB", "POST", "/api/users",
       R"({"email": "a@example.com", "pad": ")" + big + "\"}", "application/json", 413,
       "/problems/payload-too-large"},
      {"CR/LF in the email", "POST", "/api/users",
       R"({"email": "a@example.com\r\nX-Injected: yes"})", "application/json", 422,
       "/problems/invalid-email"},
      {"NUL in the email", "POST", "/api/users", R"({"email": "a\u0000b@example.com"})",
       "application/json", 422, "/problems/invalid-email"},
      {"SQL with spaces in the email", "POST", "/api/users",
       R"({"email": "' OR 1=1 --@example.com"})", "application/json", 422,
       "/problems/invalid-email"},
      {"path traversal as email", "POST", "/api/users", R"({"email": "../../etc/passwd"})",
       "application/json", 422, "/problems/invalid-email"},
      {"Cyrillic a in the local part", "POST", "/api/users",
       "{\"email\": \"j\xd0\xb0ne@example.com\"}", "application/json", 422,
       "/problems/invalid-email"},
      {"Cyrillic a in the domain", "POST", "/api/users", "{\"email\": \"jane@ex\xd0\xb0mple.com\"}",
       "application/json", 422, "/problems/invalid-email"},
      {"fullwidth at sign", "POST", "/api/users",
       "{\"email\": \"jane\xef\xbc\xa0"
       "example.com\"}",
       "application/json", 422, "/problems/invalid-email"},
      {"zero-width space", "POST", "/api/users", "{\"email\": \"ja\xe2\x80\x8bne@example.com\"}",
       "application/json", 422, "/problems/invalid-email"},
      {"escaped Cyrillic a", "POST", "/api/users", R"({"email": "j\u0430ne@example.com"})",
       "application/json", 422, "/problems/invalid-email"},
      {"local part of 65", "POST", "/api/users",
       R"({"email": ")" + std::string(65, 'a') + R"(@example.com"})", "application/json", 422,
       "/problems/invalid-email"},
      {"email of 255", "POST", "/api/users",
       R"({"email": "a@)" + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
           std::string(63, 'd') + "." + std::string(61, 'e') + R"("})",
       "application/json", 422, "/problems/invalid-email"},
      // PUT /users/{email} and PUT /users?email=
      // Several segments and no '@': no email, so no route owns the path.
      {"path traversal in the email path", "PUT", "/users/..%2F..%2Fetc%2Fpasswd", "", "", 404,
       "/problems/not-found"},
      {"dot-dot segments", "PUT", "/users/../../etc/passwd", "", "", 404, "/problems/not-found"},
      {"a trailing slash after a user id", "GET", "/users/1/", "", "", 404, "/problems/not-found"},
      {"a trailing slash after an email", "PUT", "/users/t%40example.com/", "", "", 404,
       "/problems/not-found"},
      {"CR/LF in the email path", "PUT", "/users/a%0D%0AX-Injected:%20yes@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"NUL in the email path", "PUT", "/users/a%00b@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"SQL in the email path", "PUT", "/users/x%27%20OR%20%271%27=%271@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"invalid UTF-8 in the email path", "PUT", "/users/%FF%FE@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"look-alike in the query form", "PUT", "/users?email=j%D0%B0ne%40example.com", "", "", 422,
       "/problems/invalid-email"},
      {"query form without email", "PUT", "/users?mail=a%40example.com", "", "", 422,
       "/problems/invalid-email"},
      {"query form, empty email", "PUT", "/users?email=", "", "", 422, "/problems/invalid-email"},
      // GET /users/{id}, /users/{id}/actions
      {"id not a number", "GET", "/users/abc", "", "", 404, "/problems/not-found"},
      {"id overflows int64", "GET", "/users/99999999999999999999999", "", "", 404,
       "/problems/not-found"},
      {"id negative", "GET", "/users/-1", "", "", 404, "/problems/not-found"},
      {"id zero", "GET", "/users/0", "", "", 404, "/problems/not-found"},
      {"id with SQL", "GET", "/users/1%20OR%201=1", "", "", 404, "/problems/not-found"},
      {"actions of a non-number", "GET", "/users/1e3/actions", "", "", 404, "/problems/not-found"},
      // /jobs
      {"limit not a number", "GET", "/jobs?limit=abc", "", "", 422, "/problems/invalid-parameter"},
      {"limit overflows", "GET", "/jobs?limit=99999999999999999999", "", "", 422,
       "/problems/invalid-parameter"},
      {"limit zero", "GET", "/jobs?limit=0", "", "", 422, "/problems/invalid-parameter"},
      {"limit too high", "GET", "/jobs?limit=1001", "", "", 422, "/problems/invalid-parameter"},
      {"state with SQL", "GET", "/jobs?state=completed%27%20OR%20%271%27=%271", "", "", 422,
       "/problems/invalid-parameter"},
      {"job id not a number", "GET", "/jobs/abc", "", "", 404, "/problems/not-found"},
      {"retry of a non-number", "POST", "/jobs/1;DROP/retry", "", "", 404, "/problems/not-found"},
      {"retry of an unknown job", "POST", "/jobs/999999/retry", "", "", 404, "/problems/not-found"},
      {"cancel of an overflowing id", "POST", "/jobs/99999999999999999999/cancel", "", "", 404,
       "/problems/not-found"},
      // /mailbox, unknown routes, wrong methods
      {"mailbox without to", "GET", "/mailbox", "", "", 422, "/problems/invalid-parameter"},
      {"unknown route", "GET", "/etc/passwd", "", "", 404, "/problems/not-found"},
      {"encoded traversal route", "GET", "/..%2F..%2Fetc%2Fpasswd", "", "", 404,
       "/problems/not-found"},
      {"wrong method", "DELETE", "/users/1", "", "", 405, "/problems/method-not-allowed"},
      {"too many headers", "GET", "/healthz", "", "", 431,
       "/problems/request-header-fields-too-large",
       [] {
         httplib::Headers h;
         for (int i = 0; i < 150; ++i) h.emplace("X-Filler-" + std::to_string(i), "x");
         return h;
       }()},
      {"headers over 32 KiB in total", "GET", "/healthz", "", "", 431,
       "/problems/request-header-fields-too-large",
       [] {
         httplib::Headers h;
         for (int i = 0; i < 6; ++i)
           h.emplace("X-Big-" + std::to_string(i), std::string(7000, 'h'));
         return h;
       }()},
  };
}

struct Fixture {
  testing::TempDir dir;
  app::Config cfg = [this] {
    auto c = testing::test_config(dir);
    c.read_timeout_ms = 300;
    c.idle_timeout_ms = 1000;
    return c;
  }();
  testing::InProcessServer server{cfg};
  httplib::Client http = server.client();
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "every hostile request gets its documented problem and writes nothing") {
  // Some rows to protect: a user, its action, its job, its message (job 1,
  // completed); a published product (id 1) whose notification is delivered;
  // a word.
  REQUIRE(request(http, "PUT", "/users/victim%40example.com").status == 201);
  REQUIRE(testing::eventually([&] { return counts(cfg.db_path).mailbox == 1; }));
  REQUIRE(request(http, "POST", "/products",
                  R"({"name": "Widget", "owner_email": "owner@example.com"})")
              .status == 201);
  REQUIRE(request(http, "POST", "/products/1/approve").status == 200);
  REQUIRE(request(http, "POST", "/anagrams", R"({"words": ["listen"]})").status == 200);
  REQUIRE(testing::eventually([&] { return counts(cfg.db_path).mailbox == 2; }));
  const Counts before = counts(cfg.db_path);

  int tried = 0;
  for (const Case& c : catalogue()) {
    CAPTURE(c.name);
    auto r = request(http, c.method, c.path, c.body, c.content_type, c.headers);
    ++tried;
    CHECK(r.status == c.status);
    CHECK(r.header("Content-Type") == "application/problem+json");
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body["type"] == c.type);
    CHECK(body["status"] == c.status);
    CHECK(body["detail"].is_string());
    CHECK(r.header("X-Injected").empty());
    CHECK(counts(cfg.db_path) == before);
  }
  CHECK(tried == static_cast<int>(catalogue().size()));
  CHECK(request(http, "GET", "/healthz").status == 200);
}

TEST_CASE_FIXTURE(Fixture, "SQL and shell metacharacters in a valid email are stored verbatim") {
  // A local part may hold any printable ASCII but space: all of these are valid.
  for (const std::string email :
       {"x';drop-table-users;--@example.com", "\"quoted\"@example.com", "a%27%3b@example.com",
        "$(reboot)`id`@example.com", "..%2f..%2f@example.com"}) {
    CAPTURE(email);
    auto r = request(http, "POST", "/api/users", nlohmann::json{{"email", email}}.dump());
    CHECK(r.status == 201);
    CHECK(r.json()["email"] == email);
    auto got = request(http, "GET", "/users/" + std::to_string(r.json()["id"].get<int>()));
    CHECK(got.json()["email"] == email);
  }
  CHECK(counts(cfg.db_path).users == 5);
  // Query parameters are bound too.
  auto jobs = request(http, "GET", "/jobs?kind=x%27%20OR%20%271%27%3D%271");
  CHECK(jobs.status == 200);
  CHECK(jobs.json()["jobs"].empty());
  auto mail = request(http, "GET", "/mailbox?to=%27%20OR%201%3D1%20--");
  CHECK(mail.status == 200);
  CHECK(mail.json()["messages"].empty());
}

TEST_CASE_FIXTURE(Fixture, "raw protocol abuse is refused without crashing the server") {
  const Counts before = counts(cfg.db_path);
  const std::string kPostHead =
      "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Connection: close\r\n";
  const std::string kChunkedPost = kPostHead + "Transfer-Encoding: chunked\r\n\r\n";
  struct Raw {
    std::string name;
    std::string bytes;
    int status;
  };
  const std::vector<Raw> raws = {
      {"header line over 8 KiB",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(9000, 'l') + "\r\n\r\n", 431},
      {"request line over 8 KiB", "GET /" + std::string(9000, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       414},
      // 3000 bytes as sent, 9000 as cpp-httplib would read them ('%' as "%25").
      {"header value of 3000 '%'",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pct: " + std::string(3000, '%') + "\r\n\r\n", 431},
      // A bare LF is a line end (RFC 9112 §2.2): X-Injected becomes a request
      // header of its own, and nothing of it is echoed.
      {"bare LF in a header value",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Injected: 1\r\n\r\n", 200},
      // (The literal ends at its NUL: four bytes and no line end, so the
      // request is cut at the read timeout.)
      {"TLS hello on the plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 408},
      {"negative Content-Length",
       "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Length: -5\r\n\r\n{}",
       400},
      // Unterminated lines: cut at their limit, whatever the client still sends.
      {"unterminated header line",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: " + std::string(40000, 'f'), 431},
      {"unterminated request line", std::string(9000, 'G'), 414},
      {"unterminated chunk size line", kChunkedPost + std::string(5000, '1'), 400},
      {"chunk size that overflows", kChunkedPost + "10000000000000000000000\r\nab\r\n0\r\n\r\n",
       413},
      // Extensions and trailers are framing: the body inside is judged (422).
      {"chunk extensions", kChunkedPost + "2;a=b;c\r\n{}\r\n0;end\r\n\r\n", 422},
      {"trailer fields", kChunkedPost + "2\r\n{}\r\n0\r\nX-Injected: t\r\n\r\n", 422},
      {"obs-fold header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 400},
      {"header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400},
      {"Transfer-Encoding list", kPostHead + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"unknown Transfer-Encoding", kPostHead + "Transfer-Encoding: x-custom\r\n\r\n", 501},
      {"Content-Length with Transfer-Encoding",
       kPostHead + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400},
      {"header value with %",
       kPostHead + "Idempotency-Key: k%0D%0AX-Injected:%201\r\n"
                   "Content-Length: 2\r\n\r\n{}",
       422},
      {"empty header value", kPostHead + "Idempotency-Key:\r\nContent-Length: 2\r\n\r\n{}", 400},
      {"huge Content-Length",
       "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Length: 99999999999999999999\r\n\r\n{}",
       413},
      {"chunked body over the limit",
       "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Transfer-Encoding: chunked\r\n\r\n11000\r\n" +
           std::string(0x11000, 'a') + "\r\n0\r\n\r\n",
       413},
  };
  for (const Raw& raw : raws) {
    CAPTURE(raw.name);
    RawConn conn(server.port());
    conn.send_all(raw.bytes);
    const std::string answer = conn.read_until_close(std::chrono::seconds(3));
    CHECK(status_of(answer) == raw.status);
    CHECK(answer.find("X-Injected") == std::string::npos);
  }
  CHECK(counts(cfg.db_path) == before);
  CHECK(request(http, "GET", "/healthz").status == 200);
}

TEST_CASE("a slow client cannot hold an HTTP thread past the read timeout") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.http_threads = 2;
  cfg.max_connections = 3;
  cfg.read_timeout_ms = 300;
  cfg.idle_timeout_ms = 1000;
  testing::InProcessServer server(cfg);

  // Four clients that start a request and stall: more than the threads and
  // the waiting room together.
  std::vector<std::unique_ptr<RawConn>> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(std::make_unique<RawConn>(server.port()));
    stalled.back()->send_all(i % 2 == 0 ? "PUT /users/slow%40example.com HTTP/1.1\r\nHost: x\r\n"
                                        : "POST /api/users HTTP/1.1\r\nHost: x\r\n"
                                          "Content-Type: application/json\r\n"
                                          "Content-Length: 100\r\n\r\n{\"em");
  }
  // A well-behaved client is still served once the stalled ones time out.
  const auto t0 = std::chrono::steady_clock::now();
  auto http = server.client();
  CHECK(request(http, "GET", "/healthz").status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  // And each stalled connection was closed by the server.
  for (auto& conn : stalled) {
    bool closed = false;
    conn->read_until_close(std::chrono::seconds(3), &closed);
    CHECK(closed);
  }
  CHECK(counts(cfg.db_path).users == 0);
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.idle_timeout_ms = 1000;
  testing::InProcessServer server(cfg);
  RawConn conn(server.port());
  conn.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  const std::string answer = conn.read_until_close(std::chrono::seconds(5), &closed);
  CHECK(status_of(answer) == 200);
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(3000));
}

TEST_CASE_FIXTURE(Fixture, "CR, LF or NUL in an Idempotency-Key never reaches the key store") {
  // No client library sends these, so they go over a raw socket. A CR or NUL
  // in a value is refused on the wire (400), and so is the line after a bare
  // LF that has no colon. Whatever happens, no key with a control character
  // is stored and nothing is echoed.
  int n = 0;
  for (const std::string& bad :
       {std::string("a\rb"), std::string("a\nb"), std::string("a\0b", 3), std::string("\r\n")}) {
    CAPTURE(n);
    const std::string body = R"({"email": "rawkey)" + std::to_string(n++) + R"(@example.com"})";
    RawConn conn(server.port());
    conn.send_all(
        "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nIdempotency-Key: " +
        bad + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    const std::string answer = conn.read_until_close(std::chrono::seconds(3));
    const int status = status_of(answer);
    CHECK((status == 400 || status == 201));
    CHECK(answer.find("X-Injected") == std::string::npos);
  }
  // Any byte outside printable ASCII (! to ~), in either engine's pattern syntax.
  CHECK(testing::query_int(cfg.db_path, testing::on_postgres()
                                            ? "SELECT count(*) FROM idempotency_keys WHERE key ~ "
                                              "'[^!-~]'"
                                            : "SELECT count(*) FROM idempotency_keys WHERE key "
                                              "GLOB '*[^!-~]*'") == 0);
}
