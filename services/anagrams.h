// The anagrams service: words grouped by their sorted letters.
//
// A word is 1-64 letters a-z after ASCII lower-casing; its group key is its
// letters sorted ("listen" -> "eilnst"). Words are stored one row each
// (db/anagrams.h explains why that cannot lose a concurrent update).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "db/database.h"

namespace services {

inline constexpr std::size_t kMaxWordLetters = 64;
// Words one POST /anagrams may carry (the body limit caps it too).
inline constexpr std::size_t kMaxWordsPerRequest = 1000;

// Lower-cases ASCII letters; the result must be 1-64 letters a-z. kInvalid
// with a message that names the word (shortened when long) otherwise.
core::Result<std::string> normalize_word(std::string_view raw);

// The group key: the word's letters sorted.
std::string anagram_key(std::string_view word);

struct AnagramGroup {
  std::string key;
  std::vector<std::string> words;  // sorted
};

struct AddedWords {
  std::vector<std::string> added;    // words not stored before, in request order
  std::vector<AnagramGroup> groups;  // every group the request touched, as of this commit
};

class Anagrams {
 public:
  Anagrams(db::Database& db, const core::Clock& clock) : db_(db), clock_(clock) {}

  // Atomic phase: inserts each word unless stored (duplicates in `words`
  // count once), then reads back the touched groups in the same transaction.
  // `words` must come from normalize_word.
  AddedWords add(db::Tx& tx, const std::vector<std::string>& words) const;

  // Atomic phase: deletes the word. kNotFound (and nothing written) when it
  // is not stored.
  core::Status remove(db::Tx& tx, const std::string& word) const;

  // The other stored words with the same key, sorted (the word itself is left
  // out whether stored or not). A plain read.
  core::Result<std::vector<std::string>> anagrams_of(const std::string& word) const;

 private:
  db::Database& db_;
  const core::Clock& clock_;
};

}  // namespace services
