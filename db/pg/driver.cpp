#include "db/pg/driver.h"

#include <libpq-fe.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "db/pg/migrations.h"
#include "db/pg/sql.h"

namespace db::pg {
namespace {

// SQLSTATE -> Status (https://www.postgresql.org/docs/15/errcodes-appendix.html).
// `broken`: the connection is gone, whatever the server said last.
core::Status translate(const char* sqlstate, const std::string& what, bool broken) {
  const std::string s = sqlstate ? sqlstate : "";
  if (s.rfind("23", 0) == 0) return core::Status::conflict(what);
  if (s == "40001" || s == "40P01" || s == "55P03") return core::Status::busy(what);
  if (s == "53100") return core::Status::storage_full(what);
  if (s.rfind("08", 0) == 0 || s.rfind("57P0", 0) == 0 || s == "53300" || broken) {
    return core::Status::unavailable("PostgreSQL does not answer: " + what);
  }
  return core::Status::internal(what + " (SQLSTATE " + (s.empty() ? "none" : s) + ")");
}

std::string trimmed(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// Owns one PGresult.
struct Result {
  PGresult* r = nullptr;
  explicit Result(PGresult* res) noexcept : r(res) {}
  ~Result() { PQclear(r); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
};

// Throws the translated error unless `res` is a success.
void check(PGconn* c, const PGresult* res) {
  const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string what = trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(c));
  if (what.empty()) what = trimmed(PQerrorMessage(c));
  throw Error(translate(state, what, PQstatus(c) != CONNECTION_OK));
}

// The highest $N in `sql`: the number of parameters a statement takes.
int count_params(const char* sql) {
  int n = 0;
  for (const char* p = sql; *p; ++p) {
    if (*p != '$' || p[1] < '0' || p[1] > '9') continue;
    n = std::max(n, std::atoi(p + 1));
  }
  return n;
}

class PgConn;

class PgStmt final : public StmtImpl {
 public:
  PgStmt(PgConn& conn, Sql name);
  ~PgStmt() override { PQclear(res_); }

  void bind_int64(int index, std::int64_t value) override { slot(index) = std::to_string(value); }
  void bind_double(int index, double value) override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    slot(index) = buf;
  }
  void bind_text(int index, const std::string& value, bool) override { slot(index) = value; }
  // A text[] literal for `= ANY($N::text[])`: every element quoted, `"` and
  // `\` escaped (https://www.postgresql.org/docs/15/arrays.html#ARRAYS-IO).
  void bind_text_list(int index, const std::vector<std::string>& values) override {
    std::string out = "{";
    for (const std::string& v : values) {
      if (out.size() > 1) out += ',';
      out += '"';
      for (char ch : v) {
        if (ch == '"' || ch == '\\') out += '\\';
        out += ch;
      }
      out += '"';
    }
    out += '}';
    slot(index) = std::move(out);
  }
  void bind_null(int index) override { slot(index).reset(); }
  bool step() override {
    if (!res_) run();
    return ++row_ < PQntuples(res_);
  }
  int exec() override {
    if (!res_) run();
    return std::atoi(PQcmdTuples(res_));
  }
  void exec_pipelined() override;
  std::int64_t column_int64(int col) const override {
    const char* v = value(col);
    if (v[0] == 't' && v[1] == '\0') return 1;  // a boolean column
    if (v[0] == 'f' && v[1] == '\0') return 0;
    return std::strtoll(v, nullptr, 10);
  }
  double column_double(int col) const override { return std::strtod(value(col), nullptr); }
  std::string column_text(int col) const override { return value(col); }
  bool column_is_null(int col) const override {
    in_range(col);
    return PQgetisnull(res_, row_, col) == 1;
  }
  void reset() noexcept override {
    PQclear(res_);
    res_ = nullptr;
    row_ = -1;
    for (auto& p : params_) p.reset();
  }

 private:
  std::optional<std::string>& slot(int index) {
    if (index < 1 || index > static_cast<int>(params_.size())) {
      throw Error(core::Status::internal("parameter $" + std::to_string(index) +
                                         " out of range for statement " + std::to_string(id_)));
    }
    return params_[static_cast<std::size_t>(index - 1)];
  }
  void in_range(int col) const {
    if (!res_ || row_ < 0 || row_ >= PQntuples(res_) || col < 0 || col >= PQnfields(res_)) {
      throw Error(core::Status::internal("column " + std::to_string(col) +
                                         " read without a row, statement " + std::to_string(id_)));
    }
  }
  const char* value(int col) const {
    in_range(col);
    return PQgetvalue(res_, row_, col);
  }
  void prepare();
  void run();

  PgConn& conn_;
  const std::size_t id_;
  const char* const sql_;
  const bool index_order_;  // pg::claims_in_index_order
  const std::string name_;
  std::vector<std::optional<std::string>> params_;
  std::uint64_t prepared_in_ = 0;  // the connection generation it was prepared in (0: never)
  PGresult* res_ = nullptr;
  int row_ = -1;
};

class PgConn final : public Conn {
 public:
  explicit PgConn(PGconn* c) : c_(c) {}
  ~PgConn() override { PQfinish(c_); }

