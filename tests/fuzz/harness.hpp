// SPDX-License-Identifier: MIT
// The fuzz targets' bodies, shared by the libFuzzer programs (fuzz_idx.cpp, fuzz_safetensors.cpp)
// and by replay.cpp, which runs them over the committed corpus and regressions in every build.
#pragma once

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <backprop/io/checkpoint.hpp>
#include <backprop/io/idx.hpp>
#include <backprop/io/safetensors.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../../examples/mnist/models.hpp"

namespace fuzz {

using Bytes = std::vector<std::uint8_t>;

// A broken promise of a reader: prints why and aborts, which libFuzzer reports as a crash
// (with the input saved) and the replay test as a failure.
[[noreturn]] inline void bug(const std::string& what) {
  std::fprintf(stderr, "BUG: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// The readers take paths, so each input goes to a file: a memfd (memory, no disk) reopened
// through /proc/self/fd/N, or a temp file where memfd_create is missing. One per use, reused.
class InputFile {
 public:
  explicit InputFile(const char* name) {
    fd_ = ::memfd_create(name, MFD_CLOEXEC);
    if (fd_ >= 0) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
      return;
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + name + ".XXXXXX";
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) bug("cannot create a file for the input: " + std::string(std::strerror(errno)));
    path_ = tmpl;
    unlink_ = true;
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    ::close(fd_);
    if (unlink_) ::unlink(path_.c_str());
  }

  // Replaces the file's contents with n bytes; returns its path.
  const std::string& write(const std::uint8_t* data, std::size_t n) {
    if (::ftruncate(fd_, 0) != 0) bug("ftruncate: " + std::string(std::strerror(errno)));
    for (std::size_t done = 0; done < n;) {
      const ssize_t w = ::pwrite(fd_, data + done, n - done, static_cast<off_t>(done));
      if (w <= 0) bug("pwrite: " + std::string(std::strerror(errno)));
      done += static_cast<std::size_t>(w);
    }
    return path_;
  }

 private:
  int fd_ = -1;
  std::string path_;
  bool unlink_ = false;
};

// Every error must be one line that starts with the path it is about.
inline void check_message(const std::string& path, const char* what) {
  const std::string msg = what;
  if (msg.rfind(path + ": ", 0) != 0) bug("message does not start with the path: " + msg);
  if (msg.find('\n') != std::string::npos) bug("message is not one line: " + msg);
}

// ---- IDX --------------------------------------------------------------------------------

// data gzip-compressed as one member, or as two split at `split` (0 < split < size), as
// gzip -c a >f; gzip -c b >>f would make them.
inline Bytes gzip(const std::uint8_t* data, std::size_t n, std::size_t split) {
  Bytes out;
  auto member = [&](const std::uint8_t* p, std::size_t len) {
    z_stream zs{};
    // Level 1, a 512-byte window and little memory: fast; any window inflates with 32 KiB.
    if (deflateInit2(&zs, 1, Z_DEFLATED, 9 + 16, 1, Z_DEFAULT_STRATEGY) != Z_OK)
      bug("deflateInit2 failed");
    const std::size_t at = out.size();
    out.resize(at + deflateBound(&zs, static_cast<uLong>(len)) + 32);
    zs.next_in = const_cast<Bytef*>(p);
    zs.avail_in = static_cast<uInt>(len);
    zs.next_out = out.data() + at;
    zs.avail_out = static_cast<uInt>(out.size() - at);
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) bug("deflate did not finish");
    out.resize(at + zs.total_out);
    deflateEnd(&zs);
  };
  if (split > 0 && split < n) {
    member(data, split);
    member(data + split, n - split);
  } else {
    member(data, n);
  }
  return out;
}

// What read_idx made of a file: its result, or that it threw a DataError.
struct IdxOutcome {
  bool ok = false;
  backprop::io::IdxArray array;
  std::string error;
};

inline IdxOutcome read_idx_checked(const std::string& path) {
  IdxOutcome r;
  try {
    r.array = backprop::io::read_idx(path);
    r.ok = true;
  } catch (const backprop::io::DataError& e) {
    check_message(path, e.what());
    r.error = e.what();
    return r;
  }
  // Accepted: rank 1..4 and exactly prod(shape) bytes.
  const backprop::Shape& s = r.array.shape;
  if (s.empty() || s.size() > 4) bug("read_idx accepted rank " + std::to_string(s.size()));
  std::uint64_t numel = 1;
  for (backprop::Index d : s) numel *= static_cast<std::uint64_t>(d);
  if (numel != r.array.data.size()) bug("read_idx: data size does not match the shape");
  return r;
}

/// The IDX target: the input as a file (raw, or gzip if it starts with 1f 8b); then, unless
/// it was gzip already, the same bytes gzip-compressed (one or two members), which must read
/// exactly as the raw file did: both fail, or both give the same shape and bytes. Returns
/// whether the input itself was accepted, and sets *error to why not.
inline bool idx_target(const std::uint8_t* data, std::size_t n, std::string* error = nullptr) {
  static InputFile raw_file("fuzz-idx-raw"), gz_file("fuzz-idx-gz");
  const std::string& raw_path = raw_file.write(data, n);
  const IdxOutcome raw = read_idx_checked(raw_path);
  if (error) *error = raw.error;
  if (n >= 2 && data[0] == 0x1f && data[1] == 0x8b) return raw.ok;

  const std::size_t split = n < 2 ? 0 : (static_cast<std::size_t>(data[n - 1]) * 131 + n) % n;
  const Bytes z = gzip(data, n, split);
  const IdxOutcome gz = read_idx_checked(gz_file.write(z.data(), z.size()));
  if (raw.ok != gz.ok)
    bug(std::string("raw and gzip disagree: raw ") + (raw.ok ? "accepted" : "refused") + ", gzip " +
        (gz.ok ? "accepted" : "refused"));
  if (raw.ok && (raw.array.shape != gz.array.shape || raw.array.data != gz.array.data))
    bug("raw and gzip give different arrays");
  return raw.ok;
}

// ---- safetensors --------------------------------------------------------------------------

// Every byte of a model's state, to prove that a failed load changed nothing.
template <typename T>
Bytes model_bytes(backprop::Module<T>& m) {
  Bytes out;
  for (const backprop::StateEntry<T>& e : m.state_dict())
    std::visit(
        [&](const auto* t) {
          const auto* p = reinterpret_cast<const std::uint8_t*>(t->data());
          out.insert(out.end(), p,
                     p + t->numel() * static_cast<backprop::Index>(sizeof(*t->data())));
        },
        e.tensor);
  return out;
}

template <typename T>
Bytes optimizer_bytes(backprop::SGD<T>& optimizer) {
  Bytes out;
  for (const backprop::Tensor<T>& b : optimizer.momentum_buffer()) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
    out.insert(out.end(), p, p + b.numel() * static_cast<backprop::Index>(sizeof(T)));
  }
  const double lr = optimizer.lr();
  const auto* l = reinterpret_cast<const std::uint8_t*>(&lr);
  out.insert(out.end(), l, l + sizeof lr);
  return out;
}

