// SPDX-License-Identifier: MIT
// backprop::io: the errors of the file readers and writers, and the one way they are thrown.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "../detail/error.hpp"

namespace backprop::io {

/// A file cannot be opened, read, understood or written. Every reader and writer of
/// backprop::io throws one of these, with a one-line message "<path>: <problem>". Catch
/// FileError for all of them, or the reader's own type below.
/// Example: try { read_idx(p); } catch (const io::FileError& e) { std::puts(e.what()); }
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A data file (IDX, MNIST) is missing, unreadable or malformed, e.g.
/// "data/mnist/t10k-labels-idx1-ubyte: truncated: header says 10000 items but file holds 9990".
class DataError : public FileError {
 public:
  using FileError::FileError;
};

/// A safetensors file is unreadable, malformed, does not fit a model, or cannot be written,
/// naming the tensor or field at fault, e.g.
/// "ckpt.safetensors: tensor 'fc.weight': data_offsets [0, 40] exceed the 24-byte data buffer".
class SafetensorsError : public FileError {
 public:
  using FileError::FileError;
};

}  // namespace backprop::io

namespace backprop::detail {

// Throws Error("<path>: <what...>"), on one line whatever the path or the input said.
template <typename Error, typename... Args>
[[noreturn]] void fail(const std::string& path, const Args&... what) {
  std::string msg = concat(path, ": ", what...);
  for (char& c : msg)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  throw Error(msg);
}

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

}  // namespace backprop::detail
