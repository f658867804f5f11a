// Anagrams over real HTTP against the real server (in process, free port,
// temporary database file): every status code of API.md "Anagrams", the
// all-or-nothing rule for a request's words, and the race the design is
// about: concurrent requests adding words to one group never lose one.
#include <doctest/doctest.h>

#include <algorithm>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "services/anagrams.h"
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

struct Fixture {
  testing::TempDir dir;
  testing::InProcessServer server{[this] {
    app::Config c = testing::test_config(dir);
    c.http_threads = 64;  // every concurrent client below is served at once
    return c;
  }()};
  httplib::Client http = server.client();

  testing::HttpResult add(const nlohmann::json& words) {
    return request(http, "POST", "/anagrams", nlohmann::json{{"words", words}}.dump());
  }
  nlohmann::json anagrams_of(const std::string& word) {
    auto r = request(http, "GET", "/anagrams/" + word);
    REQUIRE(r.status == 200);
    return r.json();
  }
};

}  // namespace

TEST_CASE("normalizes words and keys them by their sorted letters") {
  CHECK(*services::normalize_word("LiStEn") == "listen");
  CHECK(services::anagram_key("listen") == "eilnst");
  CHECK(services::normalize_word(std::string(64, 'Z')).is_ok());
  for (const std::string& bad :
       {std::string(), std::string(65, 'a'), std::string("a b"), std::string("abc1"),
        std::string("caf\xc3\xa9"), std::string("o'neil"), std::string("-")}) {
    CAPTURE(bad);
    auto r = services::normalize_word(bad);
    CHECK(r.status().code() == core::Code::kInvalid);
  }
}

TEST_CASE_FIXTURE(Fixture, "adds words and answers the groups they touched") {
  auto r = add({"listen", "Silent", "enlist", "google"});
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json; charset=utf-8");
  auto body = r.json();
  CHECK(body["added"] == nlohmann::json{"listen", "silent", "enlist", "google"});
  CHECK(body["groups"] ==
        nlohmann::json::parse(R"([{"key": "eilnst", "words": ["enlist", "listen", "silent"]},
                                  {"key": "eggloo", "words": ["google"]}])"));

  // Known words are not added again, but their group is reported; a word
  // repeated in one request counts once.
  auto again = add({"tinsel", "LISTEN", "tinsel"});
  REQUIRE(again.status == 200);
  CHECK(again.json()["added"] == nlohmann::json{"tinsel"});
  CHECK(again.json()["groups"] ==
        nlohmann::json::parse(
            R"([{"key": "eilnst", "words": ["enlist", "listen", "silent", "tinsel"]}])"));

  auto none_new = add({"google"});
  REQUIRE(none_new.status == 200);
  CHECK(none_new.json()["added"] == nlohmann::json::array());
  CHECK(none_new.json()["groups"][0]["words"] == nlohmann::json{"google"});
}

TEST_CASE_FIXTURE(Fixture, "lists the other words with the same letters, sorted") {
  REQUIRE(add({"listen", "silent", "enlist"}).status == 200);
  auto listen = anagrams_of("LISTEN");
  CHECK(listen == nlohmann::json{{"word", "listen"}, {"anagrams", {"enlist", "silent"}}});
  // A word not stored itself still has anagrams.
  CHECK(anagrams_of("tinsel")["anagrams"] == nlohmann::json{"enlist", "listen", "silent"});
  auto lonely = anagrams_of("zebra");
  CHECK(lonely["word"] == "zebra");
  CHECK(lonely["anagrams"] == nlohmann::json::array());

  for (const std::string& bad :
       std::vector<std::string>{"abc1", "a%20b", "caf%C3%A9", std::string(65, 'a')}) {
    CAPTURE(bad);
    auto r = request(http, "GET", "/anagrams/" + bad);
    CHECK(r.status == 422);
    CHECK(r.header("Content-Type") == "application/problem+json");
    CHECK(r.json()["type"] == "/problems/invalid-word");
  }
}

TEST_CASE_FIXTURE(Fixture, "one bad word rejects the whole request and adds nothing") {
  auto r = add({"alpha", "be ta", "gamma"});
  CHECK(r.status == 422);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(r.json()["type"] == "/problems/invalid-word");
  CHECK(r.json()["status"] == 422);
  CHECK(r.json()["detail"].get<std::string>().find("'be ta'") != std::string::npos);

  const std::vector<nlohmann::json> bad_lists = {
      {"ok", 3},  {"ok", nullptr},         {"ok", std::string(65, 'a')}, {"ok", "caf\xc3\xa9"},
      {"ok", ""}, nlohmann::json::array(),
  };
  for (const auto& words : bad_lists) {
    CAPTURE(words.dump());
    auto bad = add(words);
    CHECK(bad.status == 422);
    CHECK(bad.json()["type"] == "/problems/invalid-word");
  }
  for (const char* body : {R"({})", R"({"words": "alpha"})", R"({"word": ["alpha"]})"}) {
    CAPTURE(body);
    CHECK(request(http, "POST", "/anagrams", body).status == 422);
  }
  std::vector<std::string> too_many(services::kMaxWordsPerRequest + 1, "ok");
  CHECK(add(too_many).status == 422);

  // Nothing from any rejected request was stored.
  for (const char* word : {"alpha", "gamma", "ok"}) {
    CAPTURE(word);
    CHECK(request(http, "DELETE", std::string("/anagrams/") + word).status == 404);
  }
  CHECK(anagrams_of("ko")["anagrams"] == nlohmann::json::array());
}

