#include "server/util/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "core/model/model.h"

namespace fastest::server {
namespace {

std::atomic<bool> g_enabled{true};

void AppendValue(std::string* out, absl::string_view v) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') quote = true;
  }
  if (!quote) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

void SetLogEnabled(bool enabled) { g_enabled = enabled; }

void Log(absl::string_view level, absl::string_view msg, LogFields fields) {
  if (!g_enabled) return;
  std::string line = absl::StrCat("ts=", core::NowIso8601(), " level=", level, " msg=");
  AppendValue(&line, msg);
  for (const auto& [k, v] : fields) {
    absl::StrAppend(&line, " ", k, "=");
    AppendValue(&line, v);
  }
  line.push_back('\n');
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

}  // namespace fastest::server
