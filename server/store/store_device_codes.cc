// Device login (RFC 8628): device and user codes, approval, exchange for a token.
#include "server/store/store.h"

#include <sqlite3.h>

#include <cctype>

#include "absl/strings/str_cat.h"
#include "core/crypto/secure_random.h"
#include "core/model/model.h"
#include "core/snapshot/sha256.h"
#include "core/status/status_macros.h"
#include "server/store/sqlite_statement.h"

namespace fastest::server {
namespace {

using store_internal::Stmt;
using store_internal::Txn;

constexpr char kDeviceCodeAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// No 0/O/1/I: the user types this code.
constexpr char kUserCodeAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

std::string NormalizeUserCode(absl::string_view code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

absl::StatusOr<Store::DeviceCodes> Store::CreateDeviceCode(absl::Duration ttl, int max_pending) {
  absl::MutexLock lock(&mu_);
  const std::string now = core::NowIso8601();
  {
    Stmt purge(db_, "DELETE FROM device_codes WHERE expires_at < ?");
    FASTEST_RETURN_IF_ERROR(purge.Bind(1, now).Run());
  }
  {
    Stmt count(db_, "SELECT COUNT(*) FROM device_codes");
    FASTEST_ASSIGN_OR_RETURN(bool row, count.Step());
    if (row && count.Int(0) >= max_pending) {
      return absl::ResourceExhaustedError("Too many pending device codes; try again later");
    }
  }
  // A user code collision (32^8 space) is retried with a new code.
  for (int attempt = 0; attempt < 5; ++attempt) {
    DeviceCodes codes;
    codes.device_code = core::SecureRandomString(kDeviceCodeAlphabet, 32);
    const std::string user = core::SecureRandomString(kUserCodeAlphabet, 8);
    codes.user_code = user.substr(0, 4) + "-" + user.substr(4);
    Stmt s(db_,
           "INSERT INTO device_codes(device_code_hash, user_code, status, created_at, expires_at) "
           "VALUES(?, ?, 'pending', ?, ?)");
    absl::Status st = s.Bind(1, core::Sha256Hex(codes.device_code))
                          .Bind(2, user)
                          .Bind(3, now)
                          .Bind(4, core::FormatIso8601(absl::Now() + ttl))
                          .Run();
    if (st.ok()) return codes;
    if (!absl::IsFailedPrecondition(st)) return st;
  }
  return absl::InternalError("could not allocate a unique user code");
}

absl::Status Store::ApproveDeviceCode(absl::string_view user_code, const std::string& user_id) {
  const std::string code = NormalizeUserCode(user_code);
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT status, expires_at FROM device_codes WHERE user_code = ?");
  s.Bind(1, code);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Invalid code");
  if (s.Text(0) != "pending") return absl::FailedPreconditionError("Code already used");
  if (s.Text(1) < core::NowIso8601()) return absl::DeadlineExceededError("Code expired");
  Stmt u(db_,
         "UPDATE device_codes SET status = 'approved', user_id = ? "
         "WHERE user_code = ? AND status = 'pending'");
  return u.Bind(1, user_id).Bind(2, code).Run();
}

absl::Status Store::DenyDeviceCode(absl::string_view user_code) {
  absl::MutexLock lock(&mu_);
  Stmt u(db_, "UPDATE device_codes SET status = 'denied' WHERE user_code = ? AND status = 'pending'");
  return u.Bind(1, NormalizeUserCode(user_code)).Run();
}

absl::StatusOr<Store::DeviceLogin> Store::ExchangeDeviceCode(absl::string_view device_code,
                                                             absl::Duration token_ttl) {
  // Looked up by SHA-256: the stored value is a hash, so the lookup leaks nothing timing-wise
  // about the code itself.
  const std::string hash = core::Sha256Hex(device_code);
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "SELECT status, user_id, expires_at FROM device_codes WHERE device_code_hash = ?");
  s.Bind(1, hash);
  FASTEST_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("Invalid or already used device code");
  const std::string status = s.Text(0);
  const std::optional<std::string> user_id = s.OptText(1);
  if (status == "used") return absl::NotFoundError("Invalid or already used device code");
  if (s.Text(2) < core::NowIso8601()) return absl::DeadlineExceededError("Device code expired");
  if (status == "pending") return absl::UnavailableError("Authorization pending");
  auto consume = [&]() {
    // Kept (until it expires and is purged) so a second authorize answers "already used".
    Stmt d(db_, "UPDATE device_codes SET status = 'used' WHERE device_code_hash = ?");
    return d.Bind(1, hash).Run();
  };
  if (status == "denied") {
    FASTEST_RETURN_IF_ERROR(consume());
    return absl::PermissionDeniedError("The user denied the request");
  }
  if (status != "approved" || !user_id) return absl::NotFoundError("Invalid device code");
  DeviceLogin login;
  login.user_id = *user_id;
  {
    Stmt e(db_, "SELECT email FROM users WHERE id = ?");
    e.Bind(1, *user_id);
    FASTEST_ASSIGN_OR_RETURN(bool found, e.Step());
    if (!found) return absl::NotFoundError("Invalid device code");
    login.email = e.Text(0);
  }
  Txn txn(db_);
  FASTEST_RETURN_IF_ERROR(txn.status());
  FASTEST_RETURN_IF_ERROR(consume());
  FASTEST_ASSIGN_OR_RETURN(login.access_token,
                           CreateTokenLocked(*user_id, std::nullopt, std::nullopt,
                                             core::FormatIso8601(absl::Now() + token_ttl)));
  FASTEST_RETURN_IF_ERROR(txn.Commit());
  return login;
}

}  // namespace fastest::server
