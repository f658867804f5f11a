// testing::TestPki: a throwaway certificate authority made in the test with
// the OpenSSL API (P-256 keys, milliseconds to make), and server certificates
// it signs, written as PEM files into the test's temporary directory. Each
// certificate picks its names (subjectAltName), its validity window relative
// to now (to make expired and not-yet-valid ones) and its serial.
#pragma once

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>

namespace testing {

struct Pem {
  std::string cert;  // path of the certificate's PEM file
  std::string key;   // path of its private key's PEM file
};

struct CertSpec {
  std::string common_name = "localhost";
  std::string alt_names = "DNS:localhost,IP:127.0.0.1";  // subjectAltName
  long not_before_s = -3600;                             // relative to now
  long not_after_s = 86400;
  long serial = 1001;
};

class TestPki {
 public:
  // Makes the CA (ca.crt, ca.key) in `dir`.
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {
    ca_key_ = make_key();
    ca_.reset(X509_new());
    fill(ca_.get(), "aftercommit test CA", 1, -3600, 2 * 86400);
    X509_set_issuer_name(ca_.get(), X509_get_subject_name(ca_.get()));
    X509_set_pubkey(ca_.get(), ca_key_.get());
    extend(ca_.get(), ca_.get(), NID_basic_constraints, "critical,CA:TRUE");
    extend(ca_.get(), ca_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    REQUIRE(X509_sign(ca_.get(), ca_key_.get(), EVP_sha256()) > 0);
    ca_path_ = dir_ + "/ca.crt";
    write_cert(ca_path_, ca_.get());
  }

  const std::string& ca_cert() const { return ca_path_; }

  // A server certificate signed by the CA, as <name>.crt and <name>.key.
  Pem issue(const std::string& name, const CertSpec& spec = {}) {
    Key key = make_key();
    Cert cert(X509_new());
    fill(cert.get(), spec.common_name, spec.serial, spec.not_before_s, spec.not_after_s);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_.get()));
    X509_set_pubkey(cert.get(), key.get());
    extend(cert.get(), ca_.get(), NID_basic_constraints, "critical,CA:FALSE");
    extend(cert.get(), ca_.get(), NID_ext_key_usage, "serverAuth");
    if (!spec.alt_names.empty()) {
      extend(cert.get(), ca_.get(), NID_subject_alt_name, spec.alt_names);
    }
    REQUIRE(X509_sign(cert.get(), ca_key_.get(), EVP_sha256()) > 0);
    Pem pem{dir_ + "/" + name + ".crt", dir_ + "/" + name + ".key"};
    write_cert(pem.cert, cert.get());
    write_key(pem.key, key.get());
    return pem;
  }

  // Only a private key (which matches no certificate), as <name>.key.
  std::string lone_key(const std::string& name) {
    Key key = make_key();
    const std::string path = dir_ + "/" + name + ".key";
    write_key(path, key.get());
    return path;
  }

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  struct CertFree {
    void operator()(X509* x) const { X509_free(x); }
  };
  using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
  using Cert = std::unique_ptr<X509, CertFree>;

  static Key make_key() {
    Key key(EVP_EC_gen("P-256"));
    REQUIRE(key);
    return key;
  }

  static void fill(X509* x, const std::string& cn, long serial, long not_before_s,
                   long not_after_s) {
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(x), not_after_s);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  }

  static void extend(X509* x, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    REQUIRE(ext != nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }

  static void write_cert(const std::string& path, X509* x) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, x);
    std::fclose(f);
  }

  static void write_key(const std::string& path, EVP_PKEY* k) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }

  std::string dir_;
  Key ca_key_;
  Cert ca_;
  std::string ca_path_;
};

}  // namespace testing
