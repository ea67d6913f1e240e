// File: core/encoding/percent_encoding.h
//
// RFC 3986 percent-encoding for URL query values and paths, and its decoding. Bytes outside the
// unreserved set (A-Z a-z 0-9 - . _ ~) become %XY with uppercase digits, as RFC 3986 §2.1
// recommends; decoding takes both cases.
//
// Example:
//   absl::StrCat("/v1/jobs?workspace_id=", PercentEncode(id));
//   absl::StrCat("/file/", PercentEncode(path, "/"));  // keeps '/' as the segment separator
//   PercentDecode("a%20b+c", /*plus_is_space=*/true);    // "a b c" (a query value)
#ifndef FASTEST_CORE_ENCODING_PERCENT_ENCODING_H_
#define FASTEST_CORE_ENCODING_PERCENT_ENCODING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace fastest::core {

// PercentEncode: encodes every byte outside the unreserved set and outside `also_keep`.
std::string PercentEncode(absl::string_view text, absl::string_view also_keep = "");

// PercentDecode: each %XY (either case) becomes its byte, except bytes in `keep_encoded`, whose
// escape stays as written (JavaScript's decodeURI keeps ";/?:@&=+$,#" that way). '+' becomes a
// space when `plus_is_space` (query strings). A '%' without two hex digits stays as it is.
std::string PercentDecode(absl::string_view text, bool plus_is_space = false,
                          absl::string_view keep_encoded = "");

}  // namespace fastest::core

#endif  // FASTEST_CORE_ENCODING_PERCENT_ENCODING_H_
