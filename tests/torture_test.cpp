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
// --test-job-delay flag so that kills land while jobs are running. Claimed
// jobs (and so rescues) are webhook deliveries, posted to a sink in this
// test; the built-in kinds run unclaimed, inside the transaction that
// completes them, so a kill can never leave one half-run or use up one of its
// attempts: after the drain every one of them must be completed.
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
// - every job that completed has its effect, addressed to its own recipient
//   (a message under its id for someone else is another job's);
// - no order paid by another order's charge; a paid order's charge is of its
//   amount; after the drain succeeded charges and paid orders match 1:1;
// - no key reaped while unfinished: a pending order always has its key;
// - no webhook event POSTed again while the process that sent it before was
//   alive (the sink identifies each POST's process from /proc; the test
//   records when it signalled each one): nobody takes over a live runner's job.
// After the drain, also: every finished key (checkout or keyed create)
// replays its first answer byte for byte, the gateway holds one charge per
// checkout key, charges and finished orders match, and no key is locked.
//
// Long-horizon mode (second TEST_CASE): finished jobs are kept 2 s and keys
// 2 s, the completer runs after 0.5 s, so the cleaner, the completer and the
// key reaper race the kills; every third round a second server process starts
// on the same file while the first serves, lives through its kill and
// restart, and is stopped with SIGTERM under load in the next round. Checks
// that assume a job or key row is kept for ever become "at most one", and
// the effects are checked on the rows that stay (mailbox, orders, charges).
// These two modes are the doctest suite "sqlite_only" (they read the file).
//
// Three-node mode (suite "postgres_only", the `_pg` variants): three server
// processes on one PostgreSQL database behind one shared fake gateway, one
// node killed per round (in turn, and every fourth round the leader) while
// the others serve on; the same workloads (plus tok_flaky checkouts) and the
// same checker, on a snapshot of the live database (see run_cluster_torture
// and Snapshot, which gives the checks the same tables on either engine).
//
// Rounds: AFTERCOMMIT_TORTURE_ROUNDS (default 20, also the three-node
// mode's) and AFTERCOMMIT_TORTURE_LONG_ROUNDS (default 6): the `make test`
// form; `make torture ROUNDS=N LONG_ROUNDS=M` runs the long form. Each mode
// prints its figures on one line.
//
// Extending: add a Workload (how to build its next request) and, if it writes
// new tables, a check in check_invariants(). See docs/RELIABILITY.md.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

namespace {

using Clock = std::chrono::steady_clock;

// What a request does, for the checker.
enum class Kind { user, product, approve, anagram, checkout };

// One HTTP request a workload wants sent.
struct Outgoing {
  Kind kind = Kind::user;
  std::string method;
  std::string path;
  std::string body;
  httplib::Headers headers;
  std::string email;               // the normalized email the request creates or gets
  std::string idempotency_key;     // "" when none; unanswered keyed requests are retried
  bool fresh_email = false;        // no request before this one named this email
  std::int64_t product_id = 0;     // approve: the product approved
  std::vector<std::string> words;  // anagram: the words posted
  std::string token;               // checkout: the payment token
};

// A request and what came back.
struct Sent {
  Outgoing req;
  int status = 0;  // 0: no answer (the server was killed first)
  std::int64_t id = 0;
  std::string body;  // the answer's body (checkout: compared with replays)
  bool retry = false;
  std::string workload;
  int node = -1;  // the three-node form: which node it was sent to
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

// Products created and acknowledged, shared by the threads so that several
// of them approve the same product at once.
struct SharedProducts {
  std::mutex mu;
  std::vector<std::int64_t> ids;  // guarded by mu
};

Outgoing create_product(std::uint64_t n) {
  Outgoing o;
  o.kind = Kind::product;
  o.method = "POST";
  o.path = "/products";
  o.body = nlohmann::json{{"name", "Widget " + std::to_string(n)},
                          {"owner_email", "owner" + std::to_string(n % 7) + "@torture.example"}}
               .dump();
  return o;
}

// Words of a few shared letter sets: threads race to add anagrams of the
// same groups.
Outgoing post_anagrams(std::mt19937& rng) {
  static const char* const kBases[] = {"listen", "torture", "stone"};
  std::string letters = kBases[rng() % 3];
  Outgoing o;
  o.kind = Kind::anagram;
  o.method = "POST";
  o.path = "/anagrams";
  const int n = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < n; ++i) {
    std::shuffle(letters.begin(), letters.end(), rng);
    o.words.push_back(letters);
  }
  o.body = nlohmann::json{{"words", o.words}}.dump();
  return o;
}

// A checkout under its own key; most pay, some are declined; with `flaky`,
// some pay with tok_flaky, whose first charge fails (503, retried).
Outgoing checkout(std::mt19937& rng, std::uint64_t n, bool flaky) {
  Outgoing o;
  o.kind = Kind::checkout;
  o.method = "POST";
  o.path = "/checkout";
  const auto pick = rng() % 8;
  o.token = pick < 2 ? "tok_declined" : (flaky && pick < 4) ? "tok_flaky" : "tok_visa";
  o.idempotency_key = "checkout-" + std::to_string(n);
  o.headers.emplace("Idempotency-Key", o.idempotency_key);
  o.body = nlohmann::json{{"email", "buyer" + std::to_string(n) + "@torture.example"},
                          {"phone", "+1555" + std::to_string(1000000 + n % 1000000)},
                          {"items",
                           {{{"sku", "sku-" + std::to_string(rng() % 5)},
                             {"quantity", 1 + rng() % 3},
                             {"unit_price_cents", 100 + rng() % 900}}}},
                          {"payment_token", o.token}}
               .dump();
  return o;
}

// `flaky`: checkouts include tok_flaky (a gateway that outlives the servers
// remembers which keys it failed once).
std::vector<Workload> workloads(SharedProducts& products, bool flaky = false) {
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
      {"create product", [](std::mt19937&, std::uint64_t n) { return create_product(n); }},
      // Approvals of the few newest products, from every thread: one wins
      // (200), the others get 409 and write nothing.
      {"approve shared product",
       [&products](std::mt19937& rng, std::uint64_t n) {
         std::int64_t id = 0;
         {
           std::lock_guard lock(products.mu);
           if (!products.ids.empty()) {
             const std::size_t back = std::min<std::size_t>(products.ids.size(), 3);
             id = products.ids[products.ids.size() - 1 - rng() % back];
           }
         }
         if (id == 0) return create_product(n);
         Outgoing o;
         o.kind = Kind::approve;
         o.method = "POST";
         o.path = "/products/" + std::to_string(id) + "/approve";
         o.product_id = id;
         return o;
       }},
      {"post anagrams", [](std::mt19937& rng, std::uint64_t) { return post_anagrams(rng); }},
      {"checkout with Idempotency-Key",
       [flaky](std::mt19937& rng, std::uint64_t n) { return checkout(rng, n, flaky); }},
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
  s.body = r.body;
  if (r.status >= 200 && r.status < 300) {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_object() && body.contains("id")) s.id = body["id"].get<std::int64_t>();
  }
  return s;
}

// Refused with nothing written, an answer only the long-horizon mode expects:
// 409 /problems/busy (another process held the write lock past
// --max-attempts: only that mode runs two servers on one file), and 503
// /problems/unavailable (a request that reached the second server while it
// drained on SIGTERM: only that mode stops a server gracefully under load).
bool busy(const Sent& s) {
  return (s.status == 409 && s.body.find("/problems/busy") != std::string::npos) ||
         (s.status == 503 && s.body.find("\"/problems/unavailable\"") != std::string::npos);
}

