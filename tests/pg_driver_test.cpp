// The PostgreSQL driver's own promises (db/pg/driver.h), PostgreSQL only:
// an outage answers 503 and heals without a restart (also under load, with
// nothing acknowledged lost), a lock held by another node past lock_timeout
// is `busy` and retried, then 409 busy.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "db/database.h"
#include "db/jobs.h"
#include "db/leader.h"
#include "db/pg/driver.h"
#include "db/users.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

// A PostgreSQL server of the test's own (tests/pg.sh), so that it can be
// stopped without stopping the one every other suite uses.
class PrivateServer {
 public:
  explicit PrivateServer(const testing::TempDir& dir) : dir_(dir.file("pg")) {
    socket_ = run("start");
    while (!socket_.empty() && socket_.back() == '\n') socket_.pop_back();
    REQUIRE(!socket_.empty());
  }
  ~PrivateServer() { (void)run("stop"); }
  PrivateServer(const PrivateServer&) = delete;
  PrivateServer& operator=(const PrivateServer&) = delete;

  std::string url() const { return "postgresql:///postgres?host=" + socket_ + "&user=postgres"; }
  void halt() { (void)run("halt"); }
  void resume() { (void)run("resume"); }

 private:
  std::string run(const std::string& verb) {
    const std::string cmd =
        testing::shell_quote(std::string(AFTERCOMMIT_SOURCE_DIR) + "/tests/pg.sh") + " " + verb +
        " " + testing::shell_quote(dir_);
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[512];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      ::pclose(p);
    }
    return out;
  }
  std::string dir_;
  std::string socket_;
};

// A write on `db` that runs `hold` (a SELECT ... FOR UPDATE, a staged job)
// and keeps its transaction open until release(): another node's
// transaction in the middle of its work. The constructor returns once `hold`
// ran; the destructor releases the write if nothing did.
class OpenTransaction {
 public:
  OpenTransaction(db::Database& db, std::function<void(db::Tx&)> hold) : hold_(std::move(hold)) {
    done_ = std::async(std::launch::async, [this, &db] {
      return db.write([this](db::Tx& tx) {
        try {
          hold_(tx);
        } catch (...) {
          held_.set_value();  // the write fails; release() returns how
          throw;
        }
        held_.set_value();
        release_.get_future().wait();
        return core::Status::ok();
      });
    });
    held_.get_future().wait();
  }
  ~OpenTransaction() {
    if (!released_) (void)release();
  }
  OpenTransaction(const OpenTransaction&) = delete;
  OpenTransaction& operator=(const OpenTransaction&) = delete;

  // Lets the write commit; returns how it ended.
  core::Status release() {
    released_ = true;
    release_.set_value();
    return done_.get();
  }

 private:
  std::function<void(db::Tx&)> hold_;
  std::promise<void> held_, release_;
  std::future<core::Status> done_;
  bool released_ = false;
};

// The row the lock tests hold: user held@example.com, inserted through `db`.
void insert_held_user(db::Database& db) {
  REQUIRE(db.write([](db::Tx& tx) {
              (void)db::insert_user_if_absent(tx, "held@example.com", 1);
              return core::Status::ok();
            }).is_ok());
}

void lock_held_user(db::Tx& tx) {
  tx.conn().exec("SELECT 1 FROM users WHERE email = 'held@example.com' FOR UPDATE");
}

}  // namespace

TEST_CASE(
    "PostgreSQL down: writes, reads and /healthz answer 503, then it serves again without "
    "a restart") {
  testing::TempDir dir;
  PrivateServer pg(dir);
  auto config = testing::test_config(dir);
  config.db_path = pg.url();
  testing::InProcessServer server(config);
  auto http = server.client();
  auto created = request(http, "PUT", "/users/kept%40example.com");
  REQUIRE(created.status == 201);
  const std::string user = "/users/" + created.json()["id"].dump();

  pg.halt();
  auto write = request(http, "PUT", "/users/later%40example.com");
  CHECK(write.status == 503);
  CHECK(write.json()["type"] == "/problems/unavailable");
  CHECK(request(http, "GET", user).status == 503);
  CHECK(request(http, "GET", "/healthz").status == 503);

  pg.resume();
  CHECK(testing::eventually([&] { return request(http, "GET", "/healthz").status == 200; },
                            std::chrono::seconds(20)));
  CHECK(request(http, "GET", user).status == 200);  // the acknowledged write is there
  CHECK(request(http, "PUT", "/users/later%40example.com").status == 201);
}

