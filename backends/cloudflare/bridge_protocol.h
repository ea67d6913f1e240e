// File: backends/cloudflare/bridge_protocol.h
//
// The pure (no I/O) pieces of the Cloudflare Sandbox bridge contract (PROTOCOLS.md §4), shared by
// the client (CloudflareBackend) and the emulator (tools/cf_bridge_emulator) so both sides agree
// byte for byte: id formats, the argv -> command quoting of §4.4, the /workspace confinement of
// file paths and exec cwd (§4.3), the decodeURI-like path decoding, the error JSON, SSE framing
// and parsing, and a streaming UTF-8 sanitizer (the bridge re-decodes exec output as UTF-8).
//
// Example:
//   QuoteArgvForBridge({"sh", "-lc", "echo hello"})  == "sh -lc $'echo hello'"
//   ResolveWorkspacePath("workspace/a/../b.txt")     -> "/workspace/b.txt"
//   SseParser p([](absl::string_view ev, absl::string_view data) { ...; return true; });
//   p.Feed("event: exit\ndata: {\"exit_code\":0}\n\n");
#ifndef FASTEST_BACKENDS_CLOUDFLARE_BRIDGE_PROTOCOL_H_
#define FASTEST_BACKENDS_CLOUDFLARE_BRIDGE_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fastest::backends::cloudflare {

// Bodies of PUT file and hydrate: 32 MiB.
inline constexpr size_t kMaxFileBytes = 32u * 1024 * 1024;
inline constexpr absl::string_view kWorkspaceRoot = "/workspace";

// ^[a-z2-7]{1,128}$ (RFC 4648 base32 alphabet, lower case).
bool IsValidSandboxId(absl::string_view id);
// ^[a-zA-Z0-9._-]{1,128}$ and no "..".
bool IsValidSessionId(absl::string_view id);

// NewSandboxId: 16 random bytes as unpadded lower-case base32 (26 chars), like the bridge.
std::string NewSandboxId();

// QuoteArgElement: bare if made only of A-Za-z0-9@%+=:,./- (and non-empty), else ANSI-C $'...'
// with \\ \' \n \r \t escaped (§4.4).
std::string QuoteArgElement(absl::string_view arg);
// QuoteArgvForBridge: every element quoted, joined with single spaces.
std::string QuoteArgvForBridge(const std::vector<std::string>& argv);

// ShellQuote: POSIX single-quote quoting for commands the client composes itself.
std::string ShellQuote(absl::string_view arg);

// NormalizeAbsolutePath: resolves "." and ".." textually in an absolute path ("/a/./b/../c" ->
// "/a/c"); ".." above the root stays at the root; repeated and trailing slashes dropped.
std::string NormalizeAbsolutePath(absl::string_view path);
// IsWithinWorkspace: the normalized path is /workspace or below it.
bool IsWithinWorkspace(absl::string_view normalized);
// ResolveWorkspacePath: the file route's <path> (no leading '/'): "/" + path, normalized, and
// required to be within /workspace. InvalidArgument for an empty path, PermissionDenied outside.
absl::StatusOr<std::string> ResolveWorkspacePath(absl::string_view route_path);
// ResolveCwd: exec cwd (absolute, or relative to /workspace) normalized and confined like files.
absl::StatusOr<std::string> ResolveCwd(absl::string_view cwd);

// DecodeUriPath: percent-decodes like JavaScript decodeURI as Hono applies it: escapes of the
// reserved characters ; / ? : @ & = + $ , # and of '%' itself stay encoded.
std::string DecodeUriPath(absl::string_view raw);

// EncodeUriPath: the inverse for a client: percent-encodes every byte outside
// A-Za-z0-9 -._~ and '/' (so '/' separates segments).
std::string EncodeUriPath(absl::string_view path);

// BridgeErrorJson: {"error":message,"code":code} as the bridge sends it.
std::string BridgeErrorJson(absl::string_view message, absl::string_view code);

// SseEvent: "event: <name>\ndata: <data>\n\n" (data must be a single line).
std::string SseEvent(absl::string_view name, absl::string_view data);

// SseParser: incremental server-sent-events parser. Lines may arrive split anywhere; "\r\n",
// "\n" and "\r" end lines; comment lines (":...") are ignored; several data lines are joined with
// "\n"; an event is dispatched at a blank line. The callback returns false to stop.
class SseParser {
 public:
  using Callback = std::function<bool(absl::string_view event, absl::string_view data)>;
  explicit SseParser(Callback callback);

  // Feed: false once the callback asked to stop.
  bool Feed(absl::string_view chunk);
  // pending: a partly received event (not yet dispatched) exists.
  bool pending() const { return !line_.empty() || has_data_ || !event_.empty(); }

 private:
  bool ProcessLine(absl::string_view line);
  Callback callback_;
  std::string line_;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  bool last_was_cr_ = false;
  bool stopped_ = false;
};

// Utf8Sanitizer: re-decodes a byte stream as UTF-8 the way a streaming TextDecoder does: invalid
// sequences become U+FFFD, an incomplete sequence at a chunk end is held for the next chunk.
class Utf8Sanitizer {
 public:
  // Feed: the valid UTF-8 text for the bytes so far (holding back an incomplete tail).
  std::string Feed(absl::string_view bytes);
  // Flush: what is left (an incomplete tail becomes U+FFFD).
  std::string Flush();

 private:
  std::string sequence_;  // bytes of the multi-byte sequence being decoded
  int needed_ = 0;
  unsigned lower_ = 0x80;
  unsigned upper_ = 0xBF;
};

}  // namespace fastest::backends::cloudflare

#endif  // FASTEST_BACKENDS_CLOUDFLARE_BRIDGE_PROTOCOL_H_
