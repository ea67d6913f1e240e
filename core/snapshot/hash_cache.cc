// File: core/snapshot/hash_cache.cc
#include "core/snapshot/hash_cache.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "absl/strings/str_cat.h"
#include "core/snapshot/sha256.h"
#include "nlohmann/json.hpp"

namespace fastest::core {
namespace {

int64_t ToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

bool StatMatches(const HashCacheEntry& e, const struct stat& st) {
  return e.size == static_cast<uint64_t>(st.st_size) && e.mtime_ns == ToNs(st.st_mtim) &&
         e.ctime_ns == ToNs(st.st_ctim) && e.inode == static_cast<uint64_t>(st.st_ino) &&
         e.device == static_cast<uint64_t>(st.st_dev);
}

}  // namespace

HashCache::HashCache(const HashCache& other) {
  std::lock_guard<std::mutex> lock(other.mu_);
  entries_ = other.entries_;
}

HashCache& HashCache::operator=(const HashCache& other) {
  if (this == &other) return *this;
  std::unordered_map<std::string, HashCacheEntry> copy;
  {
    std::lock_guard<std::mutex> lock(other.mu_);
    copy = other.entries_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_ = std::move(copy);
  return *this;
}

int64_t HashCache::NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ToNs(ts);
}

std::optional<std::string> HashCache::Lookup(const std::string& rel_path, const struct stat& st) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(rel_path);
  if (it == entries_.end()) return std::nullopt;
  const HashCacheEntry& e = it->second;
  if (!StatMatches(e, st)) return std::nullopt;
  // Racy: modified in (or after) the tick the hash was taken → a same-tick write may be invisible.
  if (e.recorded_ns == 0) return std::nullopt;  // pending: not sealed yet
  if (e.mtime_ns >= e.recorded_ns || e.ctime_ns >= e.recorded_ns) return std::nullopt;
  return e.hash;
}

void HashCache::Record(const std::string& rel_path, const struct stat& st, std::string hash,
                       int64_t recorded_ns) {
  HashCacheEntry e;
  e.size = static_cast<uint64_t>(st.st_size);
  e.mtime_ns = ToNs(st.st_mtim);
  e.ctime_ns = ToNs(st.st_ctim);
  e.inode = static_cast<uint64_t>(st.st_ino);
  e.device = static_cast<uint64_t>(st.st_dev);
  e.hash = std::move(hash);
  e.recorded_ns = recorded_ns;
  std::lock_guard<std::mutex> lock(mu_);
  entries_[rel_path] = std::move(e);
}

absl::Status HashCache::RecordFile(const std::string& root, const std::string& rel_path,
                                   const std::string& hash) {
  if (!IsLowerHexSha256(hash)) return absl::InvalidArgumentError("hash cache: bad hash");
  std::string path = absl::StrCat(root, "/", rel_path);
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("hash cache: lstat ", path, ": ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("hash cache: not a regular file: ", path));
  }
  Record(rel_path, st, hash, /*recorded_ns=*/0);
  return absl::OkStatus();
}

void HashCache::Seal() {
  int64_t now = NowNs();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [path, e] : entries_) {
    if (e.recorded_ns == 0) e.recorded_ns = now;
  }
}

void HashCache::RetainOnly(const std::unordered_set<std::string>& paths) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (paths.count(it->first)) {
      ++it;
    } else {
      it = entries_.erase(it);
    }
  }
}

void HashCache::Erase(const std::string& rel_path) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(rel_path);
}

void HashCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

size_t HashCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::optional<HashCacheEntry> HashCache::Get(const std::string& rel_path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(rel_path);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::string HashCache::Serialize() const {
  nlohmann::json arr = nlohmann::json::array();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [path, e] : entries_) {
      arr.push_back({{"path", path},
                     {"size", e.size},
                     {"mtime_ns", e.mtime_ns},
                     {"ctime_ns", e.ctime_ns},
                     {"inode", e.inode},
                     {"device", e.device},
                     {"hash", e.hash},
                     {"recorded_ns", e.recorded_ns}});
    }
  }
  nlohmann::json root = {{"version", 1}, {"entries", std::move(arr)}};
  return root.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<HashCache> HashCache::Parse(absl::string_view text) {
  using nlohmann::json;
  json root = json::parse(text.begin(), text.end(), nullptr, false);
  if (root.is_discarded() || !root.is_object()) return absl::InvalidArgumentError("hash cache: bad JSON");
  auto entries = root.find("entries");
  if (entries == root.end() || !entries->is_array()) {
    return absl::InvalidArgumentError("hash cache: \"entries\" must be an array");
  }
  HashCache cache;
  for (const json& j : *entries) {
    if (!j.is_object()) return absl::InvalidArgumentError("hash cache: entry must be an object");
    auto str = [&](const char* k) { auto it = j.find(k); return it != j.end() && it->is_string(); };
    auto num = [&](const char* k) { auto it = j.find(k); return it != j.end() && it->is_number_integer(); };
    if (!str("path") || !str("hash") || !num("size") || !num("mtime_ns") || !num("ctime_ns") ||
        !num("inode") || !num("device") || !num("recorded_ns")) {
      return absl::InvalidArgumentError("hash cache: malformed entry");
    }
    HashCacheEntry e;
    e.size = j["size"].get<uint64_t>();
    e.mtime_ns = j["mtime_ns"].get<int64_t>();
    e.ctime_ns = j["ctime_ns"].get<int64_t>();
    e.inode = j["inode"].get<uint64_t>();
    e.device = j["device"].get<uint64_t>();
    e.hash = j["hash"].get<std::string>();
    e.recorded_ns = j["recorded_ns"].get<int64_t>();
    if (!IsLowerHexSha256(e.hash)) return absl::InvalidArgumentError("hash cache: bad hash");
    cache.entries_[j["path"].get<std::string>()] = std::move(e);
  }
  return cache;
}

}  // namespace fastest::core
