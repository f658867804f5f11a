#include "http/views.h"

#include "core/time_format.h"

namespace app {

using core::format_rfc3339_ms;

nlohmann::json user_json(const db::UserRow& u) {
  return {{"id", u.id}, {"email", u.email}, {"created_at", format_rfc3339_ms(u.created_at)}};
}

nlohmann::json user_action_json(const db::UserActionRow& a) {
  return {{"id", a.id},
          {"user_id", a.user_id},
          {"action", a.action},
          {"created_at", format_rfc3339_ms(a.created_at)}};
}

nlohmann::json job_json(const db::JobRow& j) {
  nlohmann::json errors = nlohmann::json::array();
  auto stored = nlohmann::json::parse(j.errors_json, nullptr, false);
  if (stored.is_array()) {
    for (const auto& e : stored) {
      errors.push_back({{"attempt", e.value("attempt", 0)},
                        {"at", format_rfc3339_ms(e.value("at", core::Millis{0}))},
                        {"message", e.value("message", "")}});
    }
  }
  auto args = nlohmann::json::parse(j.args_json, nullptr, false);
  return {{"id", j.id},
          {"kind", j.kind},
          {"state", j.state},
          {"args", args.is_discarded() ? nlohmann::json::object() : args},
          {"attempt", j.attempt},
          {"max_attempts", j.max_attempts},
          {"priority", j.priority},
          {"run_at", format_rfc3339_ms(j.run_at)},
          {"created_at", format_rfc3339_ms(j.created_at)},
          {"attempted_at",
           j.attempted_at ? nlohmann::json(format_rfc3339_ms(*j.attempted_at)) : nlohmann::json()},
          {"finished_at",
           j.finished_at ? nlohmann::json(format_rfc3339_ms(*j.finished_at)) : nlohmann::json()},
          {"errors", errors}};
}

nlohmann::json message_json(const db::MessageRow& m) {
  return {{"id", m.id},
          {"channel", m.channel},
          {"to", m.to},
          {"subject", m.subject},
          {"body", m.body},
          {"job_id", m.job_id},
          {"created_at", format_rfc3339_ms(m.created_at)}};
}

nlohmann::json product_json(const services::Product& p) {
  nlohmann::json meta;  // null until published
  if (p.meta) meta = {{"id", p.meta->id}, {"note", p.meta->note}};
  return {{"id", p.row.id},
          {"name", p.row.name},
          {"owner_email", p.row.owner_email},
          {"state", p.row.state},
          {"meta", meta},
          {"created_at", format_rfc3339_ms(p.row.created_at)}};
}

nlohmann::json anagram_group_json(const services::AnagramGroup& g) {
  return {{"key", g.key}, {"words", g.words}};
}

nlohmann::json order_json(const db::OrderRow& o) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& i : o.items) {
    items.push_back(
        {{"sku", i.sku}, {"quantity", i.quantity}, {"unit_price_cents", i.unit_price_cents}});
  }
  return {{"id", o.id},
          {"state", o.state},
          {"email", o.email},
          {"phone", o.phone},
          {"total_cents", o.total_cents},
          {"charge_id", o.charge_id ? nlohmann::json(*o.charge_id) : nlohmann::json()},
          {"items", items},
          {"created_at", format_rfc3339_ms(o.created_at)}};
}

}  // namespace app
