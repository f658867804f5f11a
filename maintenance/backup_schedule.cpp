#include "maintenance/backup_schedule.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <vector>

#include "core/log.h"
#include "core/metrics.h"
#include "core/time_format.h"

namespace maintenance {
namespace {

namespace fs = std::filesystem;
namespace m = core::metrics;

m::Counter& backups(const char* outcome) {
  static auto& f = m::global().counter_family(
      "aftercommit_backups_total",
      "Scheduled backups (--backup-every) finished, by outcome (ok, failed).", {"outcome"});
  return f.with({outcome});
}

m::Gauge& last_success() {
  return m::global().gauge(
      "aftercommit_backup_last_success_timestamp_seconds",
      "Unix time of the last scheduled backup that was written and checked (0: none yet).");
}

m::Gauge& last_bytes() {
  return m::global().gauge("aftercommit_backup_last_size_bytes",
                           "Size of the last scheduled backup written.");
}

m::Gauge& last_duration() {
  return m::global().gauge(
      "aftercommit_backup_last_duration_seconds",
      "Time the last successful scheduled backup took (copy, check and fsync).");
}

// Only names this schedule writes; anything else in the directory is left alone.
const std::regex& scheduled_name() {
  static const std::regex re(R"(^aftercommit-\d{8}T\d{6}\.\d{3}Z\.db$)");
  return re;
}

}  // namespace

void register_backup_metrics() {
  backups("ok");
  backups("failed");
  last_success();
  last_bytes();
  last_duration();
}

BackupSchedule::BackupSchedule(const core::Clock& clock, BackupScheduleOptions options)
    : clock_(clock), options_(std::move(options)) {
  register_backup_metrics();
  options_.copy.cancelled = [this] { return stopping_.load(); };
}

std::string BackupSchedule::file_name(core::Millis epoch_ms) {
  // 2026-11-30T01:02:03.456Z -> 20261130T010203.456Z
  std::string stamp = core::format_rfc3339_ms(epoch_ms);
  stamp.erase(
      std::remove_if(stamp.begin(), stamp.end(), [](char c) { return c == '-' || c == ':'; }),
      stamp.end());
  return "aftercommit-" + stamp + ".db";
}

core::Result<std::string> BackupSchedule::run_once() {
  const std::string path = (fs::path(options_.dir) / file_name(clock_.now_ms())).string();
  const std::int64_t t0 = core::monotonic_us();
  auto copied = db::sqlite::backup(options_.db_path, path, options_.copy);
  if (!copied) {
    backups("failed").inc();
    core::log::error("backup_failed", {{"path", path},
                                       {"code", core::code_name(copied.status().code())},
                                       {"error", copied.status().message()}});
    return copied.status();
  }
  const double seconds = static_cast<double>(core::monotonic_us() - t0) / 1e6;
  const int pruned = prune();
  last_bytes().set(static_cast<double>(copied->bytes));
  last_duration().set(seconds);
  last_success().set(static_cast<double>(clock_.now_ms()) / 1e3);
  backups("ok").inc();
  core::log::info("backup", {{"path", path},
                             {"bytes", copied->bytes},
                             {"schema_version", copied->schema_version},
                             {"copy_ms", copied->copy_ms},
                             {"verify_ms", copied->verify_ms},
                             {"steps", copied->steps},
                             {"pruned", pruned}});
  return path;
}

int BackupSchedule::prune() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(name, scheduled_name()))
      names.push_back(name);
  }
  if (static_cast<int>(names.size()) <= options_.keep) return 0;
  std::sort(names.begin(), names.end());  // oldest first: the names sort by time
  int removed = 0;
  for (std::size_t i = 0; i + static_cast<std::size_t>(options_.keep) < names.size(); ++i) {
    if (fs::remove(fs::path(options_.dir) / names[i], ec)) {
      ++removed;
    } else if (ec) {
      core::log::warn("backup_prune_failed", {{"file", names[i]}, {"error", ec.message()}});
    }
  }
  return removed;
}

}  // namespace maintenance
