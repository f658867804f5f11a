#include "db/sqlite/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "db/sqlite/migrations.h"

namespace db::sqlite {
namespace {

namespace fs = std::filesystem;

constexpr char kBegin[] = "BEGIN DEFERRED";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";
// Reading the schema opens the read transaction (pins the snapshot) and
// proves the file is a database.
constexpr char kReadSchema[] = "SELECT count(*) FROM sqlite_schema";
constexpr char kUserVersion[] = "PRAGMA user_version";
constexpr char kIntegrityCheck[] = "PRAGMA integrity_check";
// The temporary copy needs no journal of its own: on any failure it is
// deleted, and it is fsynced once, at the end.
constexpr char kJournalOff[] = "PRAGMA journal_mode = OFF";
constexpr char kSynchronousOff[] = "PRAGMA synchronous = OFF";
// The copied header says WAL (it is the live file's); a backup is one
// self-contained file, so it is switched to a rollback journal. On a live
// file this needs an exclusive lock, so it also proves nobody else has it open.
constexpr char kJournalDelete[] = "PRAGMA journal_mode = DELETE";
constexpr char kLockingExclusive[] = "PRAGMA locking_mode = EXCLUSIVE";
constexpr char kBeginExclusive[] = "BEGIN EXCLUSIVE";

core::Millis since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

core::Status from_sqlite(int rc, sqlite3* db, const std::string& what) {
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int sys = db ? sqlite3_system_errno(db) : 0;
  if (sys != 0) detail += std::string(" (") + std::strerror(sys) + ")";
  const std::string message = what + ": " + detail;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return core::Status::busy(message);
    case SQLITE_FULL:
      return core::Status::storage_full(message);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return core::Status::invalid(message);
    default:
      return core::Status::internal(message + " (sqlite code " + std::to_string(rc) + ")");
  }
}

// One connection, closed at scope end.
class Handle {
 public:
  Handle() = default;
  ~Handle() { close(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  [[nodiscard]] core::Status open(const std::string& name, int flags, int busy_timeout_ms) {
    const int rc = sqlite3_open_v2(name.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      core::Status st = from_sqlite(rc, db_, "cannot open " + name);
      close();
      return st;
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
    return core::Status::ok();
  }
  void close() noexcept {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = nullptr;
  }
  sqlite3* get() const noexcept { return db_; }

  [[nodiscard]] core::Status exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? core::Status::ok() : from_sqlite(rc, db_, sql);
  }
  // Every row's first column, as text.
  [[nodiscard]] core::Result<std::vector<std::string>> column(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return from_sqlite(rc, db_, sql);
    std::vector<std::string> rows;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      rows.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return from_sqlite(rc, db_, sql);
    return rows;
  }
  [[nodiscard]] core::Result<int> integer(const char* sql) {
    auto rows = column(sql);
    if (!rows) return rows.status();
    return rows->empty() ? 0 : std::atoi(rows->front().c_str());
  }

 private:
  sqlite3* db_ = nullptr;
};

// A file URI for `path` (percent-encoding what a URI would misread).
std::string file_uri(const std::string& path, const char* query) {
  std::string out = "file:";
  for (unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) || std::strchr("/-_.~", c) != nullptr) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out + "?" + query;
}

void remove_side_files(const std::string& path) noexcept {
  std::error_code ec;
  for (const char* suffix : {"-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

[[nodiscard]] core::Status fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return core::Status::internal("cannot open " + path + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return err == ENOSPC ? core::Status::storage_full("fsync " + path + ": " + std::strerror(err))
                         : core::Status::internal("fsync " + path + ": " + std::strerror(err));
  }
  return core::Status::ok();
}

std::string parent_dir(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// The hidden temporary file beside `final_path`, deleted (with any side
// file) unless renamed onto the final name.
class TempCopy {
 public:
  explicit TempCopy(const std::string& final_path) : final_(final_path) {}
  ~TempCopy() {
    if (!path_.empty() && !installed_) {
      std::error_code ec;
      fs::remove(path_, ec);
      remove_side_files(path_);
    }
  }
  TempCopy(const TempCopy&) = delete;
  TempCopy& operator=(const TempCopy&) = delete;

  [[nodiscard]] core::Status create() {
    std::string name = (fs::path(parent_dir(final_)) /
                        ("." + fs::path(final_).filename().string() + ".tmp-XXXXXX"))
                           .string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) {
      return errno == ENOSPC
                 ? core::Status::storage_full("cannot create " + name + ": " + std::strerror(errno))
                 : core::Status::internal("cannot create " + name + ": " + std::strerror(errno));
    }
    ::close(fd);
    path_ = name;
    return core::Status::ok();
  }
  const std::string& path() const noexcept { return path_; }

  // Removes `extra` side files of the final name first (a restore's stale
  // WAL), then renames; the directory is fsynced after each step.
  [[nodiscard]] core::Status install(bool remove_final_side_files) {
    const std::string dir = parent_dir(final_);
    if (remove_final_side_files) {
      remove_side_files(final_);
      if (core::Status st = fsync_path(dir, true); !st) return st;
    }
    if (::rename(path_.c_str(), final_.c_str()) != 0) {
      return core::Status::internal("cannot rename " + path_ + " to " + final_ + ": " +
                                    std::strerror(errno));
    }
    installed_ = true;
    return fsync_path(dir, true);
  }

 private:
  const std::string final_;
  std::string path_;
  bool installed_ = false;
};

// Opens the read transaction on `src` that pins the snapshot; returns the
// schema version in it.
core::Result<int> pin_snapshot(Handle& src, const std::string& name) {
  if (core::Status st = src.exec(kBegin); !st) return st;
  auto schema = src.column(kReadSchema);
  if (!schema) {
    return core::Status(schema.status().code(),
                        name + " is not a readable SQLite database: " + schema.status().message());
  }
  auto version = src.integer(kUserVersion);
  if (!version) return version.status();
  if (*version > latest_schema_version()) {
    return core::Status::invalid(
        name + " is at schema version " + std::to_string(*version) + ", newer than this binary's " +
        std::to_string(latest_schema_version()) + "; use the binary that wrote it");
  }
  return *version;
}

// The stepped copy of `src` (snapshot pinned) into the file at `dst_path`.
[[nodiscard]] core::Status copy_pages(Handle& src, const std::string& dst_path,
                                      const CopyOptions& options, CopyReport& report) {
  Handle dst;
  if (core::Status st =
          dst.open(dst_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options.busy_timeout_ms);
      !st)
    return st;
  if (core::Status st = dst.exec(kJournalOff); !st) return st;
  if (core::Status st = dst.exec(kSynchronousOff); !st) return st;
  sqlite3_backup* backup = sqlite3_backup_init(dst.get(), "main", src.get(), "main");
  if (backup == nullptr)
    return from_sqlite(sqlite3_errcode(dst.get()), dst.get(), "cannot start the backup");
  const int pages = std::max(1, options.pages_per_step);
  // Our own descriptor of the copy, for fdatasync while SQLite writes it.
  const int sync_fd = ::open(dst_path.c_str(), O_RDONLY | O_CLOEXEC);
  int unsynced = 0;
  int rc = SQLITE_OK;
  bool cancelled = false;
  for (;;) {
    rc = sqlite3_backup_step(backup, pages);
    ++report.steps;
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    unsynced += pages;
    if (sync_fd >= 0 && options.sync_every_pages > 0 && unsynced >= options.sync_every_pages) {
      (void)::fdatasync(sync_fd);  // a pacing hint: seal() fsyncs and checks for real
      unsynced = 0;
    }
    if (options.cancelled && options.cancelled()) {
      cancelled = true;
      break;
    }
    // The throttle: between steps the copy holds no lock, only its snapshot.
    if (options.pause_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(options.pause_ms));
  }
  report.pages = sqlite3_backup_pagecount(backup);
  const int finish_rc = sqlite3_backup_finish(backup);
  if (sync_fd >= 0) ::close(sync_fd);
  if (cancelled) return core::Status::unavailable("backup cancelled");
  if (rc != SQLITE_DONE) return from_sqlite(rc, dst.get(), "copying pages");
  if (finish_rc != SQLITE_OK) return from_sqlite(finish_rc, dst.get(), "finishing the copy");
  dst.close();
  return core::Status::ok();
}

// Makes the copy at `path` one self-contained file, checks it, fsyncs it.
// Returns its schema version; a failed integrity_check is kInvalid.
core::Result<int> seal(const std::string& path, const CopyOptions& options) {
  Handle v;
  if (core::Status st =
          v.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options.busy_timeout_ms);
      !st)
    return st;
  auto mode = v.column(kJournalDelete);
  if (!mode) return mode.status();
  // integrity_check reads every page: let a cancel interrupt it.
  if (options.cancelled) {
    sqlite3_progress_handler(
        v.get(), 10000,
        [](void* fn) { return (*static_cast<const std::function<bool()>*>(fn))() ? 1 : 0; },
        const_cast<std::function<bool()>*>(&options.cancelled));
  }
  auto check = v.column(kIntegrityCheck);
  if (!check) return check.status();
  if (check->size() != 1 || check->front() != "ok") {
    std::string first;
    for (std::size_t i = 0; i < check->size() && i < 3; ++i) first += (i ? "; " : "") + (*check)[i];
    return core::Status::invalid("integrity_check found " + std::to_string(check->size()) +
                                 " problem(s): " + first);
  }
  auto version = v.integer(kUserVersion);
  if (!version) return version.status();
  v.close();
  remove_side_files(path);
  if (core::Status st = fsync_path(path, false); !st) return st;
  return *version;
}

// `target` may be written: its directory exists, it is not a directory, and
// it is not `other` (replacing a database with itself, or a backup with
// what is being restored, would destroy it).
core::Status check_target(const std::string& target, const std::string& other, const char* what) {
  const std::string dir = parent_dir(target);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return core::Status::not_found(std::string(what) + " directory " + dir + " does not exist");
  if (fs::is_directory(target, ec))
    return core::Status::invalid(target + " is a directory; name a file");
  if (fs::equivalent(target, other, ec))
    return core::Status::invalid(target + " and " + other + " are the same file");
  return core::Status::ok();
}

// The restored file takes the replaced one's mode, and its owner when we
// may give it (root), so that the service's user can still open it.
void copy_ownership(const std::string& from_file, const std::string& to_file) noexcept {
  struct stat st {};
  if (::stat(from_file.c_str(), &st) != 0) return;
  (void)::chmod(to_file.c_str(), st.st_mode & 07777);
  if (::geteuid() == 0) (void)::chown(to_file.c_str(), st.st_uid, st.st_gid);
}

std::int64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::int64_t>(size);
}

}  // namespace

core::Result<CopyReport> backup(const std::string& source, const std::string& target,
                                const CopyOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(source, ec)) return core::Status::not_found("no database at " + source);
  if (core::Status st = check_target(target, source, "backup"); !st) return st;
  CopyReport report;
  Handle src;
  // Read-only: a backup never writes the live file.
  if (core::Status st =
          src.open(source, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, options.busy_timeout_ms);
      !st)
    return st;
  auto version = pin_snapshot(src, source);
  if (!version) return version.status();
  TempCopy tmp(target);
  if (core::Status st = tmp.create(); !st) return st;
  const auto t0 = std::chrono::steady_clock::now();
  if (core::Status st = copy_pages(src, tmp.path(), options, report); !st) {
    return core::Status(st.code(), "backup of " + source + " to " + target + ": " + st.message());
  }
  (void)src.exec(kCommit);  // a read transaction: nothing to lose if it fails
  src.close();
  report.copy_ms = since(t0);