// The checker's view of the database: one snapshot, on either engine. The
// fake gateway's charges (its own SQLite store) are the table
// gateway_charges beside the others: attached on SQLite; on PostgreSQL
// copied into a temporary table before the snapshot is taken, so that every
// charge read has its order (created before it is charged) in the snapshot.
// Nodes may still be running: nothing is written but the temporary table.
class Snapshot {
 public:
  Snapshot(const std::string& db, const std::string& gateway_store) {
    if (!testing::on_postgres()) {
      lite_ = std::make_unique<SQLite::Database>(db, SQLite::OPEN_READWRITE);
      SQLite::Statement attach(*lite_, "ATTACH DATABASE ?1 AS gateway");
      attach.bind(1, gateway_store);
      attach.exec();
      // (Never committed: the destructor rolls the read transaction back.)
      lite_tx_ = std::make_unique<SQLite::Transaction>(*lite_);
      return;
    }
    pg_.reset(PQconnectdb(db.c_str()));
    REQUIRE(PQstatus(pg_.get()) == CONNECTION_OK);
    pg_exec(
        "CREATE TEMP TABLE gateway_charges (charge_id text NOT NULL, idempotency_key text "
        "NOT NULL, amount_cents bigint NOT NULL, status text NOT NULL)");
    pg_exec("BEGIN");
    {
      SQLite::Database gateway(gateway_store, SQLite::OPEN_READONLY, 5000);
      SQLite::Statement q(gateway,
                          "SELECT charge_id, idempotency_key, amount_cents, status "
                          "FROM gateway_charges");
      while (q.executeStep()) {
        const std::string v[4] = {q.getColumn(0).getString(), q.getColumn(1).getString(),
                                  q.getColumn(2).getString(), q.getColumn(3).getString()};
        const char* params[4] = {v[0].c_str(), v[1].c_str(), v[2].c_str(), v[3].c_str()};
        PGresult* r =
            PQexecParams(pg_.get(), "INSERT INTO gateway_charges VALUES ($1, $2, $3::bigint, $4)",
                         4, nullptr, params, nullptr, nullptr, 0);
        const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        REQUIRE(ok);
      }
    }
    pg_exec("COMMIT");
    pg_exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  bool postgres() const { return pg_ != nullptr; }

  // Every row `sql` answers, as text (NULL as "").
  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    if (lite_) {
      SQLite::Statement q(*lite_, sql);
      while (q.executeStep()) {
        std::vector<std::string> row;
        for (int c = 0; c < q.getColumnCount(); ++c) row.push_back(q.getColumn(c).getString());
        out.push_back(std::move(row));
      }
      return out;
    }
    PGresult* r = PQexec(pg_.get(), sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    const std::string error = ok ? "" : PQresultErrorMessage(r);
    for (int i = 0; ok && i < PQntuples(r); ++i) {
      std::vector<std::string> row;
      for (int c = 0; c < PQnfields(r); ++c) row.emplace_back(PQgetvalue(r, i, c));
      out.push_back(std::move(row));
    }
    PQclear(r);
    CAPTURE(sql);
    CAPTURE(error);
    REQUIRE(ok);
    return out;
  }

  // The first column of the first row, as an integer (a boolean as 0/1).
  std::int64_t scalar(const std::string& sql) {
    const auto r = rows(sql);
    REQUIRE(!r.empty());
    const std::string& v = r[0][0];
    return v == "t" ? 1 : v == "f" ? 0 : std::atoll(v.c_str());
  }

  // The integer field `field` of the JSON column `column` (job args).
  std::string json_int(const std::string& column, const std::string& field) const {
    if (!pg_) return "json_extract(" + column + ", '$." + field + "')";
    return "(" + column + "->>'" + field + "')::bigint";
  }

  // A job (aliased j) discarded only because its runner died mid-attempt
  // max_attempts times: every error it recorded is the rescuer's lease expiry.
  std::string crash_discarded() const {
    if (!pg_) {
      return "(j.state = 'discarded' AND j.attempt >= j.max_attempts AND "
             "json_array_length(j.errors) > 0 AND NOT EXISTS (SELECT 1 FROM json_each(j.errors) e "
             "WHERE json_extract(e.value, '$.message') NOT LIKE 'lease expired%'))";
    }
    return "(j.state = 'discarded' AND j.attempt >= j.max_attempts AND "
           "jsonb_array_length(j.errors) > 0 AND NOT EXISTS (SELECT 1 FROM "
           "jsonb_array_elements(j.errors) e WHERE e.value->>'message' NOT LIKE 'lease expired%'))";
  }

 private:
  void pg_exec(const char* sql) {
    PGresult* r = PQexec(pg_.get(), sql);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string error = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    CAPTURE(sql);
    CAPTURE(error);
    REQUIRE(ok);
  }

  std::unique_ptr<SQLite::Database> lite_;
  std::unique_ptr<SQLite::Transaction> lite_tx_;
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Finish> pg_;
};

struct Figures {
  int rounds = 0;
  int kills = 0;
  std::uint64_t requests = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t unanswered = 0;
  std::uint64_t unanswered_committed = 0;
  std::uint64_t busy = 0;  // long horizon: 409 /problems/busy (two writers)
  std::uint64_t retries = 0;
  std::int64_t users = 0;
  std::int64_t jobs = 0;
  std::int64_t rescued = 0;
  std::int64_t crash_discarded = 0;  // jobs caught mid-attempt max_attempts times
  std::int64_t products = 0;
  std::int64_t approved = 0;
  std::int64_t words = 0;
  std::int64_t orders = 0;
  std::int64_t charges = 0;
  std::uint64_t checks = 0;  // checker assertions evaluated over the run
  double max_restart_ms = 0;
  // Long horizon and the second process:
  std::int64_t max_job_id = 0;  // the largest job id any check saw
  // By the cleaner: max_job_id - jobs left. (On PostgreSQL also the ids
  // that rolled-back inserts drew from the sequence.)
  std::int64_t jobs_deleted = 0;
  std::int64_t keys_reaped = 0;       // orders whose key the reaper deleted
  std::uint64_t posts = 0;            // webhook POSTs the sink received
  std::uint64_t posts_by_second = 0;  // of those, sent by B
  std::uint64_t redelivered = 0;      // POSTs of an event already POSTed
  std::uint64_t unattributed = 0;     // of those, whose earlier sender was not identified
};

std::string sorted_letters(std::string w) {
  std::sort(w.begin(), w.end());
  return w;
}

// Products, approvals, anagrams and checkouts: the database-wide invariants
// and each acknowledged answer. `drained`: after the final drain, when every
// job is final and every unanswered checkout has been retried.
void check_feature_invariants(Snapshot& db, const std::vector<Sent>& sent, bool drained,
                              bool long_horizon, Figures& fig) {
  // Long horizon: finished jobs are deleted after --job-retention and keys
  // after --idempotency-ttl, so "exactly one job/key per X" becomes "at most
  // one", and effects are checked on the rows that stay (mailbox, orders).
  const std::string one = long_horizon ? " > 1" : " IS DISTINCT FROM 1";
  auto zero = [&](const std::string& what, const std::string& sql) {
    CAPTURE(what);
    CHECK(db.scalar(sql) == 0);
    ++fig.checks;
  };
  // Products: published <=> exactly one product_meta row; each meta row has
  // exactly one notify job; no notify job without its meta row.
  zero("published iff one meta row",
       "SELECT count(*) FROM products p LEFT JOIN (SELECT product_id, count(*) AS n FROM "
       "product_meta GROUP BY product_id) m ON m.product_id = p.id "
       "WHERE (p.state = 'published') != (m.n IS NOT DISTINCT FROM 1) "
       "OR (p.state = 'pending' AND m.n IS NOT NULL)");
  zero("one notify job per meta row",
       "SELECT count(*) FROM product_meta m LEFT JOIN (SELECT " +
           db.json_int("args", "product_meta_id") +
           " AS mid, count(*) AS n FROM jobs WHERE kind = "
           "'notify_product_owner' GROUP BY mid) j ON j.mid = m.id WHERE j.n" +
           one);
  zero("no notify job without its meta row",
       "SELECT count(*) FROM jobs WHERE kind = 'notify_product_owner' AND " +
           db.json_int("args", "product_meta_id") + " NOT IN (SELECT id FROM product_meta)");
  // Orders: each has exactly one key record; a paid order has exactly one
  // succeeded charge of its amount under its charge id (never another
  // order's), one send_sms and one prepare_for_shipping job; a declined
  // order has no job at all. Charges are matched through orders.charge_id,
  // not the gateway key: that key is ours, not the client's.
  zero("one key record per order",
       "SELECT count(*) FROM orders o LEFT JOIN (SELECT order_id, count(*) AS n FROM "
       "idempotency_keys WHERE order_id IS NOT NULL GROUP BY order_id) k "
       "ON k.order_id = o.id WHERE k.n" +
           one);
  // A pending order is resumed only through its key: a key reaped while
  // unfinished (or while a request held it) leaves its order pending forever.
  zero("no key reaped while unfinished: a pending order has its key",
       "SELECT count(*) FROM orders o WHERE o.state = 'pending' AND NOT EXISTS "
       "(SELECT 1 FROM idempotency_keys k WHERE k.order_id = o.id)");
  zero("one key record per (scope, key)",
       "SELECT count(*) FROM (SELECT 1 FROM idempotency_keys GROUP BY scope, key "
       "HAVING count(*) > 1) AS x");
  zero("paid order has exactly its one succeeded charge",
       "SELECT count(*) FROM orders o JOIN idempotency_keys k ON k.order_id = o.id "
       "WHERE o.state IN ('paid','ready_to_ship') AND (SELECT count(*) FROM gateway_charges g "
       "WHERE g.idempotency_key = k.gateway_key AND g.status = 'succeeded' "
       "AND g.charge_id = o.charge_id) != 1");
  zero("declined order has its declined charge",
       "SELECT count(*) FROM orders o JOIN idempotency_keys k ON k.order_id = o.id "
       "WHERE o.state = 'payment_failed' AND (SELECT count(*) FROM gateway_charges g "
       "WHERE g.idempotency_key = k.gateway_key AND g.status = 'declined') != 1");
  // (Long horizon: a reaped key's charges have no record to name them.)
  if (!long_horizon) {
    zero("no charge without an order under its key",
         "SELECT count(*) FROM gateway_charges g WHERE NOT EXISTS (SELECT 1 FROM "
         "idempotency_keys k WHERE k.gateway_key = g.idempotency_key AND k.order_id IS NOT NULL)");
  }
  zero("paid order has exactly its one succeeded charge, of its amount",
       "SELECT count(*) FROM orders o WHERE o.state IN ('paid','ready_to_ship') AND "
       "(SELECT count(*) FROM gateway_charges g WHERE g.charge_id = o.charge_id "
       "AND g.status = 'succeeded' AND g.amount_cents = o.total_cents) != 1");
  zero("no order paid by another order's charge",
       "SELECT count(*) FROM (SELECT charge_id FROM orders WHERE charge_id IS NOT NULL "
       "GROUP BY charge_id HAVING count(*) > 1) AS x");
  zero("at most one charge per order",
       "SELECT (SELECT count(*) FROM gateway_charges) > (SELECT count(*) FROM orders)");
  zero("a declined order had a declined charge",
       "SELECT (SELECT count(*) FROM orders WHERE state = 'payment_failed') > "
       "(SELECT count(*) FROM gateway_charges WHERE status = 'declined')");
  if (drained) {
    zero("every succeeded charge pays exactly one order",
         "SELECT count(*) FROM gateway_charges g WHERE g.status = 'succeeded' AND "
         "(SELECT count(*) FROM orders o WHERE o.charge_id = g.charge_id) != 1");
    zero("every declined charge is a declined order",
         "SELECT (SELECT count(*) FROM orders WHERE state = 'payment_failed') != "
         "(SELECT count(*) FROM gateway_charges WHERE status = 'declined')");
  }
  for (const char* kind : {"send_sms", "prepare_for_shipping"}) {
    CAPTURE(kind);
    const std::string per_order =
        "SELECT count(*) FROM orders o LEFT JOIN (SELECT " + db.json_int("args", "order_id") +
        " AS oid, count(*) AS n FROM jobs WHERE kind = '" + kind +
        "' GROUP BY oid) j ON j.oid = o.id WHERE (o.state IN ('paid','ready_to_ship') " +
        "AND j.n" + one + ") OR (o.state NOT IN ('paid','ready_to_ship') AND j.n IS NOT NULL)";
    zero("one job per paid order, none for the others", per_order);
  }
  // (By its subject, "Order <id> confirmed": its job may have been deleted.)
  zero("no SMS for an unpaid order",
       "SELECT count(*) FROM mailbox m WHERE m.channel = 'sms' AND m.subject NOT IN (SELECT "
       "'Order ' || id || ' confirmed' FROM orders WHERE state IN ('paid','ready_to_ship'))");
  // Anagrams: every stored word is keyed by its sorted letters.
  std::set<std::string> words;
  for (const auto& row : db.rows("SELECT word, key FROM anagram_words")) {
    CHECK(row[1] == sorted_letters(row[0]));
    words.insert(row[0]);
  }
  ++fig.checks;
  if (drained && long_horizon) {
    // The jobs may be gone; their effects stay. The built-in kinds run
    // unclaimed, so a kill can never discard one: every effect must be there.
    zero("every published product's owner got one message per product",
         "SELECT count(*) FROM (SELECT owner_email, count(*) AS n FROM products "
         "WHERE state = 'published' GROUP BY owner_email) AS p WHERE p.n != (SELECT count(*) "
         "FROM mailbox m WHERE m.recipient = p.owner_email "
         "AND m.subject = 'Your product was published')");
    zero("every paid order shipped and texted once",
         "SELECT count(*) FROM orders o WHERE o.state IN ('pending', 'paid') OR "
         "(o.state = 'ready_to_ship' AND (SELECT count(*) FROM mailbox m WHERE m.channel = "
         "'sms' AND m.recipient = o.phone AND m.subject = 'Order ' || o.id || ' confirmed') != 1)");
    zero("every checkout key finished",
         "SELECT count(*) FROM idempotency_keys WHERE recovery_point != 'finished'");
  } else if (drained) {
    // API.md: a job whose runner died is taken again, and a job that used up
    // max_attempts is discarded. Under a kill every few hundred ms a job can be
    // caught mid-attempt max_attempts times in a row; it then ends discarded
    // with only lease-expiry errors, and its effect never happens. That is the
    // documented outcome, so the checks below accept exactly that and nothing
    // else (kCrashDiscarded).
    zero("every job of a published product delivered its one message",
         "SELECT count(*) FROM product_meta m JOIN jobs j ON j.kind = 'notify_product_owner' "
         "AND " +
             db.json_int("j.args", "product_meta_id") +
             " = m.id WHERE (SELECT count(*) FROM "
             "mailbox x WHERE x.job_id = j.id AND x.subject = 'Your product was published') != 1 "
             "AND NOT " +
             db.crash_discarded());
    const auto crash_discarded_job = [&db](const char* kind) {
      return std::string("EXISTS (SELECT 1 FROM jobs j WHERE j.kind = '") + kind + "' AND " +
             db.json_int("j.args", "order_id") + " = o.id AND " + db.crash_discarded() + ")";
    };
    const std::string order_job = crash_discarded_job("prepare_for_shipping");
    const std::string sms_job = crash_discarded_job("send_sms");
    zero("every paid order shipped and texted once",
         "SELECT count(*) FROM orders o WHERE o.state = 'pending' OR (o.state = 'paid' AND NOT " +
             order_job +
             ") OR (o.state IN ('paid','ready_to_ship') AND (SELECT count(*) FROM mailbox m "
             "JOIN jobs j ON j.id = m.job_id WHERE m.channel = 'sms' AND j.kind = 'send_sms' AND " +
             db.json_int("j.args", "order_id") + " = o.id) != 1 AND NOT " + sms_job + ")");
    zero("every checkout key finished",
         "SELECT count(*) FROM idempotency_keys WHERE recovery_point != 'finished'");
  }

  // Each answer.
  std::map<std::int64_t, std::string> products;  // id -> state
  for (const auto& row : db.rows("SELECT id, state FROM products")) {
    products[std::stoll(row[0])] = row[1];
  }
  std::map<std::int64_t, std::string> orders;  // id -> state
  for (const auto& row : db.rows("SELECT id, state FROM orders")) {
    orders[std::stoll(row[0])] = row[1];
  }
  std::map<std::string, std::pair<int, std::string>> keys;  // key -> (status, order state)
  for (const auto& row :
       db.rows("SELECT k.key, coalesce(k.response_status, 0), coalesce(o.state, '') "
               "FROM idempotency_keys k LEFT JOIN orders o ON o.id = k.order_id "
               "WHERE k.path = '/checkout'")) {
    keys[row[0]] = {std::stoi(row[1]), row[2]};
  }
  std::map<std::int64_t, int> approvals;  // product id -> 200 answers
  std::map<std::string, std::string> first_answer;
  for (const Sent& s : sent) {
    if (s.status == 0 || s.req.kind == Kind::user || (long_horizon && busy(s))) continue;
    CAPTURE(s.workload);
    CAPTURE(s.req.path);
    CAPTURE(s.status);
    CAPTURE(s.body);
    ++fig.checks;
    switch (s.req.kind) {
      case Kind::product:
        CHECK(s.status == 201);
        CHECK(products.count(s.id) == 1);
        break;
      case Kind::approve:
        CHECK((s.status == 200 || s.status == 409));
        if (s.status == 200) {
          ++approvals[s.req.product_id];
          CHECK(products[s.req.product_id] == "published");
        }
        break;
      case Kind::anagram:
        CHECK(s.status == 200);
        if (s.status == 200) {
          for (const auto& w : s.req.words) {
            CAPTURE(w);
            CHECK(words.count(w) == 1);
          }
        }
        break;
      case Kind::checkout: {
        if (s.status == 503) {
          // Long horizon: B charges through A's fake gateway, which dies with
          // A; tok_flaky: the gateway fails its first call for each key. The
          // key stays unfinished; the client retries it later.
          CHECK((long_horizon || s.req.token == "tok_flaky"));
          CHECK(s.body.find("/problems/payment-gateway-unavailable") != std::string::npos);
          break;
        }
        CHECK((s.status == 201 || s.status == 402));
        auto k = keys.find(s.req.idempotency_key);
        if (long_horizon && k == keys.end()) {
          // Reaped after --idempotency-ttl: the order stays, with its state.
          if (s.status == 201) {
            CHECK(orders.count(s.id) == 1);
            CHECK((orders[s.id] == "paid" || orders[s.id] == "ready_to_ship"));
          }
          break;
        }
        REQUIRE(k != keys.end());
        CHECK(k->second.first == s.status);
        if (s.status == 201) {
          CHECK((s.req.token == "tok_visa" || s.req.token == "tok_flaky"));
          CHECK(orders.count(s.id) == 1);
          CHECK((k->second.second == "paid" || k->second.second == "ready_to_ship"));
        } else if (s.status == 402) {
          CHECK(s.req.token == "tok_declined");
          CHECK(k->second.second == "payment_failed");
        }
        // Every answer for one key is the same answer (within the key's TTL:
        // a retry after the key was reaped is a new operation).
        if (long_horizon) break;
        auto [first, inserted] = first_answer.emplace(s.req.idempotency_key, s.body);
        if (!inserted) CHECK(first->second == s.body);
        break;
      }
      case Kind::user:
        break;
    }
  }
  for (const auto& [id, n] : approvals) {
    CAPTURE(id);
    CHECK(n == 1);
  }
  fig.products = static_cast<std::int64_t>(products.size());
  fig.approved = db.scalar("SELECT count(*) FROM product_meta");
  fig.words = static_cast<std::int64_t>(words.size());
  fig.orders = static_cast<std::int64_t>(orders.size());
  fig.charges = db.scalar("SELECT count(*) FROM gateway_charges");
}

// The checker. Runs with the server dead, on the file itself.
// `gateway_store`: the fake gateway's file, whose charges the checks name
// gateway_charges (see Snapshot).
void check_invariants(const std::string& db_path, const std::string& gateway_store,
                      const std::vector<Sent>& sent, Figures& fig, bool long_horizon,
                      bool drained = false) {
  // One snapshot for every check: other servers may still be running.
  Snapshot db(db_path, gateway_store);
  if (!db.postgres()) {
    // (PostgreSQL checks its pages and foreign keys itself, on every write.)
    CHECK(db.rows("PRAGMA integrity_check").at(0).at(0) == "ok");
    CHECK(db.rows("PRAGMA foreign_key_check").empty());
    fig.checks += 2;
  }
  fig.checks += drained ? 13 : 12;  // the database-wide checks below
  // All-or-nothing per user: one `created` row, one welcome job; no orphans.
  CHECK(db.scalar("SELECT count(*) FROM users u WHERE (SELECT count(*) FROM user_actions a "
                  "WHERE a.user_id = u.id AND a.action = 'created') != 1") == 0);
  // (Aggregated once, then joined: a correlated json_extract per user would
  // make each round quadratic in the number of users.) Long horizon: the
  // job may have been deleted after --job-retention, so at most one.
  CHECK(db.scalar("SELECT count(*) FROM users u LEFT JOIN (SELECT " +
                  db.json_int("args", "user_id") +
                  " AS uid, count(*) AS n FROM jobs WHERE kind = "
                  "'send_welcome_email' GROUP BY uid) w ON w.uid = u.id WHERE w.n" +
                  (long_horizon ? " > 1" : " IS DISTINCT FROM 1")) == 0);
  CHECK(db.scalar("SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email' "
                  "AND " +
                  db.json_int("args", "user_id") + " NOT IN (SELECT id FROM users)") == 0);
  CHECK(db.scalar(
            "SELECT count(*) FROM user_actions WHERE user_id NOT IN (SELECT id FROM users)") == 0);
  CHECK(db.scalar("SELECT count(*) FROM (SELECT email FROM users GROUP BY email "
                  "HAVING count(*) > 1) AS x") == 0);
  // Exactly-once effects: one message per job, a message iff its job completed.
  CHECK(db.scalar("SELECT count(*) FROM (SELECT job_id FROM mailbox GROUP BY job_id "
                  "HAVING count(*) > 1) AS x") == 0);
  CHECK(db.scalar(std::string("SELECT count(*) FROM mailbox m ") +
                  (long_horizon ? "JOIN" : "LEFT JOIN") +
                  " jobs j ON j.id = m.job_id WHERE j.state IS DISTINCT FROM 'completed'") == 0);
  // Every job that completed has its effect: its message, to its own
  // recipient. (A message under its id for someone else is another job's,
  // e.g. of a deleted job whose id was reused.)
  CHECK(db.scalar("SELECT count(*) FROM jobs j WHERE j.state = 'completed' "
                  "AND j.kind = 'send_welcome_email' AND NOT EXISTS (SELECT 1 FROM mailbox m "
                  "JOIN users u ON u.email = m.recipient WHERE m.job_id = j.id "
                  "AND u.id = " +
                  db.json_int("j.args", "user_id") + " AND m.subject = 'Welcome')") == 0);
  CHECK(db.scalar("SELECT count(*) FROM jobs j WHERE j.state = 'completed' AND j.kind = 'send_sms' "
                  "AND NOT EXISTS (SELECT 1 FROM mailbox m JOIN orders o ON o.phone = m.recipient "
                  "WHERE m.job_id = j.id AND o.id = " +
                  db.json_int("j.args", "order_id") +
                  " "
                  "AND m.channel = 'sms' AND m.subject = 'Order ' || o.id || ' confirmed')") == 0);
  CHECK(db.scalar("SELECT count(*) FROM jobs j WHERE j.state = 'completed' "
                  "AND j.kind = 'notify_product_owner' AND NOT EXISTS (SELECT 1 FROM mailbox m "
                  "JOIN product_meta pm ON pm.id = " +
                  db.json_int("j.args", "product_meta_id") +
                  " "
                  "JOIN products p ON p.id = pm.product_id WHERE m.job_id = j.id "
                  "AND m.recipient = p.owner_email)") == 0);
  if (drained) {
    // Every user got its welcome, whether or not its job row is still kept.
    CHECK(db.scalar("SELECT count(*) FROM users u WHERE (SELECT count(*) FROM mailbox m "
                    "WHERE m.recipient = u.email AND m.subject = 'Welcome') != 1") == 0);
  }
  CHECK(db.scalar("SELECT count(*) FROM (SELECT recipient FROM mailbox WHERE subject = "
                  "'Welcome' GROUP BY recipient HAVING count(*) > 1) AS x") == 0);

  // Acknowledged writes are present, with the id they were answered.
  std::map<std::string, std::int64_t> users;
  for (const auto& row : db.rows("SELECT email, id FROM users")) users[row[0]] = std::stoll(row[1]);
  std::map<std::string, int> created_answers;
  std::set<std::string> answered_before;
  fig.acknowledged = fig.unanswered = fig.unanswered_committed = fig.busy = 0;
  for (const Sent& s : sent) {
    if (long_horizon && busy(s)) {
      ++fig.busy;
      continue;
    }
    if (s.status == 0) {
      ++fig.unanswered;
      if (s.req.kind == Kind::user && users.count(s.req.email) != 0) ++fig.unanswered_committed;
      continue;
    }
    if (s.req.kind != Kind::user) {
      ++fig.acknowledged;
      continue;
    }
    CAPTURE(s.workload);
    CAPTURE(s.req.path);
    CAPTURE(s.req.email);
    CAPTURE(s.status);
    CAPTURE(s.body);
    ++fig.checks;
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
  check_feature_invariants(db, sent, drained, long_horizon, fig);
  fig.users = db.scalar("SELECT count(*) FROM users");
  fig.jobs = db.scalar("SELECT count(*) FROM jobs");
  fig.max_job_id = std::max(fig.max_job_id, db.scalar("SELECT coalesce(max(id), 0) FROM jobs"));
  // (Long horizon: rescued jobs are deleted after retention; keep the most seen.)
  fig.rescued = std::max(fig.rescued, db.scalar("SELECT count(*) FROM jobs WHERE attempt > 1 "
                                                "OR CAST(errors AS TEXT) LIKE '%lease expired%'"));
}

// A port free now, for the fake gateway: fixed across restarts so that the
// gateway URL checkout uses stays the same.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);  // never listened or connected: no TIME_WAIT, free for the server
  return ntohs(addr.sin_port);
}

int rounds_from_env(const char* name, int fallback) {
  const char* v = std::getenv(name);
  const int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : fallback;
}

// The processes the run started: which one holds a TCP connection, and when
// each was signalled (SIGKILL or SIGTERM). "No job delivered twice while its
// first runner was alive" needs both: the sink asks which process sent each
// POST, the checker whether that process had been signalled before the
// same event came again.
class Processes {
 public:
  void started(pid_t pid) {
    std::lock_guard lock(mu_);
    signalled_[pid] = std::nullopt;
  }
  // Call before sending the signal: a later POST then saw a process that was
  // at least on its way out.
  void signalling(pid_t pid) {
    std::lock_guard lock(mu_);
    signalled_[pid] = Clock::now();
  }
  std::optional<Clock::time_point> signalled_at(pid_t pid) {
    std::lock_guard lock(mu_);
    auto it = signalled_.find(pid);
    return it == signalled_.end() ? std::nullopt : it->second;
  }
  // The process whose socket is the TCP connection 127.0.0.1:from_port
  // -> :to_port (read from /proc while the connection is open), or -1.
  pid_t owner_of_connection(int from_port, int to_port) {
    std::string inode;
    std::ifstream tcp("/proc/net/tcp");
    std::string line;
    std::getline(tcp, line);  // header
    auto port_of = [](const std::string& addr) {
      return static_cast<int>(std::stoul(addr.substr(addr.find(':') + 1), nullptr, 16));
    };
    while (std::getline(tcp, line)) {
      std::istringstream in(line);
      std::string sl, local, remote, st, queues, timer, retransmits, uid, timeout, ino;
      in >> sl >> local >> remote >> st >> queues >> timer >> retransmits >> uid >> timeout >> ino;
      if (!in || local.find(':') == std::string::npos || remote.find(':') == std::string::npos)
        continue;
      if (port_of(local) == from_port && port_of(remote) == to_port) {
        inode = ino;
        break;
      }
    }
    if (inode.empty() || inode == "0") return -1;
    const std::string target = "socket:[" + inode + "]";
    // Every process started, signalled or not: one just signalled may still
    // be sending (a dead one has no /proc entry left).
    std::vector<pid_t> pids;
    {
      std::lock_guard lock(mu_);
      for (const auto& entry : signalled_) pids.push_back(entry.first);
    }
    for (pid_t pid : pids) {
      std::error_code ec;
      std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
      for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::error_code link_ec;
        if (std::filesystem::read_symlink(it->path(), link_ec).string() == target) return pid;
      }
    }
    return -1;
  }

