// bench::open_sqlite: the database a bench tool measures, opened one way for
// every tool (bench/*.cpp).
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "db/database.h"

namespace bench {

// Opens (creating and migrating) the SQLite file at `path`. `synchronous` is
// "full" or "normal", `commit` "group" or "per-request". Prints the reason on
// stderr and returns null when it cannot.
inline std::unique_ptr<db::Database> open_sqlite(const std::string& path,
                                                 const std::string& synchronous = "full",
                                                 const std::string& commit = "group") {
  db::Options options;
  options.sqlite.path = path;
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
