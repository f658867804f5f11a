// Products over real HTTP against the real server (in process, free port,
// temporary database file): create, read, the approve transition and its
// after-commit notification, every status code of API.md "Products", and the
// two races the design is about: many approvals of one product, and the
// notify_product_owner job finding the meta row its transaction wrote.
#include <doctest/doctest.h>

#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "db/products.h"
#include "jobs/handler.h"
#include "services/product_state.h"
#include "tests/support/harness.h"

using testing::request;

namespace {

// A keep-alive client whose connection is already open, so that the
// concurrent requests that follow meet in the server, over established
// connections, rather than being spread out by their TCP handshakes.
httplib::Client connected_client(const testing::InProcessServer& server) {
  httplib::Client c = server.client();
  c.set_keep_alive(true);
  for (int i = 0; i < 100 && request(c, "GET", "/healthz").status != 200; ++i) {
  }
  return c;
}

app::Config roomy_config(const testing::TempDir& dir) {
  app::Config c = testing::test_config(dir);
  c.http_threads = 64;  // every concurrent client below is served at once
  return c;
}

struct Fixture {
  testing::TempDir dir;
  testing::InProcessServer server{roomy_config(dir)};
  httplib::Client http = server.client();

  std::int64_t create(const std::string& name, const std::string& owner) {
    auto r = request(http, "POST", "/products",
                     nlohmann::json{{"name", name}, {"owner_email", owner}}.dump());
    REQUIRE(r.status == 201);
    return r.json()["id"].get<std::int64_t>();
  }

  std::vector<db::ProductStateChangeRow> state_changes(std::int64_t id) {
    std::vector<db::ProductStateChangeRow> out;
    REQUIRE(server.app().db().read([&](db::Conn& c) {
      out = db::list_product_state_changes(c, id);
      return core::Status::ok();
    }));
    return out;
  }

  nlohmann::json jobs(const std::string& kind) {
    return request(http, "GET", "/jobs?limit=1000&kind=" + kind).json()["jobs"];
  }
};

std::string path_of(std::int64_t id, const std::string& suffix = "") {
  return "/products/" + std::to_string(id) + suffix;
}

}  // namespace

TEST_CASE("the state machine allows exactly pending -> published, on approve") {
  using services::ProductState;
  CHECK(services::is_allowed(ProductState::kPending, ProductState::kPublished));
  CHECK_FALSE(services::is_allowed(ProductState::kPublished, ProductState::kPending));
  CHECK_FALSE(services::is_allowed(ProductState::kPublished, ProductState::kPublished));
  CHECK_FALSE(services::is_allowed(ProductState::kPending, ProductState::kPending));
  auto approve = services::transition_for(services::ProductEvent::kApprove);
  REQUIRE(approve.has_value());
  CHECK(approve->from == ProductState::kPending);
  CHECK(approve->to == ProductState::kPublished);
  CHECK(services::parse_product_state("published") == ProductState::kPublished);
  CHECK_FALSE(services::parse_product_state("archived").has_value());
}

TEST_CASE_FIXTURE(Fixture, "creates a pending product with Location and reads it back") {
  auto created = request(http, "POST", "/products",
                         R"({"name": "  Blue Teapot ", "owner_email": " Owner@Example.COM"})");
  REQUIRE(created.status == 201);
  CHECK(created.header("Content-Type") == "application/json; charset=utf-8");
  auto body = created.json();
  const auto id = body["id"].get<std::int64_t>();
  CHECK(id > 0);
  CHECK(created.header("Location") == path_of(id));
  CHECK(body["name"] == "Blue Teapot");
  CHECK(body["owner_email"] == "owner@example.com");
  CHECK(body["state"] == "pending");
  CHECK(body["meta"].is_null());
  const std::string ts = body["created_at"];
  CHECK(ts.size() == 24);
  CHECK(ts.back() == 'Z');
  CHECK(body.size() == 6);

  auto fetched = request(http, "GET", path_of(id));
  CHECK(fetched.status == 200);
  CHECK(fetched.json() == body);

  auto changes = state_changes(id);
  REQUIRE(changes.size() == 1);
  CHECK_FALSE(changes[0].from_state.has_value());
  CHECK(changes[0].to_state == "pending");
  CHECK(jobs("notify_product_owner").empty());
}

