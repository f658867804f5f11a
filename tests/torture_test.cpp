// Crash torture: kill -9 under load, many rounds, and a checker.
//
// How it works. The real binary (testing::ServerProcess) serves a temporary
// database. Each round, several client threads send a stream of writes drawn
// from the workload list below, while the main thread sleeps a random time and
// then SIGKILLs the server. Every request is recorded with its answer (or 0:
// no answer, the server died first). With the server dead, the checker opens
// the file itself (SQLiteCpp, as a recovering reader would) and verifies the
// invariants; then the server is restarted (timed: it must be back within a
// second) and the next round begins. Requests sent with an Idempotency-Key
// that got no answer are retried with the same key after the restart, as a
// real client would. After the last round the server is started once more and
// left to drain the queue: every committed job must reach a final state with
// exactly one effect, and at least one job must have been rescued after a
// kill (the rescue path really ran). Jobs are slowed by the hidden
// --test-job-delay flag so that kills land while jobs are running.
//
// Invariants (checked after every round, and after the drain):
// - every 2xx-acknowledged create is present, with the id it was answered;
// - a request with no answer is all-or-nothing: user ⇔ its `created` audit
//   row ⇔ its welcome job (no user without both, no orphan row or job);
// - no duplicates: one user per email, at most one 201 per email over the
//   whole run, one audit row and one welcome job per user, one mailbox
//   message per job, and a message exists iff its job completed;
// - PRAGMA integrity_check is "ok" and foreign_key_check finds nothing.
//
// Rounds: AFTERCOMMIT_TORTURE_ROUNDS (default 20, the `make test` form);
// `make torture ROUNDS=N` runs the long form. The figures are printed.
//
// Extending: add a Workload (how to build its next request) and, if it writes
// new tables, a check in check_invariants(). See docs/RELIABILITY.md.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

namespace {

using Clock = std::chrono::steady_clock;

// One HTTP request a workload wants sent.
struct Outgoing {
  std::string method;
  std::string path;
  std::string body;
  httplib::Headers headers;
  std::string email;            // the normalized email the request creates or gets
  std::string idempotency_key;  // "" when none; unanswered keyed requests are retried
  bool fresh_email = false;     // no request before this one named this email
};

// A request and what came back.
struct Sent {
  Outgoing req;
  int status = 0;  // 0: no answer (the server was killed first)
  std::int64_t id = 0;
  bool retry = false;
  std::string workload;
};

struct Workload {
  std::string name;
  std::function<Outgoing(std::mt19937& rng, std::uint64_t n)> next;
};

std::string random_case(std::mt19937& rng, const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c >= 'a' && c <= 'z' && rng() % 2 == 0) c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// A create-or-get of `email`, in one of the three spellings API.md allows.
Outgoing create_user(std::mt19937& rng, const std::string& email) {
  Outgoing o;
  o.email = email;
  const std::string spelled = random_case(rng, email);
  std::string encoded;
  for (char c : spelled) encoded += c == '@' ? std::string("%40") : std::string(1, c);
  switch (rng() % 3) {
    case 0:
      o.method = "PUT";
      o.path = "/users/" + encoded;
      break;
    case 1:
      o.method = "PUT";
      o.path = "/users?email=" + encoded;
      break;
    default:
      o.method = "POST";
      o.path = "/api/users";
      o.body = nlohmann::json{{"email", spelled}}.dump();
      break;
  }
  return o;
}

// Today's workloads. When products, anagrams and checkout land, their
// workloads go here (see docs/RELIABILITY.md for what each must check).
std::vector<Workload> workloads() {
  return {
      {"create new user",
       [](std::mt19937& rng, std::uint64_t n) {
         Outgoing o = create_user(rng, "new" + std::to_string(n) + "@torture.example");
         o.fresh_email = true;
         return o;
       }},
      {"create repeated user",
       [](std::mt19937& rng, std::uint64_t) {
         return create_user(rng, "pool" + std::to_string(rng() % 12) + "@torture.example");
       }},
      // Keyed creates: answered or not, the client retries an unanswered one
      // with the same key after the restart. Today the key is accepted and
      // ignored; with the idempotency layer the retry must replay or finish
      // the first attempt (never create twice).
      {"create new user with Idempotency-Key",
       [](std::mt19937& rng, std::uint64_t n) {
         Outgoing o = create_user(rng, "keyed" + std::to_string(n) + "@torture.example");
         o.idempotency_key = "torture-" + std::to_string(n);
         o.headers.emplace("Idempotency-Key", o.idempotency_key);
         o.fresh_email = true;
         return o;
       }},
  };
}

// Everything sent during the run, and the run's figures.
struct Ledger {
  std::mutex mu;
  std::vector<Sent> sent;                  // guarded by mu
  std::vector<Outgoing> unanswered_keyed;  // guarded by mu: to retry after restart
};

Sent send(httplib::Client& http, const Outgoing& o) {
  Sent s;
  s.req = o;
  auto r = testing::request(http, o.method, o.path, o.body, "application/json", o.headers);
  s.status = r.status;
  if (r.status >= 200 && r.status < 300) {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_object() && body.contains("id")) s.id = body["id"].get<std::int64_t>();
  }
  return s;
}

