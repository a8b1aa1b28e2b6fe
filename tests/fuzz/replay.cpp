// SPDX-License-Identifier: MIT
// Runs the fuzz targets (harness.hpp) over files, in every build, as the CTest tests
// fuzz:replay:idx and fuzz:replay:safetensors; and writes the committed seed corpus.
//   backprop_fuzz_replay idx|safetensors PATH...   each file, or every file in a directory
//                                                  (paths that do not exist are skipped)
//   backprop_fuzz_replay --write-corpus DIR         DIR/idx/*, DIR/safetensors/* (the seeds)
// An input passes when the reader accepts it or throws its own one-line error, and the
// harness's checks hold; a broken one aborts. Names state what a seed must do: "valid-*" the
// reader accepts, "bad-*" it refuses, "valid-state-dict*" also loads into the model and
// "valid-checkpoint*" also loads as a checkpoint. Other names (regressions) just must pass.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "harness.hpp"

namespace {

namespace fs = std::filesystem;
namespace io = backprop::io;
using backprop::Index;
using backprop::Tensor;
using fuzz::Bytes;

Bytes slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// ---- replay -------------------------------------------------------------------------------

// Runs one file; returns false if its name promises an outcome the target did not give.
bool replay(const std::string& target, const fs::path& path) {
  const Bytes data = slurp(path);
  const std::string name = path.filename().string();
  std::printf("%s (%zu bytes): ", path.string().c_str(), data.size());
  std::fflush(stdout);  // the name is out before a broken input aborts
  bool read = false;
  std::string expected, got, error;
  if (target == "idx") {
    read = fuzz::idx_target(data.data(), data.size(), &error);
    got = read ? "accepted" : "refused";
  } else {
    const fuzz::SafetensorsOutcome r = fuzz::safetensors_target(data.data(), data.size());
    read = r.read;
    error = r.error;
    got = !r.read        ? "refused"
          : r.checkpoint ? "accepted, loads as a checkpoint"
          : r.state_dict ? "accepted, loads as a state_dict"
                         : "accepted, does not fit the model";
    if (starts_with(name, "valid-state-dict") && !r.state_dict) expected = "loads as a state_dict";
    if (starts_with(name, "valid-checkpoint") && !r.checkpoint) expected = "loads as a checkpoint";
  }
  if (starts_with(name, "valid-") && !read) expected = "accepted";
  if (starts_with(name, "bad-") && read) expected = "refused";
  // The reader's message, minus the path (a /proc/self/fd/N name).
  const std::string::size_type colon = error.find(": ");
  if (colon != std::string::npos) got += ": " + error.substr(colon + 2);
  std::printf("%s%s\n", got.c_str(),
              expected.empty() ? "" : ("; FAIL: expected " + expected).c_str());
  return expected.empty();
}

int replay_all(const std::string& target, const std::vector<std::string>& args) {
  std::vector<fs::path> files;
  for (const std::string& a : args) {
    if (fs::is_directory(a)) {
      for (const fs::directory_entry& e : fs::recursive_directory_iterator(a))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::exists(a)) {
      files.emplace_back(a);
    } else {  // regressions/<target>/ exists only once a finding is kept
      std::printf("%s: does not exist, skipped\n", a.c_str());
    }
  }
  std::sort(files.begin(), files.end());
  int failed = 0;
  for (const fs::path& f : files) failed += !replay(target, f);
  std::printf("%zu files, %d failed\n", files.size(), failed);
  return failed == 0 && !files.empty() ? 0 : 1;
}

// ---- the seed corpus ----------------------------------------------------------------------

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

Bytes idx(const std::vector<std::uint32_t>& dims, const Bytes& data = {}, std::uint8_t type = 8) {
  Bytes out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) put_u32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes iota(std::size_t n) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>((11 + 7 * i) % 256);
  return out;
}

Bytes gz(const Bytes& b, std::size_t split = 0) { return fuzz::gzip(b.data(), b.size(), split); }

