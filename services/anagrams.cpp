#include "services/anagrams.h"

#include <algorithm>
#include <unordered_set>

#include "db/anagrams.h"

namespace services {

core::Result<std::string> normalize_word(std::string_view raw) {
  std::string word(raw);
  for (char& c : word) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  const bool letters_only =
      std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; });
  if (!word.empty() && word.size() <= kMaxWordLetters && letters_only) return word;
  const std::string shown =
      raw.size() > 80 ? std::string(raw.substr(0, 80)) + "..." : std::string(raw);
  return core::Status::invalid("'" + shown + "' is not a word: a word is 1-" +
                               std::to_string(kMaxWordLetters) + " letters a-z");
}

std::string anagram_key(std::string_view word) {
  std::string key(word);
  std::sort(key.begin(), key.end());
  return key;
}

AddedWords Anagrams::add(db::Tx& tx, const std::vector<std::string>& words) const {
  const core::Millis now = clock_.now_ms();
  AddedWords out;
  std::vector<std::string> keys;  // touched, in order of first appearance
  std::unordered_set<std::string> seen_keys;
  for (const std::string& word : words) {
    std::string key = anagram_key(word);
    // A word repeated in the request inserts once; the second insert is a no-op.
    if (db::insert_anagram_word(tx, word, key, now)) out.added.push_back(word);
    if (seen_keys.insert(key).second) keys.push_back(std::move(key));
  }
  for (std::string& key : keys) {
    auto group_words = db::list_anagram_group(tx.conn(), key);
    out.groups.push_back({std::move(key), std::move(group_words)});
  }
  return out;
}

core::Status Anagrams::remove(db::Tx& tx, const std::string& word) const {
  if (!db::delete_anagram_word(tx, word)) {
    return core::Status::not_found("'" + word + "' is not a known word");
  }
  return core::Status::ok();
}

core::Result<std::vector<std::string>> Anagrams::anagrams_of(const std::string& word) const {
  std::vector<std::string> others;
  const std::string key = anagram_key(word);
  core::Status st = db_.read([&](db::Conn& c) {
    others = db::list_anagram_group(c, key);
    return core::Status::ok();
  });
  if (!st) return st;
  others.erase(std::remove(others.begin(), others.end(), word), others.end());
  return others;
}

}  // namespace services
