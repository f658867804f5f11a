#include "db/anagrams.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {}  // namespace

bool insert_anagram_word(Tx& tx, const std::string& word, const std::string& key,
                         core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertAnagramWord);
  q.bind_all(word, key, now);
  return q.exec() == 1;
}

bool delete_anagram_word(Tx& tx, const std::string& word) {
  auto q = tx.conn().query(Sql::kDeleteAnagramWord);
  q.bind(1, word);
  return q.exec() == 1;
}

std::vector<std::string> list_anagram_group(Conn& conn, const std::string& key) {
  auto q = conn.query(Sql::kListAnagramGroup);
  q.bind(1, key);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

}  // namespace db
