// File: core/snapshot/manifest_order.h
//
// The two orders the original system writes manifest entries in (PROTOCOLS.md §2.4) and how to tell
// which one a manifest uses:
//   kBytes     byte-wise order of the UTF-8 path (the Go CLI; fastest's CLI and SerializeManifest)
//   kIcuEnUs   ICU collation for locale en-US at default strength, i.e. JavaScript's
//              `a.localeCompare(b)` (the TypeScript runner): `main.c` < `Makefile` < `README.md`
//
// A runner writes its snapshot in the order of its base manifest, so that an unchanged tree that
// a TypeScript runner snapshotted keeps its manifest hash. The order is detected from the base's
// path list: sorted by bytes, by ICU, by both (ambiguous: only lower-case ASCII, digits, `-`, `.`
// and `/`, or fewer than two paths), or by neither (a hand-made or foreign order).
//
// ICU (libicui18n from Debian's libicu, ~30 MB with its data) is loaded with dlopen on first use,
// never at start-up: the runner is linked statically except libc/libm and stays that way, and a
// runner whose base is byte-ordered (or that has no base) never loads it. Missing ICU is an error
// (kFailedPrecondition naming the library) that the caller turns into byte order plus a warning.
//
// Example:
//   FASTEST_ASSIGN_OR_RETURN(PathOrder order, SnapshotOrderForBase(base, &note));
//   FASTEST_ASSIGN_OR_RETURN(std::string text, SerializeManifestInOrder(manifest, order));
#ifndef FASTEST_CORE_SNAPSHOT_MANIFEST_ORDER_H_
#define FASTEST_CORE_SNAPSHOT_MANIFEST_ORDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/snapshot/manifest.h"

namespace fastest::core {

enum class PathOrder { kBytes, kIcuEnUs };

// What a path list is sorted by.
enum class DetectedPathOrder { kBytes, kIcuEnUs, kAmbiguous, kNeither };

absl::string_view PathOrderName(PathOrder order);               // "byte", "ICU (en-US)"
absl::string_view DetectedPathOrderName(DetectedPathOrder order);  // + "ambiguous", "neither"

// IcuCompare: ICU en-US collation of two UTF-8 strings (<0, 0, >0), ties broken by bytes so the
// order is total. Loads ICU on first use; kFailedPrecondition when it cannot be loaded.
absl::StatusOr<int> IcuCompare(absl::string_view a, absl::string_view b);

// IsSortedByBytes: strictly increasing in byte order. Never needs ICU.
bool IsSortedByBytes(const std::vector<FileEntry>& files);

// DetectPathOrder: which order `files` (in their given order) follows. Needs ICU unless the
// answer is clear without it (byte-sorted paths of only [a-z0-9./-] are ambiguous).
absl::StatusOr<DetectedPathOrder> DetectPathOrder(const std::vector<FileEntry>& files);

// SnapshotOrderForBase: the order a snapshot on top of `base` is written in: ICU when the base is
// ICU-ordered and not byte-ordered, else bytes (new or empty tree, byte-ordered, ambiguous,
// neither). ICU is loaded only when the base is not byte-ordered. `note` (may be null) gets one
// human-readable sentence saying why, for the runner log. An error means ICU could not be loaded.
absl::StatusOr<PathOrder> SnapshotOrderForBase(const Manifest* base, std::string* note);

// SortManifestInOrder / SerializeManifestInOrder: like SortManifest / SerializeManifest (which
// are byte order) in `order`. Errors only when ICU is needed and cannot be loaded.
absl::Status SortManifestInOrder(Manifest* manifest, PathOrder order);
absl::StatusOr<std::string> SerializeManifestInOrder(const Manifest& manifest, PathOrder order);

}  // namespace fastest::core

#endif  // FASTEST_CORE_SNAPSHOT_MANIFEST_ORDER_H_
