#include "http/stats_view.h"

#include "jobs/job_state.h"

namespace app {

nlohmann::json counts_json(const db::Counts& counts) {
  nlohmann::json by_state = nlohmann::json::object();
  for (jobs::JobState s :
       {jobs::JobState::kAvailable, jobs::JobState::kRunning, jobs::JobState::kRetryable,
        jobs::JobState::kCompleted, jobs::JobState::kDiscarded, jobs::JobState::kCancelled}) {
    by_state[std::string(jobs::to_string(s))] = 0;
  }
  nlohmann::json by_kind = nlohmann::json::array();
  for (const auto& jc : counts.jobs) {
    by_state[jc.state] = by_state.value(jc.state, std::int64_t{0}) + jc.count;
    by_kind.push_back({{"kind", jc.kind}, {"state", jc.state}, {"count", jc.count}});
  }
  return {{"users", counts.users},
          {"user_actions", counts.user_actions},
          {"messages", counts.messages},
          {"jobs", by_state},
          {"jobs_by_kind", by_kind}};
}

}  // namespace app
