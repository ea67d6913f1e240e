#include "core/model/model.h"

#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fastest::core {
namespace {

using nlohmann::json;

const std::vector<JobStatus> kAll = {JobStatus::kPending, JobStatus::kRunning, JobStatus::kCompleted,
                                     JobStatus::kFailed, JobStatus::kCancelled};

TEST(JobStatusTest, NamesRoundTrip) {
  EXPECT_EQ(JobStatusName(JobStatus::kPending), "pending");
  EXPECT_EQ(JobStatusName(JobStatus::kRunning), "running");
  EXPECT_EQ(JobStatusName(JobStatus::kCompleted), "completed");
  EXPECT_EQ(JobStatusName(JobStatus::kFailed), "failed");
  EXPECT_EQ(JobStatusName(JobStatus::kCancelled), "cancelled");
  for (JobStatus s : kAll) {
    auto parsed = ParseJobStatus(JobStatusName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_FALSE(ParseJobStatus("Pending").ok());
  EXPECT_FALSE(ParseJobStatus("canceled").ok());
  EXPECT_FALSE(ParseJobStatus("").ok());
}

TEST(JobStatusTest, Terminal) {
  EXPECT_FALSE(IsTerminal(JobStatus::kPending));
  EXPECT_FALSE(IsTerminal(JobStatus::kRunning));
  EXPECT_TRUE(IsTerminal(JobStatus::kCompleted));
  EXPECT_TRUE(IsTerminal(JobStatus::kFailed));
  EXPECT_TRUE(IsTerminal(JobStatus::kCancelled));
}

TEST(JobStatusTest, EveryTransition) {
  using S = JobStatus;
  const std::set<std::pair<S, S>> legal = {
      {S::kPending, S::kRunning},   {S::kPending, S::kFailed},    {S::kPending, S::kCancelled},
      {S::kRunning, S::kRunning},   {S::kRunning, S::kCompleted}, {S::kRunning, S::kFailed},
      {S::kRunning, S::kCancelled},
  };
  int legal_seen = 0;
  for (S from : kAll) {
    for (S to : kAll) {
      bool expected = legal.count({from, to}) > 0;
      EXPECT_EQ(IsLegalTransition(from, to), expected)
          << JobStatusName(from) << " -> " << JobStatusName(to);
      legal_seen += expected;
    }
  }
  EXPECT_EQ(legal_seen, 7);
  // Spot checks of the illegal ones the API itself would accept.
  EXPECT_FALSE(IsLegalTransition(S::kCompleted, S::kPending));
  EXPECT_FALSE(IsLegalTransition(S::kCancelled, S::kCompleted));
  EXPECT_FALSE(IsLegalTransition(S::kPending, S::kCompleted));
  EXPECT_FALSE(IsLegalTransition(S::kPending, S::kPending));
}

TEST(ModelJsonTest, JobRoundTripWithNulls) {
  Job job;
  job.id = "00MWXNLELKI4Z5RFC69LUULKYL";
  job.workspace_id = "w1";
  job.project_id = "p1";
  job.prompt = "fix the bug";
  job.status = JobStatus::kRunning;
  job.created_at = "2026-11-26T14:34:18.536Z";
  job.started_at = "2026-11-26 14:33:37";
  json j = ToJson(job);
  EXPECT_TRUE(j["output_snapshot_id"].is_null());
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_TRUE(j["completed_at"].is_null());
  EXPECT_EQ(j["status"], "running");
  EXPECT_EQ(j["started_at"], "2026-11-26 14:33:37");
  EXPECT_EQ(j.size(), 10u);
  auto back = JobFromJson(json::parse(DumpJson(j)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, job.id);
  EXPECT_EQ(back->status, JobStatus::kRunning);
  EXPECT_EQ(back->started_at, job.started_at);
  EXPECT_FALSE(back->completed_at.has_value());
  EXPECT_EQ(ToJson(*back), j);

  job.output_snapshot_id = "s1";
  job.error = "boom";
  job.completed_at = "2026-11-26T14:40:00.000Z";
  job.status = JobStatus::kFailed;
  auto back2 = JobFromJson(ToJson(job));
  ASSERT_TRUE(back2.ok());
  EXPECT_EQ(back2->error, "boom");
  EXPECT_EQ(back2->output_snapshot_id, "s1");
  EXPECT_EQ(ToJson(*back2), ToJson(job));
}

TEST(ModelJsonTest, AllObjectsRoundTrip) {
  Project p{"p1", "u1", "demo", "2026-11-26 14:33:37", "2026-11-26T14:34:18.536Z", std::nullopt};
  auto p2 = ProjectFromJson(ToJson(p));
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(ToJson(*p2), ToJson(p));
  EXPECT_TRUE(ToJson(p)["last_snapshot_id"].is_null());
  EXPECT_EQ(ToJson(p).size(), 6u);

  Workspace w{"w1", "p1", "main", "m1", std::nullopt, "/src", std::nullopt, "2026-11-26T14:34:18.536Z"};
  auto w2 = WorkspaceFromJson(ToJson(w));
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ(w2->machine_id, "m1");
  EXPECT_FALSE(w2->base_snapshot_id.has_value());
  EXPECT_EQ(ToJson(*w2), ToJson(w));
  EXPECT_EQ(ToJson(w).size(), 8u);

  Snapshot s{"s1", "p1", std::string(64, 'a'), std::nullopt, "agent", "2026-11-26T14:34:18.536Z"};
  auto s2 = SnapshotFromJson(ToJson(s));
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(ToJson(*s2), ToJson(s));
  EXPECT_EQ(ToJson(s).size(), 6u);

  DriftReport d{"d1", "w1", 1, 2, 3, 4096, "changed", "2026-11-26T14:34:18.536Z"};
  auto d2 = DriftReportFromJson(ToJson(d));
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(d2->bytes_changed, 4096);
  EXPECT_EQ(ToJson(*d2), ToJson(d));
  EXPECT_EQ(ToJson(d).size(), 8u);

  ActivityEvent e{"e1", "p1", std::nullopt, "system", "job.started", std::nullopt, "m",
                  "2026-11-26T14:34:18.536Z"};
  auto e2 = ActivityEventFromJson(ToJson(e));
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ(ToJson(*e2), ToJson(e));
  EXPECT_EQ(ToJson(e).size(), 8u);
}

TEST(ModelJsonTest, ParsesApiResponseWithUnknownFieldsAndMissingNullables) {
  json j = json::parse(R"({"id":"j","workspace_id":"w","project_id":"p","prompt":"x",
      "status":"pending","created_at":"2026-11-26 14:33:37","extra":{"a":1}})");
  auto job = JobFromJson(j);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status, JobStatus::kPending);
  EXPECT_FALSE(job->error.has_value());
}

TEST(ModelJsonTest, WrongTypesAreErrorsNotExceptions) {
  json good = ToJson(Job{"j", "w", "p", "x", JobStatus::kPending, std::nullopt, std::nullopt,
                         "2026-11-26T14:34:18.536Z", std::nullopt, std::nullopt});
  {
    json j = good;
    j["id"] = 5;
    auto r = JobFromJson(j);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(r.status().message(), "job.id")) << r.status();
  }
  {
    json j = good;
    j["status"] = "done";
    EXPECT_FALSE(JobFromJson(j).ok());
  }
  {
    json j = good;
    j["error"] = 42;
    EXPECT_FALSE(JobFromJson(j).ok());
  }
  {
    json j = good;
    j.erase("prompt");
    auto r = JobFromJson(j);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(absl::StrContains(r.status().message(), "missing"));
  }
  EXPECT_FALSE(JobFromJson(json::array()).ok());
  EXPECT_FALSE(JobFromJson(json(nullptr)).ok());
  EXPECT_FALSE(ProjectFromJson(json("str")).ok());
  json d = ToJson(DriftReport{"d", "w", 1, 2, 3, 4, std::nullopt, "t"});
  d["files_added"] = 1.5;
  EXPECT_FALSE(DriftReportFromJson(d).ok());
  d["files_added"] = "1";
  EXPECT_FALSE(DriftReportFromJson(d).ok());
  json w = json::object({{"id", "w"}, {"project_id", "p"}, {"name", "n"}, {"created_at", "t"},
                         {"machine_id", json::array()}});
  EXPECT_FALSE(WorkspaceFromJson(w).ok());
  json s = json::object({{"id", "s"}, {"project_id", "p"}, {"manifest_hash", 7}, {"source", "cli"},
                         {"created_at", "t"}});
  EXPECT_FALSE(SnapshotFromJson(s).ok());
  json e = json::object({{"id", "e"}, {"project_id", "p"}, {"actor", true}, {"type", "t"},
                         {"created_at", "t"}});
  EXPECT_FALSE(ActivityEventFromJson(e).ok());
}

TEST(ModelJsonTest, DumpJsonNeverThrowsOnInvalidUtf8) {
  json j = {{"k", std::string("a\xff" "b")}};
  std::string out = DumpJson(j);
  EXPECT_TRUE(absl::StrContains(out, "\xEF\xBF\xBD"));
}

TEST(IdTest, ShapeAndUniqueness) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewId();
    ASSERT_EQ(id.size(), 26u);
    for (char c : id) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  // The 10-char prefix is the ms timestamp in base 36 and so is non-decreasing.
  std::string a = NewId();
  std::string b = NewId();
  EXPECT_LE(a.substr(0, 10), b.substr(0, 10));
  EXPECT_EQ(a[0], '0');  // 36^9 ms is ~3.2e14 ms, far in the future.
}

