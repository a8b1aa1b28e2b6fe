// SPDX-License-Identifier: MIT
// backprop::io: a validating reader for IDX files (the MNIST format), raw or gzip-compressed.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../detail/error.hpp"
#include "../tensor.hpp"
#include "error.hpp"

namespace backprop::io {

/// The contents of an unsigned-byte IDX file: its dimensions and prod(shape) bytes, row-major.
struct IdxArray {
  Shape shape;                     // e.g. [60000, 28, 28] for MNIST's training images
  std::vector<std::uint8_t> data;  // shape[0] items of prod(shape[1:]) bytes each
};

}  // namespace backprop::io

namespace backprop::detail {

template <typename... Args>
[[noreturn]] void idx_fail(const std::string& path, const Args&... what) {
  fail<io::DataError>(path, what...);
}

// The bytes of a file in order, inflated on the fly when it starts with gzip's 1f 8b (the
// content decides, not the name). Raw files also know how many bytes are left, so the
// reader can check a header against the file size before it allocates anything.
class IdxByteSource {
 public:
  explicit IdxByteSource(const std::string& path) : path_(path), file_(open_regular(path)) {
    std::uint8_t sniff[2] = {0, 0};
    const std::size_t n = std::fread(sniff, 1, 2, file_.get());
    if (n < 2 && std::ferror(file_.get())) read_error();
    gzip_ = n == 2 && sniff[0] == 0x1f && sniff[1] == 0x8b;
    if (std::fseek(file_.get(), 0, SEEK_SET) != 0) read_error();
    if (gzip_) {
      in_.resize(1 << 16);
      zs_ = std::make_unique<z_stream>();
      // 15 + 16: a 32 KiB window and a gzip (not zlib) wrapper, with its CRC-32 checked.
      if (inflateInit2(zs_.get(), 15 + 16) != Z_OK) idx_fail(path, "cannot start zlib's inflate");
    } else {
      if (std::fseek(file_.get(), 0, SEEK_END) != 0) read_error();
      const long size = std::ftell(file_.get());
      if (size < 0 || std::fseek(file_.get(), 0, SEEK_SET) != 0) read_error();
      left_ = static_cast<std::uint64_t>(size);
    }
  }
  // Regular files only, refused before opening: fopen of a FIFO waits for a writer, forever if
  // none comes, and neither it nor a device has a size to check a header against.
  static std::FILE* open_regular(const std::string& path) {
    std::error_code ec;
    const std::filesystem::file_status st = std::filesystem::status(path, ec);
    if (!ec && !std::filesystem::is_regular_file(st))
      idx_fail(path, std::filesystem::is_directory(st) ? "cannot open: Is a directory"
                     : std::filesystem::is_fifo(st)
                         ? "cannot open: a FIFO (named pipe), not a regular file"
                         : "cannot open: not a regular file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) idx_fail(path, concat("cannot open: ", std::strerror(errno)));
    return f;
  }
  ~IdxByteSource() {
    if (zs_) inflateEnd(zs_.get());
  }
  IdxByteSource(const IdxByteSource&) = delete;
  IdxByteSource& operator=(const IdxByteSource&) = delete;

  bool gzip() const { return gzip_; }
  // Bytes still to come: exact for raw files; gzip can only tell by inflating them.
  std::uint64_t raw_bytes_left() const { return left_; }
  // "holds" or "decompresses to", for messages about how much data there is.
  const char* holds() const { return gzip_ ? "decompresses to" : "holds"; }

  // Reads up to n bytes into out; fewer only at the end of the data.
  std::size_t read(std::uint8_t* out, std::size_t n) {
    return gzip_ ? inflate_into(out, n) : read_raw(out, n);
  }

 private:
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };

  [[noreturn]] void read_error() const {
    idx_fail(path_, concat("read error: ", std::strerror(errno)));
  }

  // Reads up to n bytes of the file itself; fewer only at its end.
  std::size_t fread_all(std::uint8_t* out, std::size_t n) {
    const std::size_t got = std::fread(out, 1, n, file_.get());
    if (got < n && std::ferror(file_.get())) read_error();
    return got;
  }

  // Refills the compressed input, keeping the `keep` unread bytes at next_in.
  void refill(std::size_t keep = 0) {
    if (keep > 0) std::memmove(in_.data(), zs_->next_in, keep);
    zs_->next_in = in_.data();
    zs_->avail_in = static_cast<uInt>(keep + fread_all(in_.data() + keep, in_.size() - keep));
  }