TEST_CASE_FIXTURE(Fixture, "refuses a bad name or owner_email with 422 and writes nothing") {
  struct Case {
    const char* body;
    const char* type;
  };
  const std::string long_name(201, 'x');
  const std::string max_name(200, 'x');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"owner_email": "a@example.com"})", "/problems/invalid-name"},
      {R"({"name": 42, "owner_email": "a@example.com"})", "/problems/invalid-name"},
      {R"({"name": "   ", "owner_email": "a@example.com"})", "/problems/invalid-name"},
      {R"({"name": "tab\there", "owner_email": "a@example.com"})", "/problems/invalid-name"},
      {nlohmann::json{{"name", long_name}, {"owner_email", "a@example.com"}}.dump(),
       "/problems/invalid-name"},
      {R"({"name": "Teapot"})", "/problems/invalid-email"},
      {R"({"name": "Teapot", "owner_email": null})", "/problems/invalid-email"},
      {R"({"name": "Teapot", "owner_email": "not-an-email"})", "/problems/invalid-email"},
      {R"({"name": "Teapot", "owner_email": "x@localhost"})", "/problems/invalid-email"},
  };
  for (const auto& [body, type] : cases) {
    CAPTURE(body);
    auto r = request(http, "POST", "/products", body);
    CHECK(r.status == 422);
    CHECK(r.header("Content-Type") == "application/problem+json");
    CHECK(r.json()["type"] == type);
    CHECK(r.json()["status"] == 422);
    CHECK_FALSE(r.json()["detail"].get<std::string>().empty());
  }
  CHECK(request(http, "GET", path_of(1)).status == 404);

  // 200 characters (multi-byte ones count once) is the limit, inclusive.
  std::string accented;
  for (int i = 0; i < 200; ++i) accented += "\xc3\xa9";  // é
  CHECK(request(http, "POST", "/products",
                nlohmann::json{{"name", accented}, {"owner_email", "a@example.com"}}.dump())
            .status == 201);
  CHECK(request(http, "POST", "/products",
                nlohmann::json{{"name", max_name}, {"owner_email", "a@example.com"}}.dump())
            .status == 201);
}