TEST(TimeTest, NowIso8601Format) {
  std::string now = NowIso8601();
  ASSERT_EQ(now.size(), 24u) << now;
  EXPECT_EQ(now[4], '-');
  EXPECT_EQ(now[10], 'T');
  EXPECT_EQ(now[19], '.');
  EXPECT_EQ(now[23], 'Z');
  auto t = ParseTimestamp(now);
  ASSERT_TRUE(t.ok());
  EXPECT_LT(absl::AbsDuration(*t - absl::Now()), absl::Seconds(5));
  EXPECT_EQ(FormatIso8601(absl::FromUnixMillis(1795703658536)), "2026-11-26T14:34:18.536Z");
}

TEST(TimeTest, ParsesBothWireForms) {
  auto a = ParseTimestamp("2026-11-26T14:34:18.536Z");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(absl::ToUnixMillis(*a), 1795703658536);
  auto b = ParseTimestamp("2026-11-26 14:33:37");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(absl::ToUnixSeconds(*b), 1795703617);
  EXPECT_LT(*b, *a);
  EXPECT_TRUE(ParseTimestamp("2099-01-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseTimestamp("yesterday").ok());
  EXPECT_FALSE(ParseTimestamp("2026-11-26").ok());
  EXPECT_FALSE(ParseTimestamp("").ok());
}

}  // namespace
}  // namespace fastest::core
