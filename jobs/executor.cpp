#include "jobs/executor.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <thread>

namespace jobs {
namespace {

// The handler's `apply`, if it has one, inside `tx`. A
// nlohmann::json::exception is bad arguments, which no retry can fix.
core::Status apply_effect(const Handler& handler, const Job& job, db::Tx& tx, core::Millis now) {
  if (!handler.apply) return core::Status::ok();
  try {
    return handler.apply(job, tx, now);
  } catch (const nlohmann::json::exception& e) {
    return do_not_retry(std::string("bad args: ") + e.what());
  }
}

}  // namespace

bool discards(const core::Status& failure, int attempt, int max_attempts) noexcept {
  return !is_retryable(failure) || attempt >= max_attempts;
}

core::Millis Backoff::jittered_delay_ms(int attempt) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return delay_ms(attempt, unit(rng));
}

Executor::Executor(db::Database& db, const Registry& registry, const core::Clock& clock,
                   Backoff backoff, core::Millis test_delay_ms)
    : db_(db),
      registry_(registry),
      clock_(clock),
      backoff_(backoff),
      test_delay_ms_(test_delay_ms) {}

Executor::Decoded Executor::decode(const db::JobRow& row, int attempt) const {
  Decoded d{Job{row.id, row.kind, attempt, row.max_attempts, {}, row.created_at},
            registry_.find(row.kind), core::Status::ok()};
  if (d.handler == nullptr) {
    d.status = core::Status::internal("no handler registered for kind '" + row.kind + "'");
    return d;
  }
  d.job.args = nlohmann::json::parse(row.args_json, nullptr, /*allow_exceptions=*/false);
  if (d.job.args.is_discarded()) d.status = do_not_retry("args are not valid JSON");
  return d;
}

void Executor::run_claimed(const db::JobRow& row, core::Millis claimed_at) {
  const std::int64_t started_us = core::monotonic_us();
  if (test_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(test_delay_ms_));
  Decoded d = decode(row, row.attempt);
  const Job& job = d.job;
  core::Status st = d.status;
  const KindOptions* kind = registry_.options(row.kind);
  const core::Millis timeout_ms = row.timeout_ms.value_or(kind ? kind->timeout_ms : 0);
  {
    std::lock_guard lock(mu_);
    in_flight_[job.id] = InFlight{job.attempt, row.max_attempts, timeout_ms,
                                  timeout_ms > 0 ? clock_.now_ms() + timeout_ms : 0, false};
  }
  // perform: outside any transaction. Exceptions from handlers are failures.
  if (st && d.handler->perform) {
    try {
      st = d.handler->perform(job);
    } catch (const nlohmann::json::exception& e) {
      st = do_not_retry(std::string("bad args: ") + e.what());
    } catch (const std::exception& e) {
      st = core::Status::internal(std::string("handler threw: ") + e.what());
    }
  }
  // apply + complete in one transaction: both or neither.
  bool claim_lost = false;
  if (st) {
    st = db_.write([&](db::Tx& tx) {
      const core::Millis now = clock_.now_ms();
      if (core::Status applied = apply_effect(*d.handler, job, tx, now); !applied) return applied;
      if (!db::complete_job(tx, job.id, job.attempt, now)) {
        // The claim was lost (timed out, or rescued and maybe taken again):
        // roll the effect back.
        claim_lost = true;
        return core::Status::conflict("claim of attempt " + std::to_string(job.attempt) +
                                      " was lost");
      }
      return core::Status::ok();
    });
  }
  if (!st && !claim_lost) {
    const core::Millis now = clock_.now_ms();
    const bool discard = discards(st, job.attempt, row.max_attempts);
    const core::Millis retry_at = now + backoff_.jittered_delay_ms(job.attempt);
    core::Status failed = db_.write([&](db::Tx& tx) {
      // Fenced: refused when the attempt timed out or was rescued meanwhile.
      db::fail_job(tx, job.id, job.attempt, st.message(), now, retry_at, discard);
      return core::Status::ok();
    });
    (void)failed;  // if even this fails, the lease expires and the rescuer retries the job
  }
  {
    std::lock_guard lock(mu_);
    in_flight_.erase(job.id);
  }
  if (observer_) {
    observer_(AttemptEvent{&job, st.is_ok(), st.message(), claimed_at - row.created_at,
                           core::monotonic_us() - started_us});
  }
}