 private:
  std::mutex mu_;
  std::map<pid_t, std::optional<Clock::time_point>> signalled_;  // guarded by mu_
};

// Every webhook POST the sink received: the event (its Idempotency-Key),
// when, and from which process.
struct Post {
  std::string event;
  Clock::time_point at;
  pid_t pid = -1;
};

// No event POSTed again while the process that sent it before was alive
// (not yet signalled): a live runner's delivery is never taken over.
// Returns how many repeated POSTs were checked; `unattributed` counts those
// whose earlier sender could not be identified (not checked).
// Pairs whose later POST came before `checked_until` were checked by an
// earlier call and are only counted.
std::uint64_t check_no_redelivery_while_alive(std::vector<Post> posts, Processes& processes,
                                              Clock::time_point checked_until,
                                              std::uint64_t& unattributed) {
  std::stable_sort(posts.begin(), posts.end(), [](const Post& a, const Post& b) {
    return a.event != b.event ? a.event < b.event : a.at < b.at;
  });
  std::uint64_t repeated = 0;
  unattributed = 0;
  for (std::size_t i = 1; i < posts.size(); ++i) {
    if (posts[i].event != posts[i - 1].event) continue;
    ++repeated;
    const pid_t first = posts[i - 1].pid;
    if (first < 0) {
      ++unattributed;
      continue;
    }
    if (posts[i].at < checked_until) continue;
    CAPTURE(posts[i].event);
    CAPTURE(first);
    const auto signalled = processes.signalled_at(first);
    CHECK(signalled.has_value());
    if (signalled) {
      const auto alive_ms =
          std::chrono::duration<double, std::milli>(posts[i].at - *signalled).count();
      CAPTURE(alive_ms);  // < 0: the first sender was signalled only this long after
      CHECK(*signalled <= posts[i].at);
    }
  }
  return repeated;
}

