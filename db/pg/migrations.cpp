#include "db/pg/migrations.h"

#include <iterator>
#include <sstream>
#include <stdexcept>

namespace db::pg {
namespace {

struct Migration {
  int version;
  const char* name;
  const char* sql;
  // The tables this version must have (check_schema_is_ours).
  const char* tables;
};

// The same tables, constraints and partial unique indexes as the SQLite
// schema at version 7 (db/sqlite/migrations.cpp, where each one's reason is
// written), in PostgreSQL's dialect:
// - ids are bigint GENERATED ALWAYS AS IDENTITY: a sequence never hands an
//   id out twice, so no id is ever reused (SQLite needed AUTOINCREMENT and
//   a rebuild for that, its migration 5);
// - times stay integer milliseconds since the Unix epoch (bigint), as the
//   rest of the program reads them;
// - job arguments and errors are jsonb; a stored response's headers are
//   json, which keeps the text byte for byte for replays;
// - one order per charge is a partial UNIQUE index (SQLite has a trigger,
//   because files written before it may hold a duplicate; this schema
//   starts clean);
// - the fake payment gateway's table is not part of it: the fake gateway
//   keeps its own store.
constexpr Migration kMigrations[] = {
    {7, "the aftercommit schema (SQLite versions 1 to 7)", R"sql(
CREATE TABLE users (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email       text   NOT NULL UNIQUE
              CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(btrim(email))),
  created_at  bigint NOT NULL
);

CREATE TABLE user_actions (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users(id),
  action      text   NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
  created_at  bigint NOT NULL
);
CREATE INDEX user_actions_by_user ON user_actions(user_id, id);
CREATE UNIQUE INDEX user_actions_one_created ON user_actions(user_id) WHERE action = 'created';

CREATE TABLE jobs (
  id            bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind          text    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  state         text    NOT NULL DEFAULT 'available'
                CHECK (state IN ('available','running','retryable','completed','discarded','cancelled')),
  args          jsonb   NOT NULL,
  priority      integer NOT NULL DEFAULT 0,
  attempt       integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts  integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  run_at        bigint  NOT NULL,
  created_at    bigint  NOT NULL,
  attempted_at  bigint,
  lease_until   bigint,
  finished_at   bigint,
  errors        jsonb   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
  unique_key    text,
  timeout_ms    bigint  CHECK (timeout_ms IS NULL OR timeout_ms > 0),
  serial_key    text,
  CHECK ((state IN ('completed','discarded','cancelled')) = (finished_at IS NOT NULL)),
  CHECK ((state = 'running') = (lease_until IS NOT NULL))
);
CREATE INDEX jobs_claimable ON jobs(priority, run_at, id) WHERE state IN ('available','retryable');
CREATE INDEX jobs_running_lease ON jobs(lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_state_kind ON jobs(state, kind, id);
CREATE UNIQUE INDEX jobs_unique_key ON jobs(unique_key)
  WHERE unique_key IS NOT NULL AND state NOT IN ('completed','discarded','cancelled');
CREATE INDEX jobs_serial ON jobs(serial_key, id)
  WHERE serial_key IS NOT NULL AND state IN ('available','running','retryable');
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE job_kinds (
  kind          text    PRIMARY KEY CHECK (length(kind) BETWEEN 1 AND 64),
  max_attempts  integer NOT NULL CHECK (max_attempts >= 1),
  timeout_ms    bigint  CHECK (timeout_ms IS NULL OR timeout_ms > 0)
);

CREATE TABLE mailbox (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel     text   NOT NULL CHECK (channel IN ('email','sms')),
  recipient   text   NOT NULL CHECK (length(recipient) BETWEEN 1 AND 254),
  subject     text   NOT NULL,
  body        text   NOT NULL,
  job_id      bigint NOT NULL UNIQUE,
  created_at  bigint NOT NULL
);
CREATE INDEX mailbox_by_recipient ON mailbox(recipient, id);

CREATE TABLE products (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text   NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  owner_email  text   NOT NULL
               CHECK (length(owner_email) BETWEEN 3 AND 254
                      AND owner_email = lower(btrim(owner_email))),
  state        text   NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','published')),
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL
);

CREATE TABLE product_meta (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  product_id  bigint NOT NULL UNIQUE REFERENCES products(id),
  note        text   NOT NULL,
  created_at  bigint NOT NULL
);

CREATE TABLE product_state_changes (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  product_id  bigint NOT NULL REFERENCES products(id),
  from_state  text   CHECK (from_state IN ('pending','published')),
  to_state    text   NOT NULL CHECK (to_state IN ('pending','published')),
  created_at  bigint NOT NULL
);
CREATE INDEX product_state_changes_by_product ON product_state_changes(product_id, id);

CREATE TABLE anagram_words (
  word        text   NOT NULL PRIMARY KEY
              CHECK (length(word) BETWEEN 1 AND 64 AND word ~ '^[a-z]+$'),
  key         text   NOT NULL CHECK (length(key) = length(word)),
  created_at  bigint NOT NULL
);
CREATE INDEX anagram_words_by_key ON anagram_words(key, word);

CREATE TABLE orders (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  state          text   NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending','paid','payment_failed','ready_to_ship')),
  email          text   NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  phone          text   NOT NULL CHECK (length(phone) BETWEEN 1 AND 32),
  total_cents    bigint NOT NULL CHECK (total_cents >= 0),
  payment_token  text   NOT NULL CHECK (length(payment_token) BETWEEN 1 AND 255),
  charge_id      text,
  created_at     bigint NOT NULL,
  updated_at     bigint NOT NULL,
  CHECK ((state IN ('paid','ready_to_ship')) = (charge_id IS NOT NULL))
);
-- A charge pays at most one order.
CREATE UNIQUE INDEX orders_by_charge ON orders(charge_id) WHERE charge_id IS NOT NULL;

CREATE TABLE order_items (
  id                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id          bigint  NOT NULL REFERENCES orders(id),
  sku               text    NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
  quantity          integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  unit_price_cents  bigint  NOT NULL CHECK (unit_price_cents BETWEEN 0 AND 10000000)
);
CREATE INDEX order_items_by_order ON order_items(order_id, id);

CREATE TABLE order_actions (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id    bigint NOT NULL REFERENCES orders(id),
  action      text   NOT NULL
              CHECK (action IN ('created','paid','payment_failed','ready_to_ship')),
  detail      text   NOT NULL DEFAULT '',
  created_at  bigint NOT NULL
);
CREATE UNIQUE INDEX order_actions_once ON order_actions(order_id, action);

CREATE TABLE idempotency_keys (
  id                     bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  scope                  text    NOT NULL CHECK (length(scope) BETWEEN 1 AND 128),
  key                    text    NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  method                 text    NOT NULL,
  path                   text    NOT NULL,
  fingerprint            text    NOT NULL CHECK (length(fingerprint) = 64),
  recovery_point         text    NOT NULL
                         CHECK (recovery_point IN ('started','order_created','finished')),
  locked_at              bigint,
  order_id               bigint  REFERENCES orders(id),
  response_status        integer CHECK (response_status BETWEEN 100 AND 599),
  response_content_type  text,
  response_headers       json,
  response_body          text,
  created_at             bigint  NOT NULL,
  last_run_at            bigint  NOT NULL,
  gateway_key            text    CHECK (gateway_key IS NULL OR length(gateway_key) BETWEEN 1 AND 512),
  workflow               text    NOT NULL DEFAULT 'single_phase'
                         CHECK (length(workflow) BETWEEN 1 AND 64),
  UNIQUE (scope, key),
  CHECK ((recovery_point = 'finished') = (response_status IS NOT NULL)),
  CHECK (recovery_point <> 'finished' OR locked_at IS NULL),
  CHECK (recovery_point <> 'order_created' OR order_id IS NOT NULL)
);
CREATE INDEX idempotency_keys_unfinished ON idempotency_keys(last_run_at)
  WHERE recovery_point <> 'finished';
CREATE UNIQUE INDEX idempotency_keys_gateway_key ON idempotency_keys(gateway_key)
  WHERE gateway_key IS NOT NULL;
CREATE INDEX idempotency_keys_reapable ON idempotency_keys(last_run_at)
  WHERE recovery_point = 'finished';

-- PostgreSQL only: the leader's lease (db/pg/driver.cpp, PgLeaderLock; SQLite
-- elects with a file lock instead). One row per elected role; `term` grows at
-- each change of holder; times are the server's clock, in ms.
CREATE TABLE leadership (
  name        text   PRIMARY KEY,
  holder      text   NOT NULL,
  term        bigint NOT NULL CHECK (term >= 1),
  expires_at  bigint NOT NULL
);
)sql",
     "users user_actions jobs job_kinds mailbox products product_meta product_state_changes "
     "anagram_words orders order_items order_actions idempotency_keys leadership"},
};

