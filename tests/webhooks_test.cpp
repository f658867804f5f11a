// The webhook outbox against a local receiver (an httplib server on a free
// port, started by the test): delivery, the Idempotency-Key and the HMAC
// signature, retry after a 5xx/408/429/network error, no retry after a 400,
// per-subject order, and end to end through the server, including a kill -9
// in the middle of a delivery.
#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "jobs/outbox.h"
#include "tests/support/jobs_fixture.h"
#include "workers/webhooks.h"

using testing::JobsFixture;
using testing::kT0;

namespace {

constexpr char kSecret[] = "whsec_test_secret";

// A webhook receiver. Answers 200 unless told otherwise; can stall requests
// until unstalled. Records every request.
class Receiver {
 public:
  struct Delivery {
    std::string path;
    std::string body;
    std::string idempotency_key;
    std::string signature;
    std::string content_type;
  };

  Receiver() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock lock(mu_);
      deliveries_.push_back({req.path, req.body, req.get_header_value("Idempotency-Key"),
                             req.get_header_value("Aftercommit-Signature"),
                             req.get_header_value("Content-Type")});
      cv_.notify_all();
      cv_.wait(lock, [&] { return !stalled_; });
      int status = 200;
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
      res.status = status;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = testing::listen_in_background(server_);
  }
  ~Receiver() {
    unstall();
    server_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks"; }
  void answer(std::initializer_list<int> statuses) {
    std::lock_guard lock(mu_);
    statuses_.insert(statuses_.end(), statuses);
  }
  void stall() {
    std::lock_guard lock(mu_);
    stalled_ = true;
  }
  void unstall() {
    {
      std::lock_guard lock(mu_);
      stalled_ = false;
    }
    cv_.notify_all();
  }
  std::vector<Delivery> deliveries() {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  // Waits (on the receiver's signal) until `n` requests have come.
  bool wait_for(std::size_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return deliveries_.size() >= n; });
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Delivery> deliveries_;  // guarded by mu_
  std::deque<int> statuses_;          // guarded by mu_
  bool stalled_ = false;              // guarded by mu_
};

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", mac[i]);
    hex += buf;
  }
  return hex;
}

// What a receiver does: split "t=..,v1=..", recompute HMAC("t.body"), compare.
bool signature_valid(const Receiver::Delivery& d, const std::string& secret,
                     std::int64_t* t_out = nullptr) {
  const auto comma = d.signature.find(",v1=");
  if (d.signature.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
  const std::string t = d.signature.substr(2, comma - 2);
  const std::string v1 = d.signature.substr(comma + 4);
  if (t_out) *t_out = std::stoll(t);
  return v1 == hmac_hex(secret, t + "." + d.body);
}

struct WebhookFixture : JobsFixture {
  Receiver receiver;
  jobs::Outbox outbox{{receiver.url()}};

  WebhookFixture() {
    jobs::register_webhook_handler(registry, clock, jobs::WebhookOptions{kSecret, 2000, 8, {}});
    (void)runner();  // saves the kinds' defaults before anything is staged, as App does
  }

  void publish(const std::string& type, const std::string& subject, nlohmann::json data) {
    REQUIRE(db->write([&](db::Tx& tx) {
                outbox.publish(tx, type, subject, data, clock.now_ms());
                return core::Status::ok();
              }).is_ok());
  }
  std::vector<db::JobRow> webhook_jobs() {
    std::vector<db::JobRow> out;
    REQUIRE(db->read([&](db::Conn& c) {
                db::JobFilter f;
                f.kind = "deliver_webhook";
                out = db::list_jobs(c, f);
                return core::Status::ok();
              }).is_ok());
    std::reverse(out.begin(), out.end());  // oldest first
    return out;
  }
};

}  // namespace

