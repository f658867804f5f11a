// The users API over real HTTP against the real server (in process, free
// port, temporary database file): status codes, Location, normalization,
// the audit row and the welcome email, and the problem documents.
#include <doctest/doctest.h>

#include "tests/support/harness.h"

using testing::request;

namespace {

struct Fixture {
  testing::TempDir dir;
  testing::InProcessServer server{testing::test_config(dir)};
  httplib::Client http = server.client();
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "creates a user once and answers 200 with the same body after") {
  auto created = request(http, "PUT", "/users/Jane%40Example.COM");
  REQUIRE(created.status == 201);
  CHECK(created.header("Content-Type") == "application/json; charset=utf-8");
  auto body = created.json();
  CHECK(body["email"] == "jane@example.com");
  CHECK(body["id"].get<int64_t>() > 0);
  CHECK(created.header("Location") == "/users/" + std::to_string(body["id"].get<int64_t>()));
  const std::string ts = body["created_at"];
  CHECK(ts.size() == 24);
  CHECK(ts.back() == 'Z');
  CHECK(ts[19] == '.');

  auto again = request(http, "PUT", "/users?email=jane%40example.com");
  CHECK(again.status == 200);
  CHECK(again.json() == body);
  CHECK(again.header("Location").empty());

  auto json_form = request(http, "POST", "/api/users", R"({"email": " JANE@example.com "})");
  CHECK(json_form.status == 200);
  CHECK(json_form.json() == body);

  auto fetched = request(http, "GET", "/users/" + std::to_string(body["id"].get<int64_t>()));
  CHECK(fetched.status == 200);
  CHECK(fetched.json() == body);
}

TEST_CASE_FIXTURE(Fixture, "writes one created audit row and delivers one welcome email") {
  auto created = request(http, "POST", "/api/users", R"({"email": "ann@example.org"})");
  REQUIRE(created.status == 201);
  const auto id = created.json()["id"].get<int64_t>();
  REQUIRE(request(http, "PUT", "/users/ann@example.org").status == 200);

  auto actions = request(http, "GET", "/users/" + std::to_string(id) + "/actions");
  REQUIRE(actions.status == 200);
  auto list = actions.json()["actions"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["action"] == "created");
  CHECK(list[0]["user_id"] == id);

  nlohmann::json messages;
  CHECK(testing::eventually([&] {
    messages = request(http, "GET", "/mailbox?to=ann%40example.org").json()["messages"];
    return messages.size() == 1;
  }));
  CHECK(messages[0]["subject"] == "Welcome");
  CHECK(messages[0]["channel"] == "email");
  CHECK(messages[0]["to"] == "ann@example.org");

  auto jobs = request(http, "GET", "/jobs?kind=send_welcome_email").json()["jobs"];
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["state"] == "completed");
  CHECK(jobs[0]["args"]["user_id"] == id);
  CHECK(messages[0]["job_id"] == jobs[0]["id"]);
  CHECK(jobs[0]["finished_at"].is_string());
  CHECK(jobs[0]["errors"].empty());
}

TEST_CASE_FIXTURE(Fixture, "answers invalid emails with 422 invalid-email and writes nothing") {
  for (const char* path : {"/users/not-an-email", "/users/a%20b@example.com",
                           "/users/jos%C3%A9@example.com", "/users/x@localhost", "/users?email="}) {
    CAPTURE(path);
    auto r = request(http, "PUT", path);
    CHECK(r.status == 422);
    CHECK(r.header("Content-Type") == "application/problem+json");
    CHECK(r.json()["type"] == "/problems/invalid-email");
    CHECK(r.json()["status"] == 422);
  }
  auto missing = request(http, "POST", "/api/users", R"({"mail": "x@example.com"})");
  CHECK(missing.status == 422);
  auto wrong_type = request(http, "POST", "/api/users", R"({"email": 42})");
  CHECK(wrong_type.status == 422);
  CHECK(request(http, "GET", "/jobs").json()["jobs"].empty());
}

TEST_CASE_FIXTURE(Fixture, "maps malformed requests to 400, 413, 415, 404 and 405 problems") {
  auto not_json = request(http, "POST", "/api/users", "{nope");
  CHECK(not_json.status == 400);
  CHECK(not_json.json()["type"] == "/problems/malformed-json");

  auto not_object = request(http, "POST", "/api/users", "[1,2]");
  CHECK(not_object.status == 400);

  auto wrong_type = request(http, "POST", "/api/users", R"({"email":"a@b.co"})", "text/plain");
  CHECK(wrong_type.status == 415);
  CHECK(wrong_type.header("Content-Type") == "application/problem+json");

  auto huge = request(http, "POST", "/api/users", std::string(70 * 1024, ' '));
  CHECK(huge.status == 413);
  CHECK(huge.json()["status"] == 413);

  auto unknown = request(http, "GET", "/no/such/route");
  CHECK(unknown.status == 404);
  CHECK(unknown.json()["type"] == "/problems/not-found");

  auto no_user = request(http, "GET", "/users/999999");
  CHECK(no_user.status == 404);
  CHECK(request(http, "GET", "/users/abc").status == 404);
  CHECK(request(http, "GET", "/users/999999/actions").status == 404);

  auto wrong_method = request(http, "DELETE", "/api/users");
  CHECK(wrong_method.status == 405);
  CHECK(wrong_method.header("Allow") == "POST");
  CHECK(wrong_method.json()["status"] == 405);
}

TEST_CASE_FIXTURE(Fixture, "reports health and gives every answer a request id") {
  auto health = request(http, "GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.json()["status"] == "ok");
  CHECK_FALSE(health.header("X-Request-Id").empty());
}

TEST_CASE_FIXTURE(Fixture, "validates job listing parameters") {
  CHECK(request(http, "GET", "/jobs?limit=0").status == 422);
  CHECK(request(http, "GET", "/jobs?limit=1001").status == 422);
  CHECK(request(http, "GET", "/jobs?state=bogus").status == 422);
  CHECK(request(http, "GET", "/jobs?limit=1000&state=available").status == 200);
  CHECK(request(http, "GET", "/jobs/12345").status == 404);
  CHECK(request(http, "GET", "/mailbox").status == 422);
}
