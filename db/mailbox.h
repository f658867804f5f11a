// The mailbox: where the demo's side effects (emails, SMS) land.
// UNIQUE(job_id) makes delivery idempotent per job: a job id names one job
// for ever (jobs is AUTOINCREMENT, schema 5), so the row under it is that
// job's message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace db {

class Conn;
class Tx;

struct NewMessage {
  std::string channel;  // "email" or "sms"
  std::string to;
  std::string subject;
  std::string body;
  std::int64_t job_id = 0;
};

struct MessageRow {
  std::int64_t id = 0;
  std::string channel;
  std::string to;
  std::string subject;
  std::string body;
  std::int64_t job_id = 0;
  core::Millis created_at = 0;
};

// Inserts the message unless this job already delivered it. ok when it is
// in the mailbox now (inserted, or already there from an earlier run of the
// same job); kConflict when the row under this job_id holds another message:
// then job_id does not identify this job (an id reused after its job was
// deleted), and the job must not count as done. Job ids are never reused
// (schema 5), so this is a guard, not a path.
[[nodiscard]] core::Status deliver_message(Tx& tx, const NewMessage& message, core::Millis now);
// Oldest first.
std::vector<MessageRow> list_messages(Conn& conn, const std::string& to);
// Every recipient, newest first, at most `limit` (the dashboard).
std::vector<MessageRow> latest_messages(Conn& conn, int limit);

}  // namespace db
