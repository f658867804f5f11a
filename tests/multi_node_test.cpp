// Three server processes on one database, requests spread over them at
// once: the guarantees of API.md hold across nodes, not only across the
// threads of one process. On PostgreSQL this is the deployment of README
// "Running several nodes"; on SQLite, several processes on one file (also
// supported, docs/RELIABILITY.md "Across processes").
//
// The nodes start at the same moment, so on a fresh PostgreSQL database
// they also race to migrate it: the schema is applied once.
#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"
#include "tests/support/webhook_sink.h"

using testing::request;

namespace {

constexpr int kNodes = 3;

struct Cluster {
  testing::TempDir dir;
  std::string db = testing::test_db(dir, "cluster.db");
  std::vector<std::unique_ptr<testing::ServerProcess>> nodes;

  Cluster() {
    std::vector<std::future<std::unique_ptr<testing::ServerProcess>>> starting;
    for (int i = 0; i < kNodes; ++i) {
      starting.push_back(std::async(
          std::launch::async, [this] { return std::make_unique<testing::ServerProcess>(db); }));
    }
    for (auto& s : starting) nodes.push_back(s.get());
  }

  // `n` requests at once, request i on node i % kNodes, each on its own
  // connection; their results in order.
  std::vector<testing::HttpResult> storm(
      int n, const std::function<testing::HttpResult(httplib::Client&, int)>& send) {
    std::vector<testing::HttpResult> results(static_cast<std::size_t>(n));
    std::vector<std::thread> threads;
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        auto http = nodes[static_cast<std::size_t>(i % kNodes)]->client();
        http.set_read_timeout(30, 0);
        start.wait();
        results[static_cast<std::size_t>(i)] = send(http, i);
      });
    }
    go.set_value();
    for (auto& t : threads) t.join();
    return results;
  }

  std::int64_t count(const std::string& sql) const { return testing::query_int(db, sql); }
};

std::map<int, int> statuses(const std::vector<testing::HttpResult>& results) {
  std::map<int, int> out;
  for (const auto& r : results) ++out[r.status];
  return out;
}

}  // namespace

TEST_CASE_FIXTURE(Cluster,
                  "60 creates of one email over three nodes: one 201, one user, one audit row, one "
                  "job, one message") {
  if (testing::on_postgres()) CHECK(count("SELECT count(*) FROM schema_migrations") == 1);
  auto results = storm(60, [](httplib::Client& http, int) {
    return request(http, "PUT", "/users/Storm%40Example.com");
  });
  CHECK(statuses(results) == std::map<int, int>{{200, 59}, {201, 1}});
  std::set<std::string> ids;
  for (const auto& r : results) ids.insert(r.json()["id"].dump());
  CHECK(ids.size() == 1);
  CHECK(count("SELECT count(*) FROM users") == 1);
  CHECK(count("SELECT count(*) FROM user_actions") == 1);
  CHECK(count("SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email'") == 1);
  REQUIRE(testing::eventually(
      [&] { return count("SELECT count(*) FROM jobs WHERE state = 'completed'") == 1; }));
  CHECK(count("SELECT count(*) FROM mailbox WHERE recipient = 'storm@example.com'") == 1);
}

TEST_CASE_FIXTURE(Cluster,
                  "one Idempotency-Key sent to every node at once: one execution, byte-identical "
                  "replays") {
  const httplib::Headers key = {{"Idempotency-Key", "cluster-key-1"}};
  auto results = storm(30, [&](httplib::Client& http, int) {
    return request(http, "POST", "/api/users", R"({"email": "idem@example.com"})",
                   "application/json", key);
  });
  CHECK(statuses(results) == std::map<int, int>{{201, 30}});
  int replays = 0;
  for (const auto& r : results) {
    CHECK(r.body == results[0].body);
    if (r.header("Idempotent-Replayed") == "true") ++replays;
  }
  CHECK(replays == 29);
  CHECK(count("SELECT count(*) FROM users") == 1);
  CHECK(count("SELECT count(*) FROM idempotency_keys") == 1);
  CHECK(count("SELECT count(*) FROM jobs") == 1);
}

