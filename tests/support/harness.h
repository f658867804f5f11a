// Test harness shared by every suite.
//
// - TempDir: a fresh directory under $TMPDIR, removed at scope end (with
//   the PostgreSQL databases test_db made for it).
// - The engine: a suite runs on SQLite unless AFTERCOMMIT_TEST_ENGINE is
//   "postgres" (the `<suite>_pg` ctest variants set it); then every
//   test_config / test_db is a fresh database on the server whose unix
//   socket directory AFTERCOMMIT_PG_SOCKET names (`make test` starts one
//   with tests/pg.sh). Test cases SQLite-only by nature are in the doctest
//   suite "sqlite_only", which the `_pg` variants exclude.
// - InProcessServer: the real app::App (database, runner, HTTP server) on a
//   free port in this process, serving on a background thread. Tests speak
//   real HTTP to it and may reach its seams (clock, db, runner).
// - ServerProcess: the real `aftercommit` binary as a child process, for
//   what needs a process boundary: kill -9, restart, stdout, exit codes.
// - Http helpers: a keep-alive client and JSON parsing of answers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "app/app.h"
#include "app/config.h"
#include "core/clock.h"

namespace testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Drops `database` on the test server when this directory goes.
  void own_database(const std::string& database) const { databases_.push_back(database); }

 private:
  std::filesystem::path path_;
  mutable std::vector<std::string> databases_;
};

// Whether this run's engine is PostgreSQL (AFTERCOMMIT_TEST_ENGINE=postgres).
bool on_postgres();

// Test cases whose outcome depends on neither the engine nor the commit
// mode are in the doctest suite "variant_independent": they open no
// database of the variant (pure functions, --help, a configuration refused
// before any database opens, files they name themselves). Only a suite's
// SQLite group variant runs them; the other three variants would repeat
// the same check (CMakeLists.txt). test_db() throws std::logic_error inside
// such a case, so a case put there wrongly fails instead of losing its
// other variants unnoticed. Set by doctest's listener (doctest_main.cpp)
// as each case starts, on the test thread.
inline constexpr const char* kVariantIndependent = "variant_independent";
void set_in_variant_independent_case(bool yes);

// A database for a test, owned by `dir`: on SQLite the file `name` in it;
// on PostgreSQL the URL of a fresh, empty database (`name` only makes it
// distinct), dropped with `dir`.
std::string test_db(const TempDir& dir, const std::string& name = "test.db");

// The first column of the first row `sql` answers on the database `db` (a
// SQLite file, or a URL test_db gave), as an integer (0 for NULL): for tests
// that count rows on either engine. Throws std::runtime_error on an error.
std::int64_t query_int(const std::string& db, const std::string& sql);
// The same for a statement that changes rows (returns how many).
std::int64_t exec_sql(const std::string& db, const std::string& sql);

// A config for tests: port 0, test_db(dir), few HTTP threads.
app::Config test_config(const TempDir& dir);

class InProcessServer {
 public:
  // Starts serving; throws std::runtime_error when the app cannot start.
  explicit InProcessServer(app::Config config, const core::Clock* clock = nullptr);
  ~InProcessServer();  // graceful stop
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  app::App& app() { return *app_; }
  int port() const { return app_->port(); }
  std::string url() const { return app_->url(); }
  httplib::Client client() const;
  void stop();

 private:
  core::SystemClock system_clock_;
  std::unique_ptr<app::App> app_;
  std::thread thread_;
};

class ServerProcess {
 public:
  // Starts `aftercommit serve --port 0 --db <db> <extra...>` and waits for the
  // "listening on" line. Throws std::runtime_error if it does not come,
  // with the end of what the server logged. Its stderr (the log) is appended
  // to `log_path`, or to a file of its own removed with this object.
  explicit ServerProcess(const std::string& db_path, std::vector<std::string> extra_args = {},
                         std::string log_path = "");
  // The standalone fake payment gateway (`aftercommit-fake-gateway --port 0
  // --db <store_path>`), once it printed "fake gateway on http://...".
  static ServerProcess fake_gateway(const std::string& store_path);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  // "https://..." when the server said it listens on https (--tls-cert).
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  httplib::Client client() const;
  // Lines printed on stdout after the first (e.g. the fake gateway URL).
  std::string read_stdout_line(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  void kill9();              // SIGKILL and reap
  int terminate_and_wait();  // SIGTERM; returns the exit status (-1 on a signal death)

 private:
  ServerProcess() = default;
  // Starts args[0] with args, its stdout piped to read_stdout_line.
  void spawn(std::vector<std::string> args);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;
  int port_ = 0;
  std::string scheme_ = "http";
  std::string log_path_;  // where stderr goes
  std::string own_log_;   // log_path_ when the caller gave none: removed at the end
  std::string
      gateway_store_;  // on PostgreSQL: this process's fake gateway store, removed at the end
};

// Runs the binary with args to completion; returns {exit code, stdout+stderr}.
// `env` entries ("NAME=value") are added to the child's environment.
std::pair<int, std::string> run_binary(const std::vector<std::string>& args,
                                       const std::vector<std::string>& env = {});

// The whole file at `path` as bytes (empty when it cannot be read).
std::string read_file(const std::string& path);

// `text` as one word for /bin/sh (single-quoted), so paths with spaces or
// quotes survive std::system and popen.
std::string shell_quote(const std::string& text);

struct HttpResult {
  int status = 0;  // 0 when the request failed at the transport level
  std::string body;
  httplib::Headers headers;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const std::string& name) const;
};

HttpResult request(httplib::Client& client, const std::string& method, const std::string& path,
                   const std::string& body = "",
                   const std::string& content_type = "application/json",
                   const httplib::Headers& headers = {});

// Runs server.listen_after_bind() (bound already) on a new thread, and
// returns that thread once the server accepts: cpp-httplib 0.11.4's stop()
// does nothing before listen has started, so a test that failed right after
// starting its server would otherwise wait forever in the join. It has no
// ready signal, hence the short poll of is_running(). Throws
// std::runtime_error if the server has not started within 10 s.
std::thread listen_in_background(httplib::Server& server);

// Polls `pred` every 5 ms until it holds or `timeout` passes. For conditions
// the test cannot be signalled about (work done by another process).
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace testing
