// Hostile input: a catalogue of bad requests for every route, and the limits
// that bound what a slow or greedy client can cost.
//
// Each catalogue entry is sent to the real server (in process, real HTTP)
// and must get its documented 4xx problem document (RFC 9457 body, problem
// content type, `status` equal to the HTTP status) while the row counts of
// every table stay unchanged. Requests that cpp-httplib's client would refuse
// to send (CR/LF in a header, oversized lines) go over a raw socket.
//
// When a route is added, add its bad requests here (docs/RELIABILITY.md).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/harness.h"

using testing::request;

namespace {

// A raw TCP connection to the server, for requests no well-behaved client sends.
class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConn() { ::close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  void send_all(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early on a refused request
      off += static_cast<std::size_t>(n);
    }
  }
  // Reads until the server closes or `timeout` passes; returns what came.
  std::string read_until_close(std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    if (closed) *closed = false;
    return out;
  }

 private:
  int fd_ = -1;
};

int status_of(const std::string& raw_response) {
  // "HTTP/1.1 431 ..."
  if (raw_response.size() < 12 || raw_response.rfind("HTTP/1.", 0) != 0) return 0;
  return std::stoi(raw_response.substr(9, 3));
}

struct Counts {
  std::int64_t users, actions, jobs, mailbox;
  bool operator==(const Counts&) const = default;
};

Counts counts(const std::string& db_path) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  auto n = [&](const char* sql) { return db.execAndGet(sql).getInt64(); };
  return {n("SELECT count(*) FROM users"), n("SELECT count(*) FROM user_actions"),
          n("SELECT count(*) FROM jobs"), n("SELECT count(*) FROM mailbox")};
}

struct Case {
  std::string name;
  std::string method;
  std::string path;
  std::string body;
  std::string content_type = "application/json";
  int status;
  std::string type;  // expected problem type
  httplib::Headers headers = {};
};

std::string nested(int depth) {
  return R"({"email": "deep@example.com", "x": )" + std::string(depth, '[') +
         std::string(depth, ']') + "}";
}

