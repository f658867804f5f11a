#include "tests/support/harness.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          ("aftercommit-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rd() % 100000));
  fs::create_directories(path_);
}

namespace {

std::string pg_socket() {
  const char* socket = std::getenv("AFTERCOMMIT_PG_SOCKET");
  if (socket == nullptr || *socket == '\0') {
    throw std::runtime_error(
        "AFTERCOMMIT_TEST_ENGINE=postgres needs AFTERCOMMIT_PG_SOCKET, the unix socket directory "
        "of a test server (`make test` starts one: tests/pg.sh start DIR)");
  }
  return socket;
}

std::string pg_url(const std::string& database) {
  return "postgresql:///" + database + "?host=" + pg_socket() + "&user=postgres";
}

// Runs one statement on the server's maintenance database (CREATE/DROP
// DATABASE cannot run inside a transaction, so no db::Database here).
void pg_admin(const std::string& sql) {
  PGconn* c = PQconnectdb(pg_url("postgres").c_str());
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  if (!error.empty()) throw std::runtime_error(sql + ": " + error);
}

}  // namespace

void forget_pg_connections(const std::string& database);

TempDir::~TempDir() {
  for (const std::string& database : databases_) {
    forget_pg_connections(database);
    try {
      pg_admin("DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
    } catch (const std::exception&) {
      // The server is gone (a test stopped it); tests/pg.sh stop removes it all.
    }
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool on_postgres() {
  const char* engine = std::getenv("AFTERCOMMIT_TEST_ENGINE");
  return engine != nullptr && std::string(engine) == "postgres";
}

namespace {
std::atomic<bool> in_variant_independent_case{false};
}  // namespace

void set_in_variant_independent_case(bool yes) {
  in_variant_independent_case.store(yes);
}

std::string test_db(const TempDir& dir, const std::string& name) {
  if (in_variant_independent_case.load()) {
    throw std::logic_error(
        "test_db() in a test case of the doctest suite \"variant_independent\": a case that "
        "opens the variant's database must run in every variant (tests/support/harness.h)");
  }
  if (!on_postgres()) return dir.file(name);
  static std::atomic<int> counter{0};
  std::random_device rd;
  const std::string database = "t" + std::to_string(::getpid()) + "_" +
                               std::to_string(counter.fetch_add(1)) + "_" +
                               std::to_string(rd() % 1000000);
  pg_admin("CREATE DATABASE " + database);
  dir.own_database(database);
  return pg_url(database);
}

namespace {

// The connections query_int and exec_sql reuse, per database URL. Opening
// one forks a server process (tens of milliseconds on a loaded machine), and
// the suites poll: hostile_input_test's twelve counts per request took 86 s
// of its 90 on PostgreSQL with a connection per query. Thread-safe; a
// connection is used by one thread at a time (taken out while in use).
class PgConnections {
 public:
  // An idle connection to `db`, or a new one (nullptr and `error` if the
  // server refuses). `fresh` says it was just opened.
  PGconn* take(const std::string& db, std::string& error, bool& fresh) {
    {
      std::lock_guard lock(mu_);
      if (auto it = idle_.find(db); it != idle_.end()) {
        PGconn* c = it->second;
        idle_.erase(it);
        fresh = false;
        return c;
      }
    }
    fresh = true;
    PGconn* c = PQconnectdb(db.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      error = PQerrorMessage(c);
      PQfinish(c);
      return nullptr;
    }
    // Not inherited by the server processes the suites fork and exec.
    ::fcntl(PQsocket(c), F_SETFD, FD_CLOEXEC);
    return c;
  }
  // Keeps `c` for the next query if it is still usable.
  void give(const std::string& db, PGconn* c) {
    if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE) {
      PQfinish(c);
      return;
    }
    std::lock_guard lock(mu_);
    idle_.emplace(db, c);
  }
  // Closes the idle connections to databases whose URL names `database`
  // (before it is dropped).
  void forget(const std::string& database) {
    std::lock_guard lock(mu_);
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->first.find("/" + database + "?") != std::string::npos) {
        PQfinish(it->second);
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  std::mutex mu_;
  std::multimap<std::string, PGconn*> idle_;
};

PgConnections& pg_connections() {
  static auto* pool = new PgConnections;  // never destroyed: used until exit
  return *pool;
}

// Runs `sql` on `db`: the first value of its first row, or the rows it changed.
std::int64_t run_sql(const std::string& db, const std::string& sql, bool changes) {
  if (db.rfind("postgres", 0) == 0) {
    // A reused connection may have been closed by a server restart since its
    // last query: then the query runs once more on a new one.
    for (int tries = 0;; ++tries) {
      std::string error;
      bool fresh = false;
      PGconn* c = pg_connections().take(db, error, fresh);
      if (c == nullptr) throw std::runtime_error(sql + ": " + error);
      std::int64_t out = 0;
      PGresult* r = PQexec(c, sql.c_str());
      const auto st = PQresultStatus(r);
      if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        error = PQresultErrorMessage(r);
      } else if (changes) {
        out = std::atoll(PQcmdTuples(r));
      } else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        const std::string v = PQgetvalue(r, 0, 0);
        out = v == "t" ? 1 : v == "f" ? 0 : std::atoll(v.c_str());
      }
      PQclear(r);
      const bool lost = PQstatus(c) != CONNECTION_OK;
      pg_connections().give(db, c);
      if (error.empty()) return out;
      if (!(lost && !fresh && tries == 0)) throw std::runtime_error(sql + ": " + error);
    }
  }
  SQLite::Database conn(db, changes ? SQLite::OPEN_READWRITE : SQLite::OPEN_READONLY, 5000);
  if (changes) return conn.exec(sql);
  SQLite::Statement q(conn, sql);
  if (!q.executeStep() || q.getColumn(0).isNull()) return 0;
  return q.getColumn(0).getInt64();
}

}  // namespace

void forget_pg_connections(const std::string& database) {
  pg_connections().forget(database);
}

std::thread listen_in_background(httplib::Server& server) {
  std::thread serving([&server] { server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      serving.detach();  // it never started: nothing to stop or join
      throw std::runtime_error("a test HTTP server did not start listening within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return serving;
}

std::int64_t query_int(const std::string& db, const std::string& sql) {
  return run_sql(db, sql, false);
}

std::int64_t exec_sql(const std::string& db, const std::string& sql) {
  return run_sql(db, sql, true);
}

app::Config test_config(const TempDir& dir) {
  app::Config c;
  c.db_path = test_db(dir);
  // The fake gateway's own store beside the test's files (on PostgreSQL its
  // default is a file in the working directory, shared by every test).
  c.fake_gateway_db = dir.file("fake-gateway.sqlite");
  c.port = 0;
  c.http_threads = 16;
  // `make test` runs every suite once per commit mode; the binary reads the
  // same variable through its --commit flag's envname.
  if (const char* mode = std::getenv("AFTERCOMMIT_COMMIT")) {
    c.commit_mode =
        std::string(mode) == "per-request" ? db::CommitMode::kPerRequest : db::CommitMode::kGroup;
  }
  return c;
}

InProcessServer::InProcessServer(app::Config config, const core::Clock* clock) {
  auto created = app::App::create(config, clock ? *clock : system_clock_);
  if (!created) throw std::runtime_error("app did not start: " + created.status().to_string());
  app_ = std::move(*created);
  thread_ = std::thread([this] { app_->serve(); });
}

InProcessServer::~InProcessServer() {
  stop();
}

void InProcessServer::stop() {
  if (thread_.joinable()) {
    app_->request_stop();
    thread_.join();
  }
}

httplib::Client InProcessServer::client() const {
  httplib::Client c("127.0.0.1", port());
  c.set_tcp_nodelay(true);
  c.set_read_timeout(30, 0);
  c.set_connection_timeout(5, 0);
  return c;
}

ServerProcess::ServerProcess(const std::string& db_path, std::vector<std::string> extra_args,
                             std::string log_path)
    : log_path_(std::move(log_path)) {
  if (log_path_.empty()) {
    static std::atomic<int> logs{0};
    own_log_ =
        (fs::temp_directory_path() / ("aftercommit-test-server-" + std::to_string(::getpid()) +
                                      "-" + std::to_string(logs.fetch_add(1)) + ".log"))
            .string();
    log_path_ = own_log_;
  }
  std::vector<std::string> args = {AFTERCOMMIT_BINARY, "serve", "--port", "0", "--db", db_path};
  auto has = [&](const char* flag) {
    return std::find(extra_args.begin(), extra_args.end(), flag) != extra_args.end();
  };
  const bool own_store = has("--fake-gateway") && !has("--fake-gateway-db");
  for (auto& a : extra_args) args.push_back(std::move(a));
  // On PostgreSQL the fake gateway's default store is one file in the
  // working directory: each server process gets its own instead.
  if (on_postgres() && own_store) {
    static std::atomic<int> stores{0};
    gateway_store_ =
        (fs::temp_directory_path() / ("aftercommit-test-gateway-" + std::to_string(::getpid()) +
                                      "-" + std::to_string(stores.fetch_add(1)) + ".sqlite"))
            .string();
    args.push_back("--fake-gateway-db");
    args.push_back(gateway_store_);
  }
  spawn(args);
  const std::string first = read_stdout_line(std::chrono::seconds(20));
  if (first.rfind("listening on http://", 0) != 0 && first.rfind("listening on https://", 0) != 0) {
    // Whether it exited by itself (and how) before it is killed.
    int status = 0;
    std::string how = "still running";
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      how = WIFEXITED(status)     ? "exited with " + std::to_string(WEXITSTATUS(status))
            : WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                  : "stopped";
      pid_ = -1;
    }
    kill9();
    // Why it did not start is in its log: the last lines, for the report.
    std::ifstream log(log_path_);
    std::string logged((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    if (logged.size() > 2000) logged = "..." + logged.substr(logged.size() - 2000);
    throw std::runtime_error("server did not print its address within 20 s; got: '" + first +
                             "' (" + how + "); its log ends with:\n" + logged);
  }
  scheme_ = first.rfind("listening on https://", 0) == 0 ? "https" : "http";
  port_ = std::stoi(first.substr(first.rfind(':') + 1));
}

ServerProcess ServerProcess::fake_gateway(const std::string& store_path) {
  ServerProcess gateway;
  gateway.spawn({AFTERCOMMIT_FAKE_GATEWAY_BINARY, "--port", "0", "--db", store_path});
  const std::string first = gateway.read_stdout_line(std::chrono::seconds(20));
  if (first.rfind("fake gateway on http://", 0) != 0) {
    gateway.kill9();
    throw std::runtime_error("fake gateway did not print its address; got: '" + first + "'");
  }
  gateway.port_ = std::stoi(first.substr(first.rfind(':') + 1));
  return gateway;
}

ServerProcess::ServerProcess(ServerProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      buffered_(std::move(other.buffered_)),
      port_(other.port_),
      scheme_(std::move(other.scheme_)),
      log_path_(std::move(other.log_path_)),
      own_log_(std::exchange(other.own_log_, {})),
      gateway_store_(std::exchange(other.gateway_store_, {})) {}

void ServerProcess::spawn(std::vector<std::string> args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    const int log = log_path_.empty()
                        ? ::open("/dev/null", O_WRONLY)
                        : ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0 && std::getenv("AFTERCOMMIT_TEST_SERVER_STDERR") == nullptr) {
      ::dup2(log, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  stdout_fd_ = pipe_fds[0];
}

ServerProcess::~ServerProcess() {
  kill9();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (!own_log_.empty()) {
    std::error_code ec;
    fs::remove(own_log_, ec);
  }
  if (!gateway_store_.empty()) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(gateway_store_ + suffix, ec);
  }
}

std::string ServerProcess::read_stdout_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || stdout_fd_ < 0) return "";
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return "";
    char buf[512];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

httplib::Client ServerProcess::client() const {
  httplib::Client c("127.0.0.1", port_);
  c.set_tcp_nodelay(true);
  c.set_read_timeout(30, 0);
  c.set_connection_timeout(5, 0);
  return c;
}

void ServerProcess::kill9() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

int ServerProcess::terminate_and_wait() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::pair<int, std::string> run_binary(const std::vector<std::string>& args,
                                       const std::vector<std::string>& env) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> full = {AFTERCOMMIT_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));  // the child's own copy
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string HttpResult::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpResult request(httplib::Client& client, const std::string& method, const std::string& path,
                   const std::string& body, const std::string& content_type,
                   const httplib::Headers& headers) {
  httplib::Result r{nullptr, httplib::Error::Unknown};
  if (method == "GET") {
    r = client.Get(path, headers);
  } else if (method == "POST") {
    r = client.Post(path, headers, body, content_type);
  } else if (method == "PUT") {
    r = client.Put(path, headers, body, content_type);
  } else if (method == "DELETE") {
    r = client.Delete(path, headers, body, content_type);
  } else {
    throw std::invalid_argument("unsupported method " + method);
  }
  HttpResult out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  return out;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace testing
