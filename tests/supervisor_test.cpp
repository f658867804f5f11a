// maintenance::Supervisor: start order, reverse stop order, a failing pass
// logged and survived, cancel() before join, and the wait_for_passes seam.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "maintenance/supervisor.h"

namespace {

using namespace std::chrono_literals;

// Records what happens to it in a journal shared by every service of a test.
class Recording final : public maintenance::Service {
 public:
  Recording(std::string name, std::vector<std::string>& journal, std::mutex& mu,
            bool fails = false)
      : name_(std::move(name)), journal_(journal), mu_(mu), fails_(fails) {}

  std::string_view name() const noexcept override { return name_; }
  core::Millis interval_ms() const noexcept override { return 5; }
  core::Status pass() override {
    note("pass " + name_);
    if (fails_) return core::Status::unavailable("disk gone");
    return core::Status::ok();
  }
  void cancel() noexcept override {
    cancelled = true;
    note("cancel " + name_);
  }
  std::atomic<bool> cancelled{false};

 private:
  void note(const std::string& what) {
    std::lock_guard lock(mu_);
    if (journal_.empty() || journal_.back() != what) journal_.push_back(what);
  }
  std::string name_;
  std::vector<std::string>& journal_;
  std::mutex& mu_;
  bool fails_;
};

}  // namespace

TEST_CASE("services start in the order added and are cancelled in the reverse order") {
  std::vector<std::string> journal;
  std::mutex mu;
  Recording a("a", journal, mu), b("b", journal, mu), c("c", journal, mu);
  maintenance::Supervisor supervisor;
  supervisor.add(a);
  supervisor.add(b);
  supervisor.add(c);
  supervisor.start();
  REQUIRE(supervisor.wait_for_passes("c", 3, 10s));
  supervisor.stop();
  std::vector<std::string> cancels;
  for (const auto& line : journal) {
    if (line.rfind("cancel ", 0) == 0) cancels.push_back(line);
  }
  CHECK(cancels == std::vector<std::string>{"cancel c", "cancel b", "cancel a"});
  // Stopped means joined: no pass after the cancels.
  const std::size_t after_stop = journal.size();
  std::this_thread::sleep_for(30ms);  // several intervals: a live thread would have passed
  CHECK(journal.size() == after_stop);
  CHECK(journal.back() == "cancel a");
}

TEST_CASE("a failing pass is logged and the service keeps its schedule") {
  std::vector<std::string> journal;
  std::mutex mu;
  Recording failing("failing", journal, mu, /*fails=*/true);
  Recording healthy("healthy", journal, mu);
  maintenance::Supervisor supervisor;
  supervisor.add(failing);
  supervisor.add(healthy);
  supervisor.start();
  CHECK(supervisor.wait_for_passes("failing", 4, 10s));
  CHECK(supervisor.wait_for_passes("healthy", 4, 10s));
  supervisor.stop();
  CHECK(supervisor.passes("failing") >= 4);
  CHECK(failing.cancelled);
}

TEST_CASE("wait_for_passes: false for an unknown name and on timeout; start is once") {
  std::vector<std::string> journal;
  std::mutex mu;
  Recording a("a", journal, mu);
  maintenance::Supervisor supervisor;
  supervisor.add(a);
  CHECK_FALSE(supervisor.wait_for_passes("nobody", 1, 1s));
  CHECK_FALSE(supervisor.wait_for_passes("a", 1, 20ms));  // not started: no pass
  CHECK(supervisor.passes("a") == 0);
  supervisor.start();
  CHECK(supervisor.wait_for_passes("a", 2, 10s));
  supervisor.stop();
  const auto passes = supervisor.passes("a");
  supervisor.start();  // after stop(): does nothing
  CHECK_FALSE(supervisor.wait_for_passes("a", passes + 1, 50ms));
}
