// SPDX-License-Identifier: MIT
// read_idx: raw and gzip IDX files it writes itself, valid and each kind of broken one.
#include <sys/stat.h>  // mkfifo
#include <zlib.h>

#include <backprop/io/idx.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using backprop::Shape;
using backprop::io::DataError;
using backprop::io::IdxArray;
using backprop::io::read_idx;
using Catch::Contains;
using Bytes = std::vector<std::uint8_t>;

namespace {

std::string tmp_path(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(BACKPROP_TEST_TMPDIR) / "idx";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
}

// An IDX file: 00 00 <type> <rank>, big-endian dims, then data.
Bytes idx(const std::vector<std::uint32_t>& dims, const Bytes& data = {},
          std::uint8_t type = 0x08) {
  Bytes out = {0, 0, type, std::uint8_t(dims.size())};
  for (std::uint32_t d : dims) put_u32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes iota_bytes(std::size_t n, unsigned start = 0) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::uint8_t((start + 7 * i) % 256);
  return out;
}

std::string write_raw(const std::string& name, const Bytes& bytes) {
  const std::string path = tmp_path(name);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

// The gzip encoding of bytes, made by zlib's gz* file API through the file scratch_name
// (distinct per use: ctest may run the test cases in parallel).
Bytes gzip(const Bytes& bytes, const std::string& scratch_name) {
  const std::string path = tmp_path(scratch_name + ".scratch");
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty())
    REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::string write_gz(const std::string& name, const Bytes& bytes) {
  return write_raw(name, gzip(bytes, name));
}

}  // namespace

TEST_CASE("read_idx: raw and gzip files give the same shape and bytes", "[idx]") {
  const Bytes labels = {3, 1, 4, 1, 5, 9, 2};
  const Bytes pixels = iota_bytes(3 * 4 * 5, 11);
  for (const bool gz : {false, true}) {
    INFO("gzip: " << gz);
    // The name does not decide: a gzip file without .gz and a raw one with it both work.
    auto write = [&](const std::string& name, const Bytes& b) {
      return gz ? write_gz(name, b) : write_raw(name + ".gz", b);
    };
    const IdxArray l = read_idx(write("labels", idx({7}, labels)));
    CHECK(l.shape == Shape{7});
    CHECK(l.data == labels);
    const IdxArray i = read_idx(write("images", idx({3, 4, 5}, pixels)));
    CHECK(i.shape == Shape{3, 4, 5});
    CHECK(i.data == pixels);
    // Every rank 1..4 is read; the dataset decides which it needs.
    CHECK(read_idx(write("rank2", idx({2, 3}, iota_bytes(6)))).shape == Shape{2, 3});
    CHECK(read_idx(write("rank4", idx({2, 1, 2, 3}, iota_bytes(12)))).data == iota_bytes(12));
    const IdxArray empty = read_idx(write("empty", idx({0, 28, 28})));
    CHECK(empty.shape == Shape{0, 28, 28});
    CHECK(empty.data.empty());
  }
}

TEST_CASE("read_idx: large gzip data grows in chunks, concatenated members are read", "[idx]") {
  const Bytes pixels = iota_bytes(3000 * 28 * 28, 5);  // 2.2 MB: several growth steps
  const IdxArray a = read_idx(write_gz("large.gz", idx({3000, 28, 28}, pixels)));
  CHECK(a.shape == Shape{3000, 28, 28});
  CHECK(a.data == pixels);
  CHECK(a.data.capacity() == a.data.size());

  // gunzip reads a file of several gzip members as their concatenation; so does read_idx.
  const Bytes whole = idx({10}, iota_bytes(10));
  Bytes two = gzip(Bytes(whole.begin(), whole.begin() + 9), "member1");
  const Bytes second = gzip(Bytes(whole.begin() + 9, whole.end()), "member2");
  two.insert(two.end(), second.begin(), second.end());
  CHECK(read_idx(write_raw("members.gz", two)).data == iota_bytes(10));
}

TEST_CASE("read_idx: missing and unreadable files", "[idx]") {
  const std::string missing = tmp_path("no-such-file");
  CHECK_THROWS_AS(read_idx(missing), DataError);
  CHECK_THROWS_WITH(read_idx(missing), missing + ": cannot open: No such file or directory");
  const std::string dir = tmp_path("a-directory");
  std::filesystem::create_directories(dir);
  CHECK_THROWS_WITH(read_idx(dir), dir + ": cannot open: Is a directory");
  // A FIFO is refused before it is opened: fopen would wait for a writer, here forever.
  const std::string fifo = tmp_path("a-fifo");
  std::filesystem::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(read_idx(fifo),
                    fifo + ": cannot open: a FIFO (named pipe), not a regular file");
  CHECK_THROWS_WITH(read_idx("/dev/null"), "/dev/null: cannot open: not a regular file");
}

TEST_CASE("read_idx: truncated files name the path and both sizes", "[idx]") {
  for (const bool gz : {false, true}) {
    INFO("gzip: " << gz);
    auto write = [&](const std::string& name, const Bytes& b) {
      return gz ? write_gz(name + ".gz", b) : write_raw(name, b);
    };
    const std::string holds = gz ? "file decompresses to" : "file holds";
    const std::string labels = write("short-labels", idx({100}, iota_bytes(90)));
    CHECK_THROWS_WITH(read_idx(labels),
                      labels + ": truncated: header says 100 items but " + holds + " 90");
    const std::string images = write("short-images", idx({3, 4, 5}, iota_bytes(47)));
    CHECK_THROWS_WITH(read_idx(images), images +
                                            ": truncated: header says 3 items of 4x5 bytes "
                                            "but " +
                                            holds + " 2 items and 7 bytes");
    const std::string header = write("short-header", Bytes{0, 0, 8, 3, 0, 0, 0, 2, 0});
    CHECK_THROWS_WITH(read_idx(header),
                      header + ": truncated: the header needs 16 bytes but the " + holds + " 9");
    const std::string empty = write("zero-bytes", Bytes{});
    CHECK_THROWS_WITH(read_idx(empty), Contains(empty + ": truncated: " + holds + " 0 bytes"));
  }
}

TEST_CASE("read_idx: bad magic, element type and rank", "[idx]") {
  const std::string magic = write_raw("bad-magic", Bytes{0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0});
  CHECK_THROWS_WITH(read_idx(magic), magic +
                                         ": bad magic number 0x12345678, expected 0x00000801 "
                                         "(labels) or 0x00000803 (images)");
  const std::string zeros = write_gz("zeros.gz", Bytes(16, 0));
  CHECK_THROWS_WITH(read_idx(zeros), zeros +
                                         ": bad magic number 0x00000000, expected 0x00000801 "
                                         "(labels) or 0x00000803 (images)");
  const std::string type = write_raw("float-type", idx({2}, Bytes(8), 0x0D));
  CHECK_THROWS_WITH(read_idx(type), type +
                                        ": unsupported element type 0x0D (float32) in magic "
                                        "number 0x00000D01: only unsigned byte (0x08) is "
                                        "supported");
  const std::string rank0 = write_raw("rank0", Bytes{0, 0, 8, 0});
  CHECK_THROWS_WITH(read_idx(rank0),
                    rank0 + ": bad magic number 0x00000800: rank 0 is not in 1..4");
  const std::string rank5 = write_raw("rank5", idx({1, 1, 1, 1, 1}, Bytes{7}));
  CHECK_THROWS_WITH(read_idx(rank5),
                    rank5 + ": bad magic number 0x00000805: rank 5 is not in 1..4");
}

TEST_CASE("read_idx: huge header claims throw before allocating", "[idx]") {
  // 16 bytes claiming 2^31 images of 28x28 (1.7 TB): an allocation would throw bad_alloc (or
  // succeed lazily), not this message, so the message proves the size was checked first.
  const std::string raw = write_raw("claims-2^31", idx({1u << 31, 28, 28}));
  CHECK_THROWS_WITH(read_idx(raw), raw +
                                       ": truncated: header says 2147483648 items of 28x28 "
                                       "bytes but file holds 0 items");
  // Gzip cannot be checked against a file size: it grows only as bytes really arrive.
  const std::string gz = write_gz("claims-2^31.gz", idx({1u << 31, 28, 28}, iota_bytes(100)));
  CHECK_THROWS_WITH(read_idx(gz), gz + ": truncated: header says 2147483648 items of 28x28 bytes "
                                       "but file decompresses to 0 items and 100 bytes");
  // A bomb: a 20 KB file inflating to 20 MB of zeros behind a header claiming one image.
  const std::string bomb = write_gz("bomb.gz", idx({1, 28, 28}, Bytes(20u << 20, 0)));
  CHECK(std::filesystem::file_size(bomb) < 100000);
  CHECK_THROWS_WITH(read_idx(bomb), bomb +
                                        ": trailing data: file decompresses to at least 1 "
                                        "more bytes than the header's [1, 28, 28] needs");
}

TEST_CASE("read_idx: dimension products that overflow 64 bits", "[idx]") {
  const std::uint32_t m = 0xFFFFFFFFu;
  for (const bool gz : {false, true}) {
    const Bytes bytes = idx({m, m, m, 2});
    const std::string path = gz ? write_gz("overflow.gz", bytes) : write_raw("overflow", bytes);
    CHECK_THROWS_WITH(read_idx(path), path +
                                          ": dimensions [4294967295, 4294967295, 4294967295, "
                                          "2] hold too many elements: their product "
                                          "overflows a 64-bit size");
  }
  // (2^32 - 1)(2^31 - 1) < 2^63: no overflow, so the size check reports it instead.
  const std::string big = write_raw("big", idx({m, 0x7FFFFFFFu, 1}));
  CHECK_THROWS_WITH(read_idx(big), Contains(big + ": truncated: header says 4294967295 items"));
}

TEST_CASE("read_idx: data past the header's count and corrupt gzip", "[idx]") {
  const std::string raw = write_raw("trailing", idx({4}, iota_bytes(7)));
  CHECK_THROWS_WITH(read_idx(raw), raw +
                                       ": trailing data: file holds 3 more bytes than the "
                                       "header's [4] needs");
  const std::string gz = write_gz("trailing.gz", idx({4}, iota_bytes(7)));
  CHECK_THROWS_WITH(read_idx(gz), gz + ": trailing data: file decompresses to at least 1 more "
                                       "bytes than the header's [4] needs");

  const Bytes z = gzip(idx({50}, iota_bytes(50)), "fifty");
  Bytes garbage = z;
  garbage.insert(garbage.end(), {'j', 'u', 'n', 'k'});
  const std::string g = write_raw("garbage.gz", garbage);
  CHECK_THROWS_WITH(read_idx(g), g + ": trailing garbage after the gzip stream");

  const std::string cut = write_raw("cut.gz", Bytes(z.begin(), z.end() - 6));
  CHECK_THROWS_WITH(read_idx(cut), Contains(cut + ": truncated gzip stream"));

  Bytes bad_crc = z;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;  // the CRC-32 in the trailer
  const std::string crc = write_raw("crc.gz", bad_crc);
  CHECK_THROWS_WITH(read_idx(crc), crc + ": corrupt gzip data: incorrect data check");
}
