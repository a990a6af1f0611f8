// The safetensors parser on hostile input: every malformed file must give a Status whose
// message names the file (and the tensor where there is one), never a crash or a bad read.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/dtype.h"
#include "test_tmp_dir.h"

namespace dsv4::io {
namespace {

// A safetensors image from header text and data bytes.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes, uint64_t hlen_override = UINT64_MAX) {
  const uint64_t hlen = hlen_override == UINT64_MAX ? header.size() : hlen_override;
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(hlen >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = uint8_t(i * 7);
  return out;
}

// Two tensors: a F32 [2,2] at [0,16) and b BF16 [3] at [16,22).
const std::string kGood =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";

Result<SafetensorsHeader> parse(const std::vector<uint8_t>& bytes) {
  return parse_safetensors(bytes.data(), bytes.size(), "f.safetensors");
}

// Expects failure with `code` and a message "f.safetensors: ..." containing `part`.
void expect_error(const Result<SafetensorsHeader>& r, StatusCode code, const std::string& part) {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << part << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_EQ(r.status().message().rfind("f.safetensors: ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
}

std::string with_entry(const std::string& entry) { return R"({"x":)" + entry + "}"; }

TEST(Safetensors, ParsesAValidImage) {
  const auto bytes = image(kGood, 22);
  auto h = parse(bytes);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_EQ(h->tensors.size(), 2u);
  EXPECT_EQ(h->metadata.at("format"), "pt");
  EXPECT_EQ(h->tensors[1].name, "b");
  EXPECT_EQ(h->tensors[1].dtype, DType::bf16);
  EXPECT_EQ(h->tensors[1].data, bytes.data() + 8 + kGood.size() + 16);
  EXPECT_EQ(h->tensors[1].file, "f.safetensors");
}

TEST(Safetensors, RoundTripsThroughTheWriters) {
  test::TempDir tmp;
  const std::vector<TensorSpec> specs = {{"w", DType::fp8_e4m3, {3, 5}}, {"s", DType::fp8_e8m0, {1, 1}},
                                         {"e", DType::i64, {0}}, {"v", DType::f32, {7}}};
  auto fill = [&](size_t i, uint64_t off, uint8_t* dst, size_t n) {
    for (size_t k = 0; k < n; ++k) dst[k] = uint8_t(i * 31 + off + k);
  };
  ASSERT_TRUE(write_safetensors_chunked(tmp / "a.safetensors", specs, {{"format", "pt"}}, fill, nullptr, 4).ok());
  ASSERT_TRUE(write_safetensors(tmp / "b.safetensors", specs, {{"format", "pt"}},
                                [&](size_t i, std::vector<uint8_t>& out) {
                                  out.resize(specs[i].nbytes());
                                  fill(i, 0, out.data(), out.size());
                                })
                  .ok());
  for (const char* f : {"a.safetensors", "b.safetensors"}) {
    auto st = open_safetensors(tmp / f);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    ASSERT_EQ(st->header.tensors.size(), 4u);
    EXPECT_EQ(st->header.data_offset % 8, 0u);   // the writers pad the header
    // The data is laid out like the safetensors library's: largest element size first, then by
    // name (e I64 (empty), v F32, then s and w of 1 byte), so every tensor is aligned.
    auto entry = [&](const char* name) -> const TensorEntry& {
      return *std::find_if(st->header.tensors.begin(), st->header.tensors.end(),
                           [&](const TensorEntry& t) { return t.name == name; });
    };
    EXPECT_EQ(entry("e").begin, 0u);
    EXPECT_EQ(entry("v").begin, 0u);
    EXPECT_EQ(entry("s").begin, 28u);
    EXPECT_EQ(entry("w").begin, 29u);
    for (const TensorEntry& t : st->header.tensors)
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtype_align(t.dtype), 0u) << t.name;
    const TensorEntry& v = entry("v");
    EXPECT_EQ(v.nbytes(), 28u);
    for (size_t k = 0; k < 28; ++k) ASSERT_EQ(v.data[k], uint8_t(3 * 31 + k)) << f;
    const TensorEntry& w = entry("w");
    for (size_t k = 0; k < 15; ++k) ASSERT_EQ(w.data[k], uint8_t(k)) << f;
  }
}

TEST(Safetensors, TruncatedFilesFailAtEveryCut) {
  test::TempDir tmp;
  const auto full = image(kGood, 22);
  const size_t hend = 8 + kGood.size();
  for (size_t cut : {size_t(0), size_t(3), size_t(7), size_t(8), size_t(9), 8 + kGood.size() / 2, hend - 1, hend,
                     hend + 10, hend + 16, hend + 21}) {
    const std::string path = tmp / ("cut" + std::to_string(cut));
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(full.data()), std::streamsize(cut));
    auto st = open_safetensors(path);
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    EXPECT_EQ(st.status().code(), StatusCode::corrupt_data) << st.status().to_string();
    EXPECT_EQ(st.status().message().rfind(path + ": ", 0), 0u) << st.status().message();
    if (cut >= hend) {   // the header parsed: the message names the first tensor that does not fit
      const char* tensor = cut < hend + 16 ? "tensor 'a'" : "tensor 'b'";
      EXPECT_NE(st.status().message().find(tensor), std::string::npos) << st.status().message();
      EXPECT_NE(st.status().message().find("truncated"), std::string::npos) << st.status().message();
    }
  }
}

TEST(Safetensors, HeaderLengthChecks) {
  expect_error(parse(image(kGood, 22, uint64_t(1) << 63)), StatusCode::corrupt_data, "is absurd");
  expect_error(parse(image(kGood, 22, kMaxSafetensorsHeader + 1)), StatusCode::corrupt_data, "is absurd");
  expect_error(parse(image(kGood, 22, kGood.size() + 23)), StatusCode::corrupt_data, "exceeds the file size");
  // A header length cutting the JSON short.
  expect_error(parse(image(kGood, 22, kGood.size() - 1)), StatusCode::corrupt_data, "not valid JSON");
  expect_error(parse(image("", 0)), StatusCode::corrupt_data, "not valid JSON");
}

TEST(Safetensors, BadJsonAndNonObjectHeaders) {
  expect_error(parse(image(R"({"a": )", 0)), StatusCode::corrupt_data, "not valid JSON");
  expect_error(parse(image("\xff\xfe{}", 0)), StatusCode::corrupt_data, "not valid JSON");
  expect_error(parse(image(R"([1,2,3])", 0)), StatusCode::corrupt_data, "not a JSON object");
  expect_error(parse(image(R"("x")", 0)), StatusCode::corrupt_data, "not a JSON object");
  expect_error(parse(image(R"({"__metadata__":[1]})", 0)), StatusCode::corrupt_data, "__metadata__ is not an object");
  expect_error(parse(image(R"({"__metadata__":{"a":1}})", 0)), StatusCode::corrupt_data, "values must be strings");
}

TEST(Safetensors, FlippedHeaderBytesNeverCrash) {
  // Every single-bit flip of every header byte: a Status (or, rarely, a still-valid header).
  int failures = 0;
  for (size_t i = 0; i < kGood.size() + 8; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bytes = image(kGood, 22);
      bytes[i] ^= uint8_t(1 << bit);
      auto h = parse(bytes);
      if (!h.ok()) {
        ++failures;
        ASSERT_EQ(h.status().message().rfind("f.safetensors: ", 0), 0u) << h.status().message();
      } else {
        for (const auto& t : h->tensors) ASSERT_LE(t.data + t.nbytes(), bytes.data() + bytes.size());
      }
    }
  }
  EXPECT_GT(failures, int(kGood.size()));   // structure bytes, lengths, offsets and dtypes all break it
}

TEST(Safetensors, BadEntries) {
  using C = StatusCode;
  const std::string ok_off = R"("data_offsets":[0,4])";
  expect_error(parse(image(with_entry("[1]"), 4)), C::corrupt_data, "tensor 'x': header entry is not an object");
  expect_error(parse(image(with_entry(R"({"shape":[1],)" + ok_off + "}"), 4)), C::corrupt_data, "tensor 'x': missing dtype");
  expect_error(parse(image(with_entry(R"({"dtype":"F7","shape":[1],)" + ok_off + "}"), 4)), C::unsupported,
               "tensor 'x': unknown dtype 'F7'");
  expect_error(parse(image(with_entry(R"({"dtype":3,"shape":[1],)" + ok_off + "}"), 4)), C::corrupt_data,
               "tensor 'x': missing dtype");
  expect_error(parse(image(with_entry(R"({"dtype":"F32",)" + ok_off + "}"), 4)), C::corrupt_data, "tensor 'x': missing shape");
  for (const char* shape : {"[-1]", "[2.5]", R"(["1"])", "[1,-4]", "[18446744073709551615]"}) {
    expect_error(parse(image(with_entry(std::string(R"({"dtype":"F32","shape":)") + shape + "," + ok_off + "}"), 4)),
                 C::corrupt_data, "tensor 'x': shape entries must be non-negative integers");
  }
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],)" + ok_off + "}"), 4)),
               C::corrupt_data, "too many dimensions");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})"), 4)),
               C::corrupt_data, "tensor 'x': shape too large");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1]})"), 4)), C::corrupt_data, "data_offsets");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})"), 4)), C::corrupt_data,
               "tensor 'x': missing or malformed data_offsets");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})"), 4)), C::corrupt_data,
               "tensor 'x': data_offsets must be non-negative integers");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})"), 4)), C::corrupt_data,
               "tensor 'x': data_offsets must be non-negative integers");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})"), 4)), C::corrupt_data,
               "tensor 'x': data_offsets begin > end");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), 4)), C::corrupt_data,
               "tensor 'x': data_offsets [4, 8) beyond the data section (4 bytes");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})"), 4)),
               C::corrupt_data, "tensor 'x': data_offsets");
  expect_error(parse(image(with_entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"), 8)), C::corrupt_data,
               "tensor 'x': 4 bytes in file, shape and dtype need 8");
  expect_error(parse(image(with_entry(R"({"dtype":"BF16","shape":[3],"data_offsets":[0,8]})"), 8)), C::corrupt_data,
               "tensor 'x': 8 bytes in file, shape and dtype need 6");
}

TEST(Safetensors, OverlappingTensorsAreRejected) {
  const std::string h =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_error(parse(image(h, 12)), StatusCode::corrupt_data, "tensors 'a' and 'b' overlap");
  // Empty tensors may share an offset with anything.
  const std::string e =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  EXPECT_TRUE(parse(image(e, 8)).ok());
}

TEST(Safetensors, OpenReportsMissingAndNonRegularFiles) {
  test::TempDir tmp;
  auto r = open_safetensors(tmp / "absent.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::io_error);
  EXPECT_NE(r.status().message().find("absent.safetensors: cannot open"), std::string::npos);
  r = open_safetensors(tmp.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace dsv4::io