constexpr char kCreateVersionTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version integer PRIMARY KEY, name text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())";

// Whether `table` exists in the current schema, read from the catalog with
// this statement's snapshot. Not to_regclass(): it answers from the
// backend's relation cache, which PostgreSQL refreshes with other sessions'
// catalog changes when a transaction starts or a table is locked, not when
// an advisory lock is granted. Inside the transaction that waited for the
// migration lock, to_regclass() still said "no such table" about the tables
// the node that held the lock had just committed, and the node refused the
// database as "not an aftercommit database" (three nodes started at once).
bool table_exists(const Session& s, const char* table) {
  return s
      .scalar(
          "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
          "AND tablename = $1",
          {table})
      .has_value();
}

int recorded_version(const Session& s) {
  if (!table_exists(s, "schema_migrations")) return 0;
  auto v = s.scalar("SELECT max(version) FROM schema_migrations", {});
  return v ? std::stoi(*v) : 0;
}

}  // namespace

int latest_schema_version() noexcept {
  return kMigrations[std::size(kMigrations) - 1].version;
}

core::Status check_schema_is_ours(const Session& s, const std::string& target, int version) {
  // Another node may have migrated since the caller read the version.
  if (version <= 0) version = recorded_version(s);
  if (version > latest_schema_version()) {
    return core::Status::invalid("database " + target + " is at schema version " +
                                 std::to_string(version) + ", newer than this binary's " +
                                 std::to_string(latest_schema_version()) +
                                 "; refusing to touch it");
  }
  if (version <= 0) {
    auto names = s.scalar(
        "SELECT string_agg(table_name, ', ' ORDER BY table_name) FROM "
        "information_schema.tables WHERE table_schema = current_schema()",
        {});
    if (!names) return core::Status::ok();
    return core::Status::invalid(target + " is not an aftercommit database (it holds " + *names +
                                 " and no aftercommit schema version); refusing to touch it");
  }
  for (const Migration& m : kMigrations) {
    if (m.version > version) break;
    std::istringstream tables(m.tables);
    for (std::string table; tables >> table;) {
      if (!table_exists(s, table.c_str())) {
        return core::Status::invalid(target + " is not an aftercommit database (schema version " +
                                     std::to_string(version) + " but no table " + table +
                                     "); refusing to touch it");
      }
    }
  }
  return core::Status::ok();
}

int apply_migrations(const Session& s, int to) {
  if (to > latest_schema_version()) throw std::logic_error("migration target beyond latest");
  s.exec(kCreateVersionTable);
  const int from = recorded_version(s);
  for (const Migration& m : kMigrations) {
    if (m.version <= from || m.version > to) continue;
    s.exec(m.sql);
    const std::string v = std::to_string(m.version);
    s.scalar("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", {v.c_str(), m.name});
  }
  return from;
}

}  // namespace db::pg
