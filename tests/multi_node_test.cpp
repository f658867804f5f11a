// Three server processes on one database, requests spread over them at
// once: the guarantees of API.md hold across nodes, not only across the
// threads of one process. On PostgreSQL this is the deployment of README
// "Running several nodes"; on SQLite, several processes on one file (also
// supported, docs/RELIABILITY.md "Across processes").
//
// The nodes start at the same moment, so on a fresh PostgreSQL database
// they also race to migrate it: the schema is applied once.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
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
