// SPDX-License-Identifier: MIT
// backprop::io: read and write safetensors files, validating hostile input, writing atomically.
#pragma once

// Longer than our ~250-line rule: the format and its validation are one concept. The atomic
// write is io/atomic_file.hpp.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
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
#include "atomic_file.hpp"
#include "error.hpp"

namespace backprop::io {

// clang-format off
/// The element types of the format (https://github.com/huggingface/safetensors), as spelled
/// in the header. The reader accepts all of them; get<T> converts F32, F64, I64, I32, ... .
enum class Dtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64,
                   U64 };
// clang-format on

}  // namespace backprop::io

namespace backprop::detail {
struct DtypeInfo {
  io::Dtype dtype;
  const char* name;
  std::size_t size;
};
// clang-format off
inline constexpr DtypeInfo kDtypes[] = {
    {io::Dtype::BOOL, "BOOL", 1}, {io::Dtype::U8, "U8", 1},     {io::Dtype::I8, "I8", 1},
    {io::Dtype::F8_E5M2, "F8_E5M2", 1},                     {io::Dtype::F8_E4M3, "F8_E4M3", 1},
    {io::Dtype::I16, "I16", 2},   {io::Dtype::U16, "U16", 2},   {io::Dtype::F16, "F16", 2},
    {io::Dtype::BF16, "BF16", 2}, {io::Dtype::I32, "I32", 4},   {io::Dtype::U32, "U32", 4},
    {io::Dtype::F32, "F32", 4},   {io::Dtype::F64, "F64", 8},   {io::Dtype::I64, "I64", 8},
    {io::Dtype::U64, "U64", 8}};
// clang-format on
template <typename T>
inline constexpr bool kUnsupported = false;
constexpr bool table_matches_enum() {
  for (int i = 0; i < static_cast<int>(sizeof(kDtypes) / sizeof(kDtypes[0])); ++i)
    if (static_cast<int>(kDtypes[i].dtype) != i) return false;
  return true;
}
static_assert(table_matches_enum(), "kDtypes is indexed by Dtype");
}  // namespace backprop::detail

namespace backprop::io {

/// As spelled in the header: "F32".
inline const char* dtype_name(Dtype d) { return detail::kDtypes[static_cast<int>(d)].name; }
/// Bytes per element.
inline std::size_t dtype_size(Dtype d) { return detail::kDtypes[static_cast<int>(d)].size; }
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
  else static_assert(detail::kUnsupported<T>, "no safetensors dtype for this type");
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

}  // namespace backprop::io

