#include "services/email.h"

#include <algorithm>

namespace services {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

}  // namespace

std::optional<std::string> normalize_email(std::string_view raw) {
  while (!raw.empty() && is_space(raw.front())) raw.remove_prefix(1);
  while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
  if (raw.empty() || raw.size() > 254) return std::nullopt;

  std::string email(raw);
  for (char& c : email) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) return std::nullopt;  // ASCII only
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  const auto at = email.find('@');
  if (at == std::string::npos || email.find('@', at + 1) != std::string::npos) return std::nullopt;

  const std::string_view local(email.data(), at);
  const std::string_view domain(email.data() + at + 1, email.size() - at - 1);
  if (local.empty() || local.size() > 64) return std::nullopt;
  // Printable ASCII without space: 0x21..0x7e.
  if (!std::all_of(local.begin(), local.end(), [](char c) { return c >= 0x21 && c <= 0x7e; })) {
    return std::nullopt;
  }
  if (domain.find('.') == std::string_view::npos) return std::nullopt;
  std::size_t start = 0;
  for (;;) {
    const auto dot = domain.find('.', start);
    const auto label =
        domain.substr(start, dot == std::string_view::npos ? domain.npos : dot - start);
    if (!valid_label(label)) return std::nullopt;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return email;
}

}  // namespace services
