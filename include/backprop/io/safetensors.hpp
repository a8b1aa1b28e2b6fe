// SPDX-License-Identifier: MIT
// backprop::io: read and write safetensors files, validating hostile input, writing atomically.
#pragma once

// Longer than our ~250-line rule: the format, its validation and the atomic POSIX write are
// one concept, and each part is only correct together with the others.

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/error.hpp"
#include "../tensor.hpp"

namespace backprop::io {

/// A safetensors file is unreadable, malformed, does not fit a model, or cannot be written.
/// The message is one line, "<path>: <problem>", naming the tensor or field at fault, e.g.
/// "ckpt.safetensors: tensor 'fc.weight': data_offsets [0, 40] exceed the 24-byte data buffer".
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// clang-format off
/// The element types of the format (https://github.com/huggingface/safetensors), as spelled
/// in the header. The reader accepts all of them; get<T> converts F32, F64, I64, I32, ... .
enum class Dtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64,
                   U64 };
// clang-format on

namespace detail::safetensors {
struct DtypeInfo {
  Dtype dtype;
  const char* name;
  std::size_t size;
};
// clang-format off
inline constexpr DtypeInfo kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1}, {Dtype::U8, "U8", 1},     {Dtype::I8, "I8", 1},
    {Dtype::F8_E5M2, "F8_E5M2", 1},                     {Dtype::F8_E4M3, "F8_E4M3", 1},
    {Dtype::I16, "I16", 2},   {Dtype::U16, "U16", 2},   {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2}, {Dtype::I32, "I32", 4},   {Dtype::U32, "U32", 4},
    {Dtype::F32, "F32", 4},   {Dtype::F64, "F64", 8},   {Dtype::I64, "I64", 8},
    {Dtype::U64, "U64", 8}};
// clang-format on
template <typename T>
inline constexpr bool kUnsupported = false;
constexpr bool table_matches_enum() {
  for (int i = 0; i < static_cast<int>(sizeof(kDtypes) / sizeof(kDtypes[0])); ++i)
    if (static_cast<int>(kDtypes[i].dtype) != i) return false;
  return true;
}
static_assert(table_matches_enum(), "kDtypes is indexed by Dtype");
}  // namespace detail::safetensors

/// As spelled in the header: "F32".
inline const char* dtype_name(Dtype d) {
  return detail::safetensors::kDtypes[static_cast<int>(d)].name;
}
/// Bytes per element.
inline std::size_t dtype_size(Dtype d) {
  return detail::safetensors::kDtypes[static_cast<int>(d)].size;
}
// clang-format off
/// The dtype of a C++ element type: dtype_of<float>() == Dtype::F32.
template <typename T>
constexpr Dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return Dtype::F32;
  else if constexpr (std::is_same_v<T, double>) return Dtype::F64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return Dtype::I64;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return Dtype::U64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return Dtype::I32;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return Dtype::U32;
  else if constexpr (std::is_same_v<T, std::int16_t>) return Dtype::I16;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return Dtype::U16;
  else if constexpr (std::is_same_v<T, std::int8_t>) return Dtype::I8;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return Dtype::U8;
  else static_assert(detail::safetensors::kUnsupported<T>, "no safetensors dtype for this type");
}
// clang-format on

/// String metadata ("__metadata__" in the header; the format allows only string values).
using Metadata = std::map<std::string, std::string>;

/// One tensor as read from a file: its raw bytes, little-endian and row-major.
struct SafetensorsTensor {
  std::string name;
  Dtype dtype;
  Shape shape;                      // [] is a scalar
  std::vector<unsigned char> data;  // numel * dtype_size(dtype) bytes
};

/// A whole file: tensors in the order of their bytes, and the metadata.
/// Example: SafetensorsFile f = read_safetensors("model.safetensors");
///          Tensor<float> w = f.get<float>("fc.weight");
struct SafetensorsFile {
  std::string path;  // for error messages
  std::vector<SafetensorsTensor> tensors;
  Metadata metadata;