void write_idx_corpus(const fs::path& dir) {
  const std::uint32_t m = 0xFFFFFFFFu;
  spit(dir / "valid-labels", idx({7}, {3, 1, 4, 1, 5, 9, 2}));
  spit(dir / "valid-images", idx({3, 4, 5}, iota(60)));
  spit(dir / "valid-rank4", idx({2, 1, 2, 3}, iota(12)));
  spit(dir / "valid-empty", idx({0, 28, 28}));
  spit(dir / "valid-labels.gz", gz(idx({7}, {3, 1, 4, 1, 5, 9, 2})));
  spit(dir / "valid-images-two-members.gz", gz(idx({3, 4, 5}, iota(60)), 20));
  // Inflates to 1.1 MB: the reader's buffer grows past its first 1 MiB step.
  spit(dir / "valid-large.gz", gz(idx({1400, 28, 28}, Bytes(1400 * 28 * 28, 0))));
  spit(dir / "bad-empty", {});
  spit(dir / "bad-truncated-header", {0, 0, 8, 3, 0, 0, 0, 2, 0});
  spit(dir / "bad-truncated-data", idx({3, 4, 5}, iota(47)));
  spit(dir / "bad-trailing-data", idx({4}, iota(7)));
  spit(dir / "bad-magic", {0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0});
  spit(dir / "bad-float-type", idx({2}, Bytes(8), 0x0D));
  spit(dir / "bad-rank0", {0, 0, 8, 0});
  spit(dir / "bad-rank5", idx({1, 1, 1, 1, 1}, {7}));
  spit(dir / "bad-overflow", idx({m, m, m, 2}));
  spit(dir / "bad-claims-2^31", idx({1u << 31, 28, 28}));
  spit(dir / "bad-claims-2^31.gz", gz(idx({1u << 31, 28, 28}, iota(100))));
  Bytes garbage = gz(idx({50}, iota(50)));
  const Bytes z = garbage;
  garbage.insert(garbage.end(), {'j', 'u', 'n', 'k'});
  spit(dir / "bad-trailing-garbage.gz", garbage);
  spit(dir / "bad-cut.gz", Bytes(z.begin(), z.end() - 6));
  Bytes crc = z;
  crc[crc.size() - 8] ^= 0xFF;  // the CRC-32 in the trailer
  spit(dir / "bad-crc.gz", crc);
  spit(dir / "bad-bomb.gz", gz(idx({1, 28, 28}, Bytes(64 << 10, 0))));
}

Bytes le64(std::uint64_t n) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  return out;
}

