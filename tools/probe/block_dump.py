# Reads a block dump of `dsv4 score --dump-layer N --rows A..B --dump FILE` (src/model/block_probe.h)
# with the standard library only (no numpy on the CPU machines).
#
#   python3 tools/probe/block_dump.py FILE list              series, shapes, positions
#   python3 tools/probe/block_dump.py FILE rows              per position: output elements equal to ref.out
#   python3 tools/probe/block_dump.py FILE ties [ULPS]       hc_pre sums (attn/ffn .u_sum) within ULPS f32
#                                                            ulps of a bf16 rounding midpoint (default 4)
#   python3 tools/probe/block_dump.py FILE show NAME POS [I0 I1]   one row of a series
#
# The first position whose output differs from ref.out is where to look; `ties` lists the sums
# whose bf16 rounding an ulp of an mHC weight can flip (fixtures/tiny-b-layers block 4 started at
# a sum exactly on a tie, README of tools/cuda_math).
import json
import struct
import sys
from array import array


def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    tensors = {}
    for name, t in header.items():
        b, e = t['data_offsets']
        a = array({'F32': 'f', 'I64': 'q'}[t['dtype']])
        a.frombytes(raw[8 + n + b:8 + n + e])
        tensors[name] = (t['shape'], a)
    series = {}
    for name, (shape, a) in tensors.items():
        if name.endswith('.positions'):
            continue
        positions = list(tensors[name + '.positions'][1])
        w = shape[1]
        series[name] = {p: a[i * w:(i + 1) * w] for i, p in enumerate(positions)}
    return meta, series


def f32_bits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def bits_f32(b):
    return struct.unpack('<f', struct.pack('<I', b & 0xFFFFFFFF))[0]


def tie_distance_ulps(s):
    """Distance of an f32 value from the bf16 rounding midpoint of its bracket, in f32 ulps."""
    b = f32_bits(s)
    mid = bits_f32((b & 0xFFFF0000) | 0x8000)
    ulp = abs(bits_f32(b + 1) - s)
    return abs(s - mid) / ulp


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    meta, series = load(path)
    if cmd == 'list':
        print('layer', meta.get('layer'), 'positions', meta.get('positions'))
        for name, rows in sorted(series.items()):
            pos = sorted(rows)
            print(f'{name:16s} rows {len(pos):5d} width {len(rows[pos[0]]):6d}  positions {pos[0]}..{pos[-1]}')
    elif cmd == 'rows':
        out, ref = series['out'], series['ref.out']
        first = None
        for p in sorted(out):
            eq = sum(1 for a, b in zip(out[p], ref[p]) if a == b)
            if eq < len(out[p]) and first is None:
                first = p
            print(p, f'{eq / len(out[p]):.3f}')
        print('first position that differs:', first)
    elif cmd == 'ties':
        limit = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0
        for name in ('attn.u_sum', 'ffn.u_sum'):
            for p, row in sorted(series.get(name, {}).items()):
                for i, s in enumerate(row):
                    d = tie_distance_ulps(s)
                    if d <= limit:
                        print(f'{name} pos {p} dim {i}: {s!r} is {d:g} ulps from a bf16 tie')
    elif cmd == 'show':
        name, pos = sys.argv[3], int(sys.argv[4])
        row = series[name][pos]
        i0 = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        i1 = int(sys.argv[6]) if len(sys.argv) > 6 else len(row)
        print(' '.join(f'{v:.9g}' for v in row[i0:i1]))
    else:
        sys.exit(f'unknown command {cmd}')


if __name__ == '__main__':
    main()
