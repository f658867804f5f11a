// The products service: create, approve (the state machine of
// services/product_state.h) and reads.
//
// approve is one atomic phase. Inside the caller's write transaction it moves
// the product pending -> published with one UPDATE fenced by the state it
// leaves from, and only when that changed the row: the product_meta row, the
// audit row, the staged notify_product_owner job (args {"product_meta_id"})
// and the product.published event. All commit together or not at all. The job
// runner reads only committed rows, so the job's handler always finds the
// meta row it names: the job cannot exist without it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/products.h"
#include "jobs/outbox.h"

namespace services {

// The note every approval writes on the product's meta row (API.md).
inline constexpr char kApprovalNote[] = "A very good product.";
// A product name, after trimming, is 1 to this many Unicode characters.
inline constexpr std::size_t kMaxProductNameChars = 200;

// Trims ASCII white space; the name must then be 1-200 characters of valid
// UTF-8 without control characters. kInvalid with a message saying why.
core::Result<std::string> normalize_product_name(std::string_view raw);

struct Product {
  db::ProductRow row;
  std::optional<db::ProductMetaRow> meta;  // set once published
};

class Products {
 public:
  Products(db::Database& db, const core::Clock& clock, const jobs::Outbox& outbox)
      : db_(db), clock_(clock), outbox_(outbox) {}

  // Atomic phase: inserts a pending product and its creation audit row.
  // `name` from normalize_product_name, `owner_email` from normalize_email.
  Product create(db::Tx& tx, const std::string& name, const std::string& owner_email) const;

  // Atomic phase: pending -> published (see above). kNotFound when there is
  // no such product, kConflict naming the current state when it is not
  // pending; in both cases nothing was written.
  core::Result<Product> approve(db::Tx& tx, std::int64_t id) const;

  // A plain read on a read connection. kNotFound when absent.
  core::Result<Product> get(std::int64_t id) const;

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const jobs::Outbox& outbox_;
};

}  // namespace services