// The webhook receiver. Deliveries are the claimed jobs a kill can catch
// mid-attempt; each POST is recorded with the event (its Idempotency-Key),
// when, and the process that sent it.
class Sink {
 public:
  explicit Sink(Processes& processes) {
    server_.Post("/hook", [this, &processes](const httplib::Request& req, httplib::Response& res) {
      // Identify the sender while its connection is open (it awaits this answer).
      Post p{req.get_header_value("Idempotency-Key"), Clock::now(),
             processes.owner_of_connection(req.remote_port, port_)};
      {
        std::lock_guard lock(mu_);
        posts_.push_back(std::move(p));
      }
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = testing::listen_in_background(server_);
  }
  ~Sink() {
    server_.stop();
    thread_.join();
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<Post> posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Post> posts_;  // guarded by mu_
};

// The client's side of a crash: resend the unanswered keyed requests with
// their keys, spread over `servers`, as a real client would; and checkouts
// answered 503 (the gateway failed: tok_flaky's first call, or a gateway
// that died with its server), which API.md tells clients to retry.
void retry_unanswered_keyed(Ledger& ledger, Figures& fig,
                            const std::vector<testing::ServerProcess*>& servers) {
  std::vector<Outgoing> pending;
  {
    std::lock_guard lock(ledger.mu);
    pending.swap(ledger.unanswered_keyed);
  }
  std::size_t next = 0;
  for (const Outgoing& o : pending) {
    auto http = servers[next++ % servers.size()]->client();
    // 409 in-use: the dead server's lock on the key, until it times out.
    // 503 on a checkout: tok_flaky's first charge, when the first attempt
    // died before it reached the gateway.
    Sent s;
    testing::eventually([&] {
      s = send(http, o);
      return s.status != 409 && !(s.status == 503 && o.kind == Kind::checkout);
    });
    s.retry = true;
    s.workload = "retry after crash";
    CAPTURE(s.req.path);
    CAPTURE(s.body);
    if (o.kind == Kind::checkout) {
      CHECK((s.status == 201 || s.status == 402));
    } else {
      CHECK(s.status >= 200);
      CHECK(s.status < 300);
    }
    std::lock_guard lock(ledger.mu);
    ledger.sent.push_back(std::move(s));
    ++fig.retries;
  }
}

// Waits until every job is final (one statement, so one snapshot: three
// reads of /jobs by state could each miss a job moving between them, as a
// rescue turns running into retryable between two reads).
bool wait_for_drain(const std::string& db) {
  return testing::eventually(
      [&] {
        return testing::query_int(db,
                                  "SELECT count(*) FROM jobs WHERE state IN "
                                  "('available', 'running', 'retryable')") == 0;
      },
      std::chrono::seconds(120));
}

// Replays after the drain: every finished key (checkouts, keyed creates)
// answers its first answer again, byte for byte, marked replayed, from
// whichever server is asked; and the gateway holds one charge under each
// checkout's gateway key (the key's record holds it: our own, per
// operation, never the client's key).
void check_replays(const std::string& db_path, const std::string& gateway_store,
                   const std::vector<Sent>& sent,
                   const std::vector<testing::ServerProcess*>& servers, int gateway_port,
                   Figures& fig) {
  std::map<std::string, const Sent*> first;
  for (const Sent& s : sent) {
    if (s.req.idempotency_key.empty() || s.status < 200 || s.status == 503) continue;
    if (s.req.kind == Kind::checkout ? (s.status == 201 || s.status == 402)
                                     : (s.status == 200 || s.status == 201)) {
      first.emplace(s.req.idempotency_key, &s);
    }
  }
  std::map<std::string, std::string> gateway_keys;  // checkout key -> gateway key
  {
    Snapshot db(db_path, gateway_store);
    for (const auto& row : db.rows("SELECT key, coalesce(gateway_key, '') FROM idempotency_keys "
                                   "WHERE path = '/checkout'")) {
      gateway_keys[row[0]] = row[1];
    }
  }
  httplib::Client gateway("127.0.0.1", gateway_port);
  std::size_t next = 0;
  for (const auto& [key, s] : first) {
    CAPTURE(key);
    auto http = servers[next++ % servers.size()]->client();
    auto again = testing::request(http, s->req.method, s->req.path, s->req.body, "application/json",
                                  s->req.headers);
    CHECK(again.status == s->status);
    CHECK(again.header("Idempotent-Replayed") == "true");
    CHECK(again.body == s->body);
    fig.checks += 3;
    if (s->req.kind != Kind::checkout) continue;
    const std::string gateway_key = gateway_keys[key];
    REQUIRE_FALSE(gateway_key.empty());
    auto charges = testing::request(gateway, "GET", "/v1/charges?idempotency_key=" + gateway_key);
    REQUIRE(charges.status == 200);
    CHECK(charges.json()["count"] == 1);
    fig.checks += 2;
  }
}

// After the drain, with every server stopped: every job is final, and each
// built-in job completed at its first attempt.
void check_drained(const std::string& db_path, const std::string& gateway_store, Figures& fig,
                   bool long_horizon) {
  Snapshot db(db_path, gateway_store);
  // Drained: every job is final. The built-in kinds cannot fail on their
  // own and run unclaimed (a kill cannot catch one mid-attempt): every one
  // is completed, at its first attempt. A webhook delivery not completed
  // must be a crash discard (see Snapshot::crash_discarded).
  CHECK(db.scalar("SELECT count(*) FROM jobs WHERE state NOT IN "
                  "('completed','discarded','cancelled')") == 0);
  CHECK(db.scalar("SELECT count(*) FROM jobs WHERE kind IN ('send_welcome_email', "
                  "'notify_product_owner', 'send_sms', 'prepare_for_shipping') "
                  "AND (state != 'completed' OR attempt != 1)") == 0);
  CHECK(db.scalar("SELECT count(*) FROM jobs j WHERE j.kind = 'deliver_webhook' "
                  "AND j.state != 'completed' AND NOT " +
                  db.crash_discarded()) == 0);
  // No key left locked: every request that held one answered or was retried.
  CHECK(db.scalar("SELECT count(*) FROM idempotency_keys WHERE locked_at IS NOT NULL") == 0);
  fig.checks += 4;
  CHECK(fig.posts > 0);
  if (!long_horizon) {
    // (Long horizon: finished jobs are deleted; the mailbox check is in
    // check_invariants, per user.)
    CHECK(db.scalar("SELECT count(*) FROM mailbox WHERE subject = 'Welcome'") ==
          db.scalar("SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email' "
                    "AND state = 'completed'"));
    CHECK(db.scalar("SELECT count(*) FROM jobs WHERE kind = 'send_welcome_email'") == fig.users);
    // Every charge the gateway made is one order's, paid or declined.
    CHECK(db.scalar("SELECT count(*) FROM gateway_charges") ==
          db.scalar("SELECT count(*) FROM orders WHERE state IN "
                    "('paid', 'ready_to_ship', 'payment_failed')"));
    fig.checks += 3;
    // (Long horizon: a rescued job may be deleted before a check sees it.)
    CHECK(fig.rescued >= 1);
  }
  fig.crash_discarded = db.scalar("SELECT count(*) FROM jobs j WHERE " + db.crash_discarded());
  fig.jobs_deleted = fig.max_job_id - db.scalar("SELECT count(*) FROM jobs");
  fig.keys_reaped = db.scalar(
      "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM "
      "idempotency_keys k WHERE k.order_id = o.id)");
}

// The run's figures on one line, after `label`, with `extra` (the mode's own).
void print_figures(const std::string& label, const Figures& fig, const std::string& extra) {
  std::printf(
      "%s: rounds=%d kills=%d %s requests=%llu acknowledged=%llu "
      "unanswered=%llu (users committed %llu) busy=%llu retried=%llu users=%lld products=%lld "
      "approved=%lld words=%lld orders=%lld charges=%lld jobs=%lld jobs_deleted=%lld "
      "keys_reaped=%lld rescued=%lld crash_discarded=%lld webhook_posts=%llu (by B %llu) "
      "redelivered=%llu (unattributed %llu) checks=%llu max_restart_ms=%.1f\n",
      label.c_str(), fig.rounds, fig.kills, extra.c_str(),
      static_cast<unsigned long long>(fig.requests),
      static_cast<unsigned long long>(fig.acknowledged),
      static_cast<unsigned long long>(fig.unanswered),
      static_cast<unsigned long long>(fig.unanswered_committed),
      static_cast<unsigned long long>(fig.busy), static_cast<unsigned long long>(fig.retries),
      static_cast<long long>(fig.users), static_cast<long long>(fig.products),
      static_cast<long long>(fig.approved), static_cast<long long>(fig.words),
      static_cast<long long>(fig.orders), static_cast<long long>(fig.charges),
      static_cast<long long>(fig.jobs), static_cast<long long>(fig.jobs_deleted),
      static_cast<long long>(fig.keys_reaped), static_cast<long long>(fig.rescued),
      static_cast<long long>(fig.crash_discarded), static_cast<unsigned long long>(fig.posts),
      static_cast<unsigned long long>(fig.posts_by_second),
      static_cast<unsigned long long>(fig.redelivered),
      static_cast<unsigned long long>(fig.unattributed),
      static_cast<unsigned long long>(fig.checks), fig.max_restart_ms);
  std::fflush(stdout);
}

// One torture run. Classic: one server process at a time, killed every
// round. Long horizon (long_horizon): finished jobs kept 2 s
// (--job-retention), keys 2 s (--idempotency-ttl), the completer after
// 0.5 s, key locks 1.5 s, gateway calls 0.5 s, so the cleaner, completer and reaper race the kills;
// and every third round a second server B starts on the same file while A serves, lives through A's
// kill and A's restart (A's start-up must leave B's work alone), and is stopped (SIGTERM) in the
// middle of the next round's load.
void run_torture(bool long_horizon, int rounds) {
  testing::TempDir dir;
  const std::string db_path = dir.file("torture.db");
  // --fake-gateway-db's default, beside the database.
  const std::string gateway_store = db_path + ".fake-gateway";
  const int gateway_port = free_port();
  Processes processes;
  Sink sink(processes);
  // A dead server's checkout keys stay locked until the lock times out: a
  // short timeout lets the client's retry after restart take them over. A
  // dead server's running jobs are rescued once their lease (5 s) expires,
  // by whichever server runs then. The lease must outlast a heartbeat that
  // waits its turn: one is written every lease/3, and its write may wait
  // --busy-timeout (1 s) per attempt for up to --max-attempts (3) while the
  // other process writes, more on a 2-core machine running ASan builds in
  // parallel. A 2 s lease (a heartbeat every 0.67 s, 1.3 s of slack) was
  // seen to expire under a live sender in CI.
  std::vector<std::string> args = {"--test-job-delay",
                                   "2",
                                   "--http-threads",
                                   "8",
                                   "--fake-gateway",
                                   "--fake-gateway-port",
                                   std::to_string(gateway_port),
                                   "--idempotency-lock-timeout",
                                   "300",
                                   "--job-lease",
                                   "5000",
                                   "--webhook-url",
                                   sink.url(),
                                   "--webhook-secret",
                                   "torture-secret"};
  if (long_horizon) {
    // A key lock must outlive the longest request (as the docs ask), or a
    // live request's key is taken over, finished and reaped under it: B's
    // checkouts wait on A's gateway, which dies with A, for --gateway-timeout.
    // So: gateway 0.5 s < lock 1.5 s; TTL 2 s >= completer 0.5 s + lock.
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--idempotency-lock-timeout") args[i + 1] = "1500";
    }
    for (const char* a : {"--job-retention", "2000", "--idempotency-ttl", "2000",
                          "--completer-after", "500", "--gateway-timeout", "500"}) {
      args.emplace_back(a);
    }
  }
  // B: no fake gateway of its own (A's port is taken); it charges through A's.
  // Its deliveries take 1 s (--test-job-delay, under its lease), so the one a
  // round stages on B just before A restarts is running while A starts up:
  // the moment A must leave B's work alone.
  std::vector<std::string> b_args;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--fake-gateway") continue;
    if (args[i] == "--test-job-delay") {
      b_args.insert(b_args.end(), {"--test-job-delay", "1000"});
      ++i;
      continue;
    }
    if (args[i] == "--fake-gateway-port") {
      b_args.insert(b_args.end(),
                    {"--payment-gateway-url", "http://127.0.0.1:" + std::to_string(gateway_port)});
      ++i;
      continue;
    }
    b_args.push_back(args[i]);
  }
  const int clients = 4;
  SharedProducts shared_products;
  const auto all = workloads(shared_products);

  Ledger ledger;
  Figures fig;
  std::atomic<std::uint64_t> counter{0};
  std::mt19937 rng(std::random_device{}());
  int second_starts = 0;
  std::set<pid_t> second_pids;

  std::unique_ptr<testing::ServerProcess> second;  // B, in long-horizon rounds
  // The restart time is a figure (max_restart_ms on the result line), not a
  // bound `make test` asserts: on a 2-core machine shared with builds a
  // sanitized start-up takes over a second, and a timed assertion would
  // measure the machine. `make torture` (run on a quiet machine) sets
  // AFTERCOMMIT_RESTART_BUDGET_MS=1000 and then checks each classic-mode
  // restart (a process alone on its file) against it; the long-horizon mode
  // only reports (its start-ups share the CPU and the write lock with B and
  // the background services).
  const int restart_budget_ms = rounds_from_env("AFTERCOMMIT_RESTART_BUDGET_MS", 0);
  auto start_server = [&] {
    const auto t0 = Clock::now();
    auto server = std::make_unique<testing::ServerProcess>(db_path, args);
    processes.started(server->pid());
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    fig.max_restart_ms = std::max(fig.max_restart_ms, ms);
    if (!long_horizon && restart_budget_ms > 0) CHECK(ms < restart_budget_ms);
    return server;
  };
  auto retry_unanswered = [&](testing::ServerProcess& server) {
    retry_unanswered_keyed(ledger, fig, {&server});
  };
  Clock::time_point posts_checked_until{};
  auto check_posts = [&] {
    const auto checked_at = Clock::now();
    const std::vector<Post> copy = sink.posts();
    std::uint64_t unattributed = 0;
    fig.redelivered =
        check_no_redelivery_while_alive(copy, processes, posts_checked_until, unattributed);
    posts_checked_until = checked_at;
    fig.unattributed = unattributed;
    fig.posts = copy.size();
    fig.posts_by_second = static_cast<std::uint64_t>(std::count_if(
        copy.begin(), copy.end(), [&](const Post& p) { return second_pids.count(p.pid) != 0; }));
  };

  for (int round = 1; round <= rounds; ++round) {
    CAPTURE(round);
    if (second) {
      // A create on B stages a delivery B's runner claims at once (woken by
      // its commit) and holds for 1 s: it is running while A starts.
      auto http = second->client();
      Outgoing o =
          create_user(rng, "b" + std::to_string(counter.fetch_add(1)) + "@torture.example");
      o.fresh_email = true;
      Sent s = send(http, o);
      s.workload = "create new user on B before A restarts";
      CHECK(s.status == 201);
      std::lock_guard lock(ledger.mu);
      ledger.sent.push_back(std::move(s));
    }
    auto server = start_server();
    retry_unanswered(*server);
    // B lives for two rounds: started now (on a file A serves), stopped in
    // the middle of the next round, after A's kill and restart.
    const bool stop_second = second != nullptr;
    if (long_horizon && !second && round % 3 == 1 && round < rounds) {
      second = std::make_unique<testing::ServerProcess>(db_path, b_args);
      processes.started(second->pid());
      second_pids.insert(second->pid());
      ++second_starts;
    }

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      // With B up, every other client talks to B.
      testing::ServerProcess* target = (second && c % 2 == 1) ? second.get() : server.get();
      threads.emplace_back([&, seed = rng(), target] {
        std::mt19937 local(seed);
        auto http = target->client();
        http.set_connection_timeout(1, 0);
        while (!stop.load()) {
          const Workload& w = all[local() % all.size()];
          Sent s = send(http, w.next(local, counter.fetch_add(1)));
          s.workload = w.name;
          if (s.req.kind == Kind::product && s.status == 201) {
            std::lock_guard lock(shared_products.mu);
            shared_products.ids.push_back(s.id);
          }
          std::lock_guard lock(ledger.mu);
          // (503: B's gateway, A's, died with A; a client retries that too.)
          if ((s.status == 0 || (s.status == 503 && s.req.kind == Kind::checkout)) &&
              !s.req.idempotency_key.empty()) {
            ledger.unanswered_keyed.push_back(s.req);
          }
          const bool dead = s.status == 0;
          ledger.sent.push_back(std::move(s));
          if (dead) break;
        }
      });
    }
    std::uniform_int_distribution<int> pause_ms(20, 250);
    const int pause = pause_ms(rng);
    if (stop_second) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause / 2));
      processes.signalling(second->pid());
      CHECK(second->terminate_and_wait() == 0);
      second.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(pause - pause / 2));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause));
    }
    processes.signalling(server->pid());
    server->kill9();
    ++fig.kills;
    stop = true;
    for (auto& t : threads) t.join();
    server.reset();

    std::lock_guard lock(ledger.mu);
    check_invariants(db_path, gateway_store, ledger.sent, fig, long_horizon);
    check_posts();
    fig.rounds = round;
    if (round % 25 == 0) {
      std::fprintf(stderr, "torture: round %d/%d, %zu requests, %lld users\n", round, rounds,
                   ledger.sent.size(), static_cast<long long>(fig.users));
    }
  }
  if (second) {
    processes.signalling(second->pid());
    CHECK(second->terminate_and_wait() == 0);
    second.reset();
  }

  // Final drain: restart, retry what is pending, let every job finish.
  {
    auto server = start_server();
    retry_unanswered(*server);
    CHECK(wait_for_drain(db_path));
    if (long_horizon) {
      // Keys live 2 s: let the reaper race the drain, then require no
      // unfinished key and no pending order (checked below).
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    } else {
      // (Long horizon: the keys are reaped by now.)
      std::lock_guard lock(ledger.mu);
      check_replays(db_path, gateway_store, ledger.sent, {server.get()}, gateway_port, fig);
    }
    processes.signalling(server->pid());
    CHECK(server->terminate_and_wait() == 0);
  }
  std::lock_guard lock(ledger.mu);
  check_invariants(db_path, gateway_store, ledger.sent, fig, long_horizon, true);
  check_posts();
  fig.requests = ledger.sent.size();
  check_drained(db_path, gateway_store, fig, long_horizon);
  print_figures(long_horizon ? "torture (long horizon)" : "torture", fig,
                "second_server_starts=" + std::to_string(second_starts));
}

