#include "tools/cli/log_format.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace fastest::cli {
namespace {

std::string OneLine(std::string s, size_t max) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

std::string StrField(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

absl::string_view PhaseTitle(Phase phase) {
  switch (phase) {
    case Phase::kRestoring: return "restoring workspace";
    case Phase::kAgent: return "agent running";
    case Phase::kSnapshotting: return "snapshotting";
    case Phase::kFinishing: return "finishing";
    case Phase::kUnknown: break;
  }
  return "";
}

std::string SummarizeAgentEvent(absl::string_view json_line) {
  nlohmann::json e = nlohmann::json::parse(json_line.begin(), json_line.end(), nullptr, false);
  if (e.is_discarded() || !e.is_object()) return "";
  std::string type = StrField(e, "type");
  const nlohmann::json part = e.value("part", nlohmann::json::object());
  if (type == "tool_use") {
    std::string tool = StrField(part, "tool");
    nlohmann::json state = part.value("state", nlohmann::json::object());
    nlohmann::json input = state.value("input", nlohmann::json::object());
    std::string target = StrField(input, "filePath");
    if (target.empty()) target = StrField(input, "command");
    if (target.empty()) target = StrField(input, "pattern");
    if (target.empty()) target = StrField(state, "title");
    std::string status = StrField(state, "status");
    std::string line = absl::StrCat("tool ", tool, " ", OneLine(target, 100));
    if (!status.empty() && status != "completed") absl::StrAppend(&line, " (", status, ")");
    if (status == "error") absl::StrAppend(&line, ": ", OneLine(StrField(state, "error"), 200));
    return line;
  }
  if (type == "text") {
    std::string text = StrField(part, "text");
    return text.empty() ? "" : absl::StrCat("says: ", OneLine(text, 300));
  }
  if (type == "error") {
    nlohmann::json err = e.value("error", nlohmann::json::object());
    std::string msg;
    if (err.contains("data") && err["data"].is_object()) msg = StrField(err["data"], "message");
    if (msg.empty()) msg = StrField(err, "name");
    return absl::StrCat("error: ", OneLine(msg, 300));
  }
  return "";
}

LogLineView FormatRunnerLine(absl::string_view line) {
  LogLineView v;
  absl::string_view rest = line;
  if (absl::ConsumePrefix(&rest, "[restoring] ")) {
    v.phase = Phase::kRestoring;
    v.show = absl::StartsWith(rest, "Restored ") || absl::StartsWith(rest, "No base snapshot");
    v.text = absl::StrCat("    ", rest);
    return v;
  }
  if (absl::ConsumePrefix(&rest, "[agent:stderr] ")) {
    v.phase = Phase::kAgent;
    v.show = !rest.empty();
    v.text = absl::StrCat("    ! ", OneLine(std::string(rest), 300));
    return v;
  }
  if (absl::ConsumePrefix(&rest, "[agent] ")) {
    v.phase = Phase::kAgent;
    if (absl::StartsWith(rest, "{")) {
      std::string s = SummarizeAgentEvent(rest);
      v.show = !s.empty();
      v.text = absl::StrCat("    ", s);
    } else {
      v.show = !absl::StartsWith(rest, "  Working directory") && !rest.empty();
      v.text = absl::StrCat("    ", rest);
    }
    return v;
  }
  if (absl::ConsumePrefix(&rest, "[snapshotting] ")) {
    v.phase = Phase::kSnapshotting;
    v.show = absl::StartsWith(rest, "Changes:") || absl::StartsWith(rest, "Blobs to upload");
    v.text = absl::StrCat("    ", rest);
    return v;
  }
  if (absl::StartsWith(line, "Marking job as completed")) v.phase = Phase::kFinishing;
  if (absl::StartsWith(line, "Job failed:")) {
    v.show = true;
    v.text = absl::StrCat("    ", line);
  }
  return v;
}

void Step(const std::string& text) {
  fprintf(stderr, "==> %s\n", text.c_str());
  fflush(stderr);
}

std::string Plural(size_t n, const char* word) {
  return absl::StrCat(n, " ", word, n == 1 ? "" : "s");
}

}  // namespace fastest::cli
