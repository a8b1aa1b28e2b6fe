// SPDX-License-Identifier: MIT
// backprop::io: write a file atomically (temp file, fsync, rename, fsync of the directory).
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>

#include "error.hpp"

namespace backprop::detail {

// Closes a file descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int reset(int fd = -1) {  // closes the old descriptor; returns close()'s result
    const int rc = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = fd;
    return rc;
  }

 private:
  int fd_;
};

// While alive, SIGXFSZ is blocked in this thread. A write past RLIMIT_FSIZE then fails with
// EFBIG, which we report, instead of the signal's default action killing the process. On
// the way out it discards the SIGXFSZ our write left pending (else unblocking would deliver
// it), then restores the mask. Only this thread's mask changes, never the process-wide
// disposition, so other threads and the caller's handlers are unaffected. (A SIGXFSZ that
// another process sends this one during the write may be discarded with ours.)
class BlockSigxfsz {
 public:
  BlockSigxfsz() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGXFSZ);
    active_ = pthread_sigmask(SIG_BLOCK, &set_, &old_) == 0 && !sigismember(&old_, SIGXFSZ);
  }
  BlockSigxfsz(const BlockSigxfsz&) = delete;
  BlockSigxfsz& operator=(const BlockSigxfsz&) = delete;
  ~BlockSigxfsz() {
    if (!active_) return;
    const int saved = errno;
    sigset_t pending;
    const timespec zero{0, 0};
    while (sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ))
      if (sigtimedwait(&set_, nullptr, &zero) < 0 && errno != EINTR) break;
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved;
  }

 private:
  sigset_t set_, old_;
  bool active_ = false;
};

// Writes "<path>.tmp.<pid>.<n>" and renames it over path on commit(); until then the target
// is untouched, and if commit() is never reached the destructor removes the temp file.
// Failures throw Error("<path>: <problem>, OS error").
template <typename Error>
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), fd_(-1) {
    static std::atomic<unsigned> counter{0};  // threads of one process get distinct names
    for (int attempt = 0;; ++attempt) {
      tmp_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
      // O_EXCL: never follow a planted symlink or reuse a stale temp file.
      const int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        fd_.reset(fd);
        return;
      }
      if (errno != EEXIST || attempt == 100)
        fail<Error>(path_, "cannot create temporary file ", quote(tmp_), ": ",
                    std::strerror(errno));
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (committed_) return;
    fd_.reset();
    ::unlink(tmp_.c_str());
  }

  void write(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_.get(), p, std::min<std::size_t>(n, 1 << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        fail<Error>(path_, "cannot write temporary file ", quote(tmp_), ": ", std::strerror(errno));
      p += w;  // a short write (disk full, file size limit) is retried; the retry reports why
      n -= static_cast<std::size_t>(w);
    }
  }

  // Data on disk before the rename, and the rename on disk before we return.
  void commit() {
    if (::fsync(fd_.get()) != 0)
      fail<Error>(path_, "cannot fsync temporary file ", quote(tmp_), ": ", std::strerror(errno));
    if (fd_.reset() != 0)
      fail<Error>(path_, "cannot close temporary file ", quote(tmp_), ": ", std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail<Error>(path_, "cannot rename ", quote(tmp_), " over it: ", std::strerror(errno));
    committed_ = true;
    const std::string::size_type slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path_.substr(0, slash);
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    // Some file systems cannot fsync a directory (EINVAL): nothing more can be done there.
    if (d.get() < 0 || (::fsync(d.get()) != 0 && errno != EINVAL))
      fail<Error>(path_, "written, but cannot fsync its directory ", quote(dir), ": ",
                  std::strerror(errno));
  }

 private:
  std::string path_, tmp_;
  Fd fd_;
  bool committed_ = false;
};

}  // namespace backprop::detail

namespace backprop::io {

/// Writes bytes to path atomically, as write_safetensors does: readers
/// see the old file or the new one, never a torn one; failures throw FileError naming the path
/// and the OS error. For small text files beside checkpoints (metrics, plots).
/// Example: write_file_atomic("runs/metrics.csv", csv_text);
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  detail::BlockSigxfsz block;
  detail::AtomicFile<FileError> out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace backprop::io
