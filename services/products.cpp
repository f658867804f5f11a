#include "services/products.h"

#include <nlohmann/json.hpp>

#include "db/jobs.h"
#include "jobs/args.h"
#include "services/job_args.h"
#include "services/product_state.h"

namespace services {
namespace {

bool is_ascii_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The number of code points in valid UTF-8, or nullopt when `s` is not valid
// UTF-8 (JSON bodies are, but this does not lean on the parser).
std::optional<std::size_t> utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80           ? 1
                      : (c >> 5) == 0x6  ? 2
                      : (c >> 4) == 0xE  ? 3
                      : (c >> 3) == 0x1E ? 4
                                         : 0;
    if (len == 0 || i + len > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return std::nullopt;
    }
    i += len;
    ++count;
  }
  return count;
}

}  // namespace

core::Result<std::string> normalize_product_name(std::string_view raw) {
  while (!raw.empty() && is_ascii_space(static_cast<unsigned char>(raw.front()))) {
    raw.remove_prefix(1);
  }
  while (!raw.empty() && is_ascii_space(static_cast<unsigned char>(raw.back()))) {
    raw.remove_suffix(1);
  }
  if (raw.empty()) return core::Status::invalid("name must not be empty");
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F)
      return core::Status::invalid("name must not contain control characters");
  }
  const auto length = utf8_length(raw);
  if (!length) return core::Status::invalid("name must be valid UTF-8");
  if (*length > kMaxProductNameChars) {
    return core::Status::invalid("name must be at most " + std::to_string(kMaxProductNameChars) +
                                 " characters");
  }
  return std::string(raw);
}

Product Products::create(db::Tx& tx, const std::string& name,
                         const std::string& owner_email) const {
  const core::Millis now = clock_.now_ms();
  const std::string state(to_string(kInitialProductState));
  db::ProductRow row = db::insert_product(tx, name, owner_email, state, now);
  db::insert_product_state_change(tx, row.id, std::nullopt, state, now);
  return {std::move(row), std::nullopt};
}

core::Result<Product> Products::approve(db::Tx& tx, std::int64_t id) const {
  constexpr ProductTransition kApprove = *transition_for(ProductEvent::kApprove);
  const std::string from(to_string(kApprove.from));
  const std::string to(to_string(kApprove.to));
  const core::Millis now = clock_.now_ms();

  // The whole decision is this one conditional UPDATE: of concurrent
  // approvals, the first to take the write lock moves the row and the others
  // find it no longer in `from`. Nothing is read before it, so there is no
  // check-then-act window.
  auto moved = db::transition_product(tx, id, from, to, now);
  if (!moved) {
    // Zero rows changed and nothing was written: say why.
    auto current = db::find_product(tx.conn(), id);
    if (!current) return core::Status::not_found("no product with id " + std::to_string(id));
    return core::Status::conflict("product " + std::to_string(id) + " is " + current->state + "; " +
                                  std::string(to_string(kApprove.event)) +
                                  " is allowed only from " + from);
  }

  db::ProductMetaRow meta = db::insert_product_meta(tx, moved->id, kApprovalNote, now);
  db::insert_product_state_change(tx, moved->id, from, to, now);
  (void)jobs::stage(tx, NotifyProductOwner{meta.id}, now);
  outbox_.publish(tx, "product.published", "product:" + std::to_string(moved->id),
                  {{"id", moved->id},
                   {"name", moved->name},
                   {"owner_email", moved->owner_email},
                   {"state", moved->state},
                   {"meta_id", meta.id}},
                  now);
  return Product{std::move(*moved), std::move(meta)};
}

core::Result<Product> Products::get(std::int64_t id) const {
  std::optional<Product> product;
  core::Status st = db_.read([&](db::Conn& c) {
    auto row = db::find_product(c, id);
    if (!row) return core::Status::ok();
    product = Product{std::move(*row), db::find_product_meta_by_product(c, id)};
    return core::Status::ok();
  });
  if (!st) return st;
  if (!product) return core::Status::not_found("no product with id " + std::to_string(id));
  return std::move(*product);
}

}  // namespace services