  PGconn* raw() noexcept { return c_; }
  std::uint64_t generation() const noexcept { return generation_; }

  Stmt query(Sql name) override {
    auto& slot = named_[static_cast<std::size_t>(name)];
    if (!slot) slot = std::make_unique<PgStmt>(*this, name);
    return Stmt(*slot);
  }

  void exec(const std::string& sql) override { run(sql.c_str()); }

  // Work that needs no answer before the transaction's next statement is
  // not sent alone: it goes with that statement, or with the COMMIT, in one
  // round trip (libpq's pipeline mode:
  // https://www.postgresql.org/docs/15/libpq-pipeline-mode.html). Each
  // round trip is a context switch to a server process sharing the node's
  // cores; a group-mode create took six.
  // - Commands: SAVEPOINT, RELEASE SAVEPOINT, the jobs' NOTIFY, SET LOCAL.
  //   `command` outlives the transaction (a savepoint text of this
  //   connection, or a static).
  // - Statements whose caller reads no answer (Stmt::exec_pipelined): a
  //   failure is reported by the next statement sent, or at the latest by
  //   the RELEASE of the savepoint they ran in or the COMMIT, which then
  //   fail: the phase that sent them fails, never another.
  // The server runs a pipeline in order and stops at the first error, as if
  // each had been sent alone.
  void defer(const std::string& command) { deferred_.push_back(Deferred{&command, nullptr, {}}); }
  void defer_statement(const std::string& name, const std::vector<std::optional<std::string>>& p) {
    deferred_.push_back(Deferred{nullptr, &name, p});
    ++deferred_statements_;
  }

  // Sends what was deferred, if anything, alone. Throws its first failure.
  void flush_deferred() {
    if (deferred_statements_ > 0) {
      Result res(pipeline(nullptr));
      check(c_, res.r);
    } else if (!deferred_.empty()) {
      run("");
    }
  }

  // PQexecPrepared after the deferred work, in one round trip. Returns the
  // statement's result, or the first failure's (the caller owns it and
  // check()s it). Throws kUnavailable when the exchange was cut short.
  PGresult* exec_prepared(const std::string& name,
                          const std::vector<std::optional<std::string>>& p) {
    if (deferred_.empty()) {
      const std::vector<const char*> values = c_strings(p);
      return PQexecPrepared(c_, name.c_str(), static_cast<int>(values.size()), values.data(),
                            nullptr, nullptr, 0);
    }
    return pipeline(Item{nullptr, &name, &p});
  }

  bool in_transaction() const noexcept override {
    const PGTransactionStatusType t = PQtransactionStatus(c_);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
  }

  // Throws kUnavailable when the connection is gone (no reconnect here: a
  // transaction that was open on it is lost, and its caller must know).
  void require_open() const {
    if (broken_ || PQstatus(c_) != CONNECTION_OK) {
      throw Error(
          core::Status::unavailable("PostgreSQL connection lost: " + trimmed(PQerrorMessage(c_))));
    }
  }

 private:
  struct Deferred {
    const std::string* command;                      // a command, or
    const std::string* statement;                    // a prepared statement's name
    std::vector<std::optional<std::string>> params;  // and its parameters
  };
  // What pipeline() sends last: a command, a statement, or nothing.
  struct Item {
    const std::string* command;
    const std::string* statement;
    const std::vector<std::optional<std::string>>* params;
  };

  static std::vector<const char*> c_strings(const std::vector<std::optional<std::string>>& p) {
    std::vector<const char*> values(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) values[i] = p[i] ? p[i]->c_str() : nullptr;
    return values;
  }