TEST_CASE("the signature is the hex HMAC-SHA256 of t.body under the secret") {
  // RFC 4231 test case 2 pins the HMAC the receiver side of these tests uses.
  CHECK(hmac_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string body = R"({"id":"evt_1"})";
  CHECK(jobs::webhook_signature("k", 1700000000, body) ==
        "t=1700000000,v1=" + hmac_hex("k", "1700000000." + body));
}

TEST_CASE_FIXTURE(WebhookFixture, "delivers an event signed, with its id as the Idempotency-Key") {
  publish("user.created", "user:7", {{"id", 7}, {"email", "a@example.com"}});
  auto staged = webhook_jobs();
  REQUIRE(staged.size() == 1);
  CHECK(staged[0].max_attempts == 8);  // the kind's default
  CHECK(staged[0].timeout_ms == std::optional<core::Millis>(7000));

  CHECK(run_once() == 1);
  auto got = receiver.deliveries();
  REQUIRE(got.size() == 1);
  CHECK(got[0].path == "/hooks");
  CHECK(got[0].content_type == "application/json");
  const auto body = nlohmann::json::parse(got[0].body);
  CHECK(body.size() == 4);
  CHECK(body["type"] == "user.created");
  CHECK(body["data"] == nlohmann::json{{"id", 7}, {"email", "a@example.com"}});
  CHECK(body["created_at"] == "2023-11-14T22:13:20.000Z");
  CHECK(body["id"].get<std::string>().rfind("evt_", 0) == 0);
  CHECK(got[0].idempotency_key == body["id"]);
  std::int64_t t = 0;
  CHECK(signature_valid(got[0], kSecret, &t));
  CHECK(t == kT0 / 1000);
  CHECK_FALSE(signature_valid(got[0], "another secret"));
  CHECK(job(staged[0].id).state == "completed");
}

TEST_CASE_FIXTURE(WebhookFixture, "retries after a 500 with the same Idempotency-Key") {
  receiver.answer({500});
  publish("user.created", "user:1", {{"id", 1}});
  const auto id = webhook_jobs()[0].id;
  CHECK(run_once() == 1);
  CHECK(job(id).state == "retryable");
  CHECK(errors(id)[0]["message"].get<std::string>().find("answered 500") != std::string::npos);

  clock.set(job(id).run_at);
  CHECK(run_once() == 1);
  CHECK(job(id).state == "completed");
  auto got = receiver.deliveries();
  REQUIRE(got.size() == 2);
  CHECK(got[0].idempotency_key == got[1].idempotency_key);
  CHECK(got[0].body == got[1].body);
  CHECK(signature_valid(got[1], kSecret));
}

TEST_CASE_FIXTURE(WebhookFixture, "does not retry after a 400, but does after a 408 or a 429") {
  receiver.answer({400, 408, 429});
  publish("a.refused", "s:1", {});
  publish("b.throttled", "s:2", {});
  publish("c.slow", "s:3", {});
  auto staged = webhook_jobs();
  REQUIRE(staged.size() == 3);
  CHECK(run_once() == 3);  // one batch, run in id order
  CHECK(job(staged[0].id).state == "discarded");
  CHECK(job(staged[0].id).attempt == 1);
  CHECK(errors(staged[0].id)[0]["message"].get<std::string>().find("answered 400") !=
        std::string::npos);
  CHECK(job(staged[1].id).state == "retryable");
  CHECK(job(staged[2].id).state == "retryable");
  clock.advance(60000);
  CHECK(run_once() == 2);
  CHECK(job(staged[1].id).state == "completed");
  CHECK(job(staged[2].id).state == "completed");
  CHECK(receiver.deliveries().size() == 5);
}

TEST_CASE_FIXTURE(JobsFixture, "retries when the receiver cannot be reached") {
  jobs::register_webhook_handler(registry, clock, jobs::WebhookOptions{kSecret, 2000, 8, {}});
  int closed_port = 0;
  {
    httplib::Server probe;  // bind, then close: nothing listens there any more
    closed_port = probe.bind_to_any_port("127.0.0.1");
  }
  jobs::Outbox outbox{{"http://127.0.0.1:" + std::to_string(closed_port) + "/hooks"}};
  REQUIRE(db->write([&](db::Tx& tx) {
              outbox.publish(tx, "user.created", "user:1", {}, clock.now_ms());
              return core::Status::ok();
            }).is_ok());
  CHECK(run_once() == 1);
  std::vector<db::JobRow> rows;
  REQUIRE(db->read([&](db::Conn& c) {
              rows = db::list_jobs(c, db::JobFilter{});
              return core::Status::ok();
            }).is_ok());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == "retryable");
  CHECK(errors(rows[0].id)[0]["message"].get<std::string>().find("failed") != std::string::npos);
}

