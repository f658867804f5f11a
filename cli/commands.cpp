#include "cli/commands.h"

#include <cstdio>
#include <filesystem>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "db/database.h"
#include "db/stats.h"
#include "http/stats_view.h"
#include "http/views.h"
#include "services/jobs_admin.h"
#include "services/stats.h"

namespace app {
namespace {

// Opens an existing database (never creates one: a typo in --db must not
// leave an empty file behind). Opening applies pending migrations, exactly
// as `serve` would.
db::Options db_options(const DbTarget& t) {
  db::Options o;
  db::set_target(o, t.path);
  o.sqlite.busy_timeout_ms = t.busy_timeout_ms;
  o.pg.lock_timeout_ms = t.busy_timeout_ms;
  o.max_attempts = t.max_attempts;
  return o;
}

core::Result<std::unique_ptr<db::Database>> open_existing(const DbTarget& t) {
  db::Options o = db_options(t);
  o.sqlite.create = false;
  auto opened = db::Database::open(o);
  if (!opened && opened.status().code() == core::Code::kNotFound) {
    const std::string name = db::target_name(o);
    return core::Status::not_found("no database at " + name +
                                   " (create one with: aftercommit migrate --db " + name + ")");
  }
  return opened;
}

std::string last_error(const db::JobRow& j) {
  auto errors = nlohmann::json::parse(j.errors_json, nullptr, false);
  if (!errors.is_array() || errors.empty()) return "";
  std::string m = errors.back().value("message", "");
  if (m.size() > 60) m = m.substr(0, 57) + "...";
  return m;
}

}  // namespace

int cmd_migrate(const DbTarget& t) {
  // `migrate` is the command that creates a database, so it creates the
  // directory the file goes in too (`--db data/aftercommit.db` in a fresh
  // checkout). `serve` and the other commands never create directories.
  db::Options o = db_options(t);
  const auto parent = std::filesystem::path(t.path).parent_path();
  if (!db::is_postgres(o) && !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return command_failed("--db: cannot create the directory " + parent.string() + ": " +
                            ec.message());
    }
  }
  auto before = db::peek_schema_version(o);
  if (!before) return command_failed(before.status().message());
  auto opened = db::Database::open(o);
  if (!opened) return command_failed(opened.status().message());
  auto after = (*opened)->schema_version();
  if (!after) return command_failed(after.status().message());
  if (*before == *after) {
    std::printf("%s: schema version %d (up to date)\n", db::target_name(o).c_str(), *after);
  } else {
    std::printf("%s: schema version %d (migrated from %d)\n", db::target_name(o).c_str(), *after,
                *before);
  }
  return 0;
}

int cmd_jobs_list(const DbTarget& t, const JobsListOptions& options) {
  auto opened = open_existing(t);
  if (!opened) return command_failed(opened.status().message());
  core::SystemClock clock;
  services::JobsAdmin admin(**opened, clock);
  db::JobFilter filter;
  filter.state = options.state;
  filter.kind = options.kind;
  filter.limit = options.limit;
  auto jobs = admin.list(filter);
  if (!jobs) return command_failed(jobs.status().message());
  if (options.json) {
    for (const auto& j : *jobs) std::printf("%s\n", job_json(j).dump().c_str());
    return 0;
  }
  std::printf("%-8s %-22s %-10s %-7s %-24s %s\n", "ID", "KIND", "STATE", "ATTEMPT", "RUN_AT",
              "LAST_ERROR");
  for (const auto& j : *jobs) {
    const std::string attempt = std::to_string(j.attempt) + "/" + std::to_string(j.max_attempts);
    std::printf("%-8lld %-22s %-10s %-7s %-24s %s\n", static_cast<long long>(j.id), j.kind.c_str(),
                j.state.c_str(), attempt.c_str(), core::format_rfc3339_ms(j.run_at).c_str(),
                last_error(j).c_str());
  }
  if (jobs->empty()) std::printf("(no jobs)\n");
  return 0;
}

int cmd_jobs_transition(const DbTarget& t, std::int64_t id, bool retry, bool json) {
  auto opened = open_existing(t);
  if (!opened) return command_failed(opened.status().message());
  core::SystemClock clock;
  services::JobsAdmin admin(**opened, clock);
  std::optional<db::JobRow> moved;
  core::Status refused = core::Status::ok();
  core::Status st = (*opened)->write([&](db::Tx& tx) {
    auto r = retry ? admin.retry(tx, id) : admin.cancel(tx, id);
    if (r) {
      moved = std::move(*r);
    } else {
      refused = r.status();  // nothing was written; commit the empty transaction
    }
    return core::Status::ok();
  });
  if (!st) return command_failed(st.message());
  if (!refused) return command_failed(refused.message());
  if (json) {
    std::printf("%s\n", job_json(*moved).dump().c_str());
  } else {
    std::printf("job %lld (%s) is now %s\n", static_cast<long long>(moved->id), moved->kind.c_str(),
                moved->state.c_str());
  }
  return 0;
}

int cmd_stats(const DbTarget& t, bool json) {
  auto opened = open_existing(t);
  if (!opened) return command_failed(opened.status().message());
  services::Stats stats(**opened);
  auto counts = stats.counts();
  if (!counts) return command_failed(counts.status().message());
  auto version = (*opened)->schema_version();
  if (!version) return command_failed(version.status().message());
  auto size_of = [](const std::string& path) -> std::uintmax_t {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    return ec ? 0 : n;
  };
  nlohmann::json out = counts_json(*counts);
  out["schema_version"] = *version;
  out["file_bytes"] = size_of(t.path);
  out["wal_bytes"] = size_of(t.path + "-wal");
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (db::is_postgres(db_options(t))) {
    std::printf("database      %s (schema version %d)\n", db::target_name(db_options(t)).c_str(),
                *version);
  } else {
    std::printf("database      %s (schema version %d, %llu bytes + %llu bytes WAL)\n",
                t.path.c_str(), *version, out["file_bytes"].get<unsigned long long>(),
                out["wal_bytes"].get<unsigned long long>());
  }
  std::printf("users         %lld\n", static_cast<long long>(counts->users));
  std::printf("audit rows    %lld\n", static_cast<long long>(counts->user_actions));
  std::printf("messages      %lld\n", static_cast<long long>(counts->messages));
  std::printf("jobs         ");
  for (const auto& [state, n] : out["jobs"].items()) {
    std::printf(" %s=%lld", state.c_str(), n.get<long long>());
  }
  std::printf("\n");
  for (const auto& jc : counts->jobs) {
    std::printf("  %-22s %-10s %lld\n", jc.kind.c_str(), jc.state.c_str(),
                static_cast<long long>(jc.count));
  }
  return 0;
}

}  // namespace app
