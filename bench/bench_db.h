// bench::open_database: the database a bench tool measures, opened one way
// for every tool (bench/*.cpp), on either engine.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "db/database.h"

namespace bench {

// Opens (creating and migrating) `target`: a SQLite file path, or a
// postgresql:// URL (db::set_target's rule). `synchronous` is "full" or
// "normal" (SQLite's; PostgreSQL keeps the server's synchronous_commit),
// `commit` "group" or "per-request". Prints the reason on stderr and returns
// null when it cannot.
inline std::unique_ptr<db::Database> open_database(const std::string& target,
                                                   const std::string& synchronous = "full",
                                                   const std::string& commit = "group") {
  db::Options options;
  db::set_target(options, target);
  options.sqlite.synchronous =
      synchronous == "full" ? db::sqlite::Synchronous::kFull : db::sqlite::Synchronous::kNormal;
  options.commit_mode = commit == "group" ? db::CommitMode::kGroup : db::CommitMode::kPerRequest;
  auto opened = db::Database::open(options);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.status().to_string().c_str());
    return nullptr;
  }
  return std::move(*opened);
}

}  // namespace bench
