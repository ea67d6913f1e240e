#include "tools/cli/test_blobs.h"

#include "core/snapshot/sha256.h"

namespace fastest::cli {

core::FileEntry TestBlobs::Entry(const std::string& path, const std::string& content,
                                 uint32_t mode) {
  core::FileEntry e;
  e.path = path;
  e.hash = core::Sha256Hex(content);
  e.size = content.size();
  e.mode = mode;
  blobs_[e.hash] = content;
  return e;
}

BlobFetcher TestBlobs::Fetcher() {
  return [this](const std::string& h) -> absl::StatusOr<std::string> {
    ++fetches_;
    auto it = blobs_.find(h);
    if (it == blobs_.end()) return absl::NotFoundError("no blob");
    return it->second;
  };
}

}  // namespace fastest::cli
