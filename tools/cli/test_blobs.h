// File: tools/cli/test_blobs.h
//
// TestBlobs: manifest entries made from literal contents, and a BlobFetcher serving those
// contents (counting the fetches), for the CLI's unit tests.
#ifndef FASTEST_TOOLS_CLI_TEST_BLOBS_H_
#define FASTEST_TOOLS_CLI_TEST_BLOBS_H_

#include <cstdint>
#include <map>
#include <string>

#include "core/snapshot/manifest.h"
#include "tools/cli/write_policy.h"

namespace fastest::cli {

class TestBlobs {
 public:
  core::FileEntry Entry(const std::string& path, const std::string& content,
                        uint32_t mode = 0644);
  // Valid while this object lives.
  BlobFetcher Fetcher();
  int fetches() const { return fetches_; }
  void reset_fetches() { fetches_ = 0; }

 private:
  std::map<std::string, std::string> blobs_;
  int fetches_ = 0;
};

}  // namespace fastest::cli

#endif  // FASTEST_TOOLS_CLI_TEST_BLOBS_H_
