#include "tools/model_stub/scenario.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace fastest::tools::model_stub {
namespace {

absl::Status Bad(size_t index, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("scenario turn ", index, ": ", what));
}

int64_t IntOr(const nlohmann::json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}

absl::StatusOr<Turn> ParseTurn(const nlohmann::json& j, size_t index) {
  if (!j.is_object()) return Bad(index, "must be an object");
  Turn t;
  if (j.contains("text")) {
    if (!j["text"].is_string()) return Bad(index, "\"text\" must be a string");
    t.text = j["text"].get<std::string>();
  }
  t.stall_ms = IntOr(j, "stall_ms", 0);
  t.times = static_cast<int>(IntOr(j, "times", 0));
  if (t.stall_ms < 0 || t.times < 0) return Bad(index, "negative stall_ms/times");
  if (j.contains("error")) {
    if (!j["error"].is_number_integer() || j["error"].get<int>() < 400 ||
        j["error"].get<int>() > 599) {
      return Bad(index, "\"error\" must be an HTTP status 400..599");
    }
    t.kind = Turn::Kind::kError;
    t.error_status = j["error"].get<int>();
    t.error_message = j.value("message", "model stub: scripted error");
    t.retry_after_ms = IntOr(j, "retry_after_ms", -1);
    return t;
  }
  if (j.contains("tool_calls")) {
    const nlohmann::json& calls = j["tool_calls"];
    if (!calls.is_array() || calls.empty()) return Bad(index, "\"tool_calls\" must be a non-empty array");
    t.kind = Turn::Kind::kToolCalls;
    for (size_t i = 0; i < calls.size(); ++i) {
      const nlohmann::json& c = calls[i];
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) {
        return Bad(index, "each tool call needs a string \"name\"");
      }
      ToolCall call;
      call.name = c["name"].get<std::string>();
      call.id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>()
                                                        : absl::StrCat("call_", index, "_", i);
      if (!c.contains("arguments")) {
        call.arguments = "{}";
      } else if (c["arguments"].is_string()) {
        call.arguments = c["arguments"].get<std::string>();
      } else if (c["arguments"].is_object()) {
        call.arguments = c["arguments"].dump();
      } else {
        return Bad(index, "tool call \"arguments\" must be an object or a JSON string");
      }
      t.tool_calls.push_back(std::move(call));
    }
    return t;
  }
  if (j.contains("text")) {
    t.kind = Turn::Kind::kText;
    return t;
  }
  if (t.stall_ms > 0) {
    t.kind = Turn::Kind::kStall;
    return t;
  }
  return Bad(index, "needs one of text, tool_calls, error, stall_ms");
}

}  // namespace

absl::string_view TurnKindName(Turn::Kind kind) {
  switch (kind) {
    case Turn::Kind::kToolCalls: return "tool_calls";
    case Turn::Kind::kText: return "text";
    case Turn::Kind::kError: return "error";
    case Turn::Kind::kStall: return "stall";
  }
  return "?";
}

absl::StatusOr<Scenario> ParseScenario(const nlohmann::json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("scenario must be a JSON object");
  Scenario s;
  if (json.contains("title")) {
    if (!json["title"].is_string()) return absl::InvalidArgumentError("\"title\" must be a string");
    s.title = json["title"].get<std::string>();
  }
  if (!json.contains("turns") || !json["turns"].is_array()) {
    return absl::InvalidArgumentError("scenario needs a \"turns\" array");
  }
  for (size_t i = 0; i < json["turns"].size(); ++i) {
    absl::StatusOr<Turn> t = ParseTurn(json["turns"][i], i);
    if (!t.ok()) return t.status();
    s.turns.push_back(std::move(*t));
  }
  std::string after = json.value("after_last", "text");
  if (after == "repeat_last") {
    s.repeat_last = true;
  } else if (after != "text") {
    return absl::InvalidArgumentError("\"after_last\" must be \"text\" or \"repeat_last\"");
  }
  return s;
}

absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read scenario file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  absl::StatusOr<Scenario> s = ParseScenario(j);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.status().message()));
  return s;
}

}  // namespace fastest::tools::model_stub
