// File: server/store/fd_io.h
//
// Whole-buffer reads and writes on a file descriptor (retrying EINTR and short transfers), shared
// by the pack files and the loose manifest files.
#ifndef FASTEST_SERVER_STORE_FD_IO_H_
#define FASTEST_SERVER_STORE_FD_IO_H_

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace fastest::server {

// Writes all of data; false on an error (errno says which) or a zero-byte write.
inline bool WriteFully(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly `size` bytes at `offset` into dst; false on an error or a short file.
inline bool ReadFullyAt(int fd, char* dst, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, dst, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    dst += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace fastest::server

#endif  // FASTEST_SERVER_STORE_FD_IO_H_
