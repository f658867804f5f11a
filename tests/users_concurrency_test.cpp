// Concurrent creates of one email over real HTTP with real threads against a
// real database file: exactly one user, one audit row, one job, one message.
#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

using testing::request;

TEST_CASE("64 threads creating one email make exactly one user, audit row, job and message") {
  testing::TempDir dir;
  app::Config cfg = testing::test_config(dir);
  cfg.http_threads = 80;
  testing::InProcessServer server(cfg);

  constexpr int kThreads = 64;
  std::barrier start(kThreads);
  std::atomic<int> created{0}, existing{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client http = server.client();
      // Alternate the three spellings of create-or-get and the email's case.
      start.arrive_and_wait();
      testing::HttpResult r;
      switch (i % 3) {
        case 0:
          r = request(http, "PUT", "/users/Race%40Example.com");
          break;
        case 1:
          r = request(http, "PUT", "/users?email=race%40example.COM");
          break;
        default:
          r = request(http, "POST", "/api/users", R"({"email":"  RACE@example.com"})");
      }
      if (r.status == 201) {
        created++;
      } else if (r.status == 200) {
        existing++;
      } else {
        other++;
        MESSAGE("unexpected status " << r.status << " " << r.body);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(created == 1);
  CHECK(existing == kThreads - 1);
  CHECK(other == 0);

  httplib::Client http = server.client();
  auto user = request(http, "PUT", "/users/race@example.com").json();
  const auto id = user["id"].get<int64_t>();
  CHECK(
      request(http, "GET", "/users/" + std::to_string(id) + "/actions").json()["actions"].size() ==
      1);
  auto jobs = request(http, "GET", "/jobs?kind=send_welcome_email").json()["jobs"];
  CHECK(jobs.size() == 1);
  CHECK(testing::eventually(
      [&] { return request(http, "GET", "/jobs?state=completed").json()["jobs"].size() == 1; }));
  auto messages = request(http, "GET", "/mailbox?to=race@example.com").json()["messages"];
  CHECK(messages.size() == 1);
}

TEST_CASE("concurrent creates of distinct emails all land") {
  testing::TempDir dir;
  app::Config cfg = testing::test_config(dir);
  cfg.http_threads = 40;
  testing::InProcessServer server(cfg);
  constexpr int kThreads = 32, kPerThread = 10;
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client http = server.client();
      for (int i = 0; i < kPerThread; ++i) {
        auto r = request(http, "PUT",
                         "/users/u" + std::to_string(t) + "-" + std::to_string(i) + "@example.com");
        if (r.status == 201) created++;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(created == kThreads * kPerThread);
  httplib::Client http = server.client();
  CHECK(testing::eventually([&] {
    return request(http, "GET", "/jobs?state=completed&limit=1000").json()["jobs"].size() ==
           kThreads * kPerThread;
  }));
}