  const auto t1 = std::chrono::steady_clock::now();
  auto sealed = seal(tmp.path(), options);
  if (!sealed) {
    const core::Code code = sealed.status().code() == core::Code::kInvalid
                                ? core::Code::kInternal  // our copy of a good file went bad
                                : sealed.status().code();
    return core::Status(code,
                        "checking the backup of " + source + ": " + sealed.status().message());
  }
  if (*sealed != *version) {
    return core::Status::internal("the backup of " + source + " is at schema version " +
                                  std::to_string(*sealed) + ", the snapshot was at " +
                                  std::to_string(*version));
  }
  if (core::Status st = tmp.install(/*remove_final_side_files=*/true); !st) return st;
  report.verify_ms = since(t1);
  report.schema_version = *version;
  report.bytes = file_size(target);
  return report;
}

core::Result<CopyReport> restore(const std::string& from, const std::string& db_path,
                                 const CopyOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(from, ec)) return core::Status::not_found("no backup file at " + from);
  if (core::Status st = check_target(db_path, from, "database"); !st) return st;
  CopyReport report;
  Handle src;
  // Nothing beside the backup: open it immutable, so that not even a -shm is
  // created next to it. A -wal or -journal beside it is part of it: read-only.
  const bool alone = !fs::exists(from + "-wal", ec) && !fs::exists(from + "-journal", ec);
  if (core::Status st = src.open(file_uri(from, alone ? "immutable=1" : "mode=ro"),
                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                                 options.busy_timeout_ms);
      !st)
    return st;
  auto version = pin_snapshot(src, from);
  if (!version) return version.status();
  if (*version < 1) {
    return core::Status::invalid(from + " is not an aftercommit database (schema version 0)");
  }
  TempCopy tmp(db_path);
  if (core::Status st = tmp.create(); !st) return st;
  const auto t0 = std::chrono::steady_clock::now();
  if (core::Status st = copy_pages(src, tmp.path(), options, report); !st) {
    return core::Status(st.code(), "copying " + from + ": " + st.message());
  }
  (void)src.exec(kCommit);
  src.close();
  report.copy_ms = since(t0);

  const auto t1 = std::chrono::steady_clock::now();
  auto sealed = seal(tmp.path(), options);
  if (!sealed) {
    return core::Status(sealed.status().code(),
                        from + " failed its check, nothing restored: " + sealed.status().message());
  }

  // Claim the live file: leaving WAL mode needs every other connection gone.
  // A file that is not a readable database (the reason to restore, maybe)
  // cannot be claimed and is replaced as it is.
  Handle live;
  if (fs::exists(db_path, ec)) {
    core::Status st =
        live.open(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, /*busy_timeout_ms=*/0);
    if (st) {
      auto mode = live.column(kJournalDelete);
      st = mode ? live.exec(kLockingExclusive) : mode.status();
      if (st) st = live.exec(kBeginExclusive);
    }
    if (!st && st.code() == core::Code::kBusy) {
      return core::Status::conflict(db_path +
                                    " is open in another process (a running server, a shell, a "
                                    "maintenance command); stop it, then restore: " +
                                    st.message());
    }
    if (!st && st.code() != core::Code::kInvalid) return st;
    if (!st) live.close();  // not a database: nothing to claim
  }
  copy_ownership(db_path, tmp.path());
  if (core::Status st = tmp.install(/*remove_final_side_files=*/true); !st) return st;
  if (live.get() != nullptr) (void)live.exec(kRollback);  // the old file, now unlinked
  live.close();
  report.verify_ms = since(t1);
  report.schema_version = *sealed;
  report.bytes = file_size(db_path);
  return report;
}

}  // namespace db::sqlite
