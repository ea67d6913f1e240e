#include "backends/cloudflare/bridge_protocol.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "core/crypto/secure_random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/encoding/percent_encoding.h"
#include "nlohmann/json.hpp"

namespace fastest::backends::cloudflare {
namespace {

constexpr char kBase32Alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

bool IsBareArgChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("@%+=:,./-").find(c) != absl::string_view::npos;
}

}  // namespace

bool IsValidSandboxId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

bool IsValidSessionId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  if (id.find("..") != absl::string_view::npos) return false;
  for (char c : id) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

std::string NewSandboxId() {
  unsigned char bytes[16];
  core::SecureRandomBytesOrDie(bytes, sizeof(bytes));
  // 128 bits -> 26 base32 symbols (the last carries 3 bits, zero-padded).
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kBase32Alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kBase32Alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::string QuoteArgElement(absl::string_view arg) {
  bool bare = !arg.empty();
  for (char c : arg) {
    if (!IsBareArgChar(c)) {
      bare = false;
      break;
    }
  }
  if (bare) return std::string(arg);
  std::string out = "$'";
  for (char c : arg) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out.push_back(c);
    }
  }
  out += "'";
  return out;
}

std::string QuoteArgvForBridge(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out += QuoteArgElement(argv[i]);
  }
  return out;
}

std::string ShellQuote(absl::string_view arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

std::string NormalizeAbsolutePath(absl::string_view path) {
  std::vector<std::string> parts;
  for (absl::string_view seg : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (seg == ".") continue;
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(seg);
  }
  std::string out;
  for (const auto& p : parts) absl::StrAppend(&out, "/", p);
  return out.empty() ? "/" : out;
}

bool IsWithinWorkspace(absl::string_view normalized) {
  return normalized == kWorkspaceRoot ||
         (normalized.size() > kWorkspaceRoot.size() &&
          normalized.substr(0, kWorkspaceRoot.size()) == kWorkspaceRoot &&
          normalized[kWorkspaceRoot.size()] == '/');
}

absl::StatusOr<std::string> ResolveWorkspacePath(absl::string_view route_path) {
  if (route_path.empty()) return absl::InvalidArgumentError("File path is required");
  std::string normalized = NormalizeAbsolutePath(absl::StrCat("/", route_path));
  if (!IsWithinWorkspace(normalized)) {
    return absl::PermissionDeniedError("path must resolve to a location within /workspace");
  }
  return normalized;
}

absl::StatusOr<std::string> ResolveCwd(absl::string_view cwd) {
  std::string absolute =
      (!cwd.empty() && cwd[0] == '/') ? std::string(cwd) : absl::StrCat(kWorkspaceRoot, "/", cwd);
  std::string normalized = NormalizeAbsolutePath(absolute);
  if (!IsWithinWorkspace(normalized)) {
    return absl::PermissionDeniedError("cwd must resolve to a location within /workspace");
  }
  return normalized;
}

std::string DecodeUriPath(absl::string_view raw) {
  return core::PercentDecode(raw, /*plus_is_space=*/false, ";/?:@&=+$,#%");
}

std::string EncodeUriPath(absl::string_view path) { return core::PercentEncode(path, "/"); }

std::string BridgeErrorJson(absl::string_view message, absl::string_view code) {
  // Ordered like the bridge's own JSON: "error" first.
  nlohmann::ordered_json body;
  body["error"] = std::string(message);
  body["code"] = std::string(code);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string SseEvent(absl::string_view name, absl::string_view data) {
  return absl::StrCat("event: ", name, "\ndata: ", data, "\n\n");
}

SseParser::SseParser(Callback callback) : callback_(std::move(callback)) {}

bool SseParser::Feed(absl::string_view chunk) {
  if (stopped_) return false;
  for (char c : chunk) {
    if (c == '\n' && last_was_cr_) {  // the \n of a \r\n pair
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = (c == '\r');
    if (c == '\n' || c == '\r') {
      std::string line;
      line.swap(line_);
      if (!ProcessLine(line)) {
        stopped_ = true;
        return false;
      }
      continue;
    }
    line_.push_back(c);
  }
  return true;
}

bool SseParser::ProcessLine(absl::string_view line) {
  if (line.empty()) {
    if (!has_data_ && event_.empty()) return true;
    std::string event = event_.empty() ? "message" : event_;
    std::string data;
    data.swap(data_);
    event_.clear();
    bool had = has_data_;
    has_data_ = false;
    if (!had) return true;  // per the SSE spec an event without data is not dispatched
    return callback_(event, data);
  }
  if (line[0] == ':') return true;
  absl::string_view field = line;
  absl::string_view value;
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "event") {
    event_ = std::string(value);
  } else if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  }
  return true;
}

std::string Utf8Sanitizer::Feed(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    unsigned b = static_cast<unsigned char>(bytes[i]);
    if (needed_ == 0) {
      ++i;
      if (b <= 0x7F) {
        out.push_back(static_cast<char>(b));
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed_ = 1;
        sequence_.assign(1, static_cast<char>(b));
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower_ = 0xA0;
        if (b == 0xED) upper_ = 0x9F;
        needed_ = 2;
        sequence_.assign(1, static_cast<char>(b));
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower_ = 0x90;
        if (b == 0xF4) upper_ = 0x8F;
        needed_ = 3;
        sequence_.assign(1, static_cast<char>(b));
      } else {
        out += kReplacement;
      }
      continue;
    }
    if (b < lower_ || b > upper_) {
      // Invalid continuation: replace the partial sequence, then reprocess this byte.
      needed_ = 0;
      sequence_.clear();
      lower_ = 0x80;
      upper_ = 0xBF;
      out += kReplacement;
      continue;
    }
    lower_ = 0x80;
    upper_ = 0xBF;
    sequence_.push_back(static_cast<char>(b));
    ++i;
    if (static_cast<int>(sequence_.size()) == needed_ + 1) {
      out += sequence_;
      sequence_.clear();
      needed_ = 0;
    }
  }
  return out;
}

std::string Utf8Sanitizer::Flush() {
  if (needed_ == 0) return "";
  needed_ = 0;
  sequence_.clear();
  lower_ = 0x80;
  upper_ = 0xBF;
  return std::string(kReplacement);
}

}  // namespace fastest::backends::cloudflare
