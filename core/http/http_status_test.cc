#include "core/http/http_status.h"

#include "gtest/gtest.h"

namespace fastest::core {
namespace {

TEST(HttpStatusTest, MapsEveryDocumentedStatus) {
  EXPECT_EQ(StatusCodeForHttp(400), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttp(413), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttp(422), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttp(401), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusCodeForHttp(403), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusCodeForHttp(404), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeForHttp(409), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusCodeForHttp(429), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusCodeForHttp(500), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeForHttp(502), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForHttp(503), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForHttp(418), absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusCodeForHttp(302), absl::StatusCode::kUnknown);
}

TEST(HttpStatusTest, RetryableIs429And5xx) {
  EXPECT_TRUE(IsRetryableHttpStatus(429));
  EXPECT_TRUE(IsRetryableHttpStatus(500));
  EXPECT_TRUE(IsRetryableHttpStatus(503));
  EXPECT_FALSE(IsRetryableHttpStatus(400));
  EXPECT_FALSE(IsRetryableHttpStatus(404));
  EXPECT_FALSE(IsRetryableHttpStatus(200));
}

TEST(HttpStatusTest, RetryAfterReadsPositiveSeconds) {
  HttpResponse response;
  EXPECT_FALSE(RetryAfter(response).has_value());
  response.headers = {{"retry-after", "3"}};
  EXPECT_EQ(RetryAfter(response), absl::Seconds(3));
  response.headers = {{"retry-after", "0"}};
  EXPECT_FALSE(RetryAfter(response).has_value());
  response.headers = {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  EXPECT_FALSE(RetryAfter(response).has_value());
}

}  // namespace
}  // namespace fastest::core
