#include "db/mailbox.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kDeliverMessage[] =
    "INSERT INTO mailbox (channel, recipient, subject, body, job_id, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (job_id) DO NOTHING";
constexpr char kSameMessageOfJob[] =
    "SELECT channel = ?1 AND recipient = ?2 AND subject = ?3 AND body = ?4 FROM mailbox "
    "WHERE job_id = ?5";
constexpr char kListMessages[] =
    "SELECT id, channel, recipient, subject, body, job_id, created_at FROM mailbox "
    "WHERE recipient = ?1 ORDER BY id";
constexpr char kLatestMessages[] =
    "SELECT id, channel, recipient, subject, body, job_id, created_at FROM mailbox "
    "ORDER BY id DESC LIMIT ?1";

// Reads the rows of a statement selecting the columns of kListMessages.
std::vector<MessageRow> messages_from(SQLite::Statement& s) {
  std::vector<MessageRow> out;
  while (s.executeStep()) {
    out.push_back({s.getColumn(0).getInt64(), s.getColumn(1).getString(),
                   s.getColumn(2).getString(), s.getColumn(3).getString(),
                   s.getColumn(4).getString(), s.getColumn(5).getInt64(),
                   s.getColumn(6).getInt64()});
  }
  return out;
}

}  // namespace

core::Status deliver_message(Tx& tx, const NewMessage& m, core::Millis now) {
  {
    auto q = tx.conn().query(kDeliverMessage);
    q->bindNoCopy(1, m.channel);
    q->bindNoCopy(2, m.to);
    q->bindNoCopy(3, m.subject);
    q->bindNoCopy(4, m.body);
    q->bind(5, m.job_id);
    q->bind(6, static_cast<std::int64_t>(now));
    if (q->exec() == 1) return core::Status::ok();
  }
  // ON CONFLICT (job_id) skipped the insert: it counts as delivered only if
  // the row there is this very message (an earlier run of this job).
  auto q = tx.conn().query(kSameMessageOfJob);
  q->bindNoCopy(1, m.channel);
  q->bindNoCopy(2, m.to);
  q->bindNoCopy(3, m.subject);
  q->bindNoCopy(4, m.body);
  q->bind(5, m.job_id);
  if (q->executeStep() && q->getColumn(0).getInt() == 1) return core::Status::ok();
  return core::Status::conflict("the mailbox already holds another message under job id " +
                                std::to_string(m.job_id) +
                                ": this job's message was not delivered");
}

std::vector<MessageRow> list_messages(Conn& conn, const std::string& to) {
  auto q = conn.query(kListMessages);
  q->bindNoCopy(1, to);
  return messages_from(*q);
}

std::vector<MessageRow> latest_messages(Conn& conn, int limit) {
  auto q = conn.query(kLatestMessages);
  q->bind(1, limit);
  return messages_from(*q);
}

}  // namespace db