TEST_CASE_FIXTURE(Cluster,
                  "concurrent approvals of one product over three nodes: one 200, one "
                  "notification") {
  auto http = nodes[0]->client();
  auto created =
      request(http, "POST", "/products", R"({"name": "lamp", "owner_email": "owner@example.com"})");
  REQUIRE(created.status == 201);
  const std::string path = "/products/" + created.json()["id"].dump() + "/approve";
  auto results = storm(30, [&](httplib::Client& c, int) { return request(c, "POST", path, "{}"); });
  CHECK(statuses(results) == std::map<int, int>{{200, 1}, {409, 29}});
  for (const auto& r : results) {
    if (r.status == 409) CHECK(r.json()["type"] == "/problems/invalid-transition");
  }
  CHECK(count("SELECT count(*) FROM product_meta") == 1);
  CHECK(count("SELECT count(*) FROM jobs WHERE kind = 'notify_product_owner'") == 1);
  REQUIRE(testing::eventually([&] {
    return count("SELECT count(*) FROM mailbox WHERE recipient = 'owner@example.com'") == 1;
  }));
}

TEST_CASE_FIXTURE(Cluster, "anagram posts over three nodes at once lose no word") {
  std::string letters = "aelnst";  // 720 permutations, all one group
  std::vector<std::string> words;
  do {
    words.push_back(letters);
  } while (std::next_permutation(letters.begin(), letters.end()) && words.size() < 90);
  auto results = storm(static_cast<int>(words.size()), [&](httplib::Client& c, int i) {
    const nlohmann::json body = {{"words", {words[static_cast<std::size_t>(i)]}}};
    return request(c, "POST", "/anagrams", body.dump());
  });
  CHECK(statuses(results) == std::map<int, int>{{200, static_cast<int>(words.size())}});
  CHECK(count("SELECT count(*) FROM anagram_words") == static_cast<std::int64_t>(words.size()));
  auto http = nodes[2]->client();
  auto group = request(http, "GET", "/anagrams/" + words[0]).json()["anagrams"];
  CHECK(group.size() == words.size() - 1);
}

namespace {

std::string flaky_checkout_body() {
  return nlohmann::json{{"email", "flaky@example.com"},
                        {"phone", "+15550100444"},
                        {"items", {{{"sku", "cup"}, {"quantity", 2}, {"unit_price_cents", 700}}}},
                        {"payment_token", "tok_flaky"}}
      .dump();
}

// Starts `n` nodes on `db` at once, node i with `args` and its log (stderr)
// in `logs[i]` when given.
std::vector<std::unique_ptr<testing::ServerProcess>> start_nodes(
    int n, const std::string& db, const std::vector<std::string>& args,
    const std::vector<std::string>& logs = {}) {
  std::vector<std::future<std::unique_ptr<testing::ServerProcess>>> starting;
  for (int i = 0; i < n; ++i) {
    const std::string log = logs.empty() ? "" : logs[static_cast<std::size_t>(i)];
    starting.push_back(std::async(std::launch::async, [&db, &args, log] {
      return std::make_unique<testing::ServerProcess>(db, args, log);
    }));
  }
  std::vector<std::unique_ptr<testing::ServerProcess>> nodes;
  for (auto& s : starting) nodes.push_back(s.get());
  return nodes;
}

}  // namespace