TEST_CASE_FIXTURE(Fixture, "answers malformed bodies with 400 and 415, unknown ids with 404") {
  auto not_json = request(http, "POST", "/products", "{nope");
  CHECK(not_json.status == 400);
  CHECK(not_json.json()["type"] == "/problems/malformed-json");
  CHECK(request(http, "POST", "/products", "[]").status == 400);
  auto wrong_type = request(http, "POST", "/products",
                            R"({"name": "T", "owner_email": "a@example.com"})", "text/plain");
  CHECK(wrong_type.status == 415);
  CHECK(request(http, "POST", "/products", std::string(70 * 1024, ' ')).status == 413);

  for (const char* path : {"/products/999", "/products/0", "/products/abc", "/products/-1"}) {
    CAPTURE(path);
    auto r = request(http, "GET", path);
    CHECK(r.status == 404);
    CHECK(r.json()["type"] == "/problems/not-found");
  }
  auto approve_missing = request(http, "POST", "/products/999/approve");
  CHECK(approve_missing.status == 404);
  CHECK(approve_missing.json()["type"] == "/problems/not-found");
  CHECK(request(http, "POST", "/products/abc/approve").status == 404);

  auto wrong_method = request(http, "GET", "/products");
  CHECK(wrong_method.status == 405);
  CHECK(wrong_method.header("Allow") == "POST");
  auto get_approve = request(http, "GET", "/products/1/approve");
  CHECK(get_approve.status == 405);
  CHECK(get_approve.header("Allow") == "POST");
  CHECK(jobs("notify_product_owner").empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "approve publishes with a meta row, an audit row, one job and one message") {
  const auto id = create("Teapot", "owner@example.com");
  auto approved = request(http, "POST", path_of(id, "/approve"));
  REQUIRE(approved.status == 200);
  auto body = approved.json();
  CHECK(body["id"] == id);
  CHECK(body["state"] == "published");
  CHECK(body["name"] == "Teapot");
  CHECK(body["owner_email"] == "owner@example.com");
  REQUIRE(body["meta"].is_object());
  CHECK(body["meta"]["note"] == "A very good product.");
  const auto meta_id = body["meta"]["id"].get<std::int64_t>();
  CHECK(meta_id > 0);
  CHECK(request(http, "GET", path_of(id)).json() == body);

  auto changes = state_changes(id);
  REQUIRE(changes.size() == 2);
  CHECK(changes[1].from_state == std::optional<std::string>("pending"));
  CHECK(changes[1].to_state == "published");

  nlohmann::json messages;
  CHECK(testing::eventually([&] {
    messages = request(http, "GET", "/mailbox?to=owner%40example.com").json()["messages"];
    return messages.size() == 1;
  }));
  REQUIRE(messages.size() == 1);
  CHECK(messages[0]["subject"] == "Your product was published");
  CHECK(messages[0]["channel"] == "email");
  CHECK(messages[0]["to"] == "owner@example.com");

  auto list = jobs("notify_product_owner");
  REQUIRE(list.size() == 1);
  CHECK(list[0]["args"] == nlohmann::json{{"product_meta_id", meta_id}});
  CHECK(list[0]["state"] == "completed");
  CHECK(list[0]["attempt"] == 1);
  CHECK(list[0]["errors"].empty());
  CHECK(messages[0]["job_id"] == list[0]["id"]);
}

TEST_CASE_FIXTURE(Fixture,
                  "approving a published product is 409 invalid-transition and writes "
                  "nothing") {
  const auto id = create("Teapot", "owner@example.com");
  REQUIRE(request(http, "POST", path_of(id, "/approve")).status == 200);
  const auto before = request(http, "GET", path_of(id)).json();

  auto again = request(http, "POST", path_of(id, "/approve"));
  CHECK(again.status == 409);
  CHECK(again.header("Content-Type") == "application/problem+json");
  CHECK(again.json()["type"] == "/problems/invalid-transition");
  CHECK(again.json()["status"] == 409);
  CHECK(again.json()["detail"].get<std::string>().find("published") != std::string::npos);

  CHECK(request(http, "GET", path_of(id)).json() == before);
  CHECK(state_changes(id).size() == 2);
  CHECK(jobs("notify_product_owner").size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "publishes a product.published event in the approving transaction") {
  testing::TempDir hooked_dir;
  app::Config config = roomy_config(hooked_dir);
  // Nothing listens there: the delivery job only has to be staged.
  config.webhook_urls = {"http://127.0.0.1:9/hooks"};
  config.webhook_secret = "test-secret";
  testing::InProcessServer hooked(config);
  httplib::Client c = hooked.client();
  auto created =
      request(c, "POST", "/products", R"({"name": "T", "owner_email": "o@example.com"})");
  REQUIRE(created.status == 201);
  const auto id = created.json()["id"].get<std::int64_t>();
  REQUIRE(request(c, "POST", path_of(id, "/approve")).status == 200);
  REQUIRE(request(c, "POST", path_of(id, "/approve")).status == 409);

  auto hooks = request(c, "GET", "/jobs?kind=deliver_webhook").json()["jobs"];
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0]["args"]["event"]["type"] == "product.published");
  CHECK(hooks[0]["args"]["subject"] == "product:" + std::to_string(id));
  CHECK(hooks[0]["args"]["event"]["data"]["id"] == id);
}

