#include "maintenance/supervisor.h"

#include "core/log.h"

namespace maintenance {

void Supervisor::add(Service& service) {
  auto entry = std::make_unique<Entry>();
  entry->service = &service;
  entries_.push_back(std::move(entry));
}

void Supervisor::start() {
  if (state_ != State::kNew) return;
  state_ = State::kRunning;
  if (leader_ != nullptr) elector_.start(elect_interval_ms_, [this] { lead(); });
  for (auto& entry : entries_) {
    Entry* e = entry.get();
    e->loop.start(e->service->interval_ms(), [this, e] { run_pass(*e); });
  }
}

void Supervisor::stop() {
  if (state_ != State::kRunning) return;
  state_ = State::kStopped;
  // First no service begins another pass, then each is cancelled and joined
  // in reverse order: a service stopped last does not start a pass while an
  // earlier one is being joined.
  for (auto& entry : entries_) entry->loop.request_stop();
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    (*it)->service->cancel();
    (*it)->loop.stop();
  }
  elector_.stop();
}

bool Supervisor::lead() {
  const bool held = leader_->held();
  std::lock_guard lock(mu_);
  if (held != leading_) {
    leading_ = held;
    if (held) {
      core::log::info("leader_elected", {{"detail", "this process runs the leader-only services"}});
    } else {
      core::log::warn("leader_lost", {{"detail", "another process runs the leader-only services"}});
    }
  }
  return held;
}

bool Supervisor::leading() const {
  if (leader_ == nullptr) return true;
  std::lock_guard lock(mu_);
  return leading_;
}

void Supervisor::run_pass(Entry& entry) {
  if (leader_ != nullptr && entry.service->leader_only() && !lead()) return;
  const core::Status st = entry.service->pass();
  if (!st) {
    core::log::warn("service_failed", {{"service", entry.service->name()},
                                       {"code", core::code_name(st.code())},
                                       {"error", st.message()}});
  }
  {
    std::lock_guard lock(mu_);
    ++entry.passes;
  }
  passed_.notify_all();
}

bool Supervisor::wait_for_passes(std::string_view name, std::uint64_t count,
                                 std::chrono::milliseconds timeout) {
  Entry* entry = nullptr;
  for (auto& e : entries_) {
    if (e->service->name() == name) entry = e.get();
  }
  if (!entry) return false;
  std::unique_lock lock(mu_);
  return passed_.wait_for(lock, timeout, [&] { return entry->passes >= count; });
}

std::uint64_t Supervisor::passes(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e->service->name() == name) return e->passes;
  }
  return 0;
}

}  // namespace maintenance
