// deploy/Caddyfile, run: Caddy (Debian's caddy, which `make deps` installs)
// in front of the real binary, on loopback, with the file as shipped plus
// what a test needs (tests/caddy_test.cpp, caddyfile_for_test): `tls
// internal` (Caddy's own local CA, kept in the test's directory through
// HOME and XDG_*), free ports, no admin endpoint, no trust-store install.
// Through it: the README's core requests (create-or-get a user, an
// idempotent replay, a checkout with the fake gateway), the edge limits
// (431, 413) and the operational routes that are not public (404).
// Without caddy the test fails, saying how to install it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/harness.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string find_caddy() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    const fs::path p = fs::path(dir) / "caddy";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// deploy/Caddyfile as shipped, plus the test's global options (first in
// the global block) and `tls internal` (first in the site block).
std::string caddyfile_for_test(int http_port, int https_port) {
  std::string text =
      testing::read_file((fs::path(AFTERCOMMIT_SOURCE_DIR) / "deploy" / "Caddyfile").string());
  const auto global = text.find("\n{\n");
  REQUIRE(global != std::string::npos);
  text.insert(global + 3, "\tadmin off\n\tskip_install_trust\n\thttp_port " +
                              std::to_string(http_port) + "\n\thttps_port " +
                              std::to_string(https_port) + "\n\tdefault_bind 127.0.0.1\n");
  const auto site = text.find("\n{$AFTERCOMMIT_DOMAIN");
  REQUIRE(site != std::string::npos);
  const auto open = text.find("{\n", text.find('}', site));
  REQUIRE(open != std::string::npos);
  text.insert(open + 2, "\ttls internal\n");
  return text;
}

class Caddy {
 public:
  Caddy(const testing::TempDir& dir, const std::string& caddy, int upstream_port)
      : dir_(dir.path()), http_port_(free_port()), https_port_(free_port()) {
    const fs::path config = dir_ / "Caddyfile";
    std::ofstream(config) << caddyfile_for_test(http_port_, https_port_);
    const std::string log = (dir_ / "caddy.log").string();
    std::vector<std::string> env = {
        "HOME=" + (dir_ / "home").string(),
        "XDG_DATA_HOME=" + (dir_ / "data").string(),
        "XDG_CONFIG_HOME=" + (dir_ / "config").string(),
        "AFTERCOMMIT_DOMAIN=localhost",
        "AFTERCOMMIT_UPSTREAM=127.0.0.1:" + std::to_string(upstream_port),
        "PATH=/usr/bin:/bin",
    };
    std::vector<std::string> args = {caddy,           "run",       "--config",
                                     config.string(), "--adapter", "caddyfile"};
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> argv, envp;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      for (auto& e : env) envp.push_back(e.data());
      envp.push_back(nullptr);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    // Caddy writes its local CA's root, then serves with a leaf it signed.
    root_ = dir_ / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt";
    bool exited = false;
    const bool up = testing::eventually(
        [&] {
          if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            exited = true;
            pid_ = -1;
            return true;
          }
          return fs::exists(root_) && curl("/healthz").rfind("HTTP/", 0) == 0;
        },
        30s);
    CAPTURE(testing::read_file(fs::path(log).string()));
    REQUIRE_MESSAGE(!exited, "caddy exited");
    REQUIRE_MESSAGE(up, "caddy did not serve https://localhost:" << https_port_);
  }
  ~Caddy() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!testing::eventually([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 5s)) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
  }
  Caddy(const Caddy&) = delete;
  Caddy& operator=(const Caddy&) = delete;

  // curl -i through Caddy, trusting only Caddy's local root (as the README
  // shows with --cacert); `extra` are more curl arguments, already quoted.
  std::string curl(const std::string& path, const std::string& extra = "") const {
    const std::string url = "https://localhost:" + std::to_string(https_port_) + path;
    const std::string command = "curl -sS -i --max-time 10 --cacert " +
                                testing::shell_quote(root_.string()) +
                                " --resolve localhost:" + std::to_string(https_port_) +
                                ":127.0.0.1 " + extra + " " + testing::shell_quote(url) + " 2>&1";
    std::string out;
    std::FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
  }

 private:
  fs::path dir_;
  fs::path root_;
  int http_port_;
  int https_port_;
  pid_t pid_ = -1;
};

int status_of(const std::string& response) {
  // "HTTP/2 201" or "HTTP/1.1 201 Created"
  const auto sp = response.find(' ');
  if (response.rfind("HTTP/", 0) != 0 || sp == std::string::npos) return 0;
  return std::stoi(response.substr(sp + 1, 3));
}

