#!/usr/bin/env python3
"""Two-thread scaling of mex-flow's TV-L1 on a shared host: alternates RAYON_NUM_THREADS=1 and 2
runs of `flow_peer run DIR REPS tvl1 SIZE` ROUNDS times (each run prints the median time per
frame pair), and prints every pair of times, the ratio of the medians and the ratio of the minima
(the best estimate of an idle host's figure when other tenants preempt our vCPUs at random).

    python3 scripts/flow_tvl1_scaling.py target/release/examples/flow_peer /tmp/fp 128 10 [REPS]

With MEX_FMA_CALIBRATION=PATH (a build of scripts/host_fma_calibration.c) the two-thread FMA
throughput of the host is measured right before every two-thread run, and the report adds the
per-round ratios and the ratio of the medians over the rounds whose calibration shows both vCPUs
free (at least 9.0 FMA/ns in total; an idle host gives 10.2), i.e. without another tenant on the
second core while the barrier-synchronised solver ran.
"""
import json, os, statistics, subprocess, sys

binary, frames, size, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reps = sys.argv[5] if len(sys.argv) > 5 else "3"
calib = os.environ.get("MEX_FMA_CALIBRATION")


def fma_total():
    out = subprocess.run([calib, "2"], capture_output=True, text=True, check=True).stdout
    return float(out.split("total")[-1])


times = {1: [], 2: []}
cal = []
for _ in range(rounds):
    for t in (1, 2):
        if t == 2 and calib:
            cal.append(fma_total())
        env = dict(os.environ, RAYON_NUM_THREADS=str(t))
        out = subprocess.run([binary, "run", frames, reps, "tvl1", size], env=env,
                             capture_output=True, text=True, check=True).stdout
        times[t].append(json.loads(out.strip().splitlines()[-1])["ms"])
print("1 thread ms:", " ".join(f"{v:.1f}" for v in times[1]))
print("2 threads ms:", " ".join(f"{v:.1f}" for v in times[2]))
m1, m2 = statistics.median(times[1]), statistics.median(times[2])
report = {"size": int(size), "rounds": rounds,
          "median_1t": m1, "median_2t": m2, "scaling_median": m1 / m2,
          "min_1t": min(times[1]), "min_2t": min(times[2]),
          "scaling_min": min(times[1]) / min(times[2])}
if calib:
    print("2-thread calibration (FMA/ns):", " ".join(f"{v:.2f}" for v in cal))
    print("per-round ratios:", " ".join(f"{a / b:.2f}" for a, b in zip(times[1], times[2])))
    quiet = [i for i, v in enumerate(cal) if v >= 9.0]
    if quiet:
        q1 = statistics.median(times[1][i] for i in quiet)
        q2 = statistics.median(times[2][i] for i in quiet)
        report.update({"quiet_rounds": len(quiet), "scaling_median_quiet": q1 / q2})
print(json.dumps(report))
