// The outbound HTTP client's shared pieces, used by the gateway client
// (services/payment_gateway) and the webhook client (workers/webhooks), the
// two places outside http/ that speak HTTP: what a call that got no answer
// ran into, in words an operator reads in a job's errors or a 503's detail
// (instead of cpp-httplib's enum names, "Read", "Connection"), and how every
// outbound https:// call verifies its peer.
#pragma once

#include <httplib.h>

#include <string>

namespace services {

// A clause that completes "calling X failed: ..." (e.g. "no connection
// could be made (refused, or the host is unreachable)").
[[nodiscard]] std::string describe_http_failure(httplib::Error error);
// The same, for a call made with `client`: a certificate that failed
// verification says why (expired, unknown issuer, not for this host).
[[nodiscard]] std::string describe_http_failure(httplib::Error error,
                                                const httplib::Client& client);

// Outbound https:// calls verify the server: its certificate chain against
// the system's CA store (OpenSSL's default paths: /etc/ssl/certs on Debian),
// or only against the PEM certificates in `ca_file` (--ca-file) when set, and
// its name against the host called. A certificate that fails is
// Error::SSLServerVerification, retried like any network error.
void verify_tls_peer(httplib::Client& client, const std::string& ca_file);

}  // namespace services
