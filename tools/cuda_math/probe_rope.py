# Prints the RoPE inverse-frequency tables of V4's two configurations as the reference builds
# them on the GPU (CUDA powf, f32 YaRN blend), as the hex bits kept in src/kernels/cpu/rope.cpp.
import math
import torch

dev = 'cuda'
for name, base, yarn in [('plain', 10000.0, False), ('yarn', 160000.0, True)]:
    d = 64
    f = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32, device=dev) / d))
    if yarn:
        factor, original, beta_fast, beta_slow = 16, 65536, 32, 1
        corr = lambda beta: d * math.log(original / (beta * 2 * math.pi)) / (2 * math.log(base))
        low, high = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), d - 1)
        ramp = ((torch.arange(d // 2, dtype=torch.float32, device=dev) - low) / (high - low)).clamp(0, 1)
        smooth = 1 - ramp
        f = f / factor * (1 - smooth) + f * smooth
    print(name, ', '.join(f'0x{b & 0xffffffff:08x}' for b in f.view(torch.int32).tolist()))
