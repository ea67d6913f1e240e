// File: tools/model_stub/scenario.h
//
// Scenario: what the offline model stub answers, turn by turn. A scenario file is JSON:
//
//   {
//     "title": "Greeting tweaks",            // reply to title/summary requests (optional)
//     "turns": [
//       {"tool_calls": [{"name": "write",
//                        "arguments": {"filePath": "notes.txt", "content": "hi\n"}}]},
//       {"text": "Done."},                     // final answer, finish_reason "stop"
//       {"error": 500, "message": "overloaded", "retry_after_ms": 100},
//       {"stall_ms": 600000}
//     ],
//     "after_last": "text"                     // or "repeat_last"; default "text"
//   }
//
// A turn is one of:
//   - tool calls: `tool_calls` [{name, arguments (object or JSON string), id?}] (+ optional `text`
//     streamed before them); finish_reason "tool_calls".
//   - text: `text`; finish_reason "stop".
//   - error: `error` = HTTP status (>= 400), `message`; `retry_after_ms` adds a `retry-after-ms`
//     header (OpenCode retries failed calls ~5 times, honouring it; without it the retries take
//     ~70 s). Error turns are sticky (every retry gets the same error) unless `times` is set.
//   - stall: `stall_ms` alone: nothing is sent for that long, then the connection gets a 504.
//     Sticky like an error. `stall_ms` on a text/tool turn only delays its answer.
// Only agent requests (those offering tools) consume turns; title generation and other
// tool-less requests get `title` as a short text reply.
#ifndef FASTEST_TOOLS_MODEL_STUB_SCENARIO_H_
#define FASTEST_TOOLS_MODEL_STUB_SCENARIO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fastest::tools::model_stub {

struct ToolCall {
  std::string id;         // generated ("call_<turn>_<i>") when absent
  std::string name;
  std::string arguments;  // JSON text, as sent in function.arguments
};

struct Turn {
  enum class Kind { kToolCalls, kText, kError, kStall };
  Kind kind = Kind::kText;
  std::vector<ToolCall> tool_calls;
  std::string text;
  int error_status = 0;
  std::string error_message;
  int64_t retry_after_ms = -1;  // -1 = no header
  int64_t stall_ms = 0;
  int times = 0;  // error/stall: how many requests it answers before moving on; 0 = forever
};

struct Scenario {
  std::string title = "Stub session";
  std::vector<Turn> turns;
  bool repeat_last = false;  // after the last turn: repeat it (else answer "Scenario finished.")
};

absl::StatusOr<Scenario> ParseScenario(const nlohmann::json& json);
absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path);

absl::string_view TurnKindName(Turn::Kind kind);

}  // namespace fastest::tools::model_stub

#endif  // FASTEST_TOOLS_MODEL_STUB_SCENARIO_H_
