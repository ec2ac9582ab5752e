#!/usr/bin/env python3
"""Two-thread scaling of mex-flow's TV-L1, measured in a way a shared host disturbs least.

    python3 scripts/flow_tvl1_scaling.py target/release/examples/flow_peer /tmp/fp 128 40 [METHOD]

Starts two `flow_peer serve DIR METHOD SIZE` processes, one with RAYON_NUM_THREADS=1 and one
with 2 (each loads the frame pairs of SIZE and estimates them once to warm up), then ROUNDS
times asks each for one timed pass over all pairs (a round's time is the sum over the pairs), in the order 1-2-2-1 over two rounds, so
that a one-thread pass and its two-thread partner run a fraction of a second apart and a drift
of the host's speed cancels. It prints every round's times, the ratio of the medians, the
median of the per-round ratios, its spread (quartiles), and each pair's ratio of medians. On this 2-vCPU host another tenant
takes one vCPU at random for seconds at a time; runs minutes apart (the previous form of this
script) mixed those states into the ratio.

With MEX_FMA_CALIBRATION=PATH (a build of scripts/host_fma_calibration.c) the host's two-thread
FMA throughput is measured before each round, and the report adds the median ratio over the
rounds with both vCPUs free (at least 9.0 FMA/ns in total; an idle host gives 10.2).
"""
import json, os, statistics, subprocess, sys

binary, frames, size, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
method = sys.argv[5] if len(sys.argv) > 5 else "tvl1"
calib = os.environ.get("MEX_FMA_CALIBRATION")


def start(threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    return subprocess.Popen([binary, "serve", frames, method, size], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)


def timed(proc):
    """One pass over the pairs: the time of each pair (ms)."""
    proc.stdin.write("\n")
    proc.stdin.flush()
    return [float(v) for v in proc.stdout.readline().split()]


def fma_total():
    out = subprocess.run([calib, "2"], capture_output=True, text=True, check=True).stdout
    return float(out.split("total")[-1])


procs = {1: start(1), 2: start(2)}
times = {1: [], 2: []}
cal = []
for r in range(rounds):
    if calib:
        cal.append(fma_total())
    order = (1, 2) if r % 2 == 0 else (2, 1)
    for t in order:
        times[t].append(timed(procs[t]))
for p in procs.values():
    p.stdin.close()
    p.wait()
per_pair = {t: [[p[i] for p in times[t]] for i in range(len(times[t][0]))] for t in (1, 2)}
times = {t: [sum(p) for p in times[t]] for t in (1, 2)}
ratios = [a / b for a, b in zip(times[1], times[2])]
pair_ratios = [statistics.median(a) / statistics.median(b) for a, b in zip(per_pair[1], per_pair[2])]
q = statistics.quantiles(ratios, n=4)
print("1 thread ms: ", " ".join(f"{v:.1f}" for v in times[1]))
print("2 threads ms:", " ".join(f"{v:.1f}" for v in times[2]))
print("per-round ratios:", " ".join(f"{v:.2f}" for v in ratios))
m1, m2 = statistics.median(times[1]), statistics.median(times[2])
report = {"method": method, "size": int(size), "rounds": rounds, "median_1t_ms": m1, "median_2t_ms": m2,
          "scaling_of_medians": m1 / m2, "median_of_ratios": statistics.median(ratios),
          "ratio_quartiles": [q[0], q[2]], "min_1t_ms": min(times[1]), "min_2t_ms": min(times[2]),
          "per_pair_scaling_of_medians": [round(v, 3) for v in pair_ratios]}
if calib:
    print("2-thread calibration (FMA/ns):", " ".join(f"{v:.2f}" for v in cal))
    quiet = [x for x, c in zip(ratios, cal) if c >= 9.0]
    if quiet:
        report.update({"quiet_rounds": len(quiet), "median_of_ratios_quiet": statistics.median(quiet)})
print(json.dumps(report))