  /// The tensor of that name, or nullptr.
  const SafetensorsTensor* find(std::string_view name) const {
    for (const SafetensorsTensor& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// The named tensor as a Tensor<T>; throws if it is absent or of another dtype.
  template <typename T>
  Tensor<T> get(std::string_view name) const;
};

/// A tensor to write: its name, dtype, shape and numel * dtype_size(dtype) bytes in the
/// host's byte order (they are written little-endian). The bytes are not copied.
struct TensorRef {
  std::string name;
  Dtype dtype;
  Shape shape;
  const void* data;
};
/// Example: write_safetensors("w.safetensors", {tensor_ref("fc.weight", fc.weight)});
template <typename T>
TensorRef tensor_ref(std::string name, const Tensor<T>& t) {
  return {std::move(name), dtype_of<T>(), t.shape(), t.data()};
}

namespace detail::safetensors {

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
inline constexpr std::uint64_t kMaxHeader = 100'000'000;

// A file name or tensor name from a hostile file, quoted, with control and non-ASCII bytes
// escaped and the length capped, so that every message stays one readable line.
inline std::string quote(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

template <typename... Args>
[[noreturn]] void fail(const std::string& path, const Args&... what) {
  std::string msg = backprop::detail::concat(path, ": ", what...);
  for (char& c : msg)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // one line, whatever the input
  throw SafetensorsError(msg);
}

inline bool host_is_little_endian() {
  const std::uint16_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// Copies n bytes of elements of `size` bytes, reversing each element's bytes on a
// big-endian host (the file is little-endian).
inline void copy_le(void* dst, const void* src, std::size_t n, std::size_t size) {
  if (n) std::memcpy(dst, src, n);
  if (size == 1 || host_is_little_endian()) return;
  auto* p = static_cast<unsigned char*>(dst);
  for (std::size_t i = 0; i + size <= n; i += size) std::reverse(p + i, p + i + size);
}

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

// Reads exactly n bytes at offset; the file may have shrunk since fstat, which is an error.
inline void read_at(const std::string& path, int fd, void* dst, std::size_t n,
                    std::uint64_t offset) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, std::min<std::size_t>(n, 1 << 30), static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(path, "cannot read: ", std::strerror(errno));
    if (r == 0) fail(path, "file ended at byte ", offset, " while reading (truncated?)");
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
}

// Records duplicate keys at every depth, which nlohmann::json would silently overwrite.
struct DuplicateKeys {
  std::vector<std::set<std::string>> seen;  // keys of the open object at each depth
  std::string first;
  bool found = false;
  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    const auto d = static_cast<std::size_t>(depth);
    if (event == nlohmann::json::parse_event_t::object_start) {
      if (seen.size() < d + 2) seen.resize(d + 2);
      seen[d + 1].clear();
    } else if (event == nlohmann::json::parse_event_t::key && d < seen.size()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen[d].insert(key).second && !found) {
        first = key;
        found = true;
      }
    }
    return true;
  }
};

// A JSON non-negative integer; ok = false for anything else (negative, float, string...).
inline std::uint64_t to_u64(const nlohmann::json& v, bool& ok) {
  ok = v.is_number_unsigned();
  return ok ? v.get<std::uint64_t>() : 0;
}

struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t begin, end;
};

// Validates the header against the size of the data buffer; returns the entries sorted by
// offset. Every rule of the format is checked, so the caller can read blindly afterwards.
inline std::vector<Entry> parse_header(const std::string& path, const std::string& text,
                                       std::uint64_t buffer_size, Metadata& metadata) {
  nlohmann::json header;
  DuplicateKeys duplicates;
  try {
    header = nlohmann::json::parse(text.begin(), text.end(), std::ref(duplicates));
  } catch (const nlohmann::json::exception& e) {
    fail(path, "header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  if (text.empty() || text[0] != '{') fail(path, "header does not start with '{'");
  if (duplicates.found) fail(path, "header has the key ", quote(duplicates.first), " twice");

  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    const std::string& name = item.key();
    const nlohmann::json& v = item.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& m : v.items()) {
        if (!m.value().is_string())
          fail(path, "__metadata__ value of ", quote(m.key()), " is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string t = "tensor " + quote(name) + ": ";
    if (!v.is_object()) fail(path, t, "entry is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!v.contains(field)) fail(path, t, "missing field '", field, "'");
    for (const auto& f : v.items())
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        fail(path, t, "unknown field ", quote(f.key()));

    Entry e{name, Dtype::U8, {}, 0, 0};
    const nlohmann::json& dtype = v.at("dtype");
    if (!dtype.is_string()) fail(path, t, "field 'dtype' is not a string");
    bool known = false;
    for (const DtypeInfo& info : kDtypes)
      if (dtype.get_ref<const std::string&>() == info.name) e.dtype = info.dtype, known = true;
    if (!known) fail(path, t, "unknown dtype ", quote(dtype.get_ref<const std::string&>()));

    // numel * size with overflow checks: a hostile shape must not wrap around to a small size.
    const nlohmann::json& shape = v.at("shape");
    if (!shape.is_array()) fail(path, t, "field 'shape' is not an array");
    std::uint64_t nbytes = dtype_size(e.dtype);
    bool overflow = false;
    for (const nlohmann::json& s : shape) {
      bool ok = false;
      const std::uint64_t dim = to_u64(s, ok);
      if (!ok) fail(path, t, "field 'shape' holds ", s.dump(), ", not a non-negative integer");
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
        overflow = true;
      else if (dim != 0 && nbytes > std::numeric_limits<std::uint64_t>::max() / dim)
        overflow = true;
      else
        nbytes *= dim;
      e.shape.push_back(static_cast<Index>(std::min<std::uint64_t>(
          dim, static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))));
    }
    if (overflow) fail(path, t, "shape ", shape.dump(), " has too many elements");

    const nlohmann::json& offsets = v.at("data_offsets");
    bool ok0 = false, ok1 = false;
    if (offsets.is_array() && offsets.size() == 2) {
      e.begin = to_u64(offsets[0], ok0);
      e.end = to_u64(offsets[1], ok1);
    }
    if (!ok0 || !ok1)
      fail(path, t, "field 'data_offsets' is not two non-negative integers: ", offsets.dump());
    const std::string where =
        "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.end < e.begin) fail(path, t, where, " end before they begin");
    if (e.end > buffer_size) fail(path, t, where, " exceed the ", buffer_size, "-byte data buffer");
    if (e.end - e.begin != nbytes)
      fail(path, t, "shape ", backprop::detail::shape_str(e.shape), " of ", dtype_name(e.dtype),
           " needs ", nbytes, " bytes, ", where, " hold ", e.end - e.begin);
    entries.push_back(std::move(e));
  }

  // The spec requires the tensors to tile the buffer: no overlap, no hole, nothing after.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      fail(path, "tensor ", quote(e.name), ": data_offsets [", e.begin, ", ", e.end,
           "] overlap tensor ", quote(entries[i - 1].name), " at [", entries[i - 1].begin, ", ",
           entries[i - 1].end, "]");
    if (e.begin > covered)
      fail(path, "bytes [", covered, ", ", e.begin, ") of the data buffer belong to no tensor");
    covered = e.end;
  }
  if (covered != buffer_size)
    fail(path, "bytes [", covered, ", ", buffer_size, ") of the ", buffer_size,
         "-byte data buffer belong to no tensor");
  return entries;
}

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
        fail(path_, "cannot create temporary file ", quote(tmp_), ": ", std::strerror(errno));
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
        fail(path_, "cannot write temporary file ", quote(tmp_), ": ", std::strerror(errno));
      p += w;  // a short write (disk full, file size limit) is retried; the retry reports why
      n -= static_cast<std::size_t>(w);
    }
  }

  // Data on disk before the rename, and the rename on disk before we return.
  void commit() {
    if (::fsync(fd_.get()) != 0)
      fail(path_, "cannot fsync temporary file ", quote(tmp_), ": ", std::strerror(errno));
    if (fd_.reset() != 0)
      fail(path_, "cannot close temporary file ", quote(tmp_), ": ", std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail(path_, "cannot rename ", quote(tmp_), " over it: ", std::strerror(errno));
    committed_ = true;
    const std::string::size_type slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : path_.substr(0, slash);
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    // Some file systems cannot fsync a directory (EINVAL): nothing more can be done there.
    if (d.get() < 0 || (::fsync(d.get()) != 0 && errno != EINVAL))
      fail(path_, "written, but cannot fsync its directory ", quote(dir), ": ",
           std::strerror(errno));
  }

 private:
  std::string path_, tmp_;
  Fd fd_;
  bool committed_ = false;
};

}  // namespace detail::safetensors