namespace {

// One write of the load below and its answer.
struct Write {
  enum Kind { kCreate, kKeyedCreate, kCheckout } kind = kCreate;
  std::string email;
  std::string key;  // kKeyedCreate, kCheckout
  std::string body;
  int status = 0;
  std::string answer;
  std::string content_type;
  // The phase when it was sent and when its answer came: kPhases * outage +
  // the Outage phase.
  int sent_in = 0;
  int answered_in = 0;
};

// Each outage's phases, in order: serving, pg.sh halt running, stopped,
// pg.sh resume running, started, /healthz answered 200 again.
enum Outage { kUp, kHalting, kDown, kResuming, kBack, kHealed, kPhases };

testing::HttpResult send(httplib::Client& http, const Write& w) {
  switch (w.kind) {
    case Write::kCreate:
      return request(http, "PUT", "/users/" + w.email);
    case Write::kKeyedCreate:
      return request(http, "POST", "/api/users", w.body, "application/json",
                     {{"Idempotency-Key", w.key}});
    case Write::kCheckout:
      return request(http, "POST", "/checkout", w.body, "application/json",
                     {{"Idempotency-Key", w.key}});
  }
  return {};
}

}  // namespace

TEST_CASE(
    "PostgreSQL stopped and started under load: writes answer 503 while it is down, succeed "
    "again without a restart, and nothing acknowledged is lost or doubled") {
  testing::TempDir dir;
  PrivateServer pg(dir);
  auto gateway = testing::ServerProcess::fake_gateway(dir.file("gateway.sqlite"));
  // Key locks short, so that a key whose request the outage cut can be taken
  // over by the retry soon after PostgreSQL is back.
  testing::ServerProcess server(
      pg.url(), {"--payment-gateway-url", gateway.url(), "--idempotency-lock-timeout", "500",
                 "--http-threads", "8"});
  std::atomic<int> phase{kUp};
  std::atomic<bool> stop{false};
  std::atomic<int> counter{0};
  std::mutex mu;
  std::vector<Write> writes;  // guarded by mu
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      auto http = server.client();
      // An answer within the timeout, outage or not: never a hang.
      http.set_read_timeout(15, 0);
      while (!stop.load()) {
        const int n = counter.fetch_add(1);
        Write w;
        w.kind = static_cast<Write::Kind>((n + c) % 3);
        w.email = "load" + std::to_string(n) + "@example.com";
        w.key = "outage-" + std::to_string(n);
        if (w.kind == Write::kKeyedCreate) w.body = nlohmann::json{{"email", w.email}}.dump();
        if (w.kind == Write::kCheckout) {
          w.body =
              nlohmann::json{
                  {"email", w.email},
                  {"phone", "+1555" + std::to_string(1000000 + n)},
                  {"items", {{{"sku", "mug"}, {"quantity", 1}, {"unit_price_cents", 500 + n}}}},
                  {"payment_token", "tok_visa"}}
                  .dump();
        }
        w.sent_in = phase.load();
        auto r = send(http, w);
        w.answered_in = phase.load();
        w.status = r.status;
        w.answer = r.body;
        w.content_type = r.header("Content-Type");
        const bool refused = w.status == 503;
        {
          std::lock_guard lock(mu);
          writes.push_back(std::move(w));
        }
        // A client backs off after a 503 (as API.md asks).
        if (refused) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  // Two outages: the connections reopened after the first must be reopened
  // again after the second.
  auto http = server.client();
  for (int outage = 0; outage < 2; ++outage) {
    const int base = outage * kPhases;
    phase = base + kUp;
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    phase = base + kHalting;
    pg.halt();
    phase = base + kDown;
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    CHECK(request(http, "GET", "/healthz").status == 503);
    int status = 0;
    CHECK(::waitpid(server.pid(), &status, WNOHANG) == 0);  // still serving, not exited
    phase = base + kResuming;
    pg.resume();
    phase = base + kBack;
    REQUIRE(testing::eventually([&] { return request(http, "GET", "/healthz").status == 200; },
                                std::chrono::seconds(20)));
    // Writes sent from now on must succeed: the same process, its
    // connections reopened.
    phase = base + kHealed;
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
  stop = true;
  for (auto& t : clients) t.join();

  int answered_down = 0, cut = 0, healed = 0;
  for (const Write& w : writes) {
    CAPTURE(w.email);
    CAPTURE(w.status);
    CAPTURE(w.answer);
    CAPTURE(w.sent_in);
    CAPTURE(w.answered_in);
    // 2xx, or 503 problem JSON: never a 500, never no answer.
    CHECK((w.status == 200 || w.status == 201 || w.status == 503));
    if (w.status == 503) {
      CHECK(w.content_type.find("application/problem+json") != std::string::npos);
      CHECK(nlohmann::json::parse(w.answer)["type"] == "/problems/unavailable");
    }
    if (w.sent_in % kPhases == kDown && w.answered_in == w.sent_in) {
      CHECK(w.status == 503);  // nothing can commit while it is down
      ++answered_down;
    }
    // Sent before the server stopped, refused: the halt cut it.
    if (w.sent_in % kPhases < kDown && w.status == 503) ++cut;
    if (w.sent_in % kPhases == kHealed) {
      CHECK(w.status / 100 == 2);
      ++healed;
    }
  }
  CHECK(answered_down > 0);
  CHECK(healed > 0);

  // The client's side: every write refused is sent again (keyed ones with
  // their key, which replays or finishes what the outage cut).
  int in_use = 0, committed = 0;
  for (Write& w : writes) {
    if (w.status == 503) {
      CAPTURE(w.email);
      testing::HttpResult r;
      // 409 in use: a key whose request the outage cut, until its lock times out.
      CHECK(testing::eventually([&] {
        r = send(http, w);
        if (r.status == 409) ++in_use;
        return r.status != 409;
      }));
      // Committed before the answer was lost: found, or replayed.
      if (r.status == 200 || r.header("Idempotent-Replayed") == "true") ++committed;
      CHECK(r.status / 100 == 2);
      w.status = r.status;
      w.answer = r.body;
    }
  }
  // Every write is there exactly once, with the id it was answered, its
  // audit row and its job; every key replays its answer byte for byte.
  const std::string db = pg.url();
  std::int64_t checkouts = 0;
  std::string user_ids, order_ids;  // SQL lists: ('email', id), ... and id, ...
  for (const Write& w : writes) {
    CAPTURE(w.email);
    const auto id = nlohmann::json::parse(w.answer)["id"].get<std::int64_t>();
    if (w.kind == Write::kCheckout) {
      ++checkouts;
      order_ids += (order_ids.empty() ? "" : ", ") + std::to_string(id);
    } else {
      user_ids += std::string(user_ids.empty() ? "" : ", ") + "('" + w.email + "', " +
                  std::to_string(id) + ")";
    }
    if (w.kind != Write::kCreate) {
      auto again = send(http, w);
      CHECK(again.status == w.status);
      CHECK(again.header("Idempotent-Replayed") == "true");
      CHECK(again.body == w.answer);
    }
  }
  const auto users = static_cast<std::int64_t>(writes.size()) - checkouts;
  CHECK(testing::query_int(db, "SELECT count(*) FROM users") == users);
  CHECK(testing::query_int(db, "SELECT count(*) FROM users WHERE (email, id) IN (VALUES " +
                                   user_ids + ")") == users);
  CHECK(testing::query_int(db,
                           "SELECT count(*) FROM orders WHERE state IN ('paid', "
                           "'ready_to_ship') AND id IN (" +
                               order_ids + ")") == checkouts);
  CHECK(testing::query_int(db,
                           "SELECT count(*) FROM users u WHERE (SELECT count(*) FROM user_actions "
                           "a WHERE a.user_id = u.id AND a.action = 'created') <> 1") == 0);
  CHECK(testing::query_int(db,
                           "SELECT count(*) FROM users u WHERE (SELECT count(*) FROM jobs j "
                           "WHERE j.kind = 'send_welcome_email' AND (j.args->>'user_id')::"
                           "bigint = u.id) <> 1") == 0);
  CHECK(testing::query_int(db, "SELECT count(*) FROM orders") == checkouts);
  CHECK(testing::query_int(db,
                           "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM jobs j "
                           "WHERE j.kind = 'send_sms' AND (j.args->>'order_id')::bigint = "
                           "o.id) <> 1") == 0);
  CHECK(testing::query_int(db,
                           "SELECT count(*) FROM idempotency_keys WHERE locked_at IS NOT "
                           "NULL OR recovery_point <> 'finished'") == 0);
  httplib::Client gw("127.0.0.1", gateway.port());
  CHECK(request(gw, "GET", "/v1/charges").json()["count"] == checkouts);  // one charge per order
  // The jobs staged before, during and after the outage all complete, once.
  CHECK(testing::eventually(
      [&] {
        return testing::query_int(db, "SELECT count(*) FROM jobs WHERE state <> 'completed'") == 0;
      },
      std::chrono::seconds(30)));
  CHECK(testing::query_int(db, "SELECT count(*) FROM mailbox WHERE subject = 'Welcome'") == users);
  CHECK(testing::query_int(db, "SELECT count(*) FROM mailbox WHERE channel = 'sms'") == checkouts);
  MESSAGE("writes=" << writes.size() << " cut by a halt=" << cut
                    << " refused while down=" << answered_down << " key retries in use=" << in_use
                    << " refused yet committed=" << committed << " users=" << users
                    << " orders=" << checkouts);
  CHECK(server.terminate_and_wait() == 0);
}

TEST_CASE(
    "a node that waited for another node's migration accepts the database it migrated (the "
    "check under the migration lock sees tables committed while it waited)") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  auto driver = db::pg::make_driver(o.pg);
  auto connect = [&] { return std::move(driver->connect(db::ConnRole::kWriter).value()); };
  auto holder = connect();
  auto first = connect();
  auto second = connect();
  // The second node read the version before the first migrated: none yet.
  REQUIRE(driver->schema_version(*second).value() == 0);
  // The migration lock is held; the first node's migration queues for it,
  // then the second node's check (PostgreSQL grants it in that order).
  holder->exec("BEGIN");
  holder->exec("SELECT pg_advisory_xact_lock(7411000013)");  // db/pg/driver.cpp's key
  const std::string waiting =
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
  auto migrating = std::async(
      std::launch::async, [&] { return driver->migrate(*first, driver->latest_schema_version()); });
  REQUIRE(testing::eventually([&] { return testing::query_int(o.pg.url, waiting) == 1; }));
  auto checking =
      std::async(std::launch::async, [&] { return driver->check_schema_is_ours(*second, 0); });
  REQUIRE(testing::eventually([&] { return testing::query_int(o.pg.url, waiting) == 2; }));
  holder->exec("COMMIT");
  REQUIRE(migrating.get().is_ok());
  const core::Status checked = checking.get();
  CAPTURE(checked.to_string());
  CHECK(checked.is_ok());
}

TEST_CASE("a row another node holds past lock_timeout is busy, retried, then answered busy") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  o.pg.lock_timeout_ms = 100;
  o.max_attempts = 3;
  auto holder = std::move(db::Database::open(o).value());
  auto other = std::move(db::Database::open(o).value());
  insert_held_user(*holder);
  OpenTransaction holding(*holder, lock_held_user);
  int runs = 0;
  db::TxStats stats;
  core::Status st = other->write(
      [&](db::Tx& tx) {
        ++runs;
        tx.conn().exec("UPDATE users SET created_at = 2 WHERE email = 'held@example.com'");
        return core::Status::ok();
      },
      &stats);
  CHECK(holding.release().is_ok());
  CHECK(st.code() == core::Code::kBusy);
  CHECK(runs == 3);  // --max-attempts runs of the phase, each stopped by lock_timeout
  CHECK(other->counters().busy_retries.load() == 2);
  // Once the row is free the same write goes through.
  CHECK(other
            ->write([](db::Tx& tx) {
              tx.conn().exec("UPDATE users SET created_at = 2 WHERE email = 'held@example.com'");
              return core::Status::ok();
            })
            .is_ok());
}

