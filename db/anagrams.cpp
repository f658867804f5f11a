#include "db/anagrams.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kInsertAnagramWord[] =
    "INSERT INTO anagram_words (word, key, created_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (word) DO NOTHING";
constexpr char kDeleteAnagramWord[] = "DELETE FROM anagram_words WHERE word = ?1";
constexpr char kListAnagramGroup[] = "SELECT word FROM anagram_words WHERE key = ?1 ORDER BY word";

}  // namespace

bool insert_anagram_word(Tx& tx, const std::string& word, const std::string& key,
                         core::Millis now) {
  auto q = tx.conn().query(kInsertAnagramWord);
  q->bindNoCopy(1, word);
  q->bindNoCopy(2, key);
  q->bind(3, static_cast<std::int64_t>(now));
  return q->exec() == 1;
}

bool delete_anagram_word(Tx& tx, const std::string& word) {
  auto q = tx.conn().query(kDeleteAnagramWord);
  q->bindNoCopy(1, word);
  return q->exec() == 1;
}

std::vector<std::string> list_anagram_group(Conn& conn, const std::string& key) {
  auto q = conn.query(kListAnagramGroup);
  q->bindNoCopy(1, key);
  std::vector<std::string> out;
  while (q->executeStep()) out.push_back(q->getColumn(0).getString());
  return out;
}

}  // namespace db
