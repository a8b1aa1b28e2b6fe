// SPDX-License-Identifier: MIT
// safetensors.hpp and checkpoint.hpp: exact bytes, round trips, hostile files, atomic writes,
// state_dict/checkpoint loading and PyTorch interchange (tests/reference/safetensors_torch.py).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <backprop/io/checkpoint.hpp>
#include <backprop/io/safetensors.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../../examples/mnist/models.hpp"
#include "test_helpers.hpp"

using backprop::Generator;
using backprop::Index;
using backprop::Module;
using backprop::SGD;
using backprop::Shape;
using backprop::Tensor;
using namespace backprop::io;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string tmp_path(const std::string& name) {
  fs::create_directories(BACKPROP_TEST_TMPDIR);
  return std::string(BACKPROP_TEST_TMPDIR) + "/" + name;
}

std::string fixture_path(const std::string& name) {
#ifdef BACKPROP_TEST_FIXTURES
  return std::string(BACKPROP_TEST_FIXTURES) + "/" + name;
#else
  // CMake compiles with absolute source paths: tests/io/this.cpp -> tests/fixtures/name.
  return (fs::path(__FILE__).parent_path().parent_path() / "fixtures" / name).string();
#endif
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file made of an 8-byte length, the header text and `data` bytes.
std::string raw_file(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

// The message of the Error (SafetensorsError unless said) that f throws; it must be one
// line naming the path.
template <typename Error = SafetensorsError>
std::string error_of(const std::function<void()>& f, const std::string& path) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.rfind(path + ": ", 0) == 0);
    CHECK(msg.find('\n') == std::string::npos);
    return msg;
  }
  FAIL("no SafetensorsError (or the FileError asked for) thrown");
  return "";
}

// Writes raw bytes to a file and returns the error that reading it gives.
std::string read_error(const std::string& bytes) {
  // Named per process: CTest may run the test cases in parallel.
  const std::string path = tmp_path("hostile." + std::to_string(::getpid()) + ".safetensors");
  spit(path, bytes);
  const std::string msg = error_of([&] { read_safetensors(path); }, path);
  fs::remove(path);
  return msg;
}

// No "<name>.tmp.*" left next to path.
bool no_temp_files(const std::string& path) {
  const fs::path p(path);
  for (const auto& entry : fs::directory_iterator(p.parent_path()))
    if (entry.path().filename().string().rfind(p.filename().string() + ".tmp.", 0) == 0)
      return false;
  return true;
}

template <typename T>
std::vector<std::pair<std::string, std::vector<unsigned char>>> snapshot(Module<T>& m) {
  std::vector<std::pair<std::string, std::vector<unsigned char>>> out;
  for (const backprop::StateEntry<T>& e : m.state_dict())
    std::visit(
        [&](const auto* t) {
          const auto* p = reinterpret_cast<const unsigned char*>(t->data());
          out.emplace_back(e.name,
                           std::vector<unsigned char>(p, p + t->numel() * sizeof(*t->data())));
        },
        e.tensor);
  return out;
}

// One SGD step of `model` on a random batch of n samples drawn from gen.
template <typename T>
void train_step(Module<T>& model, SGD<T>& optimizer, Generator& gen, Index in, Index classes,
                Index n = 8) {
  const Tensor<T> x = Tensor<T>::randn({n, in}, gen);
  Tensor<std::int64_t> y({n});
  for (Index i = 0; i < n; ++i) y[i] = static_cast<std::int64_t>(gen.below(classes));
  backprop::CrossEntropyLoss<T> criterion;
  model.train();
  criterion.forward(model.forward(x), y);
  optimizer.zero_grad();
  model.backward(criterion.backward());
  optimizer.step();
}

// Rewrites a file read as `file` with its tensors (little-endian host) and new metadata.
void rewrite(const SafetensorsFile& file, const std::string& path, const Metadata& metadata,
             const std::string& drop = "") {
  std::vector<TensorRef> refs;
  for (const SafetensorsTensor& t : file.tensors)
    if (t.name != drop) refs.push_back({t.name, t.dtype, t.shape, t.data.data()});
  write_safetensors(path, refs, metadata);
}

}  // namespace

// --- the format --------------------------------------------------------------------------

TEST_CASE("safetensors: a tiny file has exactly the hand-computed bytes", "[safetensors]") {
  const std::string path = tmp_path("tiny.safetensors");
  const Tensor<float> x({2}, {1.0f, -2.0f});
  const Tensor<std::int64_t> n(Shape{}, {7});
  write_safetensors(path, {tensor_ref("x", x), tensor_ref("n", n)}, {{"k", "v"}});
  // The header is 132 characters; 4 spaces pad it to 136 = 0x88 so the data is 8-aligned.
  const std::string header =
      R"({"__metadata__":{"k":"v"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})";
  REQUIRE(header.size() == 132);
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + header + "    " +
                               std::string("\0\0\x80\x3f", 4) +       // 1.0f  = 0x3f800000
                               std::string("\0\0\0\xc0", 4) +         // -2.0f = 0xc0000000
                               std::string("\x07\0\0\0\0\0\0\0", 8);  // int64 7
  CHECK(slurp(path) == expected);

  const SafetensorsFile f = read_safetensors(path);
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].name == "x");
  CHECK(f.tensors[1].name == "n");
  CHECK(f.get<float>("x") == x);
  CHECK(f.get<std::int64_t>("n") == n);
  CHECK(f.get<std::int64_t>("n").dim() == 0);
  CHECK(f.metadata == Metadata{{"k", "v"}});
}