TEST_CASE(
    "checkout with one Idempotency-Key on two nodes at once and tok_flaky: one order, one "
    "charge") {
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "checkout.db");
  // One gateway for both nodes, as in production: its charges are what the
  // nodes together did.
  auto gateway = testing::ServerProcess::fake_gateway(dir.file("gateway.sqlite"));
  auto nodes = start_nodes(2, db, {"--payment-gateway-url", gateway.url()});
  const std::string body = flaky_checkout_body();
  const httplib::Headers key = {{"Idempotency-Key", "two-nodes-flaky"}};

  // Four clients per node, each retrying (as API.md tells clients to, on
  // 503 and on 409 idempotency-key-in-use) until it gets its 201.
  constexpr int kClients = 8;
  std::vector<std::vector<testing::HttpResult>> tries(kClients);
  std::vector<std::thread> clients;
  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto http = nodes[static_cast<std::size_t>(i % 2)]->client();
      start.wait();
      for (int attempt = 0; attempt < 500; ++attempt) {
        auto r = request(http, "POST", "/checkout", body, "application/json", key);
        tries[static_cast<std::size_t>(i)].push_back(r);
        if (r.status != 503 && r.status != 409) return;
        std::this_thread::yield();
      }
    });
  }
  go.set_value();
  for (auto& t : clients) t.join();

  int failed_charges = 0;
  std::set<std::string> answers;
  for (const auto& client : tries) {
    REQUIRE(!client.empty());
    CHECK(client.back().status == 201);
    answers.insert(client.back().body);
    for (const auto& r : client) {
      if (r.status == 503) ++failed_charges;
      if (r.status == 409) CHECK(r.json()["type"] == "/problems/idempotency-key-in-use");
      CHECK((r.status == 201 || r.status == 503 || r.status == 409));
    }
  }
  CHECK(failed_charges == 1);  // tok_flaky fails once per gateway key, then charges
  CHECK(answers.size() == 1);  // one order, the same answer on both nodes
  CHECK(testing::query_int(db, "SELECT count(*) FROM orders") == 1);
  httplib::Client gw("127.0.0.1", gateway.port());
  auto charges = request(gw, "GET", "/v1/charges").json();
  CHECK(charges["count"] == 1);
  CHECK(charges["charges"][0]["amount_cents"] == 1400);
}

TEST_CASE(
    "webhook deliveries claimed by a node killed with kill -9 are rescued after the lease and "
    "completed once") {
  testing::WebhookSink sink;
  sink.hold();
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "deliveries.db");
  const std::vector<std::string> args = {
      "--webhook-url", sink.url(), "--webhook-secret",  "whsec_multi_node",
      "--job-lease",   "1000",     "--webhook-timeout", "20000",
      "--workers",     "4"};
  constexpr int kDeliveries = 3;
  auto doomed = std::make_unique<testing::ServerProcess>(db, args);
  auto http = doomed->client();
  for (int i = 0; i < kDeliveries; ++i) {
    REQUIRE(request(http, "PUT", "/users/hook" + std::to_string(i) + "%40example.com").status ==
            201);
  }
  REQUIRE(sink.wait_for(kDeliveries));  // all claimed by the doomed node, in flight, held
  auto survivors = start_nodes(2, db, args);
  doomed->kill9();
  doomed.reset();

  // Both survivors' rescuers look; each delivery goes out once more, from
  // whichever survivor claimed it after the lease expired.
  REQUIRE(sink.wait_for(2 * kDeliveries));
  sink.release();
  auto live = survivors[0]->client();
  nlohmann::json jobs;
  REQUIRE(testing::eventually([&] {
    jobs = request(live, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
    if (jobs.size() != kDeliveries) return false;
    for (const auto& job : jobs) {
      if (job["state"] != "completed") return false;
    }
    return true;
  }));
  for (const auto& job : jobs) {
    CHECK(job["attempt"] == 2);
    REQUIRE(job["errors"].size() == 1);
    CHECK(job["errors"][0]["message"].get<std::string>().find("lease expired") !=
          std::string::npos);
  }
  // Each delivery twice: the attempt the kill cut, then the one that
  // completed, never a third from the other survivor.
  std::map<std::string, int> per_key;
  for (const auto& k : sink.keys()) ++per_key[k];
  CHECK(per_key.size() == kDeliveries);
  for (const auto& [k, n] : per_key) CHECK(n == 2);
  CHECK(testing::query_int(db, "SELECT count(*) FROM jobs WHERE state <> 'completed'") == 0);
}