std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

bool has_header(const std::string& response, const std::string& line) {
  const auto end = response.find("\r\n\r\n");
  std::string head = response.substr(0, end);
  std::string want = line;
  for (auto* s : {&head, &want}) {
    for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return head.find("\r\n" + want + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE(
    "deploy/Caddyfile in front of the server: the walk-through works, operations stay private") {
  const std::string caddy = find_caddy();
  REQUIRE_MESSAGE(!caddy.empty(),
                  "caddy is not installed: `make deps` installs it (Debian package caddy); "
                  "deploy/Caddyfile is tested with it");
  testing::TempDir dir;
  testing::ServerProcess server(testing::test_db(dir, "db"), {"--fake-gateway"});
  Caddy edge(dir, caddy, server.port());

  SUBCASE("create-or-get a user, and an idempotent replay") {
    const std::string created = edge.curl("/users/edge@example.com", "-X PUT");
    CAPTURE(created);
    CHECK(status_of(created) == 201);
    const std::string again = edge.curl("/users/edge@example.com", "-X PUT");
    CHECK(status_of(again) == 200);
    CHECK(body_of(again) == body_of(created));

    const std::string json =
        "-X POST -H 'Content-Type: application/json' "
        "-H 'Idempotency-Key: edge-1' -d '{\"email\":\"keyed@example.com\"}'";
    const std::string first = edge.curl("/api/users", json);
    CHECK(status_of(first) == 201);
    const std::string replay = edge.curl("/api/users", json);
    CAPTURE(replay);
    CHECK(status_of(replay) == 201);
    CHECK(has_header(replay, "Idempotent-Replayed: true"));
    CHECK(body_of(replay) == body_of(first));
  }

  SUBCASE("a checkout with the fake gateway, replayed by its key") {
    const std::string body =
        R"({"email":"ann@example.com","phone":"+15550100200",)"
        R"("items":[{"sku":"mug","quantity":2,"unit_price_cents":1250}],"payment_token":"tok_visa"})";
    const std::string args =
        "-X POST -H 'Content-Type: application/json' "
        "-H 'Idempotency-Key: edge-order-1' -d " +
        testing::shell_quote(body);
    const std::string paid = edge.curl("/checkout", args);
    CAPTURE(paid);
    REQUIRE(status_of(paid) == 201);
    const auto order = nlohmann::json::parse(body_of(paid));
    CHECK(order["state"] == "paid");
    const std::string replay = edge.curl("/checkout", args);
    CHECK(status_of(replay) == 201);
    CHECK(has_header(replay, "Idempotent-Replayed: true"));
    const std::string fetched = edge.curl("/orders/" + std::to_string(order["id"].get<int>()));
    CHECK(status_of(fetched) == 200);
  }

  SUBCASE("/metrics, the job routes and the dashboard answer 404 through Caddy only") {
    for (const char* path :
         {"/metrics", "/jobs", "/jobs/1", "/jobs/1/retry", "/api/stats", "/api/audit",
          "/api/messages", "/api/throughput", "/", "/dashboard.js"}) {
      CAPTURE(path);
      CHECK(status_of(edge.curl(path)) == 404);
    }
    CHECK(status_of(edge.curl("/healthz")) == 200);
    CHECK(status_of(edge.curl("/openapi.json")) == 200);
    auto direct = server.client();
    auto metrics = direct.Get("/metrics");
    REQUIRE(metrics);
    CHECK(metrics->status == 200);  // on the machine itself
  }

  SUBCASE("bodies over 64 KiB get 413 and headers over 32 KiB get 431 at the edge") {
    const fs::path big = dir.path() / "big.json";
    std::ofstream(big) << "{\"email\":\"" << std::string(70 * 1024, 'a') << "@example.com\"}";
    const std::string too_large =
        edge.curl("/api/users", "-X POST -H 'Content-Type: application/json' --data-binary @" +
                                    testing::shell_quote(big.string()));
    CAPTURE(too_large.substr(0, 400));
    CHECK(status_of(too_large) == 413);
    CHECK(body_of(too_large) == "request body over 64 KiB");  // Caddy's answer, not the server's
    const std::string long_header = "-H 'X-Padding: " + std::string(40 * 1024, 'p') + "'";
    const std::string refused = edge.curl("/healthz", "--http1.1 " + long_header);
    CAPTURE(refused.substr(0, 400));
    CHECK(status_of(refused) == 431);
    // Over HTTP/2 Go refuses the header block itself: no answer, nothing proxied.
    CHECK(status_of(edge.curl("/healthz", long_header)) == 0);
  }
}
