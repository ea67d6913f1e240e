#include "server/api/oauth_routes.h"

#include <functional>
#include <string>

#include "absl/strings/numbers.h"
#include "nlohmann/json.hpp"
#include "server/api/api_error.h"
#include "server/api/request_auth.h"
#include "server/api/request_parsing.h"

namespace fastest::server {
namespace {

using net::Request;
using net::Response;
using api_request::Forbidden;
using api_request::OptString;
using api_request::ParseObject;
using api_request::Trim;
using api_request::Unauthorized;
using api_request::Validation;

constexpr char kDeviceCodeGrant[] = "urn:ietf:params:oauth:grant-type:device_code";

Response OAuthError(absl::string_view error, absl::string_view description) {
  return Response::Json(400, {{"error", error}, {"error_description", description}});
}

// A user token (not a per-job or project-scoped one): only a person approves a login.
absl::StatusOr<AuthInfo> AuthenticateUser(Store* store, const Request& req,
                                          std::optional<Response>* error) {
  auto auth = AuthenticateRequest(store, req);
  if (!auth.ok()) {
    *error = absl::IsUnauthenticated(auth.status()) ? Unauthorized()
                                                    : ResponseFromStatus(auth.status());
  } else if (auth->job_scope || auth->project_scope) {
    *error = Forbidden();
  }
  return auth;
}

// {"user_code": STRING} (other fields such as the original's "email" are ignored).
std::optional<Response> ParseUserCode(const Request& req, std::string* code) {
  nlohmann::json body;
  if (auto e = ParseObject(req, &body, /*allow_empty=*/false)) return e;
  std::optional<std::string> value;
  if (auto e = OptString(body, "user_code", &value)) return e;
  *code = Trim(value);
  if (code->empty()) return Validation("user_code is required");
  return std::nullopt;
}

}  // namespace

bool AdmitsUnauthenticatedBody(const Request& req) {
  if (req.method != "POST" || (req.path != "/v1/oauth/device" && req.path != "/v1/oauth/token")) {
    return false;
  }
  size_t length = 0;
  return absl::SimpleAtoi(req.Header("content-length"), &length) &&
         length <= kMaxUnauthenticatedBodyBytes;
}

void RegisterOAuthRoutes(net::Router& router, Store* store, OAuthOptions options) {
  constexpr net::Execution kBlocking = net::Execution::kWorkerPool;

  router.AddSync(
      "POST", "/v1/oauth/device",
      [store, options](const Request& req) -> Response {
        auto codes = store->CreateDeviceCode(options.device_code_ttl,
                                             options.max_pending_device_codes);
        if (!codes.ok()) {
          if (absl::IsResourceExhausted(codes.status())) {
            return ErrorResponse(429, "RATE_LIMITED", codes.status().message());
          }
          return ResponseFromStatus(codes.status());
        }
        // The dashboard has no device page: the user approves on the command line
        // (fastest-server token approve CODE) or with POST /v1/oauth/device/authorize.
        std::string host = req.Header("host");
        if (host.empty()) host = "localhost";
        const std::string uri = "http://" + host + "/";
        return Response::Json(
            200, {{"device_code", codes->device_code},
                  {"user_code", codes->user_code},
                  {"verification_uri", uri},
                  {"verification_uri_complete", uri + "?user_code=" + codes->user_code},
                  {"expires_in", absl::ToInt64Seconds(options.device_code_ttl)},
                  {"interval", 5}});
      },
      kBlocking);

  // authorize and deny: a user token, then {"user_code"}.
  using UserCodeHandler =
      std::function<Response(const AuthInfo& auth, const std::string& user_code)>;
  auto user_code_route = [&router, store](const char* path, UserCodeHandler fn) {
    router.AddSync(
        "POST", path,
        [store, fn = std::move(fn)](const Request& req) -> Response {
          std::optional<Response> error;
          auto auth = AuthenticateUser(store, req, &error);
          if (error) return *error;
          std::string code;
          if (auto e = ParseUserCode(req, &code)) return *e;
          return fn(*auth, code);
        },
        kBlocking);
  };
  user_code_route(
      "/v1/oauth/device/authorize",
      [store](const AuthInfo& auth, const std::string& code) -> Response {
        absl::Status st = store->ApproveDeviceCode(code, auth.user_id);
        if (absl::IsNotFound(st)) return ErrorResponse(400, "INVALID_CODE", "Invalid code");
        if (absl::IsDeadlineExceeded(st)) {
          return ErrorResponse(400, "EXPIRED_CODE", "Code has expired");
        }
        if (absl::IsFailedPrecondition(st)) {
          return ErrorResponse(400, "ALREADY_USED", "Code has already been used");
        }
        if (!st.ok()) return ResponseFromStatus(st);
        return Response::Json(200, {{"success", true}, {"message", "Device authorized"}});
      });

  user_code_route(
      "/v1/oauth/device/deny",
      [store](const AuthInfo&, const std::string& code) -> Response {
        if (absl::Status st = store->DenyDeviceCode(code); !st.ok()) {
          return ResponseFromStatus(st);
        }
        return Response::Json(200, {{"success", true}});
      });

  router.AddSync(
      "POST", "/v1/oauth/token",
      [store, options](const Request& req) -> Response {
        nlohmann::json body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (!body.is_object()) return OAuthError("invalid_request", "Body must be a JSON object");
        auto grant = body.find("grant_type");
        if (grant == body.end() || !grant->is_string() || *grant != kDeviceCodeGrant) {
          return OAuthError("unsupported_grant_type", "Only the device_code grant is supported");
        }
        auto device_code = body.find("device_code");
        if (device_code == body.end() || !device_code->is_string() ||
            device_code->get<std::string>().empty()) {
          return OAuthError("invalid_request", "device_code is required");
        }
        auto login =
            store->ExchangeDeviceCode(device_code->get<std::string>(), options.token_ttl);
        if (!login.ok()) {
          const absl::Status& st = login.status();
          if (absl::IsNotFound(st)) return OAuthError("invalid_grant", st.message());
          if (absl::IsDeadlineExceeded(st)) return OAuthError("expired_token", st.message());
          if (absl::IsUnavailable(st)) return OAuthError("authorization_pending", st.message());
          if (absl::IsPermissionDenied(st)) return OAuthError("access_denied", st.message());
          return Response::Json(500, {{"error", "server_error"},
                                      {"error_description", "Internal error"}});
        }
        return Response::Json(200, {{"access_token", login->access_token},
                                    {"token_type", "Bearer"},
                                    {"expires_in", absl::ToInt64Seconds(options.token_ttl)},
                                    {"user", {{"id", login->user_id}, {"email", login->email}}}});
      },
      kBlocking);

  // Per-job tokens get their user too: it is who they act for, and no secret.
  router.AddSync(
      "GET", "/v1/auth/me",
      [store](const Request& req) -> Response {
        auto auth = AuthenticateRequest(store, req);
        if (!auth.ok()) {
          if (absl::IsUnauthenticated(auth.status())) return Unauthorized();
          return ResponseFromStatus(auth.status());
        }
        auto email = store->UserEmail(auth->user_id);
        if (!email.ok()) return ResponseFromStatus(email.status());
        return Response::Json(200, {{"user", {{"id", auth->user_id}, {"email", *email}}}});
      },
      kBlocking);
}

}  // namespace fastest::server
