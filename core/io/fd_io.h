// File: core/io/fd_io.h
//
// Whole-buffer reads and writes on a file descriptor, retrying EINTR and short transfers (the
// store's pack files and loose manifest files use them).
#ifndef FASTEST_CORE_IO_FD_IO_H_
#define FASTEST_CORE_IO_FD_IO_H_

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace fastest::core {

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

}  // namespace fastest::core

#endif  // FASTEST_CORE_IO_FD_IO_H_
