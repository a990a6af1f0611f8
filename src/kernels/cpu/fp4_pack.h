// Packed FP4 storage of the V4.1 per-sequence caches (v4.1 §4.4, §8.1): E2M1 codes, two per byte
// (low nibble = even element), with one scale per group. Packing rounds exactly as the
// reference's in-place simulation does, and unpacking gives its bf16 values back bit for bit,
// so the packed cache is lossless against the reference's bf16 buffer (v4.1 §4.4 notes).
#pragma once

#include <cstdint>

namespace dsv4::kernels {

// v4.1 §4.4(b), the compressed KV: per group of 16, amax = max(max|x|, 6·2^-9),
// s = e4m3_rne_satfinite(amax / 6) (an E4M3 number, not a power of two), code = e2m1_rne(clamp(x/s, ±6)).
// codes: n/2 bytes, scales: n/16 E4M3 bytes. REQUIRES n % 16 == 0.
constexpr int64_t kFp4E4m3Group = 16;
void fp4_e4m3_pack(const float* x, int64_t n, uint8_t* codes, uint8_t* scales);
// out[i] = bf16(e2m1(code_i) · s) (exact in bf16: <= 5 significant bits).
void fp4_e4m3_unpack(const uint8_t* codes, const uint8_t* scales, int64_t n, float* out);
// The in-place simulation: x ← unpack(pack(x)).
void fp4_e4m3_sim(float* x, int64_t n);

// spec §4.4 / v4.1 §4.4(a), the index keys: per group of 32, s = 2^ceil(log2(max(amax, 6·2^-126)·f32(1/6))),
// stored as its E8M0 exponent; the values are those of kernels::fp4_sim(x, n, 32).
// codes: n/2 bytes, scales: n/32 bytes. REQUIRES n % 32 == 0.
constexpr int64_t kFp4E8m0Group = 32;
void fp4_e8m0_pack(const float* x, int64_t n, uint8_t* codes, uint8_t* scales);
void fp4_e8m0_unpack(const uint8_t* codes, const uint8_t* scales, int64_t n, float* out);

// Bytes of n packed elements: codes plus scales.
constexpr int64_t fp4_e4m3_bytes(int64_t n) { return n / 2 + n / kFp4E4m3Group; }
constexpr int64_t fp4_e8m0_bytes(int64_t n) { return n / 2 + n / kFp4E8m0Group; }

}  // namespace dsv4::kernels