std::int64_t scalar(SQLite::Database& db, const char* sql) {
  SQLite::Statement q(db, sql);
  REQUIRE(q.executeStep());
  return q.getColumn(0).getInt64();
}

struct Figures {
  int rounds = 0;
  int kills = 0;
  std::uint64_t requests = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t unanswered = 0;
  std::uint64_t unanswered_committed = 0;
  std::uint64_t retries = 0;
  std::int64_t users = 0;
  std::int64_t jobs = 0;
  std::int64_t rescued = 0;
  double max_restart_ms = 0;
};

// The checker. Runs with the server dead, on the file itself.
void check_invariants(const std::string& db_path, const std::vector<Sent>& sent, Figures& fig) {
  SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
  {
    SQLite::Statement q(db, "PRAGMA integrity_check");
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getString() == "ok");
  }
  {
    SQLite::Statement q(db, "PRAGMA foreign_key_check");
    CHECK_FALSE(q.executeStep());
  }
  // All-or-nothing per user: one `created` row, one welcome job; no orphans.
  CHECK(scalar(db,
               "SELECT count(*) FROM users u WHERE (SELECT count(*) FROM user_actions a "
               "WHERE a.user_id = u.id AND a.action = 'created') != 1") == 0);
  // (Aggregated once, then joined: a correlated json_extract per user would
  // make each round quadratic in the number of users.)
  CHECK(scalar(db,
               "SELECT count(*) FROM users u LEFT JOIN (SELECT json_extract(args, "
               "'$.user_id') AS uid, count(*) AS n FROM jobs WHERE kind = "
               "'send_welcome_email' GROUP BY uid) w ON w.uid = u.id WHERE w.n IS NOT 1") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email' "
               "AND json_extract(args, '$.user_id') NOT IN (SELECT id FROM users)") == 0);
  CHECK(
      scalar(db, "SELECT count(*) FROM user_actions WHERE user_id NOT IN (SELECT id FROM users)") ==
      0);
  CHECK(scalar(db,
               "SELECT count(*) FROM (SELECT email FROM users GROUP BY email "
               "HAVING count(*) > 1)") == 0);
  // Exactly-once effects: one message per job, a message iff its job completed.
  CHECK(scalar(db,
               "SELECT count(*) FROM (SELECT job_id FROM mailbox GROUP BY job_id "
               "HAVING count(*) > 1)") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM mailbox m LEFT JOIN jobs j ON j.id = m.job_id "
               "WHERE j.state IS NOT 'completed'") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM jobs j WHERE j.state = 'completed' "
               "AND j.kind = 'send_welcome_email' "
               "AND NOT EXISTS (SELECT 1 FROM mailbox m WHERE m.job_id = j.id)") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM (SELECT recipient FROM mailbox WHERE subject = "
               "'Welcome' GROUP BY recipient HAVING count(*) > 1)") == 0);

  // Acknowledged writes are present, with the id they were answered.
  std::map<std::string, std::int64_t> users;
  {
    SQLite::Statement q(db, "SELECT email, id FROM users");
    while (q.executeStep()) users[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
  }
  std::map<std::string, int> created_answers;
  std::set<std::string> answered_before;
  fig.acknowledged = fig.unanswered = fig.unanswered_committed = 0;
  for (const Sent& s : sent) {
    if (s.status == 0) {
      ++fig.unanswered;
      if (users.count(s.req.email) != 0) ++fig.unanswered_committed;
      continue;
    }
    CAPTURE(s.workload);
    CAPTURE(s.req.path);
    CAPTURE(s.req.email);
    CHECK((s.status == 200 || s.status == 201));
    if (s.status != 200 && s.status != 201) continue;
    ++fig.acknowledged;
    auto it = users.find(s.req.email);
    REQUIRE(it != users.end());
    CHECK(it->second == s.id);
    if (s.status == 201) ++created_answers[s.req.email];
    // A fresh email's first attempt cannot find the user already there.
    if (s.req.fresh_email && !s.retry) CHECK(s.status == 201);
  }
  for (const auto& [email, n] : created_answers) {
    CAPTURE(email);
    CHECK(n == 1);
  }
  fig.users = scalar(db, "SELECT count(*) FROM users");
  fig.jobs = scalar(db, "SELECT count(*) FROM jobs");
  fig.rescued = scalar(db,
                       "SELECT count(*) FROM jobs WHERE attempt > 1 "
                       "OR errors LIKE '%lease expired%'");
}

int rounds_from_env() {
  const char* v = std::getenv("AFTERCOMMIT_TORTURE_ROUNDS");
  const int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : 20;
}

}  // namespace

