// Email normalization and validation, per API.md "Users".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace services {

// Trims ASCII white space and lower-cases. Returns the normalized address, or
// nullopt when it breaks a rule: ASCII only, at most 254 characters, exactly
// one '@', a non-empty local part of at most 64 printable characters without
// spaces, and a domain of at least two dot-separated labels, each of letters,
// digits and inner hyphens.
std::optional<std::string> normalize_email(std::string_view raw);

}  // namespace services