TEST_CASE("kill -9 of the leader: another node leads within 10 s and maintenance keeps running") {
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "leader.db");
  // A short lease so that the takeover is quick; a retention the cleaner
  // (a leader-only service) must enforce for finished jobs to disappear.
  const std::vector<std::string> args = {"--leader-ttl", "1000", "--job-retention", "200ms"};
  std::vector<std::string> logs;
  for (int i = 0; i < kNodes; ++i) logs.push_back(dir.file("node" + std::to_string(i) + ".log"));
  auto nodes = start_nodes(kNodes, db, args, logs);
  auto elected = [&](std::size_t i) {
    return testing::read_file(logs[i]).find("leader_elected") != std::string::npos;
  };
  auto leaders = [&] {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < logs.size(); ++i) {
      if (elected(i)) out.push_back(i);
    }
    return out;
  };
  REQUIRE(testing::eventually([&] { return !leaders().empty(); }));
  const auto first = leaders();
  REQUIRE(first.size() == 1);  // one leader at a time
  const std::size_t old_leader = first[0];
  nodes[old_leader]->kill9();

  REQUIRE(testing::eventually([&] { return leaders().size() == 2; }, std::chrono::seconds(10)));
  CHECK(leaders().size() == 2);  // the old one and one successor, not both survivors

  // The maintenance loops run on the new leader: a job finished now is
  // deleted once past the retention.
  const std::size_t survivor = (old_leader + 1) % kNodes;
  auto http = nodes[survivor]->client();
  REQUIRE(request(http, "PUT", "/users/after-failover%40example.com").status == 201);
  REQUIRE(testing::eventually([&] {
    return testing::query_int(db,
                              "SELECT count(*) FROM mailbox WHERE recipient = "
                              "'after-failover@example.com'") == 1;
  }));
  CHECK(testing::eventually(
      [&] { return testing::query_int(db, "SELECT count(*) FROM jobs") == 0; }));
}

TEST_CASE("a job staged on one node starts on an idle other node well before that node's poll") {
  // Both runners poll once a minute: only a wake-up across nodes (on
  // PostgreSQL, the staging transaction's NOTIFY) can start the third
  // delivery on the idle node within the wait below.
  testing::WebhookSink sink;
  sink.hold();
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "wakeups.db");
  const std::vector<std::string> args = {
      "--webhook-url",   sink.url(), "--webhook-secret",  "whsec_multi_node",
      "--workers",       "1",        "--webhook-timeout", "20000",
      "--test-job-poll", "60s"};
  auto nodes = start_nodes(2, db, args);
  // Each node answered a request: its runner started (before it listened)
  // and made its first claim pass, on an empty table.
  for (auto& node : nodes) {
    auto http = node->client();
    REQUIRE(request(http, "GET", "/jobs").status == 200);
  }
  auto staging = nodes[0]->client();
  auto deliveries_in_hand = [&] {
    return testing::query_int(db,
                              "SELECT count(*) FROM jobs WHERE kind = 'deliver_webhook' AND state "
                              "= 'running'");
  };
  // The staging node's one worker takes the first delivery (held by the
  // sink) and its producer the second one into its queue, which is then
  // full: it claims nothing more. The third delivery is the idle node's
  // to take, and nothing in the idle node's own process wakes it.
  REQUIRE(request(staging, "PUT", "/users/wake1%40example.com").status == 201);
  REQUIRE(sink.wait_for(1));
  REQUIRE(request(staging, "PUT", "/users/wake2%40example.com").status == 201);
  REQUIRE(testing::eventually([&] { return deliveries_in_hand() == 2; }));
  REQUIRE(request(staging, "PUT", "/users/wake3%40example.com").status == 201);
  if (testing::on_postgres()) {
    CHECK(sink.wait_for(2, std::chrono::seconds(10)));
  } else {
    // One file has no cross-process hint: the idle node finds it at its poll.
    CHECK_FALSE(sink.wait_for(2, std::chrono::seconds(1)));
  }
  sink.release();
  if (!testing::on_postgres()) return;
  REQUIRE(testing::eventually([&] {
    return testing::query_int(db,
                              "SELECT count(*) FROM jobs WHERE kind = 'deliver_webhook' AND state "
                              "= 'completed'") == 3;
  }));
}