namespace backprop::detail {

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

template <typename... Args>
[[noreturn]] void safetensors_fail(const std::string& path, const Args&... what) {
  fail<io::SafetensorsError>(path, what...);
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

// Reads exactly n bytes at offset; the file may have shrunk since fstat, which is an error.
inline void read_at(const std::string& path, int fd, void* dst, std::size_t n,
                    std::uint64_t offset) {
  auto* p = static_cast<unsigned char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, std::min<std::size_t>(n, 1 << 30), static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) safetensors_fail(path, "cannot read: ", std::strerror(errno));
    if (r == 0)
      safetensors_fail(path, "file ended at byte ", offset, " while reading (truncated?)");
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

struct SafetensorsEntry {
  std::string name;
  io::Dtype dtype;
  Shape shape;
  std::uint64_t begin, end;
};

// Step 1 of parse_header: the JSON text, which must be one object with no key twice.
inline nlohmann::json parse_header_json(const std::string& path, const std::string& text) {
  nlohmann::json header;
  DuplicateKeys duplicates;
  try {
    header = nlohmann::json::parse(text.begin(), text.end(), std::ref(duplicates));
  } catch (const nlohmann::json::exception& e) {
    safetensors_fail(path, "header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) safetensors_fail(path, "header is not a JSON object");
  if (text.empty() || text[0] != '{') safetensors_fail(path, "header does not start with '{'");
  if (duplicates.found)
    safetensors_fail(path, "header has the key ", quote(duplicates.first), " twice");
  return header;
}

// Step 2: "__metadata__", an object of strings.
inline void parse_metadata(const std::string& path, const nlohmann::json& v,
                           io::Metadata& metadata) {
  if (!v.is_object()) safetensors_fail(path, "__metadata__ is not a JSON object");
  for (const auto& m : v.items()) {
    if (!m.value().is_string())
      safetensors_fail(path, "__metadata__ value of ", quote(m.key()), " is not a string");
    metadata[m.key()] = m.value().get<std::string>();
  }
}

// Step 3a: a tensor entry has exactly the fields dtype, shape and data_offsets.
inline void check_entry_fields(const std::string& path, const std::string& t,
                               const nlohmann::json& v) {
  if (!v.is_object()) safetensors_fail(path, t, "entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) safetensors_fail(path, t, "missing field '", field, "'");
  for (const auto& f : v.items())
    if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
      safetensors_fail(path, t, "unknown field ", quote(f.key()));
}

// Step 3b: the dtype, one of the format's names.
inline io::Dtype parse_dtype(const std::string& path, const std::string& t,
                             const nlohmann::json& dtype) {
  if (!dtype.is_string()) safetensors_fail(path, t, "field 'dtype' is not a string");
  for (const DtypeInfo& info : kDtypes)
    if (dtype.get_ref<const std::string&>() == info.name) return info.dtype;
  safetensors_fail(path, t, "unknown dtype ", quote(dtype.get_ref<const std::string&>()));
}

// Step 3c: the shape, into `shape`; returns numel * dtype size in bytes, with overflow checks:
// a hostile shape must not wrap around to a small size.
inline std::uint64_t parse_shape(const std::string& path, const std::string& t,
                                 const nlohmann::json& json, io::Dtype dtype, Shape& shape) {
  if (!json.is_array()) safetensors_fail(path, t, "field 'shape' is not an array");
  std::uint64_t nbytes = io::dtype_size(dtype);
  bool overflow = false;
  for (const nlohmann::json& s : json) {
    bool ok = false;
    const std::uint64_t dim = to_u64(s, ok);
    if (!ok)
      safetensors_fail(path, t, "field 'shape' holds ", s.dump(), ", not a non-negative integer");
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
      overflow = true;
    else if (dim != 0 && nbytes > std::numeric_limits<std::uint64_t>::max() / dim)
      overflow = true;
    else
      nbytes *= dim;
    shape.push_back(static_cast<Index>(std::min<std::uint64_t>(
        dim, static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))));
  }
  if (overflow) safetensors_fail(path, t, "shape ", json.dump(), " has too many elements");
  return nbytes;
}

// Step 3d: data_offsets, inside the buffer and exactly as long as the shape needs.
inline void parse_offsets(const std::string& path, const std::string& t,
                          const nlohmann::json& offsets, std::uint64_t nbytes,
                          std::uint64_t buffer_size, SafetensorsEntry& e) {
  bool ok0 = false, ok1 = false;
  if (offsets.is_array() && offsets.size() == 2) {
    e.begin = to_u64(offsets[0], ok0);
    e.end = to_u64(offsets[1], ok1);
  }
  if (!ok0 || !ok1)
    safetensors_fail(path, t,
                     "field 'data_offsets' is not two non-negative integers: ", offsets.dump());
  const std::string where =
      "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.end < e.begin) safetensors_fail(path, t, where, " end before they begin");
  if (e.end > buffer_size)
    safetensors_fail(path, t, where, " exceed the ", buffer_size,
                     "-byte data buffer: the file is truncated, or its header is wrong");
  if (e.end - e.begin != nbytes)
    safetensors_fail(path, t, "shape ", shape_str(e.shape), " of ", io::dtype_name(e.dtype),
                     " needs ", nbytes, " bytes, ", where, " hold ", e.end - e.begin);
}

// Step 4: the spec requires the tensors to tile the buffer: no overlap, no hole, nothing
// after. Sorts the entries by offset.
inline void check_tiling(const std::string& path, std::vector<SafetensorsEntry>& entries,
                         std::uint64_t buffer_size) {
  std::sort(entries.begin(), entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const SafetensorsEntry& e = entries[i];
    if (e.begin < covered)
      safetensors_fail(path, "tensor ", quote(e.name), ": data_offsets [", e.begin, ", ", e.end,
                       "] overlap tensor ", quote(entries[i - 1].name), " at [",
                       entries[i - 1].begin, ", ", entries[i - 1].end, "]");
    if (e.begin > covered)
      safetensors_fail(path, "bytes [", covered, ", ", e.begin,
                       ") of the data buffer belong to no tensor");
    covered = e.end;
  }
  if (covered != buffer_size)
    safetensors_fail(path, "bytes [", covered, ", ", buffer_size, ") of the ", buffer_size,
                     "-byte data buffer belong to no tensor");
}

// Validates the header against the size of the data buffer; returns the entries sorted by
// offset. Every rule of the format is checked, so the caller can read blindly afterwards.
inline std::vector<SafetensorsEntry> parse_header(const std::string& path, const std::string& text,
                                                  std::uint64_t buffer_size,
                                                  io::Metadata& metadata) {
  const nlohmann::json header = parse_header_json(path, text);
  std::vector<SafetensorsEntry> entries;
  for (const auto& item : header.items()) {
    const std::string& name = item.key();
    const nlohmann::json& v = item.value();
    if (name == "__metadata__") {
      parse_metadata(path, v, metadata);
      continue;
    }
    const std::string t = "tensor " + quote(name) + ": ";
    check_entry_fields(path, t, v);
    SafetensorsEntry e{name, parse_dtype(path, t, v.at("dtype")), {}, 0, 0};
    const std::uint64_t nbytes = parse_shape(path, t, v.at("shape"), e.dtype, e.shape);
    parse_offsets(path, t, v.at("data_offsets"), nbytes, buffer_size, e);
    entries.push_back(std::move(e));
  }
  check_tiling(path, entries, buffer_size);
  return entries;
}

// What a file that is not safetensors is, from its first bytes, for the error message: ""
// when nothing is recognised. PyTorch's torch.save writes a zip archive (.pt, .pth) or,
// with the legacy format, a pickle.
inline std::string describe_non_safetensors(const unsigned char* b, std::size_t n) {
  const auto starts = [&](const char* magic, std::size_t len) {
    return n >= len && std::memcmp(b, magic, len) == 0;
  };
  if (starts("PK\x03\x04", 4) || starts("PK\x05\x06", 4))
    return "it is a zip archive, as PyTorch's torch.save writes (.pt, .pth): convert it with "
           "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')";
  if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
    return "it is a Python pickle (protocol " + std::to_string(b[1]) +
           "), as torch.save's legacy format or pickle.dump writes: convert it with "
           "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')";
  if (starts("\x1f\x8b", 2)) return "it is gzip-compressed: decompress it first";
  if (starts("\x93NUMPY", 6)) return "it is a NumPy .npy array, not a safetensors file";
  if (starts("\x89HDF", 4)) return "it is an HDF5 file (Keras?), not a safetensors file";
  bool text = n > 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!(b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || (b[i] >= 0x20 && b[i] < 0x7f)))
      text = false;
  if (text)
    return "it starts with the text " +
           quote(std::string_view(reinterpret_cast<const char*>(b), n)) +
           ", not the 8-byte little-endian header length a safetensors file starts with";
  return "";
}

// Step 0 of reading: the 8-byte little-endian header length, checked against the file size
// before anything is allocated. A file too short or with an impossible length is most often
// not a safetensors file at all: the message then says what it is when it can tell.
inline std::uint64_t read_header_length(const std::string& path, int fd, std::uint64_t size) {
  unsigned char first[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(size, 8));
  read_at(path, fd, first, got, 0);
  const std::string what = describe_non_safetensors(first, got);
  const std::string why = what.empty() ? "" : ": " + what;
  if (size == 0)
    safetensors_fail(path,
                     "file is 0 bytes, too short for the 8-byte header length: it is "
                     "empty; expected a safetensors file (github.com/huggingface/safetensors)");
  if (size < 8)
    safetensors_fail(path, "file is ", size, " bytes, too short for the 8-byte header length", why);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | first[i];
  if (n > size - 8)
    safetensors_fail(path, "header length ", n, " exceeds the ", size - 8, " bytes after it", why);
  if (n > kMaxSafetensorsHeader)
    safetensors_fail(path, "header length ", n, " exceeds the 100 MB limit", why);
  return n;
}

}  // namespace backprop::detail

namespace backprop::io {

template <typename T>
Tensor<T> SafetensorsFile::get(std::string_view name) const {
  const SafetensorsTensor* t = find(name);
  if (!t) detail::safetensors_fail(path, "no tensor ", detail::quote(name));
  if (t->dtype != dtype_of<T>())
    detail::safetensors_fail(path, "tensor ", detail::quote(name), " has dtype ",
                             dtype_name(t->dtype), ", expected ", dtype_name(dtype_of<T>()));
  Tensor<T> out(t->shape);
  detail::copy_le(out.data(), t->data.data(), t->data.size(), sizeof(T));
  return out;
}

/// Reads and validates a whole safetensors file. Every violation of the format (sizes that
/// disagree with the file, bad JSON, missing or mistyped fields, unknown dtypes, offsets out
/// of range, overlapping or not tiling the buffer, duplicate names) throws SafetensorsError
/// before anything large is allocated: memory use is bounded by the file's real size.
/// Example: for (const SafetensorsTensor& t : read_safetensors(path).tensors) ...
inline SafetensorsFile read_safetensors(const std::string& path) {
  detail::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) detail::safetensors_fail(path, "cannot open: ", std::strerror(errno));
  struct stat info;
  if (::fstat(fd.get(), &info) != 0)
    detail::safetensors_fail(path, "cannot stat: ", std::strerror(errno));
  if (!S_ISREG(info.st_mode)) detail::safetensors_fail(path, "not a regular file");
  const auto size = static_cast<std::uint64_t>(info.st_size);
  const std::uint64_t n = detail::read_header_length(path, fd.get(), size);
  std::string text(static_cast<std::size_t>(n), '\0');
  detail::read_at(path, fd.get(), text.data(), text.size(), 8);

  SafetensorsFile file;
  file.path = path;
  const std::uint64_t base = 8 + n;
  const std::vector<detail::SafetensorsEntry> entries =
      detail::parse_header(path, text, size - base, file.metadata);
  file.tensors.reserve(entries.size());
  for (const detail::SafetensorsEntry& e : entries) {
    SafetensorsTensor t{e.name, e.dtype, e.shape, {}};
    t.data.resize(static_cast<std::size_t>(e.end - e.begin));
    detail::read_at(path, fd.get(), t.data.data(), t.data.size(), base + e.begin);
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
  // ordered_json keeps "__metadata__" first and the tensors in the caller's order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<std::uint64_t> sizes;
  std::set<std::string_view> names;
  std::uint64_t offset = 0;
  for (const TensorRef& t : tensors) {
    const std::string what = "tensor " + detail::quote(t.name) + ": ";
    if (t.name == "__metadata__") detail::safetensors_fail(path, what, "the name is reserved");
    if (!names.insert(t.name).second)
      detail::safetensors_fail(path, what, "the name appears twice");
    std::uint64_t nbytes = dtype_size(t.dtype);
    for (Index d : t.shape) {
      if (d < 0)
        detail::safetensors_fail(path, what, "negative size in shape ", detail::shape_str(t.shape));
      const auto u = static_cast<std::uint64_t>(d);
      if (u != 0 && nbytes > std::numeric_limits<std::uint64_t>::max() / u)
        detail::safetensors_fail(path, what, "shape ", detail::shape_str(t.shape), " is too large");
      nbytes *= u;
    }
    if (nbytes > 0 && !t.data) detail::safetensors_fail(path, what, "no data");
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
    detail::safetensors_fail(path, "cannot encode the header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(text.size() >> (8 * i));

  detail::BlockSigxfsz block;
  detail::AtomicFile<SafetensorsError> out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  std::vector<unsigned char> swapped;  // big-endian hosts only
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::size_t size = dtype_size(tensors[i].dtype);
    if (size == 1 || detail::host_is_little_endian()) {
      out.write(tensors[i].data, static_cast<std::size_t>(sizes[i]));
    } else {
      swapped.resize(static_cast<std::size_t>(sizes[i]));
      detail::copy_le(swapped.data(), tensors[i].data, swapped.size(), size);
      out.write(swapped.data(), swapped.size());
    }
  }
  out.commit();
}

}  // namespace backprop::io