// The catalogue. Every route that exists appears; each entry names what is wrong.
std::vector<Case> catalogue() {
  const std::string big(70 * 1024, 'a');
  return {
      // POST /api/users: the JSON body.
      {"truncated JSON", "POST", "/api/users", R"({"email": "a@example.com")", "application/json",
       400, "/problems/malformed-json"},
      {"not JSON at all", "POST", "/api/users", "email=a@example.com", "application/json", 400,
       "/problems/malformed-json"},
      {"empty body", "POST", "/api/users", "", "application/json", 400, "/problems/malformed-json"},
      {"JSON array, not object", "POST", "/api/users", R"(["a@example.com"])", "application/json",
       400, "/problems/malformed-json"},
      {"JSON string, not object", "POST", "/api/users", R"("a@example.com")", "application/json",
       400, "/problems/malformed-json"},
      {"trailing garbage", "POST", "/api/users", R"({"email": "a@example.com"} x)",
       "application/json", 400, "/problems/malformed-json"},
      {"invalid UTF-8 in a string", "POST", "/api/users", "{\"email\": \"\xff\xfe@example.com\"}",
       "application/json", 400, "/problems/malformed-json"},
      {"overlong UTF-8 encoding of '@'", "POST", "/api/users",
       "{\"email\": \"a\xc0\x80@example.com\"}", "application/json", 400,
       "/problems/malformed-json"},
      {"nesting 1000 deep", "POST", "/api/users", nested(1000), "application/json", 400,
       "/problems/malformed-json"},
      {"nesting 65 deep", "POST", "/api/users", nested(65), "application/json", 400,
       "/problems/malformed-json"},
      {"email is a number", "POST", "/api/users", R"({"email": 42})", "application/json", 422,
       "/problems/invalid-email"},
      {"email is a huge number", "POST", "/api/users",
       R"({"email": 123456789012345678901234567890123456789})", "application/json", 422,
       "/problems/invalid-email"},
      {"email is 1e99999 (out of range)", "POST", "/api/users", R"({"email": 1e99999})",
       "application/json", 400, "/problems/malformed-json"},
      {"email is null", "POST", "/api/users", R"({"email": null})", "application/json", 422,
       "/problems/invalid-email"},
      {"email is an array", "POST", "/api/users", R"({"email": ["a@example.com"]})",
       "application/json", 422, "/problems/invalid-email"},
      {"email is an object", "POST", "/api/users", R"({"email": {"$ne": ""}})", "application/json",
       422, "/problems/invalid-email"},
      {"email missing", "POST", "/api/users", R"({"mail": "a@example.com"})", "application/json",
       422, "/problems/invalid-email"},
      {"text/plain body", "POST", "/api/users", R"({"email": "a@example.com"})", "text/plain", 415,
       "/problems/unsupported-media-type"},
      {"form body", "POST", "/api/users", "email=a%40example.com",
       "application/x-www-form-urlencoded", 415, "/problems/unsupported-media-type"},
      {"body over 64 KiB", "POST", "/api/users",
       R"({"email": "a@example.com", "pad": ")" + big + "\"}", "application/json", 413,
       "/problems/payload-too-large"},
      {"CR/LF in the email", "POST", "/api/users",
       R"({"email": "a@example.com\r\nX-Injected: yes"})", "application/json", 422,
       "/problems/invalid-email"},
      {"NUL in the email", "POST", "/api/users", R"({"email": "a\u0000b@example.com"})",
       "application/json", 422, "/problems/invalid-email"},
      {"SQL with spaces in the email", "POST", "/api/users",
       R"({"email": "' OR 1=1 --@example.com"})", "application/json", 422,
       "/problems/invalid-email"},
      {"path traversal as email", "POST", "/api/users", R"({"email": "../../etc/passwd"})",
       "application/json", 422, "/problems/invalid-email"},
      {"Cyrillic a in the local part", "POST", "/api/users",
       "{\"email\": \"j\xd0\xb0ne@example.com\"}", "application/json", 422,
       "/problems/invalid-email"},
      {"Cyrillic a in the domain", "POST", "/api/users", "{\"email\": \"jane@ex\xd0\xb0mple.com\"}",
       "application/json", 422, "/problems/invalid-email"},
      {"fullwidth at sign", "POST", "/api/users",
       "{\"email\": \"jane\xef\xbc\xa0"
       "example.com\"}",
       "application/json", 422, "/problems/invalid-email"},
      {"zero-width space", "POST", "/api/users", "{\"email\": \"ja\xe2\x80\x8bne@example.com\"}",
       "application/json", 422, "/problems/invalid-email"},
      {"escaped Cyrillic a", "POST", "/api/users", R"({"email": "j\u0430ne@example.com"})",
       "application/json", 422, "/problems/invalid-email"},
      {"local part of 65", "POST", "/api/users",
       R"({"email": ")" + std::string(65, 'a') + R"(@example.com"})", "application/json", 422,
       "/problems/invalid-email"},
      {"email of 255", "POST", "/api/users",
       R"({"email": "a@)" + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
           std::string(63, 'd') + "." + std::string(61, 'e') + R"("})",
       "application/json", 422, "/problems/invalid-email"},
      // PUT /users/{email} and PUT /users?email=
      {"path traversal in the email path", "PUT", "/users/..%2F..%2Fetc%2Fpasswd", "", "", 422,
       "/problems/invalid-email"},
      {"dot-dot segments", "PUT", "/users/../../etc/passwd", "", "", 422,
       "/problems/invalid-email"},
      {"CR/LF in the email path", "PUT", "/users/a%0D%0AX-Injected:%20yes@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"NUL in the email path", "PUT", "/users/a%00b@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"SQL in the email path", "PUT", "/users/x%27%20OR%20%271%27=%271@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"invalid UTF-8 in the email path", "PUT", "/users/%FF%FE@example.com", "", "", 422,
       "/problems/invalid-email"},
      {"look-alike in the query form", "PUT", "/users?email=j%D0%B0ne%40example.com", "", "", 422,
       "/problems/invalid-email"},
      {"query form without email", "PUT", "/users?mail=a%40example.com", "", "", 422,
       "/problems/invalid-email"},
      {"query form, empty email", "PUT", "/users?email=", "", "", 422, "/problems/invalid-email"},
      // GET /users/{id}, /users/{id}/actions
      {"id not a number", "GET", "/users/abc", "", "", 404, "/problems/not-found"},
      {"id overflows int64", "GET", "/users/99999999999999999999999", "", "", 404,
       "/problems/not-found"},
      {"id negative", "GET", "/users/-1", "", "", 404, "/problems/not-found"},
      {"id zero", "GET", "/users/0", "", "", 404, "/problems/not-found"},
      {"id with SQL", "GET", "/users/1%20OR%201=1", "", "", 404, "/problems/not-found"},
      {"actions of a non-number", "GET", "/users/1e3/actions", "", "", 404, "/problems/not-found"},
      // /jobs
      {"limit not a number", "GET", "/jobs?limit=abc", "", "", 422, "/problems/invalid-parameter"},
      {"limit overflows", "GET", "/jobs?limit=99999999999999999999", "", "", 422,
       "/problems/invalid-parameter"},
      {"limit zero", "GET", "/jobs?limit=0", "", "", 422, "/problems/invalid-parameter"},
      {"limit too high", "GET", "/jobs?limit=1001", "", "", 422, "/problems/invalid-parameter"},
      {"state with SQL", "GET", "/jobs?state=completed%27%20OR%20%271%27=%271", "", "", 422,
       "/problems/invalid-parameter"},
      {"job id not a number", "GET", "/jobs/abc", "", "", 404, "/problems/not-found"},
      {"retry of a non-number", "POST", "/jobs/1;DROP/retry", "", "", 404, "/problems/not-found"},
      {"retry of an unknown job", "POST", "/jobs/999999/retry", "", "", 404, "/problems/not-found"},
      {"cancel of an overflowing id", "POST", "/jobs/99999999999999999999/cancel", "", "", 404,
       "/problems/not-found"},
      // /mailbox, unknown routes, wrong methods
      {"mailbox without to", "GET", "/mailbox", "", "", 422, "/problems/invalid-parameter"},
      {"unknown route", "GET", "/etc/passwd", "", "", 404, "/problems/not-found"},
      {"encoded traversal route", "GET", "/..%2F..%2Fetc%2Fpasswd", "", "", 404,
       "/problems/not-found"},
      {"wrong method", "DELETE", "/users/1", "", "", 405, "/problems/method-not-allowed"},
      {"too many headers", "GET", "/healthz", "", "", 431,
       "/problems/request-header-fields-too-large",
       [] {
         httplib::Headers h;
         for (int i = 0; i < 150; ++i) h.emplace("X-Filler-" + std::to_string(i), "x");
         return h;
       }()},
      {"headers over 32 KiB in total", "GET", "/healthz", "", "", 431,
       "/problems/request-header-fields-too-large",
       [] {
         httplib::Headers h;
         for (int i = 0; i < 6; ++i)
           h.emplace("X-Big-" + std::to_string(i), std::string(7000, 'h'));
         return h;
       }()},
  };
}

