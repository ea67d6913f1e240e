#include "server/store/store.h"

#include <sqlite3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/model/model.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data dir ", data_dir, ": ", ec.message()));
  }
  std::unique_ptr<Store> store(new Store());
  absl::MutexLock lock(&store->mu_);
  const std::string path = data_dir + "/fastest.db";
  int rc = sqlite3_open_v2(path.c_str(), &store->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(store->db_, 5000);
  FASTEST_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  FASTEST_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  FASTEST_RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  FASTEST_RETURN_IF_ERROR(store->Migrate());
  {
    Stmt s(store->db_, "SELECT value FROM meta WHERE key='server_id'");
    FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) store->server_id_ = s.Text(0);
  }
  if (store->server_id_.empty()) {
    store->server_id_ = core::NewId();
    Stmt s(store->db_, "INSERT INTO meta(key, value) VALUES('server_id', ?)");
    FASTEST_RETURN_IF_ERROR(s.Bind(1, store->server_id_).Run());
  }
  return store;
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::Status Store::Exec(absl::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg));
  }
  return absl::OkStatus();
}

}  // namespace fastest::server