  bool send(const Item& item) {
    if (item.command != nullptr) {
      return PQsendQueryParams(c_, item.command->c_str(), 0, nullptr, nullptr, nullptr, nullptr,
                               0) == 1;
    }
    const std::vector<const char*> values = c_strings(*item.params);
    return PQsendQueryPrepared(c_, item.statement->c_str(), static_cast<int>(values.size()),
                               values.data(), nullptr, nullptr, 0) == 1;
  }

  // Sends the deferred work, then `last` if it names anything, in one
  // pipeline. Returns the result of the last thing sent, or the first
  // failure's (the caller owns it). Throws kUnavailable when cut short.
  PGresult* pipeline(const Item& last) {
    require_open();
    std::vector<Deferred> items;
    items.swap(deferred_);
    deferred_statements_ = 0;
    const bool has_last = last.command != nullptr || last.statement != nullptr;
    const std::size_t count = items.size() + (has_last ? 1 : 0);
    bool sent = PQenterPipelineMode(c_) == 1;
    for (const Deferred& d : items) sent = sent && send(Item{d.command, d.statement, &d.params});
    if (has_last) sent = sent && send(last);
    sent = sent && PQpipelineSync(c_) == 1;
    PGresult* answer = nullptr;  // the first failure, else the last result
    for (std::size_t i = 0; sent && i < count; ++i) {
      PGresult* r = PQgetResult(c_);
      if (r == nullptr) {
        sent = false;  // the connection broke: no result will come
        break;
      }
      while (PGresult* more = PQgetResult(c_)) PQclear(more);  // up to this query's end (NULL)
      const bool failed = PQresultStatus(r) == PGRES_FATAL_ERROR;
      if (answer == nullptr && (failed || i + 1 == count)) {
        answer = r;
      } else {
        PQclear(r);  // a success before the last, or an abort after the failure
      }
    }
    if (sent) {
      PGresult* sync = PQgetResult(c_);  // PGRES_PIPELINE_SYNC
      PQclear(sync);
      sent = PQexitPipelineMode(c_) == 1;
    }
    if (!sent) {
      // Results a pipeline cut short still owes would answer the next
      // queries: this connection is not used again before it is reopened.
      PQclear(answer);
      broken_ = true;
      throw Error(
          core::Status::unavailable("PostgreSQL connection lost: " + trimmed(PQerrorMessage(c_))));
    }
    return answer;
  }
  PGresult* pipeline(std::nullptr_t) { return pipeline(Item{nullptr, nullptr, nullptr}); }

  // Runs `sql` (one or several commands, the simple query protocol) after
  // the deferred commands, in one round trip: PostgreSQL runs a
  // multi-command string in order and stops at the first error, whose
  // result PQexec returns
  // (https://www.postgresql.org/docs/15/libpq-exec.html#LIBPQ-PQEXEC).
  void run(const char* sql) {
    require_open();
    if (deferred_statements_ > 0) flush_deferred();  // a multi-command string takes no statement
    if (deferred_.empty()) {
      Result res(PQexec(c_, sql));
      check(c_, res.r);
      return;
    }
    std::string joined;
    for (const Deferred& d : deferred_) {
      if (!joined.empty()) joined.append("; ");
      joined.append(*d.command);  // commands only: statements were flushed above
    }
    if (*sql != '\0') joined.append("; ").append(sql);
    deferred_.clear();
    Result res(PQexec(c_, joined.c_str()));
    check(c_, res.r);
  }

