// The real binary, killed with SIGKILL right after a burst of acknowledged
// creates, then restarted on the same file: every acknowledged user is there
// and every pending welcome job finishes, once.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <set>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

using testing::request;

TEST_CASE("a restart after kill -9 keeps acknowledged users and finishes pending jobs once") {
  testing::TempDir dir;
  const std::string db = dir.file("crash.db");
  std::set<std::string> acknowledged;
  {
    testing::ServerProcess server(db);
    std::vector<std::thread> threads;
    std::mutex mu;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        httplib::Client http = server.client();
        for (int i = 0; i < 50; ++i) {
          const std::string email =
              "k" + std::to_string(t) + "x" + std::to_string(i) + "@example.com";
          if (request(http, "PUT", "/users/" + email).status == 201) {
            std::lock_guard lock(mu);
            acknowledged.insert(email);
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    server.kill9();  // no graceful shutdown: whatever was in flight is cut
  }
  REQUIRE(acknowledged.size() == 200);

  const auto started = std::chrono::steady_clock::now();
  testing::ServerProcess restarted(db);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  httplib::Client http = restarted.client();
  for (const auto& email : acknowledged) {
    auto r = request(http, "PUT", "/users/" + email);
    CHECK_MESSAGE(r.status == 200, email);
  }
  CHECK(testing::eventually([&] {
    auto all = request(http, "GET", "/jobs?limit=1000").json()["jobs"];
    if (all.size() != acknowledged.size()) return false;
    for (const auto& j : all) {
      if (j["state"] != "completed") return false;
    }
    return true;
  }));
  for (const auto& email : acknowledged) {
    auto messages = request(http, "GET", "/mailbox?to=" + email).json()["messages"];
    CHECK_MESSAGE(messages.size() == 1, email);
  }
  CHECK(restarted.terminate_and_wait() == 0);
}

TEST_CASE("SIGTERM shuts down gracefully with exit code 0") {
  testing::TempDir dir;
  testing::ServerProcess server(dir.file("term.db"));
  httplib::Client http = server.client();
  CHECK(request(http, "PUT", "/users/t@example.com").status == 201);
  CHECK(server.terminate_and_wait() == 0);
}

TEST_CASE("prints help and version, and names a bad flag") {
  auto [help_code, help] = testing::run_binary({"serve", "--help"});
  CHECK(help_code == 0);
  CHECK(help.find("--synchronous") != std::string::npos);
  auto [version_code, version] = testing::run_binary({"--version"});
  CHECK(version_code == 0);
  CHECK(version.find("aftercommit") != std::string::npos);
  auto [bad_code, bad] = testing::run_binary({"serve", "--port", "70000"});
  CHECK(bad_code != 0);
  CHECK(bad.find("--port") != std::string::npos);
  auto [sync_code, sync] = testing::run_binary({"serve", "--synchronous", "sometimes"});
  CHECK(sync_code != 0);
  CHECK(sync.find("--synchronous") != std::string::npos);
}
