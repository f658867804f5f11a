// The built-in job kinds. Each effect lives in this database, so each is an
// `apply` that runs in the transaction completing the job: exactly once.
#include <cstdio>

#include "db/database.h"
#include "db/jobs.h"
#include "db/mailbox.h"
#include "db/orders.h"
#include "db/products.h"
#include "db/users.h"
#include "jobs/args.h"
#include "jobs/handler.h"
#include "services/job_args.h"
#include "services/orders.h"

namespace jobs {
namespace {

// One mailbox message, subject "Welcome". The user row must exist: the job
// was staged in the transaction that created it, and the runner only ever
// sees committed jobs.
core::Status send_welcome_email(const services::SendWelcomeEmail& args, const Job& job, db::Tx& tx,
                                core::Millis now) {
  const auto user_id = args.user_id;
  auto user = db::find_user(tx.conn(), user_id);
  if (!user) return core::Status::not_found("user " + std::to_string(user_id) + " does not exist");
  return db::deliver_message(
      tx,
      {"email", user->email, "Welcome",
       "Welcome to aftercommit, " + user->email + "! Your account is ready.", job.id},
      now);
}

// One mailbox message on channel sms to the phone. Staged by checkout's
// last phase, so the order exists and is paid.
core::Status send_sms(const services::SendSms& args, const Job& job, db::Tx& tx, core::Millis now) {
  const auto order_id = args.order_id;
  const auto& phone = args.phone;
  auto order = db::find_order(tx.conn(), order_id);
  if (!order)
    return core::Status::not_found("order " + std::to_string(order_id) + " does not exist");
  char total[32];
  std::snprintf(total, sizeof total, "%lld.%02lld",
                static_cast<long long>(order->total_cents / 100),
                static_cast<long long>(order->total_cents % 100));
  return db::deliver_message(tx,
                             {"sms", phone, "Order " + std::to_string(order_id) + " confirmed",
                              "Your order #" + std::to_string(order_id) + " (" + total +
                                  ") is paid and being prepared for shipping.",
                              job.id},
                             now);
}

// One mailbox message to the product's owner, subject "Your product was
// published". The meta row was inserted in the
// transaction that staged this job, and the runner only sees committed jobs,
// so a missing row is a bug, not a race: it fails the job loudly.
core::Status notify_product_owner(const services::NotifyProductOwner& args, const Job& job,
                                  db::Tx& tx, core::Millis now) {
  const auto meta_id = args.product_meta_id;
  auto meta = db::find_product_meta(tx.conn(), meta_id);
  if (!meta) {
    return core::Status::not_found("product_meta " + std::to_string(meta_id) + " does not exist");
  }
  auto product = db::find_product(tx.conn(), meta->product_id);
  if (!product) {
    return core::Status::not_found("product " + std::to_string(meta->product_id) +
                                   " of product_meta " + std::to_string(meta_id) +
                                   " does not exist");
  }
  return db::deliver_message(
      tx,
      {"email", product->owner_email, "Your product was published",
       "Your product \"" + product->name + "\" (id " + std::to_string(product->id) +
           ") was published. Note: " + meta->note,
       job.id},
      now);
}

}  // namespace

void register_builtin_handlers(Registry& registry) {
  using namespace services;
  registry.add(SendWelcomeEmail::kKind, apply<SendWelcomeEmail>(send_welcome_email));
  registry.add(NotifyProductOwner::kKind, apply<NotifyProductOwner>(notify_product_owner));
  registry.add(SendSms::kKind, apply<SendSms>(send_sms));
  // paid -> ready_to_ship: the transition is the orders service's.
  registry.add(PrepareForShipping::kKind,
               apply<PrepareForShipping>(
                   [](const PrepareForShipping& args, const Job&, db::Tx& tx, core::Millis now) {
                     return ship_order(tx, args.order_id, now);
                   }));
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
