# Checks, on the GPU, which summation order torch.matmul (cuBLAS SGEMM, TF32 off) uses for the
# compressor's f32 products (spec §5.5: bf16-valued x and weights, so every product is exact and
# only the order of the additions matters). For each shape it prints the fraction of outputs that
# equal SumOrder::two_slices of src/kernels/cpu/matmul.h (runs of 8 positions, alternate runs in
# two accumulators, acc0 + acc1) and, for comparison, a plain left-to-right sum.
# Found with this: [600 x 256] x [256 x 1024] (fixtures/tiny-c) matches two_slices on every output.
# cuBLAS picks its kernel by shape, so other shapes (V4-Flash K = 4096, decode M = 1) may differ.
import sys
import torch

torch.backends.cuda.matmul.allow_tf32 = False
dev = 'cuda'
g = torch.Generator(device=dev).manual_seed(0)


def sum_in_order(x, w, slices):
    # x [M, K], w [N, K] -> [M, N]; products exact in f32, additions in the given order.
    M, K = x.shape
    acc = [torch.zeros(M, w.shape[0], device=dev) for _ in range(slices)]
    for k in range(K):
        s = (k // 8) % slices
        acc[s] = acc[s] + x[:, k:k + 1] * w[:, k].unsqueeze(0)
    out = acc[0]
    for a in acc[1:]:
        out = out + a
    return out


shapes = [(600, 256, 1024), (600, 256, 512), (600, 256, 256), (600, 256, 128), (1, 256, 1024),
          (64, 4096, 1024), (600, 4096, 1024), (1, 4096, 1024), (64, 4096, 256)]
if len(sys.argv) > 1:
    shapes = [tuple(int(v) for v in a.split('x')) for a in sys.argv[1:]]
for M, K, N in shapes:
    x = torch.randn(M, K, generator=g, device=dev).to(torch.bfloat16).float()
    w = (torch.randn(N, K, generator=g, device=dev) * 0.05).to(torch.bfloat16).float()
    y = torch.matmul(x, w.t())
    two = (sum_in_order(x, w, 2) == y).float().mean().item()
    seq = (sum_in_order(x, w, 1) == y).float().mean().item()
    print(f'M={M} K={K} N={N}: two_slices {two:.4f}  sequential {seq:.4f}')