struct Fixture {
  testing::TempDir dir;
  app::Config cfg = [this] {
    auto c = testing::test_config(dir);
    c.read_timeout_ms = 300;
    c.idle_timeout_ms = 1000;
    return c;
  }();
  testing::InProcessServer server{cfg};
  httplib::Client http = server.client();
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "every hostile request gets its documented problem and writes nothing") {
  // Some rows to protect: a user, its action, its job, its message.
  REQUIRE(request(http, "PUT", "/users/victim%40example.com").status == 201);
  REQUIRE(testing::eventually([&] { return counts(cfg.db_path).mailbox == 1; }));
  const Counts before = counts(cfg.db_path);

  int tried = 0;
  for (const Case& c : catalogue()) {
    CAPTURE(c.name);
    auto r = request(http, c.method, c.path, c.body, c.content_type, c.headers);
    ++tried;
    CHECK(r.status == c.status);
    CHECK(r.header("Content-Type") == "application/problem+json");
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body["type"] == c.type);
    CHECK(body["status"] == c.status);
    CHECK(body["detail"].is_string());
    CHECK(r.header("X-Injected").empty());
    CHECK(counts(cfg.db_path) == before);
  }
  CHECK(tried == static_cast<int>(catalogue().size()));
  CHECK(request(http, "GET", "/healthz").status == 200);
}