TEST_CASE(
    "group commit with two writers: a batch waiting for a row lock does not hold up the next "
    "batch, which the other writer commits; with one writer it waits") {
  for (const int writers : {2, 1}) {
    CAPTURE(writers);
    testing::TempDir dir;
    db::Options o;
    db::set_target(o, testing::test_db(dir));
    o.pg.lock_timeout_ms = 30000;  // the blocked phase waits for the release, not for a timeout
    auto holder = std::move(db::Database::open(o).value());
    o.writers = writers;
    auto tested = std::move(db::Database::open(o).value());
    insert_held_user(*holder);
    OpenTransaction holding(*holder, lock_held_user);
    std::promise<void> waiting;
    auto blocked = std::async(std::launch::async, [&] {
      return tested->write([&](db::Tx& tx) {
        waiting.set_value();
        tx.conn().exec("UPDATE users SET created_at = 2 WHERE email = 'held@example.com'");
        return core::Status::ok();
      });
    });
    waiting.get_future().wait();  // its batch runs: a writer is taken
    auto free = std::async(std::launch::async, [&] {
      return tested->write([](db::Tx& tx) {
        (void)db::insert_user_if_absent(tx, "free@example.com", 1);
        return core::Status::ok();
      });
    });
    if (writers == 2) {
      CHECK(free.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
      CHECK(blocked.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
    } else {
      // Its batch comes after the blocked one's COMMIT, which waits for the release.
      CHECK(free.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout);
    }
    CHECK(holding.release().is_ok());  // whatever was checked, so that every write ends
    CHECK(blocked.get().is_ok());
    CHECK(free.get().is_ok());
  }
}

namespace {

db::NewJob serial_job(const std::string& serial_key) {
  db::NewJob job;
  job.kind = "noop";
  job.serial_key = serial_key;
  return job;
}

}  // namespace

TEST_CASE(
    "stagers of one serial key commit in id order: a second waits for the first's transaction, "
    "another key does not") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  o.pg.lock_timeout_ms = 30000;
  auto first = std::move(db::Database::open(o).value());
  auto second = std::move(db::Database::open(o).value());
  std::int64_t first_id = 0;
  OpenTransaction holding(*first, [&](db::Tx& tx) {
    first_id = db::stage_job(tx, serial_job("webhook A user:1"), 1).value();
  });
  // Another key is not held up.
  CHECK(second
            ->write([](db::Tx& tx) {
              (void)db::stage_job(tx, serial_job("webhook A user:2"), 1);
              return core::Status::ok();
            })
            .is_ok());
  std::int64_t second_id = 0;
  auto same_key = std::async(std::launch::async, [&] {
    return second->write([&](db::Tx& tx) {
      second_id = db::stage_job(tx, serial_job("webhook A user:1"), 1).value();
      return core::Status::ok();
    });
  });
  // Had it committed now, its job would be runnable before the first one
  // (not yet visible) and run beside it once that commits.
  CHECK(same_key.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout);
  CHECK(holding.release().is_ok());
  CHECK(same_key.get().is_ok());
  CHECK(second_id > first_id);
}

TEST_CASE(
    "a heartbeat skips a job row another transaction holds locked instead of waiting for it, "
    "and renews it once free") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  o.pg.lock_timeout_ms = 30000;  // a heartbeat that waited would wait for the release
  auto holder = std::move(db::Database::open(o).value());
  auto beater = std::move(db::Database::open(o).value());
  std::int64_t id = 0;
  REQUIRE(holder
              ->write([&](db::Tx& tx) {
                db::NewJob job;
                job.kind = "noop";
                (void)db::stage_job(tx, job, 1);
                const auto claimed = db::claim_jobs(tx, 1, 2, 10000);
                REQUIRE(claimed.size() == 1);
                id = claimed[0].id;
                return core::Status::ok();
              })
              .is_ok());
  OpenTransaction holding(*holder, [&](db::Tx& tx) {
    tx.conn().exec("SELECT 1 FROM jobs WHERE id = " + std::to_string(id) + " FOR UPDATE");
  });
  bool beat = true;
  auto beating = std::async(std::launch::async, [&] {
    return beater->write([&](db::Tx& tx) {
      beat = db::heartbeat_job(tx, id, 1, 20000);
      return core::Status::ok();
    });
  });
  CHECK(beating.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(holding.release().is_ok());  // whatever was checked, so that every write ends
  CHECK(beating.get().is_ok());
  CHECK_FALSE(beat);
  CHECK(beater
            ->write([&](db::Tx& tx) {
              beat = db::heartbeat_job(tx, id, 1, 20000);
              return core::Status::ok();
            })
            .is_ok());
  CHECK(beat);
}

TEST_CASE("nodes opening one fresh database at once all start, and it is migrated once") {
  // Each round, four processes' worth of Database::open race on an empty
  // database: each reads the version (none), then checks and migrates under
  // the advisory lock while another may be committing the schema. A node
  // once refused such a database as "not an aftercommit database": its
  // transaction had begun before its peer's commit and still saw the
  // migrations table as missing (db/pg/driver.h, "Schema").
  for (int round = 0; round < 8; ++round) {
    CAPTURE(round);
    testing::TempDir dir;
    db::Options o;
    db::set_target(o, testing::test_db(dir));
    std::vector<std::future<core::Status>> opening;
    for (int node = 0; node < 4; ++node) {
      opening.push_back(std::async(std::launch::async, [&o] {
        auto opened = db::Database::open(o);
        return opened ? core::Status::ok() : opened.status();
      }));
    }
    for (auto& f : opening) {
      const core::Status st = f.get();
      CHECK_MESSAGE(st.is_ok(), st.to_string());
    }
    CHECK(testing::query_int(o.pg.url, "SELECT count(*) FROM schema_migrations") == 1);
  }
}

TEST_CASE(
    "one PostgreSQL leader at a time; resigning hands over at once, a silent leader's lease "
    "lapses") {
  testing::TempDir dir;
  db::Options o;
  db::set_target(o, testing::test_db(dir));
  REQUIRE(db::Database::open(o).is_ok());  // migrated: the lease table exists
  db::pg::Options pg = o.pg;
  pg.leader_ttl_ms = 400;
  auto a_driver = db::pg::make_driver(pg);
  auto b_driver = db::pg::make_driver(pg);
  auto a = std::move(a_driver->leader_lock().value());
  auto b = std::move(b_driver->leader_lock().value());
  CHECK(a->held());
  CHECK_FALSE(b->held());
  a->resign();
  CHECK(b->held());  // no wait: the lease was given up
  CHECK_FALSE(a->held());
  // b goes silent (as a node killed by kill -9): its lease lapses, a takes over.
  CHECK(testing::eventually([&] { return a->held(); }, std::chrono::seconds(5)));
  CHECK(testing::query_int(o.pg.url, "SELECT term FROM leadership") == 3);
}
