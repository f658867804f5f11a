// db::Sql: the name of every statement the program prepares, one name per
// operation across engines (River's driver interface is the model).
//
// Callers in db/ prepare a statement by name (`conn.query(Sql::kInsertUser)`);
// the SQL text of each name lives with the driver that runs it
// (db/sqlite/sql.cpp for SQLite), so only a driver knows a dialect. The
// parameters (?1, ?2 ...) and the result columns of one name are the same in
// every driver: the caller binds and reads them by position.
//
// Adding a statement: a name here, in the group of the file that uses it, and
// its text in each driver (a driver's switch over Sql fails to compile, under
// -Werror=switch, while a name has no text).
#pragma once

#include <cstddef>
#include <cstdint>

namespace db {

enum class Sql : std::uint16_t {
  // db/database.cpp
  kPing,
  // db/users.cpp
  kInsertUser,
  kFindUserByEmail,
  kFindUser,
  kInsertUserAction,
  kListUserActions,
  kCountUsers,
  // db/anagrams.cpp
  kInsertAnagramWord,
  kDeleteAnagramWord,
  kListAnagramGroup,
  // db/products.cpp
  kInsertProduct,
  kTransitionProduct,
  kFindProduct,
  kInsertProductMeta,
  kFindProductMeta,
  kFindProductMetaByProduct,
  kInsertProductStateChange,
  kListProductStateChanges,
  // db/orders.cpp
  kInsertOrder,
  kInsertItem,
  kInsertAction,
  kMarkPaid,
  kMarkPaymentFailed,
  kMarkReadyToShip,
  kFindOrder,
  kFindOrderPaidBy,
  kListItems,
  // db/idempotency.cpp
  kFindKey,
  kFindKeyById,
  kLockKeyRow,
  kInsertKeyIfAbsent,
  kInsertStarted,
  kSetRecoveryPoint,
  kFinishKey,
  kLockKey,
  kUnlockKey,
  kReleaseStaleLocks,
  kListAbandoned,
  kReapKeys,
  // db/jobs.cpp
  kUpsertJobKind,
  kStageJob,
  kAnyRunnable,
  kAnyRunnableOfKinds,
  kClaimJobs,
  kClaimJobsOfKinds,
  kRunnableOfKinds,
  kCompleteUnclaimed,
  kCompleteUnclaimedMany,
  kFailUnclaimed,
  kCompleteJob,
  kHeartbeatJob,
  kReleaseJob,
  kAnyExpiredLease,
  kAnyFinishedBefore,
  kDeleteFinishedBefore,
  kFailJob,
  kRescueJobs,
  kRetryJob,
  kCancelJob,
  kFindJob,
  kListJobs,
  // db/mailbox.cpp
  kDeliverMessage,
  kSameMessageOfJob,
  kListMessages,
  kLatestMessages,
  // db/stats.cpp
  kCountJobs,
  kCountUserActions,
  kCountMessages,
  kLatestUserActions,
  // db/jobs.cpp, the dashboard's jobs view and bulk retry (kept together at
  // the end so that other drivers add their text in one block)
  kListJobsPage,
  kListJobsPageOfStateKind,
  kJobKindsInState,
  kRetryJobInState,
  kRetryJobsInState,
};

// How many names there are: a driver sizes its statement cache with it.
inline constexpr std::size_t kSqlCount = static_cast<std::size_t>(Sql::kRetryJobsInState) + 1;

}  // namespace db
