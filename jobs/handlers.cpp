// The built-in job kinds. Each effect lives in this database, so each is an
// `apply` that runs in the transaction completing the job: exactly once.
#include "db/mailbox.h"
#include "db/users.h"
#include "jobs/handler.h"

#include "db/database.h"
#include "db/jobs.h"

namespace jobs {
namespace {

// args {"user_id", "email"} -> one mailbox message, subject "Welcome". The
// user row must exist: the job was staged in the transaction that created
// it, and the runner only ever sees committed jobs.
core::Status send_welcome_email(const Job& job, db::Tx& tx, core::Millis now) {
  const auto user_id = job.args.at("user_id").get<std::int64_t>();
  auto user = db::find_user(tx.conn(), user_id);
  if (!user) return core::Status::not_found("user " + std::to_string(user_id) + " does not exist");
  db::deliver_message(
      tx,
      {"email", user->email, "Welcome",
       "Welcome to aftercommit, " + user->email + "! Your account is ready.", job.id},
      now);
  return core::Status::ok();
}

}  // namespace

void register_builtin_handlers(Registry& registry) {
  registry.add("send_welcome_email", Handler{nullptr, send_welcome_email});
}

core::Status save_kind_defaults(db::Database& db, const Registry& registry) {
  return db.write([&](db::Tx& tx) {
    registry.for_each([&](const std::string& kind, const KindOptions& o) {
      db::upsert_job_kind(
          tx, kind, o.max_attempts,
          o.timeout_ms > 0 ? std::optional<core::Millis>(o.timeout_ms) : std::nullopt);
    });
    return core::Status::ok();
  });
}

}  // namespace jobs