  // A transaction starts on a live connection: one that broke since its last
  // use (the server restarted) is reopened first, and its statements are
  // prepared again (the generation changes). A connection idle in the pool
  // only learns that it broke when it is used, so a BEGIN that fails on a
  // connection now gone is tried once more on a fresh one.
  void begin(TxMode mode) override {
    const char* sql = mode == TxMode::kWrite ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                             : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    deferred_.clear();
    deferred_statements_ = 0;
    if (broken_ || PQstatus(c_) != CONNECTION_OK) reopen();
    try {
      run(sql);
    } catch (const Error&) {
      if (PQstatus(c_) == CONNECTION_OK) throw;
      reopen();
      run(sql);
    }
  }
  void commit() override {
    // COMMIT of a transaction an error aborted answers "ROLLBACK", not an
    // error: that must not look like success.
    if (PQtransactionStatus(c_) == PQTRANS_INERROR) {
      rollback();
      throw Error(core::Status::internal("transaction aborted by an earlier error; rolled back"));
    }
    static const std::string commit_command = "COMMIT";
    if (deferred_statements_ > 0) {
      Result res(pipeline(Item{&commit_command, nullptr, nullptr}));
      check(c_, res.r);
      return;
    }
    run("COMMIT");
  }
  void rollback() noexcept override {
    deferred_.clear();  // the savepoints and the NOTIFY go with the transaction
    deferred_statements_ = 0;
    if (!in_transaction()) return;
    Result res(PQexec(c_, "ROLLBACK"));  // a failure leaves the server to roll back on close
  }
  void savepoint(int depth) override { defer(savepoint_sql(depth, 0)); }
  // With statements deferred, the RELEASE goes now, with them: a failure
  // among them fails this savepoint's phase, not a later one.
  void release(int depth) override {
    if (deferred_statements_ == 0) return defer(savepoint_sql(depth, 1));
    Result res(pipeline(Item{&savepoint_sql(depth, 1), nullptr, nullptr}));
    check(c_, res.r);
  }
  // What was deferred since the savepoint is dropped unsent: the rollback
  // would undo it. A savepoint never sent needs no rollback at all.
  void rollback_to(int depth) override {
    const std::string* marker = &savepoint_sql(depth, 0);
    auto it = std::find_if(deferred_.begin(), deferred_.end(),
                           [&](const Deferred& d) { return d.command == marker; });
    const bool unsent = it != deferred_.end();
    if (!unsent) it = deferred_.begin();  // all of it came after the savepoint went
    deferred_.erase(it, deferred_.end());
    deferred_statements_ = static_cast<int>(std::count_if(
        deferred_.begin(), deferred_.end(), [](const Deferred& d) { return d.statement; }));
    if (!unsent) run(savepoint_sql(depth, 2).c_str());
  }

  const std::string& savepoint_sql(int depth, int op) {
    const auto level = static_cast<std::size_t>(depth);
    while (savepoints_.size() <= level) {
      const std::string n = "sp" + std::to_string(savepoints_.size());
      savepoints_.push_back({"SAVEPOINT " + n, "RELEASE SAVEPOINT " + n,
                             "ROLLBACK TO SAVEPOINT " + n + "; RELEASE SAVEPOINT " + n});
    }
    return savepoints_[level][static_cast<std::size_t>(op)];
  }

  void reopen() {
    PQreset(c_);
    broken_ = false;
    ++generation_;
    require_open();
  }

  PGconn* c_;
  std::uint64_t generation_ = 1;
  std::array<std::unique_ptr<PgStmt>, kSqlCount> named_;
  std::deque<std::array<std::string, 3>> savepoints_;  // by depth; deferred_ points into it
  std::vector<Deferred> deferred_;                     // defer(), defer_statement()
  int deferred_statements_ = 0;                        // how many of deferred_ are statements
  bool broken_ = false;  // a pipeline was cut short: reopen before the next use
};

PgStmt::PgStmt(PgConn& conn, Sql name)
    : conn_(conn),
      id_(static_cast<std::size_t>(name)),
      sql_(sql_text(name)),
      index_order_(claims_in_index_order(name)),
      name_("ac" + std::to_string(static_cast<std::size_t>(name))),
      params_(static_cast<std::size_t>(count_params(sql_))) {}

// Prepares the statement on the server on its first use on this connection
// (again after a reconnect), then runs it with text parameters.
void PgStmt::prepare() {
  conn_.require_open();
  if (prepared_in_ == conn_.generation()) return;
  conn_.flush_deferred();  // a SAVEPOINT stays ahead of anything that can fail
  PGconn* c = conn_.raw();
  Result prep(PQprepare(c, name_.c_str(), sql_, static_cast<int>(params_.size()), nullptr));
  check(c, prep.r);
  prepared_in_ = conn_.generation();
}

void PgStmt::exec_pipelined() {
  prepare();
  conn_.defer_statement(name_, params_);
}

void PgStmt::run() {
  prepare();
  PGconn* c = conn_.raw();
  // A claim is planned with sorts off (pg::claims_in_index_order), for
  // itself only: both SETs travel with statements already being sent. A
  // claim that fails is undone with its savepoint or transaction, SET
  // LOCAL included.
  static const std::string sort_off = "SET LOCAL enable_sort = off";
  static const std::string sort_default = "SET LOCAL enable_sort TO DEFAULT";
  if (index_order_) conn_.defer(sort_off);
  res_ = conn_.exec_prepared(name_, params_);
  row_ = -1;
  try {
    check(c, res_);
  } catch (...) {
    PQclear(res_);
    res_ = nullptr;
    throw;
  }
  if (index_order_) conn_.defer(sort_default);
}

PgConn& pg_conn(Conn& conn) {
  return static_cast<PgConn&>(conn);
}

// One column of the first row, or nullopt for no row or NULL.
std::optional<std::string> scalar(PgConn& conn, const char* sql,
                                  const std::vector<const char*>& params = {}) {
  conn.require_open();
  conn.flush_deferred();
  Result res(PQexecParams(conn.raw(), sql, static_cast<int>(params.size()), nullptr, params.data(),
                          nullptr, nullptr, 0));
  check(conn.raw(), res.r);
  if (PQntuples(res.r) == 0 || PQgetisnull(res.r, 0, 0)) return std::nullopt;
  return std::string(PQgetvalue(res.r, 0, 0));
}

// The migrations' view of a connection.
Session session(PgConn& c) {
  return Session{[&c](const char* sql, const std::vector<const char*>& params) {
                   return scalar(c, sql, params);
                 },
                 [&c](const char* script) { c.exec(script); }};
}

// The leader's lease, River's elector: a row (name, holder, term,
// expires_at) that the holder renews before it lapses and anyone takes over
// once it has. Expiry is on the server's clock, so nodes' clocks need not
// agree. A holder believes it leads for half the TTL after the renewal it
// sent (measured on its own steady clock, from before it sent it), so it
// stops believing before the row can lapse for the others. Correctness
// never rests on it (db/leader.h): a leader that lost the row late only
// duplicates fenced passes.
class PgLeaderLock final : public LeaderLock {
 public:
  PgLeaderLock(std::unique_ptr<Conn> conn, std::string holder, int ttl_ms)
      : conn_(std::move(conn)), holder_(std::move(holder)), ttl_ms_(ttl_ms) {}
  ~PgLeaderLock() override { resign(); }