TEST_CASE_FIXTURE(Fixture, "maps malformed requests to 400, 413, 415 and 405") {
  CHECK(request(http, "POST", "/anagrams", "{nope").status == 400);
  CHECK(request(http, "POST", "/anagrams", R"(["listen"])").status == 400);
  CHECK(request(http, "POST", "/anagrams", R"({"words": ["a"]})", "text/plain").status == 415);
  CHECK(request(http, "POST", "/anagrams", std::string(70 * 1024, ' ')).status == 413);
  auto wrong_method = request(http, "GET", "/anagrams");
  CHECK(wrong_method.status == 405);
  CHECK(wrong_method.header("Allow") == "POST");
  auto put_word = request(http, "PUT", "/anagrams/listen");
  CHECK(put_word.status == 405);
  CHECK(put_word.header("Allow") == "GET, DELETE");
}

TEST_CASE_FIXTURE(Fixture, "deletes a word: 204, then 404 once it is gone") {
  REQUIRE(add({"listen", "silent"}).status == 200);
  auto deleted = request(http, "DELETE", "/anagrams/Silent");
  CHECK(deleted.status == 204);
  CHECK(deleted.body.empty());
  CHECK(anagrams_of("listen")["anagrams"] == nlohmann::json::array());

  auto gone = request(http, "DELETE", "/anagrams/silent");
  CHECK(gone.status == 404);
  CHECK(gone.header("Content-Type") == "application/problem+json");
  CHECK(gone.json()["type"] == "/problems/not-found");
  auto bad = request(http, "DELETE", "/anagrams/si1ent");
  CHECK(bad.status == 422);
  CHECK(bad.json()["type"] == "/problems/invalid-word");

  // A deleted word can be added again.
  CHECK(add({"silent"}).json()["added"] == nlohmann::json{"silent"});
}

TEST_CASE_FIXTURE(Fixture, "40 concurrent writers adding permutations of one word lose none") {
  constexpr int kThreads = 40;
  constexpr int kWordsEach = 5;
  // 200 distinct permutations of "triangle", dealt out 5 per thread.
  std::vector<std::string> perms;
  std::string w = "aegilnrt";
  do {
    perms.push_back(w);
  } while (std::next_permutation(w.begin(), w.end()) && perms.size() < kThreads * kWordsEach);
  REQUIRE(perms.size() == kThreads * kWordsEach);

  std::vector<int> statuses(kThreads, 0);
  std::vector<nlohmann::json> added(kThreads);
  // One byte per thread: std::vector<bool> packs the threads' flags into
  // shared words, and setting one races with setting its neighbour (TSan).
  std::vector<char> sees_own(kThreads, 0);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c = connected_client(server);
      std::vector<std::string> mine(perms.begin() + t * kWordsEach,
                                    perms.begin() + (t + 1) * kWordsEach);
      start.arrive_and_wait();
      auto r = request(c, "POST", "/anagrams", nlohmann::json{{"words", mine}}.dump());
      statuses[t] = r.status;
      if (r.status != 200) return;
      auto body = r.json();
      added[t] = body["added"];
      // The group as of this request's commit holds at least its own words.
      const auto& group = body["groups"][0]["words"];
      sees_own[t] =
          body["groups"].size() == 1 && std::all_of(mine.begin(), mine.end(), [&](auto& m) {
            return std::find(group.begin(), group.end(), m) != group.end();
          });
    });
  }
  for (auto& th : threads) th.join();

  for (int t = 0; t < kThreads; ++t) {
    CAPTURE(t);
    CHECK(statuses[t] == 200);
    CHECK(added[t].size() == kWordsEach);
    CHECK(sees_own[t]);
  }
  auto all = anagrams_of("triangle");
  std::set<std::string> stored;
  for (const auto& a : all["anagrams"]) stored.insert(a.get<std::string>());
  if (std::find(perms.begin(), perms.end(), "triangle") != perms.end()) stored.insert("triangle");
  CHECK(stored == std::set<std::string>(perms.begin(), perms.end()));
}
