#include "db/mailbox.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

// Reads the rows of a statement selecting the columns of Sql::kListMessages.
std::vector<MessageRow> messages_from(Stmt& s) {
  std::vector<MessageRow> out;
  while (s.step()) {
    out.push_back({s.int64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.int64(5), s.int64(6)});
  }
  return out;
}

}  // namespace

core::Status deliver_message(Tx& tx, const NewMessage& m, core::Millis now) {
  {
    auto q = tx.conn().query(Sql::kDeliverMessage);
    q.bind_all(m.channel, m.to, m.subject, m.body, m.job_id, now);
    if (q.exec() == 1) return core::Status::ok();
  }
  // ON CONFLICT (job_id) skipped the insert: it counts as delivered only if
  // the row there is this very message (an earlier run of this job).
  auto q = tx.conn().query(Sql::kSameMessageOfJob);
  q.bind_all(m.channel, m.to, m.subject, m.body, m.job_id);
  if (q.step() && q.int32(0) == 1) return core::Status::ok();
  return core::Status::conflict("the mailbox already holds another message under job id " +
                                std::to_string(m.job_id) +
                                ": this job's message was not delivered");
}

std::vector<MessageRow> list_messages(Conn& conn, const std::string& to) {
  auto q = conn.query(Sql::kListMessages);
  q.bind(1, to);
  return messages_from(q);
}

std::vector<MessageRow> latest_messages(Conn& conn, int limit) {
  auto q = conn.query(Sql::kLatestMessages);
  q.bind(1, limit);
  return messages_from(q);
}

}  // namespace db
