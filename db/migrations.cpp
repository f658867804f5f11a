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
    // Products: the state column holds services::ProductState (the CHECK lists
    // the same names); UNIQUE(product_id) on product_meta means a product is
    // published (gets its meta row) at most once, whatever the application
    // does. Anagram words: one row per word, so adding a word never rewrites a
    // row another request wrote; a group is the rows sharing a key.
    {2, "products, product meta and state audit, anagram words", R"sql(
CREATE TABLE products (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  owner_email  TEXT    NOT NULL
               CHECK (length(owner_email) BETWEEN 3 AND 254
                      AND owner_email = lower(trim(owner_email))),
  state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','published')),
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE product_meta (
  id          INTEGER PRIMARY KEY,
  product_id  INTEGER NOT NULL UNIQUE REFERENCES products(id),
  note        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;

-- One row per state change; from_state is NULL for the creation.
CREATE TABLE product_state_changes (
  id          INTEGER PRIMARY KEY,
  product_id  INTEGER NOT NULL REFERENCES products(id),
  from_state  TEXT    CHECK (from_state IN ('pending','published')),
  to_state    TEXT    NOT NULL CHECK (to_state IN ('pending','published')),
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX product_state_changes_by_product ON product_state_changes(product_id, id);

-- A word is its own row (no read-modify-write of a shared group row), and
-- key = its letters sorted. Both CHECKs repeat the validation of
-- services/anagrams.h so that no path can store a word the API would reject.
CREATE TABLE anagram_words (
  word        TEXT    NOT NULL PRIMARY KEY
              CHECK (length(word) BETWEEN 1 AND 64 AND word NOT GLOB '*[^a-z]*'),
  key         TEXT    NOT NULL CHECK (length(key) = length(word)),
  created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX anagram_words_by_key ON anagram_words(key, word);
)sql"},
    {3, "orders, idempotency keys with recovery points, the fake gateway's charges", R"sql(
-- Order lifecycle (services/checkout.h draws it): pending -> paid ->
-- ready_to_ship, or pending -> payment_failed. A charge id exists exactly
-- when the payment went through.
CREATE TABLE orders (
  id             INTEGER PRIMARY KEY,
  state          TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending','paid','payment_failed','ready_to_ship')),
  email          TEXT    NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  phone          TEXT    NOT NULL CHECK (length(phone) BETWEEN 1 AND 32),
  total_cents    INTEGER NOT NULL CHECK (total_cents >= 0),
  payment_token  TEXT    NOT NULL CHECK (length(payment_token) BETWEEN 1 AND 255),
  charge_id      TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  CHECK ((state IN ('paid','ready_to_ship')) = (charge_id IS NOT NULL))
) STRICT;

CREATE TABLE order_items (
  id                INTEGER PRIMARY KEY,
  order_id          INTEGER NOT NULL REFERENCES orders(id),
  sku               TEXT    NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
  quantity          INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  unit_price_cents  INTEGER NOT NULL CHECK (unit_price_cents BETWEEN 0 AND 10000000)
) STRICT;
CREATE INDEX order_items_by_order ON order_items(order_id, id);

-- The order audit log: each transition happens once.
CREATE TABLE order_actions (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  action      TEXT    NOT NULL
              CHECK (action IN ('created','paid','payment_failed','ready_to_ship')),
  detail      TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX order_actions_once ON order_actions(order_id, action);

-- One row per (client scope, Idempotency-Key). Single-phase writes insert it
-- already `finished`, in the request's own transaction. Checkout moves it
-- started -> order_created -> finished, one transaction per phase. A stored
-- response exists exactly when the key is finished; a finished key is never
-- locked.
CREATE TABLE idempotency_keys (
  id                     INTEGER PRIMARY KEY,
  scope                  TEXT    NOT NULL CHECK (length(scope) BETWEEN 1 AND 128),
  key                    TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  method                 TEXT    NOT NULL,
  path                   TEXT    NOT NULL,
  fingerprint            TEXT    NOT NULL CHECK (length(fingerprint) = 64),
  recovery_point         TEXT    NOT NULL
                         CHECK (recovery_point IN ('started','order_created','finished')),
  locked_at              INTEGER,
  order_id               INTEGER REFERENCES orders(id),
  response_status        INTEGER CHECK (response_status BETWEEN 100 AND 599),
  response_content_type  TEXT,
  response_headers       TEXT    CHECK (response_headers IS NULL OR json_valid(response_headers)),
  response_body          TEXT,
  created_at             INTEGER NOT NULL,
  last_run_at            INTEGER NOT NULL,
  UNIQUE (scope, key),
  CHECK ((recovery_point = 'finished') = (response_status IS NOT NULL)),
  CHECK (recovery_point <> 'finished' OR locked_at IS NULL),
  CHECK (recovery_point <> 'order_created' OR order_id IS NOT NULL)
) STRICT;
CREATE INDEX idempotency_keys_unfinished ON idempotency_keys(last_run_at)
  WHERE recovery_point <> 'finished';
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);

-- The fake payment gateway's own table (app/fake_gateway.h): one charge per
-- gateway idempotency key, whatever its outcome.
CREATE TABLE gateway_charges (
  id               INTEGER PRIMARY KEY,
  charge_id        TEXT    NOT NULL UNIQUE,
  idempotency_key  TEXT    NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 512),
  amount_cents     INTEGER NOT NULL CHECK (amount_cents >= 0),
  token            TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('succeeded','declined')),
  created_at       INTEGER NOT NULL
) STRICT;
)sql"},
    // Per-kind defaults the Registry writes at start-up so that every staging
    // path (db::stage_job from any service) picks them up; a per-job timeout;
    // a serial key (jobs sharing one run one at a time, in id order); and the
    // cleaner's index over finished jobs.
    {4, "job kinds, timeouts, serial keys, retention index", R"sql(
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
