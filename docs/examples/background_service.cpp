// A new background service, as README.md ("Adding a background service")
// shows it: the build compiles this file with the project's warnings as
// errors, and tests/docs_test.cpp checks that the README quotes it verbatim.
#include <cstdint>

#include "core/log.h"
#include "db/database.h"
#include "db/stats.h"
#include "maintenance/service.h"

namespace example {

// Logs a warning when discarded jobs pile up. A pass only reads, on a reader
// connection, so it never takes the write lock.
class DiscardedWatch final : public maintenance::Service {
 public:
  DiscardedWatch(db::Database& db, std::int64_t threshold) : db_(db), threshold_(threshold) {}

  std::string_view name() const noexcept override { return "discarded_watch"; }
  core::Millis interval_ms() const noexcept override { return 60'000; }

  core::Status pass() override {
    std::int64_t discarded = 0;
    core::Status st = db_.read([&](db::Conn& conn) {
      for (const db::JobCount& c : db::count_jobs(conn)) {
        if (c.state == "discarded") discarded += c.count;
      }
      return core::Status::ok();
    });
    if (!st) return st;  // the supervisor logs it and runs the next pass on time
    if (discarded > threshold_) core::log::warn("jobs_discarded_piling_up", {{"count", discarded}});
    return core::Status::ok();
  }

 private:
  db::Database& db_;
  const std::int64_t threshold_;
};

// In App::create (app/app.cpp), beside the other services: construct it,
// keep it in a member that outlives the supervisor, and add it in start
// order:   app->supervisor_->add(*app->discarded_watch_);

}  // namespace example