  std::size_t read_raw(std::uint8_t* out, std::size_t n) {
    const std::size_t got = fread_all(out, n);
    left_ -= std::min<std::uint64_t>(left_, got);
    return got;
  }

  std::size_t inflate_into(std::uint8_t* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n && !done_) {
      if (zs_->avail_in == 0) refill();
      const std::size_t want = std::min<std::size_t>(n - got, std::numeric_limits<uInt>::max());
      zs_->next_out = out + got;
      zs_->avail_out = static_cast<uInt>(want);
      const bool no_input = zs_->avail_in == 0;
      const int rc = inflate(zs_.get(), Z_NO_FLUSH);
      got += want - zs_->avail_out;
      if (rc == Z_STREAM_END) {
        end_of_member();
      } else if (rc == Z_BUF_ERROR && no_input) {
        idx_fail(path_, "truncated gzip stream: the file ends before the gzip trailer");
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        idx_fail(path_, concat("corrupt gzip data: ", zs_->msg ? zs_->msg : zError(rc)));
      }
    }
    return got;
  }

  // After a gzip member: another member follows (as gunzip reads them), or the file ends.
  // Anything else is trailing garbage, rejected rather than silently ignored.
  void end_of_member() {
    if (zs_->avail_in < 2) refill(zs_->avail_in);  // the next magic may straddle a refill
    if (zs_->avail_in == 0) {
      done_ = true;
      return;
    }
    if (zs_->avail_in >= 2 && zs_->next_in[0] == 0x1f && zs_->next_in[1] == 0x8b) {
      inflateReset(zs_.get());
      return;
    }
    idx_fail(path_, "trailing garbage after the gzip stream");
  }

  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
  std::unique_ptr<z_stream> zs_;
  std::vector<std::uint8_t> in_;  // compressed input (gzip only)
  std::uint64_t left_ = 0;
  bool gzip_ = false, done_ = false;
};

inline std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof(buf), "0x%08X", static_cast<unsigned>(v));
  return buf;
}

inline const char* idx_type_name(std::uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "not an IDX type";
  }
}

// "items" or "items of 28x28 bytes": how a truncation message describes shape[0] and the rest.
inline std::string idx_items_str(const Shape& shape) {
  std::string s = "items";
  for (std::size_t d = 1; d < shape.size(); ++d)
    s += (d == 1 ? " of " : "x") + std::to_string(shape[d]);
  return shape.size() > 1 ? s + " bytes" : s;
}

// "59990" or "59999 items and 774 bytes": how many whole items `bytes` of data make.
inline std::string idx_held_str(std::uint64_t bytes, std::uint64_t item_bytes, std::size_t rank) {
  if (item_bytes == 0) return concat(bytes, " bytes");
  const std::uint64_t items = bytes / item_bytes, rest = bytes % item_bytes;
  if (rest == 0) return std::to_string(items) + (rank > 1 ? " items" : "");
  return concat(items, " items and ", rest, " bytes");
}

}  // namespace backprop::detail

namespace backprop::io {}  // namespace backprop::io

