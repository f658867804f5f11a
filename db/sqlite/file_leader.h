// db::sqlite::FileLeader: the SQLite engine's leader lock (db/leader.h): an
// exclusive flock(2) on "<database>.leader", taken without blocking.
//
// Why a file of its own: SQLite locks the database file with POSIX advisory
// locks, which a process loses when it closes *any* descriptor of that file
// (https://sqlite.org/howtocorrupt.html, section 2.2); opening the database
// file here would risk them. flock(2) locks belong to the open file
// description, and the kernel drops them when the process dies (kill -9
// included), so a follower takes over at its next held() with no timeout.
// The file holds nothing; it is created beside the database, mode 0600.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "db/leader.h"

namespace db::sqlite {

class FileLeader final : public LeaderLock {
 public:
  // Opens (creating) `path`. kUnavailable naming it when it cannot.
  [[nodiscard]] static core::Result<std::unique_ptr<FileLeader>> open(const std::string& path);
  ~FileLeader() override;
  FileLeader(const FileLeader&) = delete;
  FileLeader& operator=(const FileLeader&) = delete;

  bool held() override;
  void resign() noexcept override;

 private:
  explicit FileLeader(int fd) noexcept : fd_(fd) {}

  std::mutex mu_;
  const int fd_;
  bool held_ = false;  // guarded by mu_
};

}  // namespace db::sqlite
