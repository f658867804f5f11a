// Anagram words: one row per word (word PRIMARY KEY, key = its letters
// sorted, indexed). A group is not a row but the set of rows sharing a key.
//
// Why no word can be lost: adding a word is one INSERT of its own row,
// ON CONFLICT (word) DO NOTHING. No request reads a shared row, changes it in
// memory and writes it back, so there is no earlier copy for a concurrent
// writer to overwrite; two requests adding different words to one group
// insert two different rows, and both survive. (Writes are also serialized
// by BEGIN IMMEDIATE, but correctness does not lean on it.)
#pragma once

#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

// Inserts the word unless it is stored. Returns whether it inserted.
// `word` and `key` must be valid (services/anagrams.h); the schema's CHECKs
// refuse anything else.
bool insert_anagram_word(Tx& tx, const std::string& word, const std::string& key, core::Millis now);
// Deletes the word. Returns whether it existed.
bool delete_anagram_word(Tx& tx, const std::string& word);
// Every stored word with this key, sorted.
std::vector<std::string> list_anagram_group(Conn& conn, const std::string& key);

}  // namespace db
