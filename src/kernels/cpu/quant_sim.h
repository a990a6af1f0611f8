// In-place simulations of the reference's low-precision roundings. Each leaves values that are
// exactly representable in bf16.
#pragma once

#include <cstdint>

namespace dsv4::kernels {

// spec §4.2 act_quant: per block of `block` elements, s = 2^ceil(log2(max(amax,1e-4)·f32(1/448))),
// x ← e4m3_rne(clamp(x/s, ±448)) · s. Block 128 before FP8/FP4 GEMMs, 64 for stored KV.
// REQUIRES: n % block == 0.
void act_quant_fp8(float* x, int64_t n, int block);

// spec §4.4 fp4_act_quant: block 32, s = 2^ceil(log2(max(amax, 6·2^-126)·f32(1/6))),
// x ← bf16(e2m1_rne(clamp(x/s, ±6)) · s).
void fp4_sim(float* x, int64_t n, int block);

// spec §4.5: x ← bf16((H_d · x) / sqrt(d)), Sylvester Hadamard, d a power of two.
void hadamard_rotate(float* x, int64_t d);

}  // namespace dsv4::kernels