namespace backprop::detail {

// Step 1 of read_idx: the magic number 00 00 08 <rank>; returns the rank.
inline std::size_t read_idx_magic(const std::string& path, IdxByteSource& in) {
  std::uint8_t magic[4];
  const std::size_t got = in.read(magic, 4);
  if (got < 4)
    idx_fail(path, "truncated: file ", in.holds(), " ", got,
             " bytes, too short for the 4-byte IDX magic number");
  const std::uint32_t value = (std::uint32_t{magic[0]} << 24) | (std::uint32_t{magic[1]} << 16) |
                              (std::uint32_t{magic[2]} << 8) | magic[3];
  // A type byte IDX never uses means this is no IDX file at all, rather than one of
  // another element type.
  const bool idx_type =
      magic[2] == 0x08 || magic[2] == 0x09 || (magic[2] >= 0x0B && magic[2] <= 0x0E);
  if (magic[0] != 0 || magic[1] != 0 || !idx_type)
    idx_fail(path, "bad magic number ", hex32(value),
             ", expected 0x00000801 (labels) or 0x00000803 (images)");
  if (magic[2] != 0x08)
    idx_fail(path, "unsupported element type 0x", hex32(magic[2]).substr(8), " (",
             idx_type_name(magic[2]), ") in magic number ", hex32(value),
             ": only unsigned byte (0x08) is supported");
  const std::size_t rank = magic[3];
  if (rank < 1 || rank > 4)
    idx_fail(path, "bad magic number ", hex32(value), ": rank ", rank, " is not in 1..4");
  return rank;
}

// Step 2: rank big-endian uint32 dimensions; returns their product, checked against Index
// (64-bit: a product of up to four uint32 is checked, not wrapped).
inline std::uint64_t read_idx_shape(const std::string& path, IdxByteSource& in, std::size_t rank,
                                    Shape& shape) {
  std::uint8_t dims[16];
  const std::size_t got = in.read(dims, 4 * rank);
  if (got < 4 * rank)
    idx_fail(path, "truncated: the header needs ", 4 + 4 * rank, " bytes but the file ", in.holds(),
             " ", 4 + got);
  shape.assign(rank, 0);
  const std::uint64_t limit = std::min<std::uint64_t>(std::numeric_limits<Index>::max(),
                                                      std::numeric_limits<std::size_t>::max());
  std::uint64_t numel = 1;
  bool overflow = false;
  for (std::size_t d = 0; d < rank; ++d) {
    const std::uint8_t* b = dims + 4 * d;
    const std::uint64_t n = (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) |
                            (std::uint64_t{b[2]} << 8) | b[3];
    shape[d] = static_cast<Index>(n);
    if (n != 0 && numel > limit / n)
      overflow = true;
    else
      numel *= n;
  }
  if (overflow)
    idx_fail(path, "dimensions ", shape_str(shape),
             " hold too many elements: their product overflows a 64-bit size");
  return numel;
}

// Step 3: the numel data bytes into data, and nothing after them. A raw file is checked
// against its size before the allocation; a gzip file's buffer grows (exactly, by reserve)
// only as inflated bytes actually arrive, up to the header's count.
inline void read_idx_data(const std::string& path, IdxByteSource& in, const Shape& shape,
                          std::uint64_t numel, std::vector<std::uint8_t>& data) {
  const std::uint64_t item_bytes = shape[0] == 0 ? 0 : numel / static_cast<std::uint64_t>(shape[0]);
  const auto truncated = [&](std::uint64_t have) {
    idx_fail(path, "truncated: header says ", shape[0], " ", idx_items_str(shape), " but file ",
             in.holds(), " ", idx_held_str(have, item_bytes, shape.size()));
  };
  const auto trailing = [&](const std::string& extra) {
    idx_fail(path, "trailing data: file ", in.holds(), " ", extra, " more bytes than the header's ",
             shape_str(shape), " needs");
  };
  if (!in.gzip()) {
    const std::uint64_t left = in.raw_bytes_left();
    if (left < numel) truncated(left);
    if (left > numel) trailing(std::to_string(left - numel));
    data.resize(static_cast<std::size_t>(numel));
    const std::size_t got = in.read(data.data(), data.size());
    if (got < numel) truncated(got);  // the file shrank while we read it
    return;
  }
  std::size_t have = 0;
  while (have < numel) {
    const std::size_t cap = static_cast<std::size_t>(
        std::min<std::uint64_t>(numel, std::max<std::uint64_t>(2 * have, 1 << 20)));
    data.reserve(cap);
    data.resize(cap);
    const std::size_t got = in.read(data.data() + have, cap - have);
    have += got;
    if (have < cap) truncated(have);
  }
  // Reading on to the end also makes zlib check the gzip trailer's CRC-32 and length.
  std::uint8_t extra = 0;
  if (in.read(&extra, 1) != 0) trailing("at least 1");
}

}  // namespace backprop::detail

namespace backprop::io {

/// Reads an IDX file of unsigned bytes (http://yann.lecun.com/exdb/mnist/): the magic
/// 00 00 08 <rank>, rank big-endian uint32 dimensions, then the bytes. Gzip-compressed files
/// are recognised by their content (1f 8b) and inflated. Accepts ranks 1 to 4; callers check
/// the rank they need. Everything is validated before the data is allocated: the magic, the
/// dimensions (their product must fit in an Index) and, for raw files, the file size; a gzip
/// file is inflated in growing chunks, so a header claiming more data than the file inflates
/// to allocates at most max(1 MiB, twice what is really there). Data past the header's
/// count (raw or inflated) and garbage after the gzip stream are errors, not ignored.
/// Throws DataError("<path>: <problem>").
/// Example: IdxArray labels = read_idx("data/mnist/train-labels-idx1-ubyte.gz");
inline IdxArray read_idx(const std::string& path) {
  detail::IdxByteSource in(path);
  IdxArray out;
  const std::size_t rank = detail::read_idx_magic(path, in);
  const std::uint64_t numel = detail::read_idx_shape(path, in, rank, out.shape);
  detail::read_idx_data(path, in, out.shape, numel, out.data);
  return out;
}

}  // namespace backprop::io
