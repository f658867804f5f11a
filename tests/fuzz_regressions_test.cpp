// Replays every saved fuzz input (tests/fuzz/regressions/<target>/ and the
// seed corpus tests/fuzz/corpus/<target>/) through the same entry points the
// libFuzzer binaries use (tests/fuzz/targets.h). A broken property aborts the
// suite, as it crashed the fuzzer.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

#include "tests/fuzz/targets.h"

namespace {

namespace fs = std::filesystem;

const fs::path kFuzzDir = fs::path(__FILE__).parent_path() / "fuzz";

int replay(const std::string& target,
           const std::function<void(const std::uint8_t*, std::size_t)>& entry) {
  int replayed = 0;
  for (const char* folder : {"regressions", "corpus"}) {
    const fs::path dir = kFuzzDir / folder / target;
    if (!fs::exists(dir)) continue;
    for (const auto& file : fs::directory_iterator(dir)) {
      if (!file.is_regular_file()) continue;
      CAPTURE(file.path().string());
      std::ifstream in(file.path(), std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  return replayed;
}

}  // namespace

TEST_CASE("every saved JSON body input passes the JSON route checks") {
  CHECK(replay("json_body", fuzz::json_body) >= 4);
}

TEST_CASE("every saved email input passes the email normalization checks") {
  CHECK(replay("email", fuzz::email) >= 2);
}

TEST_CASE("every saved Idempotency-Key input passes the key validation checks") {
  CHECK(replay("idempotency_key", fuzz::idempotency_key) >= 5);
}

TEST_CASE("every saved product body passes the product validation checks") {
  CHECK(replay("product_body", fuzz::product_body) >= 2);
}

TEST_CASE("every saved anagram body passes the word validation checks") {
  CHECK(replay("anagram_body", fuzz::anagram_body) >= 2);
}

TEST_CASE("every saved checkout body passes the checkout validation checks") {
  CHECK(replay("checkout_body", fuzz::checkout_body) >= 2);
}