/// What the safetensors target got through: read_safetensors, load_state_dict (strict) into
/// mnist::Net<float>(12, 9, 7, 5), load_checkpoint into that Net, its SGD and a Generator.
struct SafetensorsOutcome {
  bool read = false, state_dict = false, checkpoint = false;
  std::string error;  // why the first of them that failed did
};

/// The safetensors target: reads the input; if it is a valid file, checks what it holds,
/// then loads it into a small bn-mlp (strictly and not), and as a full checkpoint. Every
/// failure must be a one-line SafetensorsError, and a failed load must leave the model,
/// optimizer and generator as they were.
inline SafetensorsOutcome safetensors_target(const std::uint8_t* data, std::size_t n) {
  namespace io = backprop::io;
  static InputFile file("fuzz-safetensors");
  const std::string& path = file.write(data, n);
  SafetensorsOutcome r;

  io::SafetensorsFile f;
  try {
    f = io::read_safetensors(path);
    r.read = true;
  } catch (const io::SafetensorsError& e) {
    check_message(path, e.what());
    r.error = e.what();
    return r;
  }
  for (const io::SafetensorsTensor& t : f.tensors) {
    std::uint64_t numel = 1;
    for (backprop::Index d : t.shape) numel *= static_cast<std::uint64_t>(d);
    if (numel * io::dtype_size(t.dtype) != t.data.size())
      bug("tensor '" + t.name + "': data size does not match its shape and dtype");
    if (t.name == "__metadata__") bug("a tensor named __metadata__ was accepted");
    try {
      if (f.get<float>(t.name).numel() != static_cast<backprop::Index>(numel))
        bug("get<float>: wrong size");
      if (t.dtype != io::Dtype::F32)
        bug(std::string("get<float> accepted ") + io::dtype_name(t.dtype));
    } catch (const io::SafetensorsError& e) {
      check_message(path, e.what());
      if (t.dtype == io::Dtype::F32) bug("get<float> refused an F32 tensor");
    }
  }

  // A fresh, seeded model each time, so that any input reproduces alone.
  backprop::manual_seed(0);
  mnist::Net<float> model(12, 9, 7, 5);
  backprop::SGD<float> optimizer(model.parameters(), 0.01, 0.5);
  backprop::Generator generator(1);
  for (const bool strict : {true, false}) {
    const Bytes before = model_bytes(model);
    try {
      io::load_state_dict(f, model, io::LoadOptions{strict, strict});
      if (strict) r.state_dict = true;
    } catch (const io::SafetensorsError& e) {
      check_message(path, e.what());
      if (r.error.empty()) r.error = e.what();
      if (model_bytes(model) != before) bug("a failed load_state_dict changed the model");
    }
  }
  const Bytes model_before = model_bytes(model), optimizer_before = optimizer_bytes(optimizer);
  const backprop::Generator::State generator_before = generator.state();
  try {
    io::load_checkpoint(path, model, optimizer, generator);
    r.checkpoint = true;
  } catch (const io::SafetensorsError& e) {
    check_message(path, e.what());
    if (r.error.empty()) r.error = e.what();
    if (model_bytes(model) != model_before || optimizer_bytes(optimizer) != optimizer_before ||
        generator.state() != generator_before)
      bug("a failed load_checkpoint changed the model, optimizer or generator");
  }
  return r;
}

}  // namespace fuzz