TEST_CASE("safetensors: round trips of float, double, int64, scalars and empty tensors",
          "[safetensors]") {
  const std::string path = tmp_path("round_trip.safetensors");
  Generator gen(3);
  const Tensor<float> f = Tensor<float>::randn({3, 5, 2}, gen);
  Tensor<double> d = Tensor<double>::randn({4, 3}, gen);
  d[0] = -0.0;
  d[1] = std::numeric_limits<double>::infinity();
  d[2] = std::numeric_limits<double>::denorm_min();
  d[3] = std::numeric_limits<double>::quiet_NaN();
  const Tensor<std::int64_t> i({3}, {std::numeric_limits<std::int64_t>::min(), -1,
                                     std::numeric_limits<std::int64_t>::max()});
  const Tensor<std::int32_t> i32({2}, {-5, 70000});
  const Tensor<float> scalar(Shape{}, {2.5f});
  const Tensor<double> empty({2, 0, 3});
  const Metadata meta{{"", ""}, {"unicode", "µ-law ✓"}, {"epoch", "3"}};
  write_safetensors(
      path,
      {tensor_ref("f", f), tensor_ref("d", d), tensor_ref("i", i), tensor_ref("i32", i32),
       tensor_ref("scalar", scalar), tensor_ref("empty", empty)},
      meta);
  const SafetensorsFile r = read_safetensors(path);
  CHECK(r.get<float>("f") == f);
  const Tensor<double> d2 = r.get<double>("d");
  CHECK(std::memcmp(d2.data(), d.data(), sizeof(double) * 12) == 0);  // bits, NaN included
  CHECK(std::signbit(d2[0]));
  CHECK(r.get<std::int64_t>("i") == i);
  CHECK(r.get<std::int32_t>("i32") == i32);
  CHECK(r.get<float>("scalar").shape() == Shape{});
  CHECK(r.get<float>("scalar")[0] == 2.5f);
  CHECK(r.get<double>("empty").shape() == Shape{2, 0, 3});
  CHECK(r.metadata == meta);
  CHECK(r.find("nope") == nullptr);
  CHECK_THAT(error_of([&] { r.get<float>("d"); }, path),
             Contains("tensor 'd' has dtype F64, expected F32"));
  CHECK_THAT(error_of([&] { r.get<float>("nope"); }, path), Contains("no tensor 'nope'"));

  write_safetensors(path, {});  // no tensors, no metadata: "{}" and 6 spaces
  CHECK(slurp(path) == le64(8) + "{}      ");
  CHECK(read_safetensors(path).tensors.empty());
}

TEST_CASE("safetensors: the writer rejects bad tensor lists", "[safetensors]") {
  const std::string path = tmp_path("bad_list.safetensors");
  const Tensor<float> t({2});
  CHECK_THAT(error_of(
                 [&] {
                   write_safetensors(path, {tensor_ref("a", t), tensor_ref("a", t)});
                 },
                 path),
             Contains("tensor 'a': the name appears twice"));
  CHECK_THAT(error_of([&] { write_safetensors(path, {tensor_ref("__metadata__", t)}); }, path),
             Contains("reserved"));
  CHECK_THAT(error_of(
                 [&] {
                   write_safetensors(path, {{"neg", Dtype::F32, {-1}, t.data()}});
                 },
                 path),
             Contains("negative size"));
  CHECK_THAT(error_of([&] { write_safetensors(path, {tensor_ref("\xff", t)}); }, path),
             Contains("cannot encode the header"));
  CHECK_FALSE(fs::exists(path));
  CHECK(no_temp_files(path));
}

// --- hostile files -----------------------------------------------------------------------

// Issue #11: a file that is not safetensors at all says what it is, not only that its
// "header length" (its first 8 bytes read as a number) is impossible.
TEST_CASE("safetensors: files of other formats say what they are", "[safetensors]") {
  const std::string pad(64, '\x01');
  // PyTorch's torch.save: a zip archive (local file header PK 03 04), e.g. model.pth.
  const std::string zip = std::string("PK\x03\x04\x14\0\0\0", 8) + pad;
  CHECK_THAT(read_error(zip), Contains("header length") && Contains("zip archive") &&
                                  Contains("torch.save") && Contains("save_file"));
  // torch.save(..., _use_new_zipfile_serialization=False) and pickle.dump: a pickle.
  const std::string pickle = std::string("\x80\x02\x8a\x0alw\xf9", 8) + pad;
  CHECK_THAT(read_error(pickle), Contains("Python pickle (protocol 2)") && Contains("save_file"));
  // A CSV (or any text) file, long or shorter than 8 bytes.
  CHECK_THAT(read_error("epoch,loss\n0,2.30\n1,1.10\n"),
             Contains("starts with the text 'epoch,lo'") &&
                 Contains("8-byte little-endian header length"));
  CHECK_THAT(read_error("hi\n"), Contains("file is 3 bytes") && Contains("text 'hi\\x0a'"));
  // gzip, NumPy, HDF5.
  CHECK_THAT(read_error(std::string("\x1f\x8b\x08\0\0\0\0\0", 8) + pad),
             Contains("gzip-compressed"));
  CHECK_THAT(read_error(std::string("\x93NUMPY\x01\0", 8) + pad), Contains("NumPy .npy"));
  CHECK_THAT(read_error(std::string("\x89HDF\r\n\x1a\n", 8) + pad), Contains("HDF5"));
  // The empty file.
  CHECK_THAT(read_error(""), Contains("0 bytes") && Contains("it is empty"));
  // Unrecognised bytes keep the plain message, with nothing guessed.
  const std::string other = read_error(le64(100) + R"({"a":1})");
  CHECK_THAT(other, Contains("header length 100 exceeds the 7 bytes after it"));
  CHECK(other.find(" it ") == std::string::npos);
}

