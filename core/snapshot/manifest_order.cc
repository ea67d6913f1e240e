#include "core/snapshot/manifest_order.h"

#include <dlfcn.h>
#include <unicode/ucol.h>
#include <unicode/uvernum.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status/status_macros.h"

namespace fastest::core {
namespace {

// ICU's C API, resolved with dlsym. The symbols carry the major version (ucol_open_72), and the
// library is the one of the headers we were built with: the sandbox image ships this machine's.
using UcolOpen = UCollator* (*)(const char*, UErrorCode*);
using UcolSetAttribute = void (*)(UCollator*, UColAttribute, UColAttributeValue, UErrorCode*);
using UcolStrcollUtf8 = UCollationResult (*)(const UCollator*, const char*, int32_t, const char*,
                                             int32_t, UErrorCode*);

struct IcuCollator {
  UCollator* collator = nullptr;
  UcolStrcollUtf8 strcoll_utf8 = nullptr;
};

std::string IcuLibrary() { return absl::StrCat("libicui18n.so.", U_ICU_VERSION_MAJOR_NUM); }

std::string IcuSymbol(absl::string_view name) {
  return absl::StrCat(name, "_", U_ICU_VERSION_MAJOR_NUM);
}

absl::StatusOr<IcuCollator> OpenIcuCollator() {
  const std::string library = IcuLibrary();
  auto unavailable = [&library](absl::string_view what) {
    return absl::FailedPreconditionError(
        absl::StrCat("ICU collation (", library, ", Debian package libicu",
                     U_ICU_VERSION_MAJOR_NUM, ") unavailable: ", what));
  };
  // Never closed: the collator lives as long as the process.
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    return unavailable(error != nullptr ? error : "dlopen failed");
  }
  auto open = reinterpret_cast<UcolOpen>(dlsym(handle, IcuSymbol("ucol_open").c_str()));
  auto set_attribute =
      reinterpret_cast<UcolSetAttribute>(dlsym(handle, IcuSymbol("ucol_setAttribute").c_str()));
  IcuCollator icu;
  icu.strcoll_utf8 =
      reinterpret_cast<UcolStrcollUtf8>(dlsym(handle, IcuSymbol("ucol_strcollUTF8").c_str()));
  if (open == nullptr || set_attribute == nullptr || icu.strcoll_utf8 == nullptr) {
    return unavailable(absl::StrCat("missing ", IcuSymbol("ucol_open"), " or its siblings"));
  }
  UErrorCode status = U_ZERO_ERROR;
  icu.collator = open("en_US", &status);
  if (U_FAILURE(status) || icu.collator == nullptr) {
    return unavailable(absl::StrCat("ucol_open(\"en_US\") failed with ICU error ", status));
  }
  // What V8's Intl.Collator (and so localeCompare) sets: canonically equivalent strings compare
  // equal. Default strength (tertiary) otherwise.
  set_attribute(icu.collator, UCOL_NORMALIZATION_MODE, UCOL_ON, &status);
  if (U_FAILURE(status)) {
    return unavailable(absl::StrCat("ucol_setAttribute failed with ICU error ", status));
  }
  return icu;
}

// Loaded once, on first use, by whichever thread gets here first.
absl::StatusOr<const IcuCollator*> Icu() {
  static const absl::StatusOr<IcuCollator>* const loaded =
      new absl::StatusOr<IcuCollator>(OpenIcuCollator());
  if (!loaded->ok()) return loaded->status();
  return &**loaded;
}

// ICU's own verdict, ties (equal under collation) left as 0.
int RawIcuCompare(const IcuCollator& icu, absl::string_view a, absl::string_view b) {
  UErrorCode status = U_ZERO_ERROR;
  UCollationResult r =
      icu.strcoll_utf8(icu.collator, a.data(), static_cast<int32_t>(a.size()), b.data(),
                       static_cast<int32_t>(b.size()), &status);
  return r == UCOL_LESS ? -1 : (r == UCOL_GREATER ? 1 : 0);
}

int TotalIcuCompare(const IcuCollator& icu, absl::string_view a, absl::string_view b) {
  int r = RawIcuCompare(icu, a, b);
  return r != 0 ? r : a.compare(b);
}

// Paths for which byte order and ICU order agree (PROTOCOLS.md §2.4): both put `-` < `.` < `/`
// < digits < lower-case letters and compare character by character.
bool OrdersAgreeOn(absl::string_view path) {
  return std::all_of(path.begin(), path.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '/';
  });
}

}  // namespace

