// File: core/encoding/percent_encoding.h
//
// RFC 3986 percent-encoding for URL query values and paths. Bytes outside the unreserved set
// (A-Z a-z 0-9 - . _ ~) become %XY with uppercase digits, as RFC 3986 §2.1 recommends; servers
// decode both cases.
//
// Example:
//   absl::StrCat("/v1/jobs?workspace_id=", PercentEncode(id));
//   absl::StrCat("/file/", PercentEncode(path, "/"));  // keeps '/' as the segment separator
#ifndef FASTEST_CORE_ENCODING_PERCENT_ENCODING_H_
#define FASTEST_CORE_ENCODING_PERCENT_ENCODING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fastest::core {

// PercentEncode: encodes every byte outside the unreserved set and outside `also_keep`.
std::string PercentEncode(absl::string_view text, absl::string_view also_keep = "");

}  // namespace fastest::core

#endif  // FASTEST_CORE_ENCODING_PERCENT_ENCODING_H_