TEST_CASE("safetensors: truncated files and impossible header lengths", "[safetensors]") {
  CHECK_THAT(read_error(""), Contains("file is 0 bytes, too short for the 8-byte header length"));
  CHECK_THAT(read_error(std::string("\x10\0\0", 3)), Contains("file is 3 bytes"));
  // 2^63: must be refused from the file size, never allocated.
  CHECK_THAT(read_error(le64(std::uint64_t(1) << 63) + "{}"),
             Contains("header length 9223372036854775808 exceeds the 2 bytes after it"));
  CHECK_THAT(read_error(le64(~std::uint64_t(0)) + "{}"),
             Contains("header length 18446744073709551615"));
  CHECK_THAT(read_error(le64(100) + R"({"a":1})"),
             Contains("header length 100 exceeds the 7 bytes"));

  // The message of an empty file says what was expected.
  CHECK_THAT(read_error(""), Contains("it is empty") && Contains("expected a safetensors file"));

  // A valid file cut short: the header is intact, the last tensor's bytes are not.
  const std::string path = tmp_path("whole.safetensors");
  const Tensor<float> a({3}), b({2, 2});
  write_safetensors(path, {tensor_ref("a", a), tensor_ref("b", b)});
  const std::string whole = slurp(path);
  CHECK_THAT(read_error(whole.substr(0, whole.size() - 4)),
             Contains("tensor 'b': data_offsets [12, 28] exceed the 24-byte data buffer"));
  CHECK_THAT(read_error(whole.substr(0, 20)), Contains("exceeds the 12 bytes after it"));
  CHECK_THAT(read_error(whole + "x"),
             Contains("bytes [28, 29) of the 29-byte data buffer belong to no tensor"));
}

TEST_CASE("safetensors: the header must be a JSON object", "[safetensors]") {
  CHECK_THAT(read_error(raw_file(R"({"a": )")), Contains("header is not valid JSON"));
  CHECK_THAT(read_error(raw_file("{\"a\":\"\xff\"}")), Contains("header is not valid JSON"));
  CHECK_THAT(read_error(raw_file("")), Contains("header is not valid JSON"));
  CHECK_THAT(read_error(raw_file("[1, 2]")), Contains("header is not a JSON object"));
  CHECK_THAT(read_error(raw_file("\"{}\"")), Contains("header is not a JSON object"));
  CHECK_THAT(read_error(raw_file(" {}")), Contains("header does not start with '{'"));
  // Deep nesting must not overflow the stack (nlohmann parses and frees iteratively).
  CHECK_THAT(read_error(raw_file(std::string(100000, '[') + std::string(100000, ']'))),
             Contains("not a JSON object"));
  CHECK_THAT(read_error(raw_file(R"({"__metadata__": [1]})")),
             Contains("__metadata__ is not a JSON object"));
  CHECK_THAT(read_error(raw_file(R"({"__metadata__": {"k": 1}})")),
             Contains("__metadata__ value of 'k' is not a string"));
  const std::string entry = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  CHECK_THAT(read_error(raw_file(R"({"a":)" + entry + R"(,"a":)" + entry + "}", "x")),
             Contains("header has the key 'a' twice"));
  CHECK_THAT(read_error(raw_file(
                 R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x")),
             Contains("header has the key 'dtype' twice"));
  // Padding with trailing spaces is allowed by the spec.
  spit(tmp_path("padded.safetensors"), raw_file("{}   "));
  CHECK(read_safetensors(tmp_path("padded.safetensors")).tensors.empty());
}

TEST_CASE("safetensors: every entry needs dtype, shape and data_offsets of the right types",
          "[safetensors]") {
  auto entry_error = [](const std::string& entry, const std::string& data = "") {
    return read_error(raw_file(R"({"w":)" + entry + "}", data));
  };
  CHECK_THAT(entry_error("3"), Contains("tensor 'w': entry is not a JSON object"));
  CHECK_THAT(entry_error(R"({"shape":[1],"data_offsets":[0,4]})"),
             Contains("tensor 'w': missing field 'dtype'"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","data_offsets":[0,4]})"),
             Contains("tensor 'w': missing field 'shape'"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1]})"),
             Contains("tensor 'w': missing field 'data_offsets'"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":0})"),
             Contains("tensor 'w': unknown field 'x'"));
  CHECK_THAT(entry_error(R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})"),
             Contains("tensor 'w': field 'dtype' is not a string"));
  CHECK_THAT(entry_error(R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})"),
             Contains("tensor 'w': unknown dtype 'F33'"));
  CHECK_THAT(entry_error(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})"),
             Contains("unknown dtype 'f32'"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})"),
             Contains("tensor 'w': field 'shape' is not an array"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"),
             Contains("field 'shape' holds -1, not a non-negative integer"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})"),
             Contains("field 'shape' holds 1.0"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"),
             Contains("field 'data_offsets' is not two non-negative integers: [0]"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})"),
             Contains("field 'data_offsets' is not two non-negative integers"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})"),
             Contains("field 'data_offsets' is not two non-negative integers"));
  CHECK_THAT(entry_error(R"({"dtype":"F32","shape":[1],"data_offsets":{"a":0}})"),
             Contains("field 'data_offsets' is not two non-negative integers"));
}

