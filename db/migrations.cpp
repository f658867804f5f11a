#include "db/migrations.h"

#include <stdexcept>
#include <string>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// The schema enforces the invariants: unique normalized email, one `created`
// audit row per user, job states and their finished_at, one mailbox message
// per job. Times are INTEGER milliseconds since the Unix epoch, UTC.
constexpr Migration kMigrations[] = {
    {1, "users, audit log, staged jobs, mailbox", R"sql(
CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  email       TEXT    NOT NULL UNIQUE
              CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(trim(email))),
  created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE user_actions (
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id),
  action      TEXT    NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX user_actions_by_user ON user_actions(user_id, id);
-- A user is created once, so it has at most one `created` row.
CREATE UNIQUE INDEX user_actions_one_created ON user_actions(user_id) WHERE action = 'created';

CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY,
  kind          TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  state         TEXT    NOT NULL DEFAULT 'available'
                CHECK (state IN ('available','running','retryable','completed','discarded','cancelled')),
  args          TEXT    NOT NULL CHECK (json_valid(args)),
  priority      INTEGER NOT NULL DEFAULT 0,
  attempt       INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts  INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  run_at        INTEGER NOT NULL,
  created_at    INTEGER NOT NULL,
  attempted_at  INTEGER,
  lease_until   INTEGER,
  finished_at   INTEGER,
  errors        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(errors)),
  unique_key    TEXT,
  CHECK ((state IN ('completed','discarded','cancelled')) = (finished_at IS NOT NULL)),
  CHECK ((state = 'running') = (lease_until IS NOT NULL))
) STRICT;
-- Claim order: priority, then run_at, then id, over runnable rows only.
CREATE INDEX jobs_claimable ON jobs(priority, run_at, id) WHERE state IN ('available','retryable');
CREATE INDEX jobs_running_lease ON jobs(lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_state_kind ON jobs(state, kind, id);
-- A unique key is held while its job is not finished.
CREATE UNIQUE INDEX jobs_unique_key ON jobs(unique_key)
  WHERE unique_key IS NOT NULL AND state NOT IN ('completed','discarded','cancelled');

-- Where the demo's side effects land. UNIQUE(job_id): a job delivers at most
-- one message however often it runs. No foreign key to jobs: the cleaner may
-- delete finished jobs long after their message was delivered.
CREATE TABLE mailbox (
  id          INTEGER PRIMARY KEY,
  channel     TEXT    NOT NULL CHECK (channel IN ('email','sms')),
  recipient   TEXT    NOT NULL CHECK (length(recipient) BETWEEN 1 AND 254),
  subject     TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  job_id      INTEGER NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX mailbox_by_recipient ON mailbox(recipient, id);
)sql"},
    // Per-kind defaults the Registry writes at start-up so that every staging
    // path (db::stage_job from any service) picks them up; a per-job timeout;
    // a serial key (jobs sharing one run one at a time, in id order); and the
    // cleaner's index over finished jobs.
    {2, "job kinds, timeouts, serial keys, retention index", R"sql(
CREATE TABLE job_kinds (
  kind          TEXT    PRIMARY KEY CHECK (length(kind) BETWEEN 1 AND 64),
  max_attempts  INTEGER NOT NULL CHECK (max_attempts >= 1),
  timeout_ms    INTEGER CHECK (timeout_ms IS NULL OR timeout_ms > 0)
) STRICT;
ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER CHECK (timeout_ms IS NULL OR timeout_ms > 0);
ALTER TABLE jobs ADD COLUMN serial_key TEXT;
-- The unfinished jobs of one serial key, oldest first: a job is claimable
-- only when no older job with its key is unfinished.
CREATE INDEX jobs_serial ON jobs(serial_key, id)
  WHERE serial_key IS NOT NULL AND state IN ('available','running','retryable');
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
)sql"},
};

}  // namespace

int latest_schema_version() noexcept {
  return kMigrations[std::size(kMigrations) - 1].version;
}

void apply_migrations(Tx& tx, int from, int to) {
  if (to > latest_schema_version()) throw std::logic_error("migration target beyond latest");
  for (const Migration& m : kMigrations) {
    if (m.version <= from || m.version > to) continue;
    tx.conn().exec(m.sql);
    tx.conn().exec("PRAGMA user_version = " + std::to_string(m.version));
  }
}

}  // namespace db