template <typename T>
Tensor<T> SafetensorsFile::get(std::string_view name) const {
  namespace st = detail::safetensors;
  const SafetensorsTensor* t = find(name);
  if (!t) st::fail(path, "no tensor ", st::quote(name));
  if (t->dtype != dtype_of<T>())
    st::fail(path, "tensor ", st::quote(name), " has dtype ", dtype_name(t->dtype), ", expected ",
             dtype_name(dtype_of<T>()));
  Tensor<T> out(t->shape);
  st::copy_le(out.data(), t->data.data(), t->data.size(), sizeof(T));
  return out;
}

/// Reads and validates a whole safetensors file. Every violation of the format (sizes that
/// disagree with the file, bad JSON, missing or mistyped fields, unknown dtypes, offsets out
/// of range, overlapping or not tiling the buffer, duplicate names) throws SafetensorsError
/// before anything large is allocated: memory use is bounded by the file's real size.
/// Example: for (const SafetensorsTensor& t : read_safetensors(path).tensors) ...
inline SafetensorsFile read_safetensors(const std::string& path) {
  namespace st = detail::safetensors;
  st::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) st::fail(path, "cannot open: ", std::strerror(errno));
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) st::fail(path, "cannot stat: ", std::strerror(errno));
  if (!S_ISREG(info.st_mode)) st::fail(path, "not a regular file");
  const auto size = static_cast<std::uint64_t>(info.st_size);
  if (size < 8) st::fail(path, "file is ", size, " bytes, too short for the 8-byte header length");

  unsigned char len[8];
  st::read_at(path, fd.get(), len, 8, 0);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > size - 8)
    st::fail(path, "header length ", n, " exceeds the ", size - 8, " bytes after it");
  if (n > st::kMaxHeader) st::fail(path, "header length ", n, " exceeds the 100 MB limit");
  std::string text(static_cast<std::size_t>(n), '\0');
  st::read_at(path, fd.get(), text.data(), text.size(), 8);

  SafetensorsFile file;
  file.path = path;
  const std::uint64_t base = 8 + n;
  const std::vector<st::Entry> entries = st::parse_header(path, text, size - base, file.metadata);
  file.tensors.reserve(entries.size());
  for (const st::Entry& e : entries) {
    SafetensorsTensor t{e.name, e.dtype, e.shape, {}};
    t.data.resize(static_cast<std::size_t>(e.end - e.begin));
    st::read_at(path, fd.get(), t.data.data(), t.data.size(), base + e.begin);
    file.tensors.push_back(std::move(t));
  }
  return file;
}

