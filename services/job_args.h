// The job kinds the services stage, one struct each (jobs/args.h): the
// stager (services/) and the handler (workers/handlers.cpp) share it.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace services {

// One "Welcome" mailbox message to a new user (staged with the user).
struct SendWelcomeEmail {
  static constexpr char kKind[] = "send_welcome_email";
  std::int64_t user_id = 0;
  std::string email;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SendWelcomeEmail, user_id, email)

// One mailbox message to a product's owner once it is published (staged
// with the approval and its product_meta row).
struct NotifyProductOwner {
  static constexpr char kKind[] = "notify_product_owner";
  std::int64_t product_meta_id = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NotifyProductOwner, product_meta_id)

// One SMS (a mailbox message on channel sms) confirming a paid order.
struct SendSms {
  static constexpr char kKind[] = "send_sms";
  std::int64_t order_id = 0;
  std::string phone;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SendSms, order_id, phone)

// A paid order becomes ready_to_ship (services::ship_order).
struct PrepareForShipping {
  static constexpr char kKind[] = "prepare_for_shipping";
  std::int64_t order_id = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PrepareForShipping, order_id)

}  // namespace services