TEST_CASE_FIXTURE(WebhookFixture, "delivers the events of one subject one at a time, in order") {
  receiver.answer({500});
  publish("user.created", "user:1", {{"n", 1}});
  publish("user.updated", "user:1", {{"n", 2}});
  publish("user.created", "user:2", {{"n", 3}});
  CHECK(run_once() == 2);  // user:1's first event fails; user:2's goes; user:1's second waits
  clock.advance(60000);
  CHECK(run_once() == 1);  // user:1's first again
  CHECK(run_once() == 1);  // now its second
  auto got = receiver.deliveries();
  REQUIRE(got.size() == 4);
  std::vector<int> order;
  for (const auto& d : got) order.push_back(nlohmann::json::parse(d.body)["data"]["n"]);
  CHECK(order == std::vector<int>{1, 3, 1, 2});
}

TEST_CASE("with --webhook-url, creating a user POSTs a signed user.created") {
  Receiver receiver;
  testing::TempDir dir;
  auto config = testing::test_config(dir);
  config.webhook_urls = {receiver.url()};
  config.webhook_secret = kSecret;
  testing::InProcessServer server{config};
  auto http = server.client();
  auto created = testing::request(http, "PUT", "/users/hook@example.com");
  REQUIRE(created.status == 201);
  REQUIRE(receiver.wait_for(1));
  auto got = receiver.deliveries();
  const auto body = nlohmann::json::parse(got[0].body);
  CHECK(body["type"] == "user.created");
  CHECK(body["data"]["email"] == "hook@example.com");
  CHECK(body["data"]["id"] == created.json()["id"]);
  CHECK(signature_valid(got[0], kSecret));
}

TEST_CASE("the server refuses --webhook-url without --webhook-secret" *
          doctest::test_suite("variant_independent")) {
  auto [code, out] = testing::run_binary({"serve", "--webhook-url", "http://127.0.0.1:1/x"});
  CHECK(code == 2);
  CHECK(out.find("--webhook-secret") != std::string::npos);
}

TEST_CASE("a delivery cut by kill -9 is rescued once its lease ends and completes once") {
  Receiver receiver;
  receiver.stall();
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "kill.db");
  // The restarted process cannot tell a dead process from a live one sharing
  // the file: it rescues the delivery when its lease (short here) expires.
  const std::vector<std::string> args = {"--webhook-url", receiver.url(), "--webhook-secret",
                                         kSecret,         "--job-lease",  "1000"};
  {
    testing::ServerProcess first(db, args);
    auto http = first.client();
    REQUIRE(testing::request(http, "PUT", "/users/crash@example.com").status == 201);
    REQUIRE(receiver.wait_for(1));  // the POST is in flight, stalled
    first.kill9();
  }
  receiver.unstall();  // the stalled request is answered to a dead process

  testing::ServerProcess second(db, args);
  auto http = second.client();
  nlohmann::json job;
  REQUIRE(testing::eventually([&] {
    auto jobs = testing::request(http, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
    if (jobs.size() != 1 || jobs[0]["state"] != "completed") return false;
    job = jobs[0];
    return true;
  }));
  CHECK(job["attempt"] == 2);
  REQUIRE(job["errors"].size() == 1);  // rescued once
  CHECK(job["errors"][0]["attempt"] == 1);
  CHECK(job["errors"][0]["message"].get<std::string>().find("lease expired") != std::string::npos);
  auto got = receiver.deliveries();
  REQUIRE(got.size() == 2);  // at-least-once: the cut attempt and the one that completed
  CHECK(got[0].idempotency_key == got[1].idempotency_key);
  CHECK(signature_valid(got[1], kSecret));
}

TEST_CASE("SIGTERM leaves a delivery stuck past --shutdown-timeout to be rescued after its lease") {
  Receiver receiver;
  receiver.stall();
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "term.db");
  std::vector<std::string> args = {"--webhook-url", receiver.url(), "--webhook-secret",   kSecret,
                                   "--job-lease",   "1000",         "--shutdown-timeout", "100"};
  {
    testing::ServerProcess first(db, args);
    auto http = first.client();
    REQUIRE(testing::request(http, "PUT", "/users/term@example.com").status == 201);
    REQUIRE(receiver.wait_for(1));           // the POST is in flight, stalled
    CHECK(first.terminate_and_wait() == 0);  // exits although the handler never returned
  }
  receiver.unstall();

  testing::ServerProcess second(db, args);
  auto http = second.client();
  nlohmann::json job;
  REQUIRE(testing::eventually([&] {
    auto jobs = testing::request(http, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
    if (jobs.size() != 1 || jobs[0]["state"] != "completed") return false;
    job = jobs[0];
    return true;
  }));
  CHECK(job["attempt"] == 2);
  CHECK(job["errors"].size() == 1);
  CHECK(receiver.deliveries().size() == 2);
}