TEST_CASE("safetensors: sizes and offsets must agree and tile the buffer", "[safetensors]") {
  const std::string data12(12, '\0');
  CHECK_THAT(
      read_error(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd")),
      Contains("tensor 'w': shape [2] of F32 needs 8 bytes, data_offsets [0, 4] hold 4"));
  CHECK_THAT(
      read_error(raw_file(R"({"w":{"dtype":"F64","shape":[],"data_offsets":[0,4]}})", "abcd")),
      Contains("shape [] of F64 needs 8 bytes"));
  // Products that overflow 64 bits must not wrap around to a small, "valid" size.
  CHECK_THAT(read_error(raw_file(
                 R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})")),
             Contains("tensor 'w': shape [4611686018427387904,4] has too many elements"));
  CHECK_THAT(read_error(raw_file(
                 R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})")),
             Contains("has too many elements"));
  CHECK_THAT(
      read_error(raw_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", data12)),
      Contains("tensor 'w': data_offsets [8, 4] end before they begin"));
  CHECK_THAT(
      read_error(raw_file(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[12,16]}})", data12)),
      Contains("tensor 'w': data_offsets [12, 16] exceed the 12-byte data buffer: the file is "
               "truncated, or its header is wrong"));
  CHECK_THAT(
      read_error(raw_file(
          R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}})", data12)),
      Contains("end before they begin"));
  CHECK_THAT(
      read_error(raw_file(
          R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}})",
          data12)),
      Contains("exceed the 12-byte data buffer"));
  // Overlap: b starts inside a.
  CHECK_THAT(read_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 data12)),
             Contains("tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"));
  // The same bytes twice.
  CHECK_THAT(read_error(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                 R"("b":{"dtype":"I32","shape":[3],"data_offsets":[0,12]}})",
                                 data12)),
             Contains("overlap tensor 'a'"));
  // Holes: before, between, after.
  CHECK_THAT(
      read_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", data12)),
      Contains("bytes [0, 4) of the data buffer belong to no tensor"));
  CHECK_THAT(read_error(raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}})",
                                 data12)),
             Contains("bytes [4, 8) of the data buffer belong to no tensor"));
  CHECK_THAT(
      read_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data12)),
      Contains("bytes [8, 12) of the 12-byte data buffer belong to no tensor"));
  CHECK_THAT(read_error(raw_file("{}", "x")), Contains("bytes [0, 1) of the 1-byte data buffer"));
  // Zero-size tensors are fine anywhere on a boundary.
  spit(tmp_path("zero.safetensors"),
       raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                R"("b":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                R"("c":{"dtype":"BF16","shape":[2,0],"data_offsets":[4,4]}})",
                "abcd"));
  CHECK(read_safetensors(tmp_path("zero.safetensors")).tensors.size() == 3);
}

