#include "db/mailbox.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kDeliverMessage[] =
    "INSERT INTO mailbox (channel, recipient, subject, body, job_id, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (job_id) DO NOTHING";
constexpr char kListMessages[] =
    "SELECT id, channel, recipient, subject, body, job_id, created_at FROM mailbox "
    "WHERE recipient = ?1 ORDER BY id";

}  // namespace

bool deliver_message(Tx& tx, const NewMessage& m, core::Millis now) {
  auto q = tx.conn().query(kDeliverMessage);
  q->bindNoCopy(1, m.channel);
  q->bindNoCopy(2, m.to);
  q->bindNoCopy(3, m.subject);
  q->bindNoCopy(4, m.body);
  q->bind(5, m.job_id);
  q->bind(6, static_cast<std::int64_t>(now));
  return q->exec() == 1;
}

std::vector<MessageRow> list_messages(Conn& conn, const std::string& to) {
  auto q = conn.query(kListMessages);
  q->bindNoCopy(1, to);
  std::vector<MessageRow> out;
  while (q->executeStep()) {
    out.push_back({q->getColumn(0).getInt64(), q->getColumn(1).getString(),
                   q->getColumn(2).getString(), q->getColumn(3).getString(),
                   q->getColumn(4).getString(), q->getColumn(5).getInt64(),
                   q->getColumn(6).getInt64()});
  }
  return out;
}

}  // namespace db