// The three-node form: three `aftercommit serve` processes on one database
// (on PostgreSQL: the deployment of README "Running several nodes"), all
// charging through one fake gateway process, so that a charge is counted
// once across nodes and the gateway outlives every kill. Client threads
// spread the same mix (with tok_flaky checkouts) over the live nodes. Each
// round one node is killed with kill -9: in turn, and every fourth round the
// node that leads the maintenance loops (rescue, key release, completer,
// reaper, cleaner), so that leadership fails over under load. The load goes
// on against the two survivors for a moment; then, with the clients stopped
// and two nodes still running, the checker reads one snapshot of the
// database, the killed node is restarted, and the unanswered keyed requests
// are retried over the three nodes. Only the killed node may leave a request
// unanswered. After the last round every job must drain (rescued deliveries
// included), every finished key replay its answer byte for byte from any
// node, and the invariants of the single-node form hold over the whole run.
void run_cluster_torture(int rounds) {
  constexpr int kNodes = 3;
  testing::TempDir dir;
  const std::string db = testing::test_db(dir, "cluster.db");
  const std::string gateway_store = dir.file("gateway.sqlite");
  auto gateway = testing::ServerProcess::fake_gateway(gateway_store);
  Processes processes;
  Sink sink(processes);
  // As the single-node form (see run_torture), with the shared gateway.
  const std::vector<std::string> args = {"--test-job-delay",
                                         "2",
                                         "--http-threads",
                                         "8",
                                         "--payment-gateway-url",
                                         gateway.url(),
                                         "--idempotency-lock-timeout",
                                         "300",
                                         "--job-lease",
                                         "5000",
                                         "--webhook-url",
                                         sink.url(),
                                         "--webhook-secret",
                                         "torture-secret"};
  const int clients = 6;
  SharedProducts shared_products;
  const auto all = workloads(shared_products, /*flaky=*/true);
  Ledger ledger;
  Figures fig;
  std::atomic<std::uint64_t> counter{0};
  std::mt19937 rng(std::random_device{}());
  int leader_kills = 0;

  // The three start at once, racing to migrate the fresh database.
  std::vector<std::unique_ptr<testing::ServerProcess>> nodes(kNodes);
  {
    // (Futures: a node that fails to start fails the test, not the process.)
    std::vector<std::future<std::unique_ptr<testing::ServerProcess>>> starting;
    for (int i = 0; i < kNodes; ++i) {
      starting.push_back(std::async(std::launch::async, [&db, &args] {
        return std::make_unique<testing::ServerProcess>(db, args);
      }));
    }
    for (int i = 0; i < kNodes; ++i) nodes[static_cast<std::size_t>(i)] = starting[i].get();
    for (auto& node : nodes) processes.started(node->pid());
  }
  auto live = [&] {
    std::vector<testing::ServerProcess*> out;
    for (auto& node : nodes) out.push_back(node.get());
    return out;
  };
  // The pid of the node whose lease on the maintenance role is current (0:
  // none): the holder names its process (db/pg/driver.cpp, PgLeaderLock).
  auto leader_pid = [&]() -> pid_t {
    return static_cast<pid_t>(testing::query_int(
        db,
        "SELECT coalesce((SELECT substring(holder FROM '^pid([0-9]+)-')::bigint FROM leadership "
        "WHERE name = 'maintenance' AND expires_at > "
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 0)"));
  };
  Clock::time_point posts_checked_until{};
  auto check_posts = [&] {
    const auto checked_at = Clock::now();
    const std::vector<Post> copy = sink.posts();
    std::uint64_t unattributed = 0;
    fig.redelivered =
        check_no_redelivery_while_alive(copy, processes, posts_checked_until, unattributed);
    posts_checked_until = checked_at;
    fig.unattributed = unattributed;
    fig.posts = copy.size();
  };

  for (int round = 1; round <= rounds; ++round) {
    CAPTURE(round);
    const pid_t leader = leader_pid();
    int victim = (round - 1) % kNodes;
    for (int i = 0; round % 4 == 0 && i < kNodes; ++i) {
      if (nodes[static_cast<std::size_t>(i)]->pid() == leader) victim = i;
    }
    std::size_t first_of_round = 0;
    {
      std::lock_guard lock(ledger.mu);
      first_of_round = ledger.sent.size();
    }
    std::atomic<int> dead{-1};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, seed = rng()] {
        std::mt19937 local(seed);
        std::vector<httplib::Client> http;
        for (auto& node : nodes) {
          http.push_back(node->client());
          http.back().set_connection_timeout(1, 0);
        }
        while (!stop.load()) {
          int i = static_cast<int>(local() % kNodes);
          if (i == dead.load()) i = (i + 1) % kNodes;
          const Workload& w = all[local() % all.size()];
          Sent s = send(http[static_cast<std::size_t>(i)], w.next(local, counter.fetch_add(1)));
          s.workload = w.name;
          s.node = i;
          if (s.req.kind == Kind::product && s.status == 201) {
            std::lock_guard lock(shared_products.mu);
            shared_products.ids.push_back(s.id);
          }
          std::lock_guard lock(ledger.mu);
          if ((s.status == 0 || (s.status == 503 && s.req.kind == Kind::checkout)) &&
              !s.req.idempotency_key.empty()) {
            ledger.unanswered_keyed.push_back(s.req);
          }
          ledger.sent.push_back(std::move(s));
        }
      });
    }
    std::uniform_int_distribution<int> pause_ms(20, 250);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    auto& doomed = nodes[static_cast<std::size_t>(victim)];
    if (doomed->pid() == leader) ++leader_kills;
    processes.signalling(doomed->pid());
    dead = victim;
    doomed->kill9();
    ++fig.kills;
    // The survivors serve on while the dead node's work waits for rescue.
    std::uniform_int_distribution<int> after_ms(50, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(after_ms(rng)));
    stop = true;
    for (auto& t : threads) t.join();
    {
      std::lock_guard lock(ledger.mu);
      for (std::size_t k = first_of_round; k < ledger.sent.size(); ++k) {
        const Sent& s = ledger.sent[k];
        if (s.status != 0) continue;
        CAPTURE(s.req.path);
        CHECK(s.node == victim);  // a live node answers every request
      }
      check_invariants(db, gateway_store, ledger.sent, fig, /*long_horizon=*/false);
      check_posts();
    }
    const auto t0 = Clock::now();
    doomed = std::make_unique<testing::ServerProcess>(db, args);
    processes.started(doomed->pid());
    fig.max_restart_ms = std::max(
        fig.max_restart_ms, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    retry_unanswered_keyed(ledger, fig, live());
    fig.rounds = round;
    if (round % 25 == 0) {
      std::fprintf(stderr, "torture (three nodes): round %d/%d, %zu requests, %lld users\n", round,
                   rounds, ledger.sent.size(), static_cast<long long>(fig.users));
    }
  }

  // Final drain: the three nodes up, every job final, every key replayed.
  CHECK(wait_for_drain(db));
  {
    std::lock_guard lock(ledger.mu);
    check_replays(db, gateway_store, ledger.sent, live(), gateway.port(), fig);
  }
  for (auto& node : nodes) {
    processes.signalling(node->pid());
    CHECK(node->terminate_and_wait() == 0);
  }
  std::lock_guard lock(ledger.mu);
  check_invariants(db, gateway_store, ledger.sent, fig, /*long_horizon=*/false, true);
  check_posts();
  fig.requests = ledger.sent.size();
  check_drained(db, gateway_store, fig, /*long_horizon=*/false);
  print_figures(std::string("torture (three nodes, ") +
                    (testing::on_postgres() ? "PostgreSQL" : "SQLite") + ")",
                fig, "nodes=3 leader_kills=" + std::to_string(leader_kills));
}

}  // namespace

// The single-node forms read the file under kill -9 (PRAGMA integrity_check
// after every kill, the fake gateway's store beside it).
TEST_SUITE("sqlite_only") {
  TEST_CASE("kill -9 under load loses and duplicates nothing, round after round") {
    run_torture(/*long_horizon=*/false, rounds_from_env("AFTERCOMMIT_TORTURE_ROUNDS", 20));
  }

  TEST_CASE(
      "over a long horizon, with a second process on the file, kill -9 loses and duplicates "
      "nothing") {
    run_torture(/*long_horizon=*/true, rounds_from_env("AFTERCOMMIT_TORTURE_LONG_ROUNDS", 6));
  }
}

// Several nodes on one database is the PostgreSQL deployment (the `_pg`
// variants run it; the SQLite variants exclude this suite).
TEST_SUITE("postgres_only") {
  TEST_CASE(
      "three nodes on one database, one killed with kill -9 per round (the leader among them): "
      "nothing lost or duplicated") {
    run_cluster_torture(rounds_from_env("AFTERCOMMIT_TORTURE_ROUNDS", 20));
  }
}