TEST_CASE("safetensors: messages stay one line whatever the names hold", "[safetensors]") {
  const std::string msg =
      read_error(raw_file(R"({"a\nb'c":{"dtype":"X","shape":[],"data_offsets":[0,0]}})"));
  CHECK_THAT(msg, Contains(R"(tensor 'a\x0ab\x27c': unknown dtype 'X')"));
  const std::string long_name(5000, 'n');
  CHECK(read_error(raw_file(R"({")" + long_name + R"(":1})")).size() < 400);
  const std::string path = tmp_path("does_not_exist.safetensors");
  CHECK_THAT(error_of([&] { read_safetensors(path); }, path),
             Contains("cannot open: No such file or directory"));
  const std::string dir = tmp_path("a_directory");
  fs::create_directories(dir);
  CHECK_THAT(error_of([&] { read_safetensors(dir); }, dir), Contains("not a regular file"));
}

// --- atomic writes -----------------------------------------------------------------------

TEST_CASE("safetensors: a failed save leaves nothing behind and the old file intact",
          "[safetensors][atomic]") {
  const Tensor<float> small({4}, {1, 2, 3, 4});
  const Tensor<float> big = Tensor<float>::ones({64, 1024});  // 256 KiB

  SECTION("into a directory that does not exist") {
    const std::string dir = tmp_path("no_such_dir");
    fs::remove_all(dir);
    const std::string path = dir + "/w.safetensors";
    CHECK_THAT(error_of([&] { write_safetensors(path, {tensor_ref("w", small)}); }, path),
               Contains("cannot create temporary file") && Contains("No such file or directory"));
    CHECK_FALSE(fs::exists(dir));
  }

  SECTION("over a directory: the rename fails, the temp file is removed") {
    const std::string path = tmp_path("target_is_a_dir");
    fs::create_directories(path + "/inside");
    CHECK_THAT(error_of([&] { write_safetensors(path, {tensor_ref("w", small)}); }, path),
               Contains("cannot rename"));
    CHECK(fs::is_directory(path + "/inside"));
    CHECK(no_temp_files(path));
  }

  // In a child process: limits apply to it alone, and a SIGXFSZ death shows as a signal.
  // Child exit codes: 0 right error, 1 no error, 2 wrong message, 3 SIGXFSZ left blocked
  // or pending, 4 another exception, 5 setup failed.
  auto in_child = [](const std::function<void()>& limit, const std::string& path,
                     const Tensor<float>& t, const char* expected) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      limit();
      int code = 1;
      try {
        write_safetensors(path, {tensor_ref("w", t)});
      } catch (const SafetensorsError& e) {
        const std::string msg = e.what();
        code = msg.rfind(path + ": ", 0) == 0 && msg.find(expected) != std::string::npos ? 0 : 2;
        sigset_t mask, pending;
        pthread_sigmask(SIG_BLOCK, nullptr, &mask);
        sigpending(&pending);
        if (code == 0 && (sigismember(&mask, SIGXFSZ) || sigismember(&pending, SIGXFSZ))) code = 3;
      } catch (...) {
        code = 4;
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("child signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };

  SECTION("into a read-only directory (as root, the child drops to uid 65534 first)") {
    const std::string dir = tmp_path("read_only_dir");
    fs::create_directories(dir);
    const std::string path = dir + "/w.safetensors";
    write_safetensors(path, {tensor_ref("w", small)});
    const std::string before = slurp(path);
    fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                             fs::perms::group_exec | fs::perms::others_read |
                             fs::perms::others_exec);
    const int code = in_child(
        [] {
          // Root writes through permissions, so become nobody (code 5 if we may not).
          if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(5);
        },
        path, big, "Permission denied");
    fs::permissions(dir, fs::perms::owner_all);
    if (code == 5) WARN("root without CAP_SETUID: cannot test a read-only directory");
    CHECK((code == 0 || code == 5));
    CHECK(slurp(path) == before);
    CHECK(no_temp_files(path));
  }

  SECTION("a write past RLIMIT_FSIZE (a short write, as on a full disk): no SIGXFSZ death") {
    const std::string path = tmp_path("fsize.safetensors");
    write_safetensors(path, {tensor_ref("w", small)});
    const std::string before = slurp(path);
    CHECK(in_child(
              [] {
                const rlimit lim{64 * 1024, 64 * 1024};
                ::setrlimit(RLIMIT_FSIZE, &lim);
              },
              path, big, "File too large") == 0);
    CHECK(slurp(path) == before);
    CHECK(no_temp_files(path));
  }

  SECTION("the temp file cannot be created (no file descriptor left)") {
    const std::string path = tmp_path("nofile.safetensors");
    write_safetensors(path, {tensor_ref("w", small)});
    const std::string before = slurp(path);
    CHECK(in_child(
              [] {
                rlimit lim{};
                ::getrlimit(RLIMIT_NOFILE, &lim);
                lim.rlim_cur = 0;
                ::setrlimit(RLIMIT_NOFILE, &lim);
              },
              path, big, "Too many open files") == 0);
    CHECK(slurp(path) == before);
    CHECK(no_temp_files(path));
  }

  SECTION("a successful save replaces the file and leaves no temp file") {
    const std::string path = tmp_path("replace.safetensors");
    write_safetensors(path, {tensor_ref("w", small)});
    write_safetensors(path, {tensor_ref("w", big)});
    CHECK(read_safetensors(path).get<float>("w") == big);
    CHECK(no_temp_files(path));
  }
}

// --- state_dict ----------------------------------------------------------------------------

TEST_CASE("checkpoint: mnist::Net<float> and deep_mlp round trip through their state_dict",
          "[safetensors][checkpoint]") {
  const std::string path = tmp_path("net.safetensors");
  backprop::manual_seed(1);
  mnist::Net<float> net;
  SGD<float> opt(net.parameters(), 0.01, 0.5);
  Generator gen(2);
  train_step(net, opt, gen, 784, 10);  // running stats and num_batches_tracked move
  save_state_dict(path, net, {{"epoch", "1"}});

  const SafetensorsFile file = read_safetensors(path);
  std::vector<std::string> names;
  for (const SafetensorsTensor& t : file.tensors) names.push_back(t.name);
  CHECK(names == std::vector<std::string>{"layer1.0.weight", "layer1.0.bias", "layer1.1.weight",
                                          "layer1.1.bias", "layer1.1.running_mean",
                                          "layer1.1.running_var", "layer1.1.num_batches_tracked",
                                          "layer2.0.weight", "layer2.0.bias", "layer2.1.weight",
                                          "layer2.1.bias", "layer2.1.running_mean",
                                          "layer2.1.running_var", "layer2.1.num_batches_tracked",
                                          "layer3.0.weight", "layer3.0.bias"});
  CHECK(file.find("layer1.0.weight")->dtype == Dtype::F32);
  CHECK(file.find("layer1.0.weight")->shape == Shape{300, 784});
  CHECK(file.find("layer1.1.num_batches_tracked")->dtype == Dtype::I64);
  CHECK(file.find("layer1.1.num_batches_tracked")->shape == Shape{});
  CHECK(file.metadata == Metadata{{"epoch", "1"}, {"format", "pt"}});

  backprop::manual_seed(99);
  mnist::Net<float> other;
  CHECK(snapshot(other) != snapshot(net));
  const LoadResult r = load_state_dict(path, other);
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  CHECK(r.metadata.at("epoch") == "1");
  CHECK(snapshot(other) == snapshot(net));
  CHECK(other.layer1[1].is_training());  // loading does not change the mode
  const Tensor<float> x = Tensor<float>::randn({5, 784}, gen);
  net.eval();
  other.eval();
  CHECK(Tensor<float>(net.forward(x)) == other.forward(x));

  auto deep = mnist::deep_mlp<double>();
  save_state_dict(path, deep);
  CHECK(read_safetensors(path).find("8.bias")->dtype == Dtype::F64);
  auto deep2 = mnist::deep_mlp<double>();
  load_state_dict(path, deep2);
  CHECK(snapshot(deep2) == snapshot(deep));
}

TEST_CASE("checkpoint: a file that does not fit the model is refused, naming the tensor",
          "[safetensors][checkpoint]") {
  const std::string path = tmp_path("mismatch.safetensors");
  mnist::Net<float> net(784, 300, 100, 10);
  save_state_dict(path, net);
  mnist::Net<float> narrow(700, 300, 100, 10);
  const auto before = snapshot(narrow);
  CHECK(error_of([&] { load_state_dict(path, narrow); }, path) ==
        path +
            ": tensor 'layer1.0.weight' has shape [300, 784] in the file, the model "
            "expects [300, 700]");
  CHECK(snapshot(narrow) == before);

  // Everything fits except the very last tensor: nothing may have been copied.
  mnist::Net<float> last(784, 300, 100, 11);
  const auto last_before = snapshot(last);
  CHECK_THAT(error_of([&] { load_state_dict(path, last); }, path),
             Contains("tensor 'layer3.0.weight' has shape [10, 100] in the file, the model "
                      "expects [11, 100]"));
  CHECK(snapshot(last) == last_before);

  mnist::Net<double> twin(784, 300, 100, 10);
  CHECK_THAT(error_of([&] { load_state_dict(path, twin); }, path),
             Contains("tensor 'layer1.0.weight' has dtype F32 in the file, the model expects F64"));

  const SafetensorsFile file = read_safetensors(path);
  rewrite(file, path, {}, "layer3.0.bias");
  CHECK_THAT(error_of([&] { load_state_dict(path, net); }, path),
             Contains("tensor 'layer3.0.bias' of the model is missing from the file"));

  // num_batches_tracked stored as F32 instead of I64.
  std::vector<TensorRef> refs;
  const float one = 1;
  for (const SafetensorsTensor& t : file.tensors)
    refs.push_back(t.name == "layer2.1.num_batches_tracked"
                       ? TensorRef{t.name, Dtype::F32, {}, &one}
                       : TensorRef{t.name, t.dtype, t.shape, t.data.data()});
  write_safetensors(path, refs);
  CHECK_THAT(error_of([&] { load_state_dict(path, net); }, path),
             Contains("tensor 'layer2.1.num_batches_tracked' has dtype F32 in the file, the model "
                      "expects I64"));

  // Extra tensors: an error when strict, reported otherwise.
  refs.clear();
  for (const SafetensorsTensor& t : file.tensors)
    if (t.name != "layer3.0.bias") refs.push_back({t.name, t.dtype, t.shape, t.data.data()});
  const Tensor<float> extra({1});
  refs.push_back(tensor_ref("fc.weight", extra));
  refs.push_back(tensor_ref("zz", extra));
  write_safetensors(path, refs);
  CHECK_THAT(error_of([&] { load_state_dict(path, net); }, path),
             Contains("tensor 'layer3.0.bias' of the model is missing from the file"));
  mnist::Net<float> lax(784, 300, 100, 10);
  const Tensor<float> lax_bias = *lax.parameters().back().value;  // layer3.0.bias
  const LoadResult r = load_state_dict(path, lax, LoadOptions{/*strict=*/false});
  CHECK(r.missing_keys == std::vector<std::string>{"layer3.0.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"fc.weight", "zz"});
  CHECK(*lax.parameters().front().value == *net.parameters().front().value);  // loaded
  CHECK(*lax.parameters().back().value == lax_bias);  // missing: left as it was
  refs.clear();
  for (const SafetensorsTensor& t : file.tensors)
    refs.push_back({t.name, t.dtype, t.shape, t.data.data()});
  refs.push_back(tensor_ref("zz", extra));
  write_safetensors(path, refs);
  CHECK_THAT(error_of([&] { load_state_dict(path, net); }, path),
             Contains("unexpected tensor 'zz' in the file: the model has no such key"));
}

// --- full checkpoints ----------------------------------------------------------------------

TEST_CASE("checkpoint: a resumed run continues bit for bit", "[safetensors][checkpoint]") {
  const std::string path = tmp_path("resume.safetensors");
  backprop::manual_seed(5);
  mnist::Net<double> net(12, 9, 7, 5);
  SGD<double> opt(net.parameters(), 0.1, 0.5);
  backprop::StepLR<SGD<double>> schedule(opt, 1, 0.1, true);
  Generator gen(11);
  schedule.set_epoch(1);  // lr = 0.1 * 0.1 * 0.1, not a short decimal
  for (int i = 0; i < 3; ++i) train_step(net, opt, gen, 12, 5);
  save_checkpoint(path, net, opt, /*epoch=*/2, gen, {{"note", "after 3 steps"}});
  const double lr = opt.lr();

  // The uninterrupted run: two more steps.
  for (int i = 0; i < 2; ++i) train_step(net, opt, gen, 12, 5);
  const auto expected = snapshot(net);

  backprop::manual_seed(77);
  mnist::Net<double> resumed(12, 9, 7, 5);
  SGD<double> opt2(resumed.parameters(), 0.5, 0.5);
  Generator gen2(0);
  const CheckpointState state = load_checkpoint(path, resumed, opt2, gen2);
  CHECK(state.epoch == 2);
  CHECK(state.lr == lr);
  CHECK(opt2.lr() == lr);
  CHECK(state.metadata.at("note") == "after 3 steps");
  CHECK(opt2.momentum_buffer().size() == opt2.parameters().size());
  for (int i = 0; i < 2; ++i) train_step(resumed, opt2, gen2, 12, 5);
  CHECK(snapshot(resumed) == expected);

  // The weights alone load with load_state_dict's defaults; strictly, optimizer.* is extra.
  const SafetensorsFile file = read_safetensors(path);
  CHECK(file.find("optimizer.momentum_buffer.layer1.0.weight")->shape == Shape{9, 12});
  CHECK(file.find("optimizer.momentum_buffer.layer1.1.running_mean") == nullptr);
  CHECK(file.metadata.at("generator.state.0").find_first_not_of("0123456789") == std::string::npos);
  mnist::Net<double> weights_only(12, 9, 7, 5);
  CHECK(load_state_dict(path, weights_only).unexpected_keys.empty());
  CHECK_THAT(
      error_of(
          [&] {
            load_state_dict(path, weights_only, LoadOptions{true, false});
          },
          path),
      Contains("unexpected tensor 'optimizer.momentum_buffer.layer1.0.weight' (and 9 more)"));
}

TEST_CASE("checkpoint: before the first step there are no momentum buffers",
          "[safetensors][checkpoint]") {
  const std::string path = tmp_path("fresh.safetensors");
  mnist::Net<float> net(12, 9, 7, 5);
  SGD<float> opt(net.parameters(), 0.01, 0.5);
  Generator gen(1);
  save_checkpoint(path, net, opt, 0, gen);
  for (const SafetensorsTensor& t : read_safetensors(path).tensors)
    CHECK(t.name.rfind("optimizer.", 0) == std::string::npos);

  mnist::Net<float> other(12, 9, 7, 5);
  SGD<float> opt2(other.parameters(), 0.01, 0.5);
  train_step(other, opt2, gen, 12, 5);
  REQUIRE_FALSE(opt2.momentum_buffer().empty());
  Generator gen2(9);
  load_checkpoint(path, other, opt2, gen2);
  CHECK(opt2.momentum_buffer().empty());  // the next step starts momentum afresh
  CHECK(gen2.state() == Generator(1).state());
  CHECK(snapshot(other) == snapshot(net));
}

TEST_CASE("checkpoint: a bad checkpoint changes nothing", "[safetensors][checkpoint]") {
  const std::string path = tmp_path("bad_ckpt.safetensors");
  mnist::Net<float> net(12, 9, 7, 5);
  SGD<float> opt(net.parameters(), 0.01, 0.5);
  Generator gen(4);
  train_step(net, opt, gen, 12, 5);
  save_checkpoint(path, net, opt, 1, gen);
  const SafetensorsFile good = read_safetensors(path);

  mnist::Net<float> other(12, 9, 7, 5);
  SGD<float> opt2(other.parameters(), 0.5, 0.5);
  Generator gen2(8);
  const auto model_before = snapshot(other);
  auto unchanged = [&] {
    CHECK(snapshot(other) == model_before);
    CHECK(opt2.momentum_buffer().empty());
    CHECK(opt2.lr() == 0.5);
    CHECK(gen2.state() == Generator(8).state());
  };
  auto with_metadata = [&](const std::string& key, const std::string& value) {
    Metadata m = good.metadata;
    m[key] = value;
    rewrite(good, path, m);
    return error_of([&] { load_checkpoint(path, other, opt2, gen2); }, path);
  };
  CHECK_THAT(with_metadata("epoch", "one"), Contains("metadata 'epoch' is 'one', not a number"));
  CHECK_THAT(with_metadata("epoch", "1 "), Contains("not a number"));
  CHECK_THAT(with_metadata("optimizer.lr", "-0.5"),
             Contains("metadata 'optimizer.lr' is '-0.5', not a non-negative number"));
  CHECK_THAT(with_metadata("generator.state.3", "18446744073709551616"),
             Contains("metadata 'generator.state.3'"));
  CHECK_THAT(with_metadata("generator.state.1", "-1"), Contains("not a number"));
  unchanged();

  Metadata no_epoch = good.metadata;
  no_epoch.erase("epoch");
  rewrite(good, path, no_epoch);
  CHECK_THAT(error_of([&] { load_checkpoint(path, other, opt2, gen2); }, path),
             Contains("metadata 'epoch' is missing"));
  rewrite(good, path, good.metadata, "optimizer.momentum_buffer.layer2.0.bias");
  CHECK_THAT(error_of([&] { load_checkpoint(path, other, opt2, gen2); }, path),
             Contains("tensor 'optimizer.momentum_buffer.layer2.0.bias' is missing"));
  rewrite(good, path, good.metadata, "layer2.1.running_var");
  CHECK_THAT(error_of([&] { load_checkpoint(path, other, opt2, gen2); }, path),
             Contains("tensor 'layer2.1.running_var' of the model is missing from the file"));
  unchanged();

  save_state_dict(path, net);
  CHECK_THAT(error_of([&] { load_checkpoint(path, other, opt2, gen2); }, path),
             Contains("not a backprop checkpoint"));
  mnist::Net<float> wide(12, 10, 7, 5);
  SGD<float> opt3(wide.parameters(), 0.5, 0.5);
  save_checkpoint(path, net, opt, 1, gen);
  // The model's mismatch is named, not that of the optimizer's buffers shaped after it.
  CHECK_THAT(error_of([&] { load_checkpoint(path, wide, opt3, gen2); }, path),
             Contains("tensor 'layer1.0.weight' has shape [9, 12] in the file, the model "
                      "expects [10, 12]"));
  // A buffer of the right size in another shape: the optimizer's own check names it.
  std::vector<TensorRef> refs;
  for (const SafetensorsTensor& t : good.tensors) {
    const bool flat = t.name == "optimizer.momentum_buffer.layer1.0.weight";
    refs.push_back({t.name, t.dtype, flat ? Shape{9 * 12} : t.shape, t.data.data()});
  }
  write_safetensors(path, refs, good.metadata);
  CHECK_THAT(error_of([&] { load_checkpoint(path, other, opt2, gen2); }, path),
             Contains("tensor 'optimizer.momentum_buffer.layer1.0.weight' has shape [108] in "
                      "the file, the optimizer expects [9, 12]"));
  CHECK_THAT(error_of(
                 [&] {
                   save_checkpoint(path, net, opt, 1, gen, {{"epoch", "9"}});
                 },
                 path),
             Contains("extra metadata key 'epoch' is reserved"));
  unchanged();
}

// --- PyTorch interchange (tests/reference/safetensors_torch.py) ---------------------------

TEST_CASE("checkpoint: PyTorch's state_dict loads into mnist::Net and gives its output",
          "[safetensors][checkpoint][torch]") {
  const SafetensorsFile torch_file = read_safetensors(fixture_path("torch_state_dict.safetensors"));
  const SafetensorsFile eval = read_safetensors(fixture_path("torch_net_eval.safetensors"));
  mnist::Net<float> net(12, 9, 7, 5);
  load_state_dict(torch_file, net);  // strict
  CHECK(net.layer1[1].state_dict()[4].name == "num_batches_tracked");
  CHECK(torch_file.get<std::int64_t>("layer1.1.num_batches_tracked")[0] == 3);
  net.eval();
  // Float32 through three layers on both sides: agreement to 1e-5 (a few ulps of ~1).
  backprop_test::check_close(net.forward(eval.get<float>("input")), eval.get<float>("output"), 1e-5,
                             1e-5, "eval output vs PyTorch");
}

TEST_CASE("checkpoint: files for PyTorch to load (safetensors_torch.py check)",
          "[safetensors][checkpoint][torch]") {
  // Run `/usr/bin/python3 tests/reference/safetensors_torch.py check <BACKPROP_TEST_TMPDIR>`
  // afterwards: it loads these into PyTorch (CI has no torch, so only the C++ half runs).
  backprop::manual_seed(21);
  mnist::Net<float> net(12, 9, 7, 5);
  SGD<float> opt(net.parameters(), 0.1, 0.5);
  Generator gen(22);
  for (int i = 0; i < 3; ++i) train_step(net, opt, gen, 12, 5);
  save_checkpoint(tmp_path("cpp_checkpoint.safetensors"), net, opt, 1, gen);
  save_state_dict(tmp_path("cpp_net.safetensors"), net);

  net.eval();
  const Tensor<float> x = Tensor<float>::randn({4, 12}, gen);
  const Tensor<float> y = net.forward(x);
  write_safetensors(tmp_path("cpp_net_eval.safetensors"),
                    {tensor_ref("input", x), tensor_ref("output", y)});

  // One more step on a recorded batch, for PyTorch to repeat from the checkpoint.
  const Tensor<float> bx = Tensor<float>::randn({8, 12}, gen);
  Tensor<std::int64_t> by({8});
  for (Index i = 0; i < 8; ++i) by[i] = static_cast<std::int64_t>(gen.below(5));
  backprop::CrossEntropyLoss<float> criterion;
  net.train();
  criterion.forward(net.forward(bx), by);
  opt.zero_grad();
  net.backward(criterion.backward());
  opt.step();
  write_safetensors(tmp_path("cpp_step_batch.safetensors"),
                    {tensor_ref("x", bx), tensor_ref("y", by)});
  save_state_dict(tmp_path("cpp_net_after_step.safetensors"), net);

  mnist::Net<float> back(12, 9, 7, 5);
  load_state_dict(tmp_path("cpp_net.safetensors"), back);
  back.eval();
  CHECK(Tensor<float>(back.forward(x)) == y);
}

TEST_CASE("safetensors: write_file_atomic replaces a file whole", "[safetensors][atomic]") {
  const std::string path = tmp_path("metrics.csv");
  write_file_atomic(path, "epoch,loss\n");
  write_file_atomic(path, std::string("epoch,loss\n0,1.5\n\0", 18));
  CHECK(slurp(path) == std::string("epoch,loss\n0,1.5\n\0", 18));
  CHECK(no_temp_files(path));
  const std::string bad = tmp_path("no_such_dir_2") + "/metrics.csv";
  CHECK_THAT(error_of<FileError>([&] { write_file_atomic(bad, "x"); }, bad),
             Contains("No such file or directory"));
}