TEST_CASE("kill -9 under load loses and duplicates nothing, round after round") {
  testing::TempDir dir;
  const std::string db_path = dir.file("torture.db");
  const std::vector<std::string> args = {"--test-job-delay", "2", "--http-threads", "8"};
  const int rounds = rounds_from_env();
  const int clients = 4;
  const auto all = workloads();

  Ledger ledger;
  Figures fig;
  std::atomic<std::uint64_t> counter{0};
  std::mt19937 rng(std::random_device{}());

  auto start_server = [&] {
    const auto t0 = Clock::now();
    auto server = std::make_unique<testing::ServerProcess>(db_path, args);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    fig.max_restart_ms = std::max(fig.max_restart_ms, ms);
    CHECK(ms < 1000.0);
    return server;
  };
  // The client's side of a crash: resend unanswered keyed requests.
  auto retry_unanswered = [&](testing::ServerProcess& server) {
    std::vector<Outgoing> pending;
    {
      std::lock_guard lock(ledger.mu);
      pending.swap(ledger.unanswered_keyed);
    }
    auto http = server.client();
    for (const Outgoing& o : pending) {
      Sent s = send(http, o);
      s.retry = true;
      s.workload = "retry after crash";
      CHECK(s.status >= 200);
      CHECK(s.status < 300);
      std::lock_guard lock(ledger.mu);
      ledger.sent.push_back(std::move(s));
      ++fig.retries;
    }
  };

  for (int round = 1; round <= rounds; ++round) {
    CAPTURE(round);
    auto server = start_server();
    retry_unanswered(*server);

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, seed = rng()] {
        std::mt19937 local(seed);
        auto http = server->client();
        http.set_connection_timeout(1, 0);
        while (!stop.load()) {
          const Workload& w = all[local() % all.size()];
          Sent s = send(http, w.next(local, counter.fetch_add(1)));
          s.workload = w.name;
          std::lock_guard lock(ledger.mu);
          if (s.status == 0 && !s.req.idempotency_key.empty()) {
            ledger.unanswered_keyed.push_back(s.req);
          }
          const bool dead = s.status == 0;
          ledger.sent.push_back(std::move(s));
          if (dead) break;
        }
      });
    }
    std::uniform_int_distribution<int> pause_ms(20, 250);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    server->kill9();
    ++fig.kills;
    stop = true;
    for (auto& t : threads) t.join();
    server.reset();

    std::lock_guard lock(ledger.mu);
    check_invariants(db_path, ledger.sent, fig);
    fig.rounds = round;
    if (round % 25 == 0) {
      std::fprintf(stderr, "torture: round %d/%d, %zu requests, %lld users\n", round, rounds,
                   ledger.sent.size(), static_cast<long long>(fig.users));
    }
  }

  // Final drain: restart, retry what is pending, let every job finish.
  {
    auto server = start_server();
    retry_unanswered(*server);
    auto http = server->client();
    const bool drained = testing::eventually(
        [&] {
          auto r = testing::request(http, "GET", "/jobs?state=available&limit=1");
          auto q = testing::request(http, "GET", "/jobs?state=retryable&limit=1");
          auto w = testing::request(http, "GET", "/jobs?state=running&limit=1");
          return r.status == 200 && q.status == 200 && w.status == 200 &&
                 r.json()["jobs"].empty() && q.json()["jobs"].empty() && w.json()["jobs"].empty();
        },
        std::chrono::seconds(120));
    CHECK(drained);
    CHECK(server->terminate_and_wait() == 0);
  }
  std::lock_guard lock(ledger.mu);
  check_invariants(db_path, ledger.sent, fig);
  fig.requests = ledger.sent.size();
  {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY);
    // Drained: every job is final, every welcome job completed (none can fail).
    CHECK(scalar(db,
                 "SELECT count(*) FROM jobs WHERE state NOT IN "
                 "('completed','discarded','cancelled')") == 0);
    CHECK(scalar(db,
                 "SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email' "
                 "AND state != 'completed'") == 0);
    CHECK(scalar(db, "SELECT count(*) FROM mailbox") == fig.users);
  }
  CHECK(fig.rescued >= 1);
  std::printf(
      "torture: rounds=%d kills=%d requests=%llu acknowledged=%llu unanswered=%llu "
      "(committed %llu) retried=%llu users=%lld jobs=%lld rescued=%lld max_restart_ms=%.1f\n",
      fig.rounds, fig.kills, static_cast<unsigned long long>(fig.requests),
      static_cast<unsigned long long>(fig.acknowledged),
      static_cast<unsigned long long>(fig.unanswered),
      static_cast<unsigned long long>(fig.unanswered_committed),
      static_cast<unsigned long long>(fig.retries), static_cast<long long>(fig.users),
      static_cast<long long>(fig.jobs), static_cast<long long>(fig.rescued), fig.max_restart_ms);
  std::fflush(stdout);
}
