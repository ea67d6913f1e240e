// File: server/store/pack_store.h
//
// PackStore: blobs appended to a few large pack files instead of one file each.
//
// Why: a snapshot uploads thousands of small blobs in batches. One file per blob costs an open,
// a rename and an inode per blob (5,000 files of 20 KB: ~100 ms of server CPU on tmpfs, more on
// disk); a batch appended to a pack is one gathered write, and durability is a couple of
// fdatasyncs per snapshot instead of one fsync per file.
//
// Layout under `dir`:
//   pack-000001.dat   blob bytes, back to back (no framing; the index says where each one is)
//   pack-000001.idx   16-byte header, then one 64-byte record per blob:
//                     sha256[32] | offset u64 | size u64 | reserved u64 | check u64
//                     (little-endian; check = FNV-1a 64 of the first 56 bytes)
//   LOCK              flock'ed by the process that owns the store (one writer per directory)
// A pack takes new blobs until it holds `rotate_bytes`, then pack N+1 starts.
//
// Crash safety: a blob's bytes are written before its index record, and a record is the only
// way to find a blob, so a reader never sees a partial blob. On open, a torn record (bad check)
// ends that index, and a record pointing past the end of its pack (its data never reached the
// disk) is dropped; the index is then rewritten without them.
//
// Durability is explicit: Sync() makes every blob appended so far survive power loss (packs'
// data first, then their indexes, with no record added in between). With `fsync` the disk
// writeback of each batch is started as soon as it is appended, so Sync() mostly waits for
// little. Until a Sync() a machine crash can lose recent blobs, never return wrong bytes for a
// hash that the index lists (on file systems that write data before the size that covers it,
// like ext4 and XFS; the runner verifies every blob it downloads anyway).
//
// The whole index is kept in memory (about 60 bytes per blob), so `exists` costs no I/O.
// Thread-safe. Callers verify the hashes: PackStore trusts the keys it is given.
#ifndef FASTEST_SERVER_STORE_PACK_STORE_H_
#define FASTEST_SERVER_STORE_PACK_STORE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace fastest::server {

// A SHA-256 as 32 raw bytes.
using BlobKey = std::array<uint8_t, 32>;
// False unless `hex` is 64 lowercase hex characters.
bool ParseBlobKey(absl::string_view hex, BlobKey* key);

class PackStore {
 public:
  struct Options {
    bool fsync = false;
    uint64_t rotate_bytes = 1ull << 30;
  };
  struct Location {
    uint32_t pack;  // index into packs_
    uint64_t offset;
    uint64_t size;
  };
  struct Entry {
    BlobKey key;
    absl::string_view data;
  };

  PackStore(std::string dir, Options options);
  ~PackStore();
  PackStore(const PackStore&) = delete;
  PackStore& operator=(const PackStore&) = delete;

  // Creates the directory, takes its lock (FailedPrecondition if another process holds it) and
  // loads every index.
  absl::Status Open();

  std::optional<Location> Find(const BlobKey& key) const;
  // Stores the entries not stored yet (duplicates within `entries` once). created[i] is true
  // for the entry that added a blob.
  absl::StatusOr<std::vector<bool>> Append(absl::Span<const Entry> entries);
  // Reads a located blob into dst (location.size bytes).
  absl::Status Read(const Location& location, char* dst) const;
  // Makes everything appended so far durable (fdatasync of each pack written since the last
  // Sync: data, then index).
  absl::Status Sync();

  size_t blob_count() const;
  size_t pack_count() const;
  // Records dropped while opening (torn or pointing at missing data); for tests and logs.
  uint64_t dropped_records() const { return dropped_records_; }

 private:
  struct Pack;
  struct KeyHash {
    // The key is already uniformly distributed: its first 8 bytes are a good hash.
    size_t operator()(const BlobKey& k) const;
  };

  absl::Status LoadPack(uint32_t number);
  absl::StatusOr<Pack*> StartPack(uint32_t number);  // caller holds write_mu_
  std::string PackPath(uint32_t number, const char* ext) const;

  const std::string dir_;
  const Options options_;
  int lock_fd_ = -1;
  uint64_t dropped_records_ = 0;

  // Serializes reservations, index appends and pack rotation.
  std::mutex write_mu_;
  // Guards index_ and packs_ (the vector; a Pack's fds never change once added).
  mutable std::shared_mutex index_mu_;
  absl::flat_hash_map<BlobKey, Location, KeyHash> index_;
  std::vector<std::unique_ptr<Pack>> packs_;
};

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_PACK_STORE_H_
