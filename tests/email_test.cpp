// Email normalization and validation: every rule of API.md "Users".
#include <doctest/doctest.h>

#include <string>

#include "services/email.h"

using services::normalize_email;

TEST_CASE("trims and lower-cases before use") {
  CHECK(normalize_email("  Jane@Example.COM \t") == std::optional<std::string>("jane@example.com"));
  CHECK(normalize_email("a.b+tag@sub.example.org") ==
        std::optional<std::string>("a.b+tag@sub.example.org"));
}

TEST_CASE("accepts the limits exactly and rejects one past them") {
  const std::string local64(64, 'a');
  CHECK(normalize_email(local64 + "@example.com").has_value());
  CHECK_FALSE(normalize_email(local64 + "a@example.com").has_value());

  // 254 characters in all: 1 + '@' + domain of 252.
  std::string domain;
  while (domain.size() < 248) domain += "abcdefghi.";
  domain.resize(248);
  domain += ".com";  // 252
  REQUIRE(domain.size() == 252);
  const std::string at254 = "a@" + domain;
  REQUIRE(at254.size() == 254);
  CHECK(normalize_email(at254).has_value());
  CHECK_FALSE(normalize_email("ab@" + domain).has_value());  // 255
}

TEST_CASE("requires exactly one @ and a non-empty local part") {
  CHECK_FALSE(normalize_email("jane.example.com").has_value());
  CHECK_FALSE(normalize_email("jane@@example.com").has_value());
  CHECK_FALSE(normalize_email("ja@ne@example.com").has_value());
  CHECK_FALSE(normalize_email("@example.com").has_value());
  CHECK_FALSE(normalize_email("").has_value());
  CHECK_FALSE(normalize_email("   ").has_value());
}

TEST_CASE("rejects spaces and control characters in the local part") {
  CHECK_FALSE(normalize_email("ja ne@example.com").has_value());
  CHECK_FALSE(normalize_email(std::string("ja\x01ne@example.com")).has_value());
  CHECK_FALSE(normalize_email("ja\x7fne@example.com").has_value());
}

TEST_CASE("rejects anything that is not ASCII, including look-alikes") {
  CHECK_FALSE(normalize_email("jos\xc3\xa9@example.com").has_value());       // é
  CHECK_FALSE(normalize_email("jane@ex\xd0\xb0mple.com").has_value());       // Cyrillic а
  CHECK_FALSE(normalize_email("jane@example.com\xef\xbc\x8e").has_value());  // fullwidth dot
}

TEST_CASE("requires a domain of dot-separated labels with inner hyphens only") {
  CHECK(normalize_email("x@my-host.example.com").has_value());
  CHECK(normalize_email("x@123.45.io").has_value());
  CHECK_FALSE(normalize_email("x@localhost").has_value());     // no dot
  CHECK_FALSE(normalize_email("x@.example.com").has_value());  // empty label
  CHECK_FALSE(normalize_email("x@example..com").has_value());
  CHECK_FALSE(normalize_email("x@example.com.").has_value());
  CHECK_FALSE(normalize_email("x@-example.com").has_value());
  CHECK_FALSE(normalize_email("x@example-.com").has_value());
  CHECK_FALSE(normalize_email("x@exa_mple.com").has_value());
  CHECK_FALSE(normalize_email("x@exa mple.com").has_value());
  CHECK_FALSE(normalize_email("x@[127.0.0.1]").has_value());
}
