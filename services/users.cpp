#include "services/users.h"

#include <nlohmann/json.hpp>

#include "db/jobs.h"
#include "jobs/args.h"
#include "services/job_args.h"

namespace services {

CreateOrGet Users::create_or_get(db::Tx& tx, const std::string& email) const {
  const core::Millis now = clock_.now_ms();
  if (auto inserted = db::insert_user_if_absent(tx, email, now)) {
    db::insert_user_action(tx, inserted->id, "created", now);
    (void)jobs::stage(tx, SendWelcomeEmail{inserted->id, inserted->email}, now);
    outbox_.publish(tx, "user.created", "user:" + std::to_string(inserted->id),
                    {{"id", inserted->id}, {"email", inserted->email}}, now);
    return {std::move(*inserted), true};
  }
  // The row exists and we hold the write lock, so this read cannot miss it.
  auto existing = db::find_user_by_email(tx.conn(), email);
  if (!existing) throw std::logic_error("user vanished inside a write transaction");
  return {std::move(*existing), false};
}

core::Result<std::optional<User>> Users::find_by_email(const std::string& email) const {
  std::optional<User> user;
  core::Status st = db_.read([&](db::Conn& c) {
    user = db::find_user_by_email(c, email);
    return core::Status::ok();
  });
  if (!st) return st;
  return user;
}

core::Result<User> Users::get(std::int64_t id) const {
  std::optional<User> user;
  core::Status st = db_.read([&](db::Conn& c) {
    user = db::find_user(c, id);
    return core::Status::ok();
  });
  if (!st) return st;
  if (!user) return core::Status::not_found("no user with id " + std::to_string(id));
  return std::move(*user);
}

core::Result<std::vector<UserAction>> Users::actions(std::int64_t user_id) const {
  std::vector<UserAction> out;
  core::Status st = db_.read([&](db::Conn& c) {
    if (!db::find_user(c, user_id)) {
      return core::Status::not_found("no user with id " + std::to_string(user_id));
    }
    out = db::list_user_actions(c, user_id);
    return core::Status::ok();
  });
  if (!st) return st;
  return out;
}

}  // namespace services