/// Writes tensors (in the given order) and metadata as a safetensors file, atomically: the
/// bytes go to "<path>.tmp.<pid>.<n>" in the same directory, which is fsynced and renamed
/// over path, and the directory is fsynced. If anything fails (the temp file cannot be
/// created, a write is short because the disk is full or RLIMIT_FSIZE is reached, fsync or
/// rename fails) the temp file is removed, a previous file at path is left as it was, and
/// SafetensorsError names the path and the OS error. SIGXFSZ is blocked in the calling
/// thread while writing, so exceeding RLIMIT_FSIZE is this exception, not a killed process.
/// The header is padded with spaces so that the data starts 8-byte aligned (as the
/// reference implementation does). POSIX only; a symlink at path is replaced, not followed.
/// Example: write_safetensors("w.safetensors", {tensor_ref("w", w)}, {{"format", "pt"}});
inline void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                              const Metadata& metadata = {}) {
  namespace st = detail::safetensors;
  // ordered_json keeps "__metadata__" first and the tensors in the caller's order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<std::uint64_t> sizes;
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const TensorRef& t : tensors) {
    const std::string what = "tensor " + st::quote(t.name) + ": ";
    if (t.name == "__metadata__") st::fail(path, what, "the name is reserved");
    if (!names.insert(t.name).second) st::fail(path, what, "the name appears twice");
    std::uint64_t nbytes = dtype_size(t.dtype);
    for (Index d : t.shape) {
      if (d < 0)
        st::fail(path, what, "negative size in shape ", backprop::detail::shape_str(t.shape));
      const auto u = static_cast<std::uint64_t>(d);
      if (u != 0 && nbytes > std::numeric_limits<std::uint64_t>::max() / u)
        st::fail(path, what, "shape ", backprop::detail::shape_str(t.shape), " is too large");
      nbytes *= u;
    }
    if (nbytes > 0 && !t.data) st::fail(path, what, "no data");
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    sizes.push_back(nbytes);
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    st::fail(path, "cannot encode the header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(text.size() >> (8 * i));

  st::BlockSigxfsz block;
  st::AtomicFile out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  std::vector<unsigned char> swapped;  // big-endian hosts only
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::size_t size = dtype_size(tensors[i].dtype);
    if (size == 1 || st::host_is_little_endian()) {
      out.write(tensors[i].data, static_cast<std::size_t>(sizes[i]));
    } else {
      swapped.resize(static_cast<std::size_t>(sizes[i]));
      st::copy_le(swapped.data(), tensors[i].data, swapped.size(), size);
      out.write(swapped.data(), swapped.size());
    }
  }
  out.commit();
}

}  // namespace backprop::io

namespace backprop::io {

/// Writes bytes to path atomically, with the same guarantees as write_safetensors: readers
/// see the old file or the new one, never a torn one; failures throw SafetensorsError naming
/// the path and the OS error. For small text files beside checkpoints (metrics, plots).
/// Example: write_file_atomic("runs/metrics.csv", csv_text);
inline void write_file_atomic(const std::string& path, std::string_view bytes) {
  detail::safetensors::BlockSigxfsz block;
  detail::safetensors::AtomicFile out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace backprop::io
