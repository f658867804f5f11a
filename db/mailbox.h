// The mailbox: where the demo's side effects (emails, SMS) land.
// UNIQUE(job_id) makes delivery idempotent per job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"

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

// Inserts the message unless this job already delivered one. Returns whether
// it inserted.
bool deliver_message(Tx& tx, const NewMessage& message, core::Millis now);
// Oldest first.
std::vector<MessageRow> list_messages(Conn& conn, const std::string& to);
// Every recipient, newest first, at most `limit` (the dashboard).
std::vector<MessageRow> latest_messages(Conn& conn, int limit);

}  // namespace db