// An 8-byte length, the header text and data.
Bytes raw_safetensors(const std::string& header, const std::string& data = "") {
  Bytes out = le64(header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Rewrites a file with its tensors minus `drop` and with metadata changed by `meta`.
void rewrite(const fs::path& from, const fs::path& to, const io::Metadata& meta,
             const std::string& drop = "") {
  const io::SafetensorsFile f = io::read_safetensors(from.string());
  std::vector<io::TensorRef> refs;
  for (const io::SafetensorsTensor& t : f.tensors)
    if (t.name != drop) refs.push_back({t.name, t.dtype, t.shape, t.data.data()});
  io::Metadata m = f.metadata;
  for (const auto& [k, v] : meta) m[k] = v;
  io::write_safetensors(to.string(), refs, m);
}

void write_safetensors_corpus(const fs::path& dir) {
  // The model the target loads into, as the MNIST example saves it, before and after a step
  // (the momentum buffers appear with the first step).
  backprop::manual_seed(3);
  mnist::Net<float> net(12, 9, 7, 5);
  backprop::SGD<float> optimizer(net.parameters(), 0.01, 0.5);
  backprop::Generator gen(7);
  io::save_state_dict((dir / "valid-state-dict").string(), net);
  io::save_checkpoint((dir / "valid-checkpoint-no-momentum").string(), net, optimizer, 0, gen);
  const Tensor<float> x = Tensor<float>::randn({6, 12}, gen);
  Tensor<std::int64_t> y({6});
  for (Index i = 0; i < 6; ++i) y[i] = i % 5;
  backprop::CrossEntropyLoss<float> criterion;
  criterion.forward(net.forward(x), y);
  optimizer.zero_grad();
  net.backward(criterion.backward());
  optimizer.step();
  const fs::path ckpt = dir / "valid-checkpoint";
  io::save_checkpoint(ckpt.string(), net, optimizer, 1, gen, {{"preset", "bn-mlp"}});

  // Readable files that must not load: wrong shape, wrong dtype, broken checkpoint metadata.
  backprop::manual_seed(3);
  mnist::Net<float> narrow(12, 9, 7, 4);
  io::save_state_dict((dir / "valid-wrong-shape").string(), narrow);
  backprop::manual_seed(3);
  mnist::Net<double> wide(12, 9, 7, 5);
  io::save_state_dict((dir / "valid-wrong-dtype").string(), wide);
  rewrite(ckpt, dir / "valid-bad-epoch", {{"epoch", "1x"}});
  rewrite(ckpt, dir / "valid-negative-lr", {{"optimizer.lr", "-0.5"}});
  rewrite(ckpt, dir / "valid-partial-momentum", {}, "optimizer.momentum_buffer.layer2.0.bias");
  {
    io::SafetensorsFile f = io::read_safetensors(ckpt.string());
    std::vector<io::TensorRef> refs;
    for (const io::SafetensorsTensor& t : f.tensors)
      refs.push_back({t.name, t.dtype, t.shape, t.data.data()});
    const float extra = 1;
    refs.push_back({"optimizer.momentum_buffer.layer9.weight", io::Dtype::F32, {1}, &extra});
    io::write_safetensors((dir / "valid-stray-optimizer-tensor").string(), refs, f.metadata);
  }

  // The format's corners.
  const Tensor<double> scalar(backprop::Shape{}, {2.5});
  const Tensor<std::int64_t> ints({2}, {-1, 1});
  const Tensor<std::uint8_t> bytes({3}, {1, 2, 3});
  io::write_safetensors((dir / "valid-dtypes").string(),
                        {io::tensor_ref("s", scalar),
                         io::tensor_ref("i", ints),
                         io::tensor_ref("u", bytes),
                         {"e", io::Dtype::BF16, {2, 0}, nullptr}},
                        {{"format", "pt"}, {"k", "v"}});
  spit(dir / "valid-padded", raw_safetensors("{}   "));
  spit(dir / "bad-short", {0x10, 0, 0});
  Bytes too_long = raw_safetensors(R"({"a":1})");
  too_long[0] = 100;  // the header length claims more than the file holds
  spit(dir / "bad-header-length", too_long);
  spit(dir / "bad-json", raw_safetensors(R"({"a": )"));
  spit(dir / "bad-not-object", raw_safetensors("[1, 2]"));
  spit(dir / "bad-deep-nesting", raw_safetensors(std::string(1000, '[') + std::string(1000, ']')));
  const std::string e1 = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  spit(dir / "bad-duplicate-key", raw_safetensors(R"({"a":)" + e1 + R"(,"a":)" + e1 + "}", "x"));
  spit(dir / "bad-missing-field",
       raw_safetensors(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')));
  spit(dir / "bad-overflow-shape",
       raw_safetensors(
           R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})"));
  spit(dir / "bad-overlap",
       raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       std::string(12, '\0')));
  spit(dir / "bad-hole",
       raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       std::string(12, '\0')));
  spit(dir / "bad-metadata", raw_safetensors(R"({"__metadata__":{"k":1}})"));
  // Cases the first fuzzing runs never reached from the seeds above.
  spit(dir / "bad-metadata-not-object", raw_safetensors(R"({"__metadata__":[1]})"));
  spit(dir / "bad-leading-space", raw_safetensors(" {}"));
  spit(dir / "bad-entry-not-object", raw_safetensors(R"({"w":3})"));
  spit(dir / "bad-dtype-not-string",
       raw_safetensors(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})",
                       std::string(4, '\0')));
}

int write_corpus(const fs::path& dir) {
  fs::create_directories(dir / "idx");
  fs::create_directories(dir / "safetensors");
  write_idx_corpus(dir / "idx");
  write_safetensors_corpus(dir / "safetensors");
  std::printf("wrote %s/idx and %s/safetensors\n", dir.string().c_str(), dir.string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 2 && args[0] == "--write-corpus") return write_corpus(args[1]);
    if (args.size() >= 2 && (args[0] == "idx" || args[0] == "safetensors"))
      return replay_all(args[0], {args.begin() + 1, args.end()});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "backprop_fuzz_replay: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: backprop_fuzz_replay idx|safetensors PATH... | --write-corpus DIR\n");
  return 2;
}
