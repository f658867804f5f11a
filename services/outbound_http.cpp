#include "services/outbound_http.h"

#include <openssl/x509.h>

namespace services {

std::string describe_http_failure(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "no connection could be made (refused, or the host is unreachable)";
    case httplib::Error::ConnectionTimeout:
      return "no connection could be made within the timeout";
    case httplib::Error::Read:
      // cpp-httplib 0.11 also reports a refused connection this way.
      return "no answer came (the connection was refused or closed, or the timeout passed)";
    case httplib::Error::Write:
      return "the request could not be sent (the connection broke or timed out)";
    case httplib::Error::BindIPAddress:
      return "the local address to connect from could not be bound";
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed";
    case httplib::Error::SSLLoadingCerts:
      return "the trusted CA certificates could not be loaded";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate could not be verified";
    case httplib::Error::ExceedRedirectCount:
      return "it redirected too many times";
    case httplib::Error::Canceled:
      return "the request was cancelled";
    case httplib::Error::Compression:
      return "its answer could not be decompressed";
    default:
      return "the HTTP client failed without naming a reason";
  }
}

std::string describe_http_failure(httplib::Error error, const httplib::Client& client) {
  if (error != httplib::Error::SSLServerVerification) return describe_http_failure(error);
  const long result = client.get_openssl_verify_result();
  if (result != X509_V_OK) {
    return "the server's TLS certificate could not be verified (" +
           std::string(X509_verify_cert_error_string(result)) + ")";
  }
  // cpp-httplib checks the host name after the chain verified.
  return "the server's TLS certificate could not be verified (it does not name the host called)";
}

void verify_tls_peer(httplib::Client& client, const std::string& ca_file) {
  client.enable_server_certificate_verification(true);
  // Without a path cpp-httplib 0.11 loads OpenSSL's default verify paths.
  if (!ca_file.empty()) client.set_ca_cert_path(ca_file);
}

}  // namespace services
