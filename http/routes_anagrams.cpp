// Anagrams: add words, list a word's anagrams, delete a word.
#include "http/routes.h"
#include "http/views.h"

namespace app {
namespace {

Reply invalid_word(const std::string& detail) {
  return problem(422, "invalid-word", "Invalid word", detail);
}

}  // namespace

void register_anagram_routes(Router& router, Context& ctx) {
  // Every word is validated before anything is written, so one bad word
  // rejects the whole request and adds nothing. An empty list is refused
  // too (422): a request that can add nothing is a client mistake.
  router.post(R"(/anagrams)", [&ctx](const httplib::Request& req, WriteContext& w) {
    JsonBody body = parse_json_object(req);
    if (body.error) return *body.error;
    auto it = body.value.find("words");
    if (it == body.value.end() || !it->is_array()) {
      return invalid_word("the body must have a \"words\" array of strings");
    }
    if (it->empty() || it->size() > services::kMaxWordsPerRequest) {
      return invalid_word("\"words\" must hold 1 to " +
                          std::to_string(services::kMaxWordsPerRequest) + " words");
    }
    std::vector<std::string> words;
    words.reserve(it->size());
    for (const auto& item : *it) {
      if (!item.is_string()) return invalid_word("every item of \"words\" must be a string");
      auto word = services::normalize_word(item.get<std::string>());
      if (!word) return invalid_word(word.status().message());
      words.push_back(std::move(*word));
    }
    return w.transact([&](db::Tx& tx) {
      auto result = ctx.anagrams.add(tx, words);
      nlohmann::json groups = nlohmann::json::array();
      for (const auto& g : result.groups) groups.push_back(anagram_group_json(g));
      return json_reply(200, {{"added", result.added}, {"groups", groups}});
    });
  });
  router.get(R"(/anagrams/([^/]+))", [&ctx](const httplib::Request& req) {
    auto word = services::normalize_word(req.matches[1].str());
    if (!word) return invalid_word(word.status().message());
    auto others = ctx.anagrams.anagrams_of(*word);
    if (!others) return problem_for(others.status());
    return json_reply(200, {{"word", *word}, {"anagrams", *others}});
  });
  router.del(R"(/anagrams/([^/]+))", [&ctx](const httplib::Request& req, WriteContext& w) {
    auto word = services::normalize_word(req.matches[1].str());
    if (!word) return invalid_word(word.status().message());
    return w.transact([&](db::Tx& tx) -> core::Result<Reply> {
      core::Status st = ctx.anagrams.remove(tx, *word);
      if (!st) return refusal_or_failure(st);
      return no_content();
    });
  });
}

}  // namespace app
