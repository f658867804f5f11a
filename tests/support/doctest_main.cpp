// doctest's runner and main(), compiled once for every suite: each suite
// compiling them itself cost ~6.5 s of CPU per suite under the sanitizers
// (37 suites: ~4 min of CPU, ~2 min of a cold `make test` build on 2 cores).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>

#include "tests/support/harness.h"

namespace {

// Tells the harness which doctest suite the starting test case is in, so
// that test_db() can refuse to run in a "variant_independent" one.
struct VariantGuard : doctest::IReporter {
  explicit VariantGuard(const doctest::ContextOptions&) {}
  void test_case_start(const doctest::TestCaseData& tc) override {
    testing::set_in_variant_independent_case(
        tc.m_test_suite != nullptr &&
        std::strcmp(tc.m_test_suite, testing::kVariantIndependent) == 0);
  }
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    testing::set_in_variant_independent_case(false);
  }
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

REGISTER_LISTENER("variant_guard", 1, VariantGuard);
