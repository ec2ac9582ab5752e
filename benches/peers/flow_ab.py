#!/usr/bin/env python3
"""Interleaved A/B timing of two builds of a mex-flow estimator (for example TV-L1 before and
after a change of its threading), on the same machine in the same run.

    python3 benches/peers/flow_ab.py A_FLOW_PEER B_FLOW_PEER [--method tvl1] [--sizes 128 256]
                                     [--threads 1 2] [--rounds 10] [--passes 3]

A_FLOW_PEER and B_FLOW_PEER are `flow_peer` example binaries of the two builds
(`cargo build --release -p mex-flow --example flow_peer` in each checkout). The first writes the
synthetic pairs with known flow (`flow_peer write DIR`: six pairs per size); then, for every size
and thread count, one `flow_peer serve DIR METHOD SIZE` process of each build is started under
RAYON_NUM_THREADS and the two are driven in alternation, a fraction of a second apart: each round
asks A then B (B then A in odd rounds) for `--passes` passes over the pairs. A pass's figure is
the mean time per pair; a round's figure is the median of its passes; the reported ratio B / A
is the median over rounds of the per-round ratio, so that load changes between rounds cancel.
Prints a Markdown table (above 1: B is slower).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile


def start(exe, folder, method, size, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    return subprocess.Popen([exe, "serve", folder, method, str(size)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)


def round_ms(proc, passes):
    """Median over `passes` passes of the mean ms per pair."""
    means = []
    for _ in range(passes):
        proc.stdin.write("go\n")
        proc.stdin.flush()
        ms = [float(x) for x in proc.stdout.readline().split()]
        if not ms:
            raise RuntimeError("flow_peer serve answered nothing (no pairs of this size?)")
        means.append(sum(ms) / len(ms))
    return statistics.median(means)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--method", default="tvl1", choices=["tvl1", "farneback", "dis-fast"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([a.a, "write", folder], check=True, stdout=subprocess.DEVNULL)
        print(f"| size | threads | rounds | A, ms per pair | B, ms per pair | B / A |")
        print("|---|---|---|---|---|---|")
        for size in a.sizes:
            for t in a.threads:
                pa, pb = start(a.a, folder, a.method, size, t), start(a.b, folder, a.method, size, t)
                ta, tb, ratio = [], [], []
                for r in range(a.rounds):
                    if r % 2 == 0:
                        x, y = round_ms(pa, a.passes), round_ms(pb, a.passes)
                    else:
                        y, x = round_ms(pb, a.passes), round_ms(pa, a.passes)
                    ta.append(x)
                    tb.append(y)
                    ratio.append(y / x)
                    print(f"  {size} {t}t round {r}: A {x:.2f} B {y:.2f}", file=sys.stderr, flush=True)
                for p in (pa, pb):
                    p.stdin.close()
                    p.wait()
                print(f"| {size}x{size} | {t} | {a.rounds} | {statistics.median(ta):.1f} | "
                      f"{statistics.median(tb):.1f} | {statistics.median(ratio):.2f} |", flush=True)


if __name__ == "__main__":
    main()
