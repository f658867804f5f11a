// maintenance::Supervisor: start order, reverse stop order, a failing pass
// logged and survived, cancel() before join, and the wait_for_passes seam.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "db/sqlite/file_leader.h"
#include "maintenance/supervisor.h"
#include "tests/support/harness.h"

namespace {

using namespace std::chrono_literals;

// Records what happens to it in a journal shared by every service of a test.
class Recording final : public maintenance::Service {
 public:
  Recording(std::string name, std::vector<std::string>& journal, std::mutex& mu, bool fails = false,
            bool leader_only = false)
      : name_(std::move(name)),
        journal_(journal),
        mu_(mu),
        fails_(fails),
        leader_only_(leader_only) {}

  std::string_view name() const noexcept override { return name_; }
  bool leader_only() const noexcept override { return leader_only_; }
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
  bool leader_only_;
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
  // Stopped means joined: no pass after stop() returned.
  const std::size_t after_stop = journal.size();
  std::this_thread::sleep_for(30ms);  // several intervals: a live thread would have passed
  CHECK(journal.size() == after_stop);
  // After its cancel a service begins at most one pass: the one whose thread
  // had already woken when stop() began (seen under ctest -j4). The schedule
  // stops before any cancel, so none begins later.
  for (const std::string name : {"a", "b", "c"}) {
    const auto cancel = std::find(journal.begin(), journal.end(), "cancel " + name);
    REQUIRE(cancel != journal.end());
    CHECK(std::count(cancel, journal.end(), "pass " + name) <= 1);
  }
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

TEST_CASE("one file leader lock at a time is held, and resigning hands it over") {
  testing::TempDir dir;
  auto first = db::sqlite::FileLeader::open(dir.file("db.leader"));
  auto second = db::sqlite::FileLeader::open(dir.file("db.leader"));
  REQUIRE(first);
  REQUIRE(second);
  CHECK((*first)->held());
  CHECK_FALSE((*second)->held());
  CHECK((*first)->held());  // asked again: still the leader
  (*first)->resign();
  CHECK((*second)->held());
  CHECK_FALSE((*first)->held());
  second->reset();  // closing the file (as a process death does) releases it
  CHECK((*first)->held());
}

TEST_CASE("leader-only services run only in the process that holds the leader lock") {
  testing::TempDir dir;
  auto other = db::sqlite::FileLeader::open(dir.file("db.leader"));
  auto mine = db::sqlite::FileLeader::open(dir.file("db.leader"));
  REQUIRE(other);
  REQUIRE(mine);
  REQUIRE((*other)->held());  // another process leads

  std::vector<std::string> journal;
  std::mutex mu;
  Recording everywhere("everywhere", journal, mu);
  Recording leader_only("leader_only", journal, mu, /*fails=*/false, /*leader_only=*/true);
  maintenance::Supervisor supervisor(mine->get());
  supervisor.add(everywhere);
  supervisor.add(leader_only);
  supervisor.start();
  REQUIRE(supervisor.wait_for_passes("everywhere", 5, 10s));
  CHECK(supervisor.passes("leader_only") == 0);
  CHECK_FALSE(supervisor.leading());

  (*other)->resign();  // the leader shuts down: this process takes over
  CHECK(supervisor.wait_for_passes("leader_only", 3, 10s));
  CHECK(supervisor.leading());
  supervisor.stop();
}

namespace {

// A lock that is always free, counting how often it is asked.
class CountingLock final : public db::LeaderLock {
 public:
  bool held() override {
    asks.fetch_add(1);
    return true;
  }
  void resign() noexcept override {}
  std::atomic<int> asks{0};
};

}  // namespace

TEST_CASE("the elector keeps asking the leader lock while no leader-only service passes") {
  // A PostgreSQL lease lapses unless renewed: the leader must ask its lock
  // within every lease even when its services sleep for longer (minutes by
  // default), and a follower must take a lapsed one without waiting for a
  // service's pass.
  CountingLock lock;
  maintenance::Supervisor supervisor(&lock, /*elect_interval_ms=*/5);
  supervisor.start();
  CHECK(testing::eventually([&] { return lock.asks.load() >= 5; }));
  CHECK(supervisor.leading());
  supervisor.stop();
}