TEST_CASE_FIXTURE(Fixture, "32 concurrent approvals of one product: one 200, 31 409, one effect") {
  const auto id = create("Contested", "race@example.com");
  constexpr int kThreads = 32;
  std::vector<int> statuses(kThreads, 0);
  std::vector<std::string> types(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c = connected_client(server);
      start.arrive_and_wait();
      auto r = request(c, "POST", path_of(id, "/approve"));
      statuses[i] = r.status;
      if (r.status == 409) types[i] = r.json()["type"];
    });
  }
  for (auto& t : threads) t.join();

  int ok = 0;
  int conflicts = 0;
  for (int i = 0; i < kThreads; ++i) {
    CAPTURE(i);
    if (statuses[i] == 200) ++ok;
    if (statuses[i] == 409) {
      ++conflicts;
      CHECK(types[i] == "/problems/invalid-transition");
    }
  }
  CHECK(ok == 1);
  CHECK(conflicts == kThreads - 1);

  std::optional<db::ProductMetaRow> meta;
  REQUIRE(server.app().db().read([&](db::Conn& c) {
    meta = db::find_product_meta_by_product(c, id);
    return core::Status::ok();
  }));
  REQUIRE(meta.has_value());
  CHECK(state_changes(id).size() == 2);
  auto list = jobs("notify_product_owner");
  REQUIRE(list.size() == 1);
  CHECK(list[0]["args"]["product_meta_id"] == meta->id);

  nlohmann::json messages;
  CHECK(testing::eventually([&] {
    messages = request(http, "GET", "/mailbox?to=race%40example.com").json()["messages"];
    return messages.size() == 1 && jobs("notify_product_owner")[0]["state"] == "completed";
  }));
  CHECK(messages.size() == 1);
}

TEST_CASE_FIXTURE(Fixture,
                  "the notify job finds its meta row every time: 200 approvals from 8 threads") {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<int> failures(kThreads, 0);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c = connected_client(server);
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const std::string owner =
            "owner-" + std::to_string(t) + "-" + std::to_string(i) + "@example.com";
        auto created = request(c, "POST", "/products",
                               nlohmann::json{{"name", "P"}, {"owner_email", owner}}.dump());
        if (created.status != 201) {
          ++failures[t];
          continue;
        }
        const auto id = created.json()["id"].get<std::int64_t>();
        if (request(c, "POST", path_of(id, "/approve")).status != 200) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) CHECK(failures[t] == 0);

  nlohmann::json list;
  CHECK(testing::eventually(
      [&] {
        list = jobs("notify_product_owner");
        if (list.size() != kThreads * kPerThread) return false;
        for (const auto& j : list) {
          if (j["state"] != "completed") return false;
        }
        return true;
      },
      std::chrono::seconds(60)));
  REQUIRE(list.size() == kThreads * kPerThread);
  std::set<std::int64_t> meta_ids;
  for (const auto& j : list) {
    CAPTURE(j.dump());
    CHECK(j["state"] == "completed");
    CHECK(j["attempt"] == 1);  // found its row on the first run: no retry, no error
    CHECK(j["errors"].empty());
    meta_ids.insert(j["args"]["product_meta_id"].get<std::int64_t>());
  }
  CHECK(meta_ids.size() == kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string to =
          "owner-" + std::to_string(t) + "-" + std::to_string(i) + "%40example.com";
      auto messages = request(http, "GET", "/mailbox?to=" + to).json()["messages"];
      CAPTURE(to);
      REQUIRE(messages.size() == 1);
      CHECK(messages[0]["subject"] == "Your product was published");
    }
  }
}

TEST_CASE_FIXTURE(Fixture,
                  "the notify handler fails, delivering nothing, if its meta row is "
                  "missing") {
  jobs::Registry registry;
  jobs::register_builtin_handlers(registry);
  const jobs::Handler* handler = registry.find("notify_product_owner");
  REQUIRE(handler != nullptr);
  REQUIRE(handler->apply);
  jobs::Job job;
  job.id = 424242;
  job.kind = "notify_product_owner";
  job.attempt = 1;
  job.args = {{"product_meta_id", 987654}};
  core::Status st = server.app().db().write(
      [&](db::Tx& tx) { return handler->apply(job, tx, server.app().context().clock.now_ms()); });
  CHECK(st.code() == core::Code::kNotFound);
  CHECK(st.message().find("987654") != std::string::npos);
}