TEST_CASE_FIXTURE(Fixture, "SQL and shell metacharacters in a valid email are stored verbatim") {
  // A local part may hold any printable ASCII but space: all of these are valid.
  for (const std::string email :
       {"x';drop-table-users;--@example.com", "\"quoted\"@example.com", "a%27%3b@example.com",
        "$(reboot)`id`@example.com", "..%2f..%2f@example.com"}) {
    CAPTURE(email);
    auto r = request(http, "POST", "/api/users", nlohmann::json{{"email", email}}.dump());
    CHECK(r.status == 201);
    CHECK(r.json()["email"] == email);
    auto got = request(http, "GET", "/users/" + std::to_string(r.json()["id"].get<int>()));
    CHECK(got.json()["email"] == email);
  }
  CHECK(counts(cfg.db_path).users == 5);
  // Query parameters are bound too.
  auto jobs = request(http, "GET", "/jobs?kind=x%27%20OR%20%271%27%3D%271");
  CHECK(jobs.status == 200);
  CHECK(jobs.json()["jobs"].empty());
  auto mail = request(http, "GET", "/mailbox?to=%27%20OR%201%3D1%20--");
  CHECK(mail.status == 200);
  CHECK(mail.json()["messages"].empty());
}

TEST_CASE_FIXTURE(Fixture, "raw protocol abuse is refused without crashing the server") {
  const Counts before = counts(cfg.db_path);
  struct Raw {
    std::string name;
    std::string bytes;
    int status;  // 0: any 4xx, or the server just closes the connection
  };
  const std::vector<Raw> raws = {
      {"header line over 8 KiB",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(9000, 'l') + "\r\n\r\n", 400},
      {"request line over 8 KiB", "GET /" + std::string(9000, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       414},
      // cpp-httplib takes a bare LF as a line end: X-Injected becomes a request
      // header of its own, and nothing of it is echoed.
      {"bare LF in a header value",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Injected: 1\r\n\r\n", 200},
      {"TLS hello on the plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 0},
      {"negative Content-Length",
       "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Length: -5\r\n\r\n{}",
       0},
      {"huge Content-Length",
       "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Length: 99999999999999999999\r\n\r\n{}",
       413},
      {"chunked body over the limit",
       "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Transfer-Encoding: chunked\r\n\r\n11000\r\n" +
           std::string(0x11000, 'a') + "\r\n0\r\n\r\n",
       400},  // cpp-httplib answers 400, not 413, for a chunked body over the limit
  };
  for (const Raw& raw : raws) {
    CAPTURE(raw.name);
    RawConn conn(server.port());
    conn.send_all(raw.bytes);
    const std::string answer = conn.read_until_close(std::chrono::seconds(3));
    if (raw.status != 0) {
      CHECK(status_of(answer) == raw.status);
    } else if (status_of(answer) != 0) {
      CHECK(status_of(answer) >= 400);
      CHECK(status_of(answer) < 500);
    }
    CHECK(answer.find("X-Injected") == std::string::npos);
  }
  CHECK(counts(cfg.db_path) == before);
  CHECK(request(http, "GET", "/healthz").status == 200);
}

TEST_CASE("a slow client cannot hold an HTTP thread past the read timeout") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.http_threads = 2;
  cfg.max_connections = 3;
  cfg.read_timeout_ms = 300;
  cfg.idle_timeout_ms = 1000;
  testing::InProcessServer server(cfg);

  // Four clients that start a request and stall: more than the threads and
  // the waiting room together.
  std::vector<std::unique_ptr<RawConn>> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(std::make_unique<RawConn>(server.port()));
    stalled.back()->send_all(i % 2 == 0 ? "PUT /users/slow%40example.com HTTP/1.1\r\nHost: x\r\n"
                                        : "POST /api/users HTTP/1.1\r\nHost: x\r\n"
                                          "Content-Type: application/json\r\n"
                                          "Content-Length: 100\r\n\r\n{\"em");
  }
  // A well-behaved client is still served once the stalled ones time out.
  const auto t0 = std::chrono::steady_clock::now();
  auto http = server.client();
  CHECK(request(http, "GET", "/healthz").status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  // And each stalled connection was closed by the server.
  for (auto& conn : stalled) {
    bool closed = false;
    conn->read_until_close(std::chrono::seconds(3), &closed);
    CHECK(closed);
  }
  CHECK(counts(cfg.db_path).users == 0);
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  testing::TempDir dir;
  auto cfg = testing::test_config(dir);
  cfg.idle_timeout_ms = 1000;
  testing::InProcessServer server(cfg);
  RawConn conn(server.port());
  conn.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  const std::string answer = conn.read_until_close(std::chrono::seconds(5), &closed);
  CHECK(status_of(answer) == 200);
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(3000));
}