  bool held() override {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now < believed_until_) return true;
    const std::string ttl = std::to_string(ttl_ms_);
    try {
      PgConn& c = pg_conn(*conn_);
      if (PQstatus(c.raw()) != CONNECTION_OK) PQreset(c.raw());
      auto term = scalar(
          c,
          "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) "
          "INSERT INTO leadership AS l (name, holder, term, expires_at) "
          "SELECT 'maintenance', $1, 1, ms + $2::bigint FROM now "
          "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
          "term = CASE WHEN l.holder = excluded.holder THEN l.term ELSE l.term + 1 END, "
          "expires_at = excluded.expires_at "
          "WHERE l.holder = excluded.holder OR l.expires_at < (SELECT ms FROM now) "
          "RETURNING term",
          {holder_.c_str(), ttl.c_str()});
      believed_until_ = term ? now + std::chrono::milliseconds(ttl_ms_ / 2)
                             : std::chrono::steady_clock::time_point{};
      return term.has_value();
    } catch (const std::exception&) {
      believed_until_ = {};
      return false;  // cannot reach the database: not the leader
    }
  }

  void resign() noexcept override {
    std::lock_guard lock(mu_);
    believed_until_ = {};
    try {
      // Lapsed at once, the row kept: the next holder's term is still higher.
      scalar(pg_conn(*conn_),
             "UPDATE leadership SET expires_at = 0 WHERE name = 'maintenance' AND holder = $1",
             {holder_.c_str()});
    } catch (...) {
      // The row lapses by itself after the TTL.
    }
  }

