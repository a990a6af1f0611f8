# Measures CUDA's ex2.approx (behind expf) on a CUDA machine (PyTorch + an NVIDIA GPU), for the
# compressor softmax of the CSA layers (README: the last bit-level difference from the reference).
# NOT YET RUN: written in a session without a GPU; check its asserts' messages on the first run.
#
# CUDA 13's libdevice computes expf(a) (read from nvvm/libdevice/libdevice.10.bc, __nv_expf) as
#   t = saturate(fma(a, log2e / 252, 0.5))          log2e = 0x3FB8AA3B
#   j = fma_rm(t, 252, 12582913.0)                   integer k + 12583039 in the low mantissa bits
#   r = fma(a, log2e, -(j - 12583039))               r = a * log2e - k, within (-2^-16, 1 + 2^-16)
#   r = fma(a, 0x32A57060, r)                        the low part of log2e
#   expf(a) = ex2.approx.ftz(r) * bits_as_float(bits(j) << 23)
# so reproducing it needs ex2.approx on (-2^-16, 1 + 2^-16) only. torch.exp2 on float32 is
# exp2f, which is ex2.approx itself (non-ftz; the same on these inputs, whose results are normal).
#
# 1. Does ex2.approx depend only on its input rounded or truncated to F fraction bits (a
#    fixed-point converter before a table interpolator)? The smallest such F is reported.
# 2. If one is found, tabulates every fixed-point input of (-2^-16, 1 + 2^-16) at that F as the
#    deviation in ulps from the correctly rounded 2^x (int8), to $OUT/ex2_deviation.bin.
# 3. Writes 2^20 (a, torch.exp(a)) pairs, a in softmax-like ranges, to $OUT/expf_samples.bin
#    (float32 pairs) for a C++ test of the emulation.
#
#   OUT=/tmp/ex2 python3 tools/cuda_math/probe_ex2.py
import json, os
import torch

dev = 'cuda'
out = os.environ.get('OUT', '/tmp')
F32 = torch.float32


def floats_between(lo, hi):
    """Every float32 in [lo, hi), 0 <= lo < hi, as a tensor."""
    a = torch.tensor([lo, hi], dtype=F32).view(torch.int32).tolist()
    return torch.arange(a[0], a[1], dtype=torch.int64, device=dev).to(torch.int32).view(F32)


def correctly_rounded_exp2(x):
    return torch.exp2(x.double()).float()


report = {'device': torch.cuda.get_device_name(), 'torch': torch.__version__, 'cuda': torch.version.cuda}

# 1. Fixed-point hypothesis on a sample of every float in [0, 1) and its neighbourhood.
g = torch.Generator(device=dev).manual_seed(1)
sample = torch.cat([torch.rand(1 << 24, generator=g, device=dev, dtype=torch.float64).float(),
                    floats_between(0.5, 0.5 + 2 ** -10), floats_between(2 ** -17, 2 ** -16)])
hw = torch.exp2(sample)
found = None
report['mismatches_by_F'] = {}
for F in range(20, 33):
    scale = float(2 ** F)
    for mode, q in (('round', torch.round), ('trunc', torch.floor)):
        mismatches = int((torch.exp2((q(sample.double() * scale) / scale).float()) != hw).sum())
        report['mismatches_by_F'].setdefault(F, {})[mode] = mismatches
        if mismatches == 0 and found is None:
            found = {'fraction_bits': F, 'mode': mode}
report['fixed_point'] = found
dev_ulps = hw.view(torch.int32) - correctly_rounded_exp2(sample).view(torch.int32)
report['deviation_counts'] = dict(zip(*[t.tolist() for t in torch.unique(dev_ulps, return_counts=True)]))

# 2. The table, where a fixed-point form exists.
if found:
    F = found['fraction_bits']
    m = torch.arange(-(1 << (F - 16)), (1 << F) + (1 << (F - 16)), dtype=torch.int64, device=dev)
    x = (m.double() / float(2 ** F)).float()
    assert torch.equal((x.double() * float(2 ** F)), m.double()), 'fixed-point inputs not exact in float32'
    d = torch.exp2(x).view(torch.int32) - correctly_rounded_exp2(x).view(torch.int32)
    assert int(d.abs().max()) < 127, 'deviation does not fit int8'
    d.to(torch.int8).cpu().numpy().tofile(f'{out}/ex2_deviation.bin')
    report['table'] = {'first_input_times_2^F': int(m[0]), 'entries': int(m.numel())}

# 3. expf samples: softmax arguments (s - max <= 0) and general ones.
a = torch.cat([-torch.rand(1 << 19, generator=g, device=dev) * 30,
               (torch.rand(1 << 19, generator=g, device=dev) - 0.5) * 160])
torch.stack([a, torch.exp(a)], 1).cpu().numpy().tofile(f'{out}/expf_samples.bin')

json.dump(report, open(f'{out}/ex2_report.json', 'w'), indent=1)
print(json.dumps(report, indent=1))