void Executor::run_unclaimed(db::Tx& tx, const std::vector<db::JobRow>& rows, core::Millis now) {
  if (rows.empty()) return;
  const std::int64_t started_us = core::monotonic_us();
  struct Outcome {
    Job job;
    core::Status status;
  };
  auto outcomes = std::make_shared<std::vector<Outcome>>();
  outcomes->reserve(rows.size());
  // Kinds with no apply have nothing to undo: no savepoint each, and their
  // completions go in one statement after the loop. A savepoint per job was
  // a round trip and a subtransaction each on PostgreSQL; past 64 in one
  // transaction its subtransaction cache overflows, and the snapshots other
  // sessions take meanwhile must look ids up in pg_subtrans
  // (https://www.postgresql.org/docs/current/subxacts.html).
  std::vector<std::pair<std::int64_t, int>> plain;  // (id, attempt)
  std::vector<std::size_t> plain_outcome;           // their index in *outcomes
  for (const db::JobRow& row : rows) {
    const int attempt = row.attempt + 1;
    Decoded d = decode(row, attempt);
    if (d.status && !d.handler->apply) {
      plain.emplace_back(row.id, attempt);
      plain_outcome.push_back(outcomes->size());
      outcomes->push_back(Outcome{std::move(d.job), core::Status::ok()});
      continue;
    }
    if (d.status) {
      d.status = tx.nested([&] {
        if (core::Status applied = apply_effect(*d.handler, d.job, tx, now); !applied) {
          return applied;
        }
        if (!db::complete_unclaimed_job(tx, row.id, attempt, now)) {
          return core::Status::conflict("job " + std::to_string(row.id) + " changed while it ran");
        }
        return core::Status::ok();
      });
    }
    if (!d.status) {
      db::fail_unclaimed_job(tx, row.id, attempt, d.status.message(), now,
                             now + backoff_.jittered_delay_ms(attempt),
                             discards(d.status, attempt, row.max_attempts));
    }
    outcomes->push_back(Outcome{std::move(d.job), std::move(d.status)});
  }
  if (!plain.empty()) {
    std::vector<std::int64_t> completed = db::complete_unclaimed_jobs(tx, plain, now);
    std::sort(completed.begin(), completed.end());
    for (std::size_t i = 0; i < plain.size(); ++i) {
      if (std::binary_search(completed.begin(), completed.end(), plain[i].first)) continue;
      (*outcomes)[plain_outcome[i]].status =
          core::Status::conflict("job " + std::to_string(plain[i].first) + " changed while it ran");
    }
  }
  if (observer_) {
    tx.after_commit([this, outcomes, now, started_us] {
      const std::int64_t duration_us = core::monotonic_us() - started_us;
      for (const Outcome& o : *outcomes) {
        observer_(AttemptEvent{&o.job, o.status.is_ok(), o.status.message(), now - o.job.created_at,
                               duration_us});
      }
    });
  }
}

std::vector<std::pair<std::int64_t, InFlight>> Executor::in_flight() const {
  std::vector<std::pair<std::int64_t, InFlight>> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, f] : in_flight_) {
    if (!f.timed_out) out.emplace_back(id, f);
  }
  return out;
}

core::Millis Executor::nearest_deadline() const {
  core::Millis nearest = 0;
  std::lock_guard lock(mu_);
  for (const auto& [id, f] : in_flight_) {
    if (f.deadline > 0 && !f.timed_out && (nearest == 0 || f.deadline < nearest)) {
      nearest = f.deadline;
    }
  }
  return nearest;
}

void Executor::mark_timed_out(const std::vector<std::int64_t>& ids) {
  std::lock_guard lock(mu_);
  for (std::int64_t id : ids) {
    auto it = in_flight_.find(id);
    if (it != in_flight_.end()) it->second.timed_out = true;
  }
}

}  // namespace jobs
