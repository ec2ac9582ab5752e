#!/usr/bin/env python3
"""Two-thread scaling of mex-flow's TV-L1, measured in a way a shared host disturbs least; also an
A/B of builds.

    python3 scripts/flow_tvl1_scaling.py BIN[,BIN2,...] FRAMES_DIR SIZE ROUNDS [METHOD]
    python3 scripts/flow_tvl1_scaling.py target/release/examples/flow_peer /tmp/fp 128 40

(`flow_peer write /tmp/fp` writes the frames.) For each binary it starts two
`flow_peer serve DIR METHOD SIZE` processes, one with RAYON_NUM_THREADS=1 and one with 2 (each
loads the frame pairs of SIZE and estimates them once to warm up). Then, ROUNDS times, it asks
every process for one timed pass over all pairs (a round's time is the sum over the pairs), in
an order that rotates and reverses from round to round. A one-thread pass and its two-thread
partner thus run a fraction of a second apart, and a drift of the host's speed cancels out. On a
2-vCPU host where another tenant takes one vCPU at random for seconds at a time, runs minutes
apart (the previous form of this script) mixed those states into the ratio.

Per binary it prints the ratio of the medians, the median of the per-round ratios with its
quartiles, and each pair's ratio of medians; with several binaries, also the median per-round
ratio of each binary's two-thread time to the first binary's (an A/B of builds).

With MEX_FMA_CALIBRATION=PATH (a build of scripts/host_fma_calibration.c) the host's two-thread
FMA throughput is measured before each round, and the report adds the median ratio over the
rounds with both vCPUs free (at least 9.0 FMA/ns in total; an idle host here gives 10.2).
"""
import json, os, statistics, subprocess, sys

binaries, frames, size, rounds = sys.argv[1].split(","), sys.argv[2], sys.argv[3], int(sys.argv[4])
method = sys.argv[5] if len(sys.argv) > 5 else "tvl1"
calib = os.environ.get("MEX_FMA_CALIBRATION")


def start(binary, threads):
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


keys = [(b, t) for b in binaries for t in (1, 2)]
procs = {k: start(*k) for k in keys}
passes = {k: [] for k in keys}
cal = []
for r in range(rounds):
    if calib:
        cal.append(fma_total())
    order = keys[r % len(keys):] + keys[:r % len(keys)]
    for k in order if r % 2 == 0 else order[::-1]:
        passes[k].append(timed(procs[k]))
for p in procs.values():
    p.stdin.close()
    p.wait()

total = {k: [sum(p) for p in v] for k, v in passes.items()}
for b in binaries:
    t1, t2 = total[(b, 1)], total[(b, 2)]
    ratios = [a / c for a, c in zip(t1, t2)]
    q = statistics.quantiles(ratios, n=4)
    pairs = [statistics.median(p[i] for p in passes[(b, 1)]) / statistics.median(p[i] for p in passes[(b, 2)])
             for i in range(len(passes[(b, 1)][0]))]
    print(b)
    print("  1 thread ms: ", " ".join(f"{v:.1f}" for v in t1))
    print("  2 threads ms:", " ".join(f"{v:.1f}" for v in t2))
    print("  per-round ratios:", " ".join(f"{v:.2f}" for v in ratios))
    m1, m2 = statistics.median(t1), statistics.median(t2)
    report = {"binary": b, "method": method, "size": int(size), "rounds": rounds,
              "median_1t_ms": round(m1, 2), "median_2t_ms": round(m2, 2), "scaling_of_medians": round(m1 / m2, 3),
              "median_of_ratios": round(statistics.median(ratios), 3), "ratio_quartiles": [round(q[0], 3), round(q[2], 3)],
              "min_1t_ms": min(t1), "min_2t_ms": min(t2), "per_pair_scaling_of_medians": [round(v, 3) for v in pairs]}
    if calib:
        quiet = [x for x, c in zip(ratios, cal) if c >= 9.0]
        if quiet:
            report.update({"quiet_rounds": len(quiet), "median_of_ratios_quiet": round(statistics.median(quiet), 3)})
    if b != binaries[0]:
        report["two_thread_time_vs_first"] = round(statistics.median(
            [c / a for a, c in zip(total[(binaries[0], 2)], t2)]), 3)
    print(json.dumps(report))
if calib:
    print("2-thread calibration (FMA/ns):", " ".join(f"{v:.2f}" for v in cal))
