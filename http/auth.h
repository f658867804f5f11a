// The admin token: which routes it guards, and how a request presents it.
//
// With --admin-token set, every route that shows job data or operational
// data needs "Authorization: Bearer <token>", else 401:
//   - every /jobs route, reads too (job arguments hold emails, phone
//     numbers and webhook payloads), and POST /jobs/retry;
//   - GET /metrics;
//   - the dashboard's data routes: GET /api/stats, /api/audit, /api/messages,
//     /api/throughput.
// What stays open: GET /healthz, /openapi.json, the dashboard's page and its
// static files (they hold no data; the page asks for the token), and the
// business API (users, products, anagrams, checkout, orders, mailbox), whose
// reads need an id or an address the caller already has.
//
// The Authorization header is read per RFC 9110 §11.4 / RFC 6750 §2.1:
// credentials = auth-scheme 1*SP token; the scheme is case-insensitive
// (§11.1), so "bearer", "BEARER" and "Bearer" with one or more spaces are
// the same. The token is compared in constant time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace app {

// True when `method path` is a route the admin token guards (above).
[[nodiscard]] bool needs_admin_token(std::string_view method, std::string_view path);

// The token of an "Authorization" header value using the Bearer scheme, or
// nullopt (another scheme, no token, or a malformed value).
[[nodiscard]] std::optional<std::string_view> bearer_token(std::string_view authorization);

// True when `authorization` presents exactly `expected` as a Bearer token.
// `expected` must not be empty.
[[nodiscard]] bool presents_token(std::string_view authorization, const std::string& expected);

}  // namespace app
