#include "http/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>

namespace app {

bool needs_admin_token(std::string_view method, std::string_view path) {
  (void)method;  // reads and writes alike
  if (path == "/jobs" || path.rfind("/jobs/", 0) == 0) return true;
  return path == "/metrics" || path == "/api/stats" || path == "/api/audit" ||
         path == "/api/messages" || path == "/api/throughput";
}

std::optional<std::string_view> bearer_token(std::string_view value) {
  auto is_ows = [](char c) { return c == ' ' || c == '\t'; };
  while (!value.empty() && is_ows(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_ows(value.back())) value.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  if (value.front() != ' ') return std::nullopt;  // "Bearerx" is another scheme
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

bool presents_token(std::string_view authorization, const std::string& expected) {
  const auto given = bearer_token(authorization);
  if (!given) return false;
  // Hashing both sides first makes the comparison's time independent of
  // where they differ and of the expected token's length.
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given->data()), given->size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

}  // namespace app