absl::string_view PathOrderName(PathOrder order) {
  return order == PathOrder::kIcuEnUs ? "ICU (en-US)" : "byte";
}

absl::string_view DetectedPathOrderName(DetectedPathOrder order) {
  switch (order) {
    case DetectedPathOrder::kBytes:
      return "byte";
    case DetectedPathOrder::kIcuEnUs:
      return "ICU (en-US)";
    case DetectedPathOrder::kAmbiguous:
      return "ambiguous";
    case DetectedPathOrder::kNeither:
      return "neither";
  }
  return "neither";
}

absl::StatusOr<int> IcuCompare(absl::string_view a, absl::string_view b) {
  FASTEST_ASSIGN_OR_RETURN(const IcuCollator* icu, Icu());
  return TotalIcuCompare(*icu, a, b);
}

bool IsSortedByBytes(const std::vector<FileEntry>& files) {
  for (size_t i = 1; i < files.size(); ++i) {
    if (!(files[i - 1].path < files[i].path)) return false;
  }
  return true;
}

absl::StatusOr<DetectedPathOrder> DetectPathOrder(const std::vector<FileEntry>& files) {
  const bool by_bytes = IsSortedByBytes(files);
  if (files.size() < 2) return DetectedPathOrder::kAmbiguous;
  if (by_bytes && std::all_of(files.begin(), files.end(),
                              [](const FileEntry& e) { return OrdersAgreeOn(e.path); })) {
    return DetectedPathOrder::kAmbiguous;
  }
  FASTEST_ASSIGN_OR_RETURN(const IcuCollator* icu, Icu());
  bool by_icu = true;
  for (size_t i = 1; i < files.size() && by_icu; ++i) {
    // A tie keeps the producer's order (JavaScript's sort is stable), so it is no evidence.
    by_icu = RawIcuCompare(*icu, files[i - 1].path, files[i].path) <= 0;
  }
  if (by_bytes && by_icu) return DetectedPathOrder::kAmbiguous;
  if (by_bytes) return DetectedPathOrder::kBytes;
  if (by_icu) return DetectedPathOrder::kIcuEnUs;
  return DetectedPathOrder::kNeither;
}

absl::StatusOr<PathOrder> SnapshotOrderForBase(const Manifest* base, std::string* note) {
  std::string ignored;
  if (note == nullptr) note = &ignored;
  if (base == nullptr || base->files.empty()) {
    *note = "new tree: byte order";
    return PathOrder::kBytes;
  }
  if (IsSortedByBytes(base->files)) {
    *note = "base manifest is in byte order: byte order";
    return PathOrder::kBytes;
  }
  FASTEST_ASSIGN_OR_RETURN(DetectedPathOrder detected, DetectPathOrder(base->files));
  if (detected == DetectedPathOrder::kIcuEnUs) {
    *note = "base manifest is in ICU (en-US) order, as the original TypeScript runner writes it: "
            "keeping that order";
    return PathOrder::kIcuEnUs;
  }
  *note = "base manifest is sorted neither by bytes nor by ICU (en-US) collation (a foreign or "
          "hand-made order): using byte order";
  return PathOrder::kBytes;
}

absl::Status SortManifestInOrder(Manifest* manifest, PathOrder order) {
  if (order == PathOrder::kBytes) {
    SortManifest(manifest);
    return absl::OkStatus();
  }
  FASTEST_ASSIGN_OR_RETURN(const IcuCollator* icu, Icu());
  std::sort(manifest->files.begin(), manifest->files.end(),
            [icu](const FileEntry& a, const FileEntry& b) {
              return TotalIcuCompare(*icu, a.path, b.path) < 0;
            });
  return absl::OkStatus();
}

absl::StatusOr<std::string> SerializeManifestInOrder(const Manifest& manifest, PathOrder order) {
  if (order == PathOrder::kBytes) return SerializeManifest(manifest);
  Manifest sorted = manifest;
  FASTEST_RETURN_IF_ERROR(SortManifestInOrder(&sorted, order));
  return SerializeManifestAsGiven(sorted);
}

}  // namespace fastest::core
