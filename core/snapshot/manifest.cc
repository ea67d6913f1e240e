// File: core/snapshot/manifest.cc
#include "core/snapshot/manifest.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/encoding/hex.h"
#include "core/snapshot/sha256.h"
#include "nlohmann/json.hpp"

namespace fastest::core {
namespace {

bool PathLess(const FileEntry& a, const FileEntry& b) { return a.path < b.path; }

// JSON.stringify escaping: only '"', '\\' and U+0000..U+001F are escaped.
void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          AppendHexByte(out, c);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendEntry(std::string* out, const FileEntry& e) {
  out->append("    {\n      \"path\": ");
  AppendJsonString(out, e.path);
  out->append(",\n      \"hash\": ");
  AppendJsonString(out, e.hash);
  absl::StrAppend(out, ",\n      \"size\": ", e.size, ",\n      \"mode\": ", e.mode);
  if (e.mod_time.has_value()) absl::StrAppend(out, ",\n      \"mod_time\": ", *e.mod_time);
  out->append("\n    }");
}

absl::Status EntryError(size_t index, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("manifest: files[", index, "]: ", msg));
}

}  // namespace

bool operator==(const FileEntry& a, const FileEntry& b) {
  return a.path == b.path && a.hash == b.hash && a.size == b.size && a.mode == b.mode &&
         a.mod_time == b.mod_time;
}

void SortManifest(Manifest* manifest) {
  std::sort(manifest->files.begin(), manifest->files.end(), PathLess);
}

std::string SerializeManifest(const Manifest& manifest) {
  if (std::is_sorted(manifest.files.begin(), manifest.files.end(), PathLess)) {
    return SerializeManifestAsGiven(manifest);
  }
  Manifest sorted = manifest;
  SortManifest(&sorted);
  return SerializeManifestAsGiven(sorted);
}

std::string SerializeManifestAsGiven(const Manifest& manifest) {
  const std::vector<FileEntry>& files = manifest.files;
  if (files.empty()) return "{\n  \"version\": \"1\",\n  \"files\": []\n}";
  std::string out;
  out.reserve(64 + files.size() * 160);
  out.append("{\n  \"version\": \"1\",\n  \"files\": [\n");
  for (size_t i = 0; i < files.size(); ++i) {
    if (i > 0) out.append(",\n");
    AppendEntry(&out, files[i]);
  }
  out.append("\n  ]\n}");
  return out;
}

std::string ManifestHash(const Manifest& manifest) { return Sha256Hex(SerializeManifest(manifest)); }

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

absl::Status ValidateManifestPath(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("path contains NUL");
  }
  if (path.front() == '/') return absl::InvalidArgumentError(absl::StrCat("absolute path '", path, "'"));
  if (!IsValidUtf8(path)) return absl::InvalidArgumentError("path is not valid UTF-8");
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == absl::string_view::npos) slash = path.size();
    absl::string_view comp = path.substr(start, slash - start);
    if (comp.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty component in path '", path, "'"));
    }
    if (comp == "." || comp == "..") {
      return absl::InvalidArgumentError(absl::StrCat("'", comp, "' component in path '", path, "'"));
    }
    if (comp.size() > 255) return absl::InvalidArgumentError("path component longer than 255 bytes");
    start = slash + 1;
  }
  return absl::OkStatus();
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view text) {
  using nlohmann::json;
  json root = json::parse(text.begin(), text.end(), nullptr, false);
  if (root.is_discarded()) return absl::InvalidArgumentError("manifest: not valid JSON");
  if (!root.is_object()) return absl::InvalidArgumentError("manifest: expected a JSON object");
  auto version = root.find("version");
  if (version == root.end() || !version->is_string()) {
    return absl::InvalidArgumentError("manifest: \"version\" must be a string");
  }
  if (version->get_ref<const std::string&>() != "1") {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest: unsupported version '", version->get_ref<const std::string&>(), "'"));
  }
  auto files = root.find("files");
  if (files == root.end() || !files->is_array()) {
    return absl::InvalidArgumentError("manifest: \"files\" must be an array");
  }
  Manifest manifest;
  manifest.files.reserve(files->size());
  std::unordered_set<std::string> seen;
  seen.reserve(files->size());
  for (size_t i = 0; i < files->size(); ++i) {
    const json& e = (*files)[i];
    if (!e.is_object()) return EntryError(i, "expected an object");
    FileEntry entry;
    auto path = e.find("path");
    if (path == e.end() || !path->is_string()) return EntryError(i, "\"path\" must be a string");
    entry.path = path->get<std::string>();
    absl::Status valid = ValidateManifestPath(entry.path);
    if (!valid.ok()) return EntryError(i, valid.message());
    if (!seen.insert(entry.path).second) {
      return EntryError(i, absl::StrCat("duplicate path '", entry.path, "'"));
    }
    auto hash = e.find("hash");
    if (hash == e.end() || !hash->is_string() || !IsLowerHexSha256(hash->get_ref<const std::string&>())) {
      return EntryError(i, "\"hash\" must be 64 lowercase hex chars");
    }
    entry.hash = hash->get<std::string>();
    auto size = e.find("size");
    if (size == e.end() || !size->is_number_unsigned()) {
      // nlohmann stores non-negative integers as unsigned; negatives and floats land here.
      return EntryError(i, "\"size\" must be a non-negative integer");
    }
    entry.size = size->get<uint64_t>();
    auto mode = e.find("mode");
    if (mode == e.end() || !mode->is_number_unsigned() || mode->get<uint64_t>() > 0777) {
      return EntryError(i, "\"mode\" must be an integer in 0..511 (0777)");
    }
    entry.mode = static_cast<uint32_t>(mode->get<uint64_t>());
    auto mod_time = e.find("mod_time");
    if (mod_time != e.end()) {
      if (mod_time->is_number_unsigned()) {
        uint64_t u = mod_time->get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return EntryError(i, "\"mod_time\" out of range");
        entry.mod_time = static_cast<int64_t>(u);
      } else if (mod_time->is_number_integer()) {
        entry.mod_time = mod_time->get<int64_t>();
      } else {
        return EntryError(i, "\"mod_time\" must be an integer");
      }
    }
    manifest.files.push_back(std::move(entry));
  }
  return manifest;
}

ManifestDiff DiffManifests(const Manifest& base, const Manifest& current) {
  ManifestDiff diff;
  std::unordered_map<std::string, const FileEntry*> old_by_path;
  old_by_path.reserve(base.files.size());
  for (const FileEntry& e : base.files) old_by_path[e.path] = &e;
  for (const FileEntry& e : current.files) {
    auto it = old_by_path.find(e.path);
    if (it == old_by_path.end()) {
      diff.added.push_back(e.path);
      diff.bytes_changed += e.size;
    } else {
      if (it->second->hash != e.hash) {
        diff.modified.push_back(e.path);
        diff.bytes_changed += e.size;
      }
      old_by_path.erase(it);
    }
  }
  for (const FileEntry& e : base.files) {
    if (old_by_path.count(e.path)) {
      diff.deleted.push_back(e.path);
      diff.bytes_changed += e.size;
    }
  }
  std::sort(diff.added.begin(), diff.added.end());
  std::sort(diff.modified.begin(), diff.modified.end());
  std::sort(diff.deleted.begin(), diff.deleted.end());
  return diff;
}

}  // namespace fastest::core