 private:
  std::mutex mu_;
  const std::unique_ptr<Conn> conn_;  // guarded by mu_
  const std::string holder_;
  const int ttl_ms_;
  std::chrono::steady_clock::time_point believed_until_;  // guarded by mu_
};

// The channel a staging transaction notifies (PgDriver::announce_jobs) and
// every node's listener LISTENs on (db/pg/driver.h, "Wake-ups").
#define AC_JOBS_CHANNEL "aftercommit_jobs"

// The wake-up hint across nodes: a connection of its own that LISTENs on
// AC_JOBS_CHANNEL and calls `on_wake` for each batch of notifications that
// arrive (a node's staging transaction NOTIFYs once on commit). A hint
// only: a notification lost while the connection was down is covered by
// a wake-up after every reconnect and, as always, by the runner's poll.
class PgListener final : public Listener {
 public:
  PgListener(std::function<core::Result<std::unique_ptr<Conn>>()> connect,
             std::function<void()> on_wake)
      : connect_(std::move(connect)), on_wake_(std::move(on_wake)) {
    if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
      stop_pipe_[0] = stop_pipe_[1] = -1;
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~PgListener() override {
    stopping_ = true;
    if (stop_pipe_[1] >= 0) {
      const char b = 1;
      (void)!::write(stop_pipe_[1], &b, 1);
    }
    thread_.join();
    for (int fd : stop_pipe_) {
      if (fd >= 0) ::close(fd);
    }
  }
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

 private:
  void loop() {
    std::unique_ptr<Conn> conn;
    while (!stopping_) {
      if (!conn) {
        conn = listening();
        if (!conn) {
          wait_readable(-1, 1000);  // the server is down: try again in a second
          continue;
        }
        on_wake_();  // whatever was staged while nobody listened
      }
      PGconn* c = pg_conn(*conn).raw();
      if (wait_readable(PQsocket(c), 1000) != Ready::kSocket) continue;
      if (PQconsumeInput(c) == 0) {
        conn.reset();  // the connection broke: reopen it
        continue;
      }
      bool woken = false;
      while (PGnotify* n = PQnotifies(c)) {
        PQfreemem(n);
        woken = true;
      }
      if (woken) on_wake_();
    }
  }

  // A connection that LISTENs, or nullptr when the server cannot be reached.
  std::unique_ptr<Conn> listening() {
    auto conn = connect_();
    if (!conn) return nullptr;
    PGconn* c = pg_conn(**conn).raw();
    Result res(PQexec(c, "LISTEN " AC_JOBS_CHANNEL));
    if (PQresultStatus(res.r) != PGRES_COMMAND_OK) return nullptr;
    return std::move(*conn);
  }

  enum class Ready { kTimeout, kSocket, kStop };
  // Waits until `fd` (none when -1) is readable, stop() is called, or
  // `timeout_ms` passes.
  Ready wait_readable(int fd, int timeout_ms) {
    pollfd fds[2] = {{stop_pipe_[0], POLLIN, 0}, {fd, POLLIN, 0}};
    const int n = ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
    if (n <= 0) return Ready::kTimeout;
    if (fds[0].revents != 0) return Ready::kStop;
    return Ready::kSocket;
  }

  const std::function<core::Result<std::unique_ptr<Conn>>()> connect_;
  const std::function<void()> on_wake_;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The advisory lock key that migrations (and the check before them) hold
// (PgDriver::under_migration_lock).
#define AC_MIGRATION_LOCK "7411000013"

class PgDriver final : public Driver {
 public:
  explicit PgDriver(Options options)
      : options_(std::move(options)), target_(redacted(options_.url)) {}

  const std::string& target() const noexcept override { return target_; }

  core::Result<std::unique_ptr<Conn>> connect(ConnRole) override {
    // Our settings come first: whatever the URL says overrides them.
    const std::string timeout = std::to_string(options_.connect_timeout_s);
    const std::string settings = "-c lock_timeout=" + std::to_string(options_.lock_timeout_ms);
    const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
    const char* values[] = {timeout.c_str(), "aftercommit", settings.c_str(), options_.url.c_str(),
                            nullptr};
    PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (!c) return core::Status::unavailable("libpq could not allocate a connection");
    if (PQstatus(c) != CONNECTION_OK) {
      const std::string message = trimmed(PQerrorMessage(c));
      PQfinish(c);
      if (message.find("does not exist") != std::string::npos) {
        return core::Status::not_found("no database at " + target_ + ": " + message);
      }
      return core::Status::unavailable(message);
    }
    return std::unique_ptr<Conn>(std::make_unique<PgConn>(c));
  }

  core::Result<int> schema_version(Conn& conn) override {
    try {
      return read_version(pg_conn(conn));
    } catch (const Error& e) {
      return e.status();
    }
  }

  int latest_schema_version() const noexcept override { return pg::latest_schema_version(); }

  // Under the migrations' advisory lock: another node may be migrating
  // right now, and its COMMIT must not fall between our read of the version
  // (none yet) and our list of the tables (all of them), which would look
  // like another program's database. Once we hold the lock, its migration
  // has committed or not begun.
  core::Status check_schema_is_ours(Conn& conn, int version) override {
    PgConn& c = pg_conn(conn);
    core::Status st = core::Status::ok();
    core::Status locked = under_migration_lock(
        c, [&] { st = pg::check_schema_is_ours(session(c), target_, version); });
    return locked ? st : locked;
  }

  // All migrations in one transaction, under the advisory lock: a second
  // node starting at the same moment waits, then reads the version the
  // first one left and has nothing to do.
  core::Result<int> migrate(Conn& writer, int to) override {
    PgConn& c = pg_conn(writer);
    int from = 0;
    core::Status st = under_migration_lock(c, [&] { from = pg::apply_migrations(session(c), to); });
    if (!st) return st;
    return from;
  }

  core::Status prepare_to_serve(Conn&) override { return core::Status::ok(); }

  // A lease row renewed every half TTL (PgLeaderLock): a leader that dies
  // is replaced within a TTL plus one follower's poll.
  core::Result<std::unique_ptr<LeaderLock>> leader_lock() override {
    auto conn = connect(ConnRole::kWriter);
    if (!conn) return conn.status();
    std::random_device rd;
    char holder[64];
    std::snprintf(holder, sizeof holder, "pid%d-%08x%08x", static_cast<int>(::getpid()), rd(),
                  rd());
    return std::unique_ptr<LeaderLock>(
        std::make_unique<PgLeaderLock>(std::move(*conn), holder, options_.leader_ttl_ms));
  }

  // NOTIFY with an empty payload: PostgreSQL delivers it on COMMIT only,
  // and folds identical notifications of one transaction into one. Once
  // per staging transaction (per batch in group mode): one more round trip
  // on the writer connection; unprepared, parsing the call costs nothing
  // beside it.
  void announce_jobs(Conn& writer) override {
    static const std::string notify = "SELECT pg_notify('" AC_JOBS_CHANNEL "', '')";
    pg_conn(writer).defer(notify);  // sent with the COMMIT
  }

  // LISTEN on a connection of its own (PgListener).
  std::unique_ptr<Listener> listen(std::function<void()> on_wake) override {
    return std::make_unique<PgListener>([this] { return connect(ConnRole::kReader); },
                                        std::move(on_wake));
  }

 private:
  // Runs `fn` in one READ COMMITTED transaction that begins after this
  // session holds the migrations' advisory lock, and releases the lock
  // after it ends. A session lock taken before BEGIN, not a transaction
  // lock taken after it: a backend processes other sessions' catalog
  // invalidations when a transaction starts, not when an advisory lock it
  // waited for is granted, so a name looked up earlier in this session
  // (to_regclass('schema_migrations') before the lock: no such table) stays
  // cached as missing for the rest of a transaction that waited while
  // another node created it. The session ends (and the lock with it) if
  // the process dies. Errors: the driver's Status for what failed.
  static core::Status under_migration_lock(PgConn& c, const std::function<void()>& fn) {
    try {
      scalar(c, "SELECT pg_advisory_lock(" AC_MIGRATION_LOCK ")");
    } catch (const Error& e) {
      return e.status();
    }
    core::Status st = core::Status::ok();
    try {
      scalar(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
      try {
        fn();
        scalar(c, "COMMIT");
      } catch (...) {
        Result res(PQexec(c.raw(), "ROLLBACK"));
        throw;
      }
    } catch (const Error& e) {
      st = e.status();
    } catch (const std::exception& e) {
      st = core::Status::internal(e.what());
    }
    // If the connection broke, the server already ended the session and
    // its lock; otherwise this releases it.
    Result unlock(PQexec(c.raw(), "SELECT pg_advisory_unlock(" AC_MIGRATION_LOCK ")"));
    return st;
  }

  static int read_version(PgConn& c) {
    if (!scalar(c, "SELECT to_regclass('schema_migrations')")) return 0;
    auto v = scalar(c, "SELECT max(version) FROM schema_migrations");
    return v ? std::atoi(v->c_str()) : 0;
  }

  const Options options_;
  const std::string target_;
};

}  // namespace

bool is_url(const std::string& target) noexcept {
  return target.rfind("postgresql://", 0) == 0 || target.rfind("postgres://", 0) == 0;
}

std::string redacted(const std::string& url) {
  // postgresql://user:secret@host/db -> postgresql://user:***@host/db
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const auto at = url.find('@', scheme + 3);
  const auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::unique_ptr<Driver> make_driver(Options options) {
  return std::make_unique<PgDriver>(std::move(options));
}

}  // namespace db::pg
