# Regenerates data/cuda/rsqrtf_deviation.bin.xz on a CUDA machine (PyTorch + an NVIDIA GPU).
#
# The official DeepSeek-V4 reference normalises with torch.rsqrt, which on the GPU is CUDA's
# rsqrtf: a hardware approximation that differs from the correctly rounded 1/sqrt(x) in ~22% of
# inputs (by -2..+1 ulp). Every RMSNorm and hyper-connection mix is scaled by it, and the FP8
# activation rounding downstream turns a one-ulp difference into a different block output, so
# dsv4 reproduces it bit for bit (kernels/cpu/cuda_rsqrt.cpp).
#
# The approximation depends only on the mantissa and the parity of the exponent
# (rsqrtf(x * 4^k) == rsqrtf(x) * 2^-k, checked below), so the table covers [1, 4): 2^24 inputs,
# 2 bits each, value = deviation in ulps from float(1 / sqrt(double(x))) minus (-2).
#
#   python3 tools/cuda_math/probe_rsqrtf.py OUT.bin && xz -9 -c OUT.bin > data/cuda/rsqrtf_deviation.bin.xz
import sys
import torch

out_path = sys.argv[1]
dev = 'cuda'
bits = torch.arange(0x3F800000, 0x40800000, dtype=torch.int64, device=dev).to(torch.int32)
x = bits.view(torch.float32)
r_gpu = torch.rsqrt(x)
r_ref = (1.0 / torch.sqrt(x.double())).float()
deviation = r_gpu.view(torch.int32) - r_ref.view(torch.int32)
assert deviation.min().item() >= -2 and deviation.max().item() <= 1, 'deviation outside -2..+1 ulp'
for k in (-30, -10, -3, -1, 1, 3, 10, 30):
    assert torch.equal(torch.rsqrt(x * 4.0 ** k), r_gpu * 2.0 ** -k), f'scaling by 4^{k} is not exact'
codes = (deviation + 2).to(torch.uint8).view(-1, 4)
packed = codes[:, 0] | (codes[:, 1] << 2) | (codes[:, 2] << 4) | (codes[:, 3] << 6)
open(out_path, 'wb').write(packed.cpu().numpy().tobytes())
print('deviations (ulps -> count):', dict(zip(*[t.tolist() for t in torch.unique(deviation, return_counts=True)])))
print('device:', torch.cuda.get_device_name(), 'torch', torch.__version__, 'cuda', torch.version.cuda)
