// e^a as the reference computes it on the GPU (CUDA's expf, behind torch.sigmoid and
// torch.softmax), as far as it can be reproduced without one.
//
// expf is not correctly rounded on the GPU: libdevice reduces a to r = a·log2(e) − k in f32 and
// returns ex2.approx(r)·2^k. The f32 rounding of r alone moves the result by up to ~0.35 ulp, so
// where e^a lies near a rounding midpoint the GPU and libm round to different neighbours. One
// such case decided a whole block of fixtures/tiny-b-layers (block 4: the sigmoid of an mHC
// `pre` weight one ulp apart put a stream sum on the other side of a bf16 tie; spec §5.2.1).
#pragma once

namespace dsv4::kernels {

// libdevice's __nv_expf with its range reduction bit for bit (k = floor(a·log2 e) from two
// FMAs, r from two FMAs with log2 e split in two f32 halves). ex2.approx itself has not been
// measured yet (tools/cuda_math/probe_ex2.py); the correctly rounded 2^r stands in for it, so
// results can still differ from the GPU's by an ulp.
float cuda_expf(float a);

}  // namespace dsv4::kernels
