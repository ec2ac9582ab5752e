#!/usr/bin/env python3
"""Two-thread scaling of mex-flow's TV-L1 on a shared host: alternates RAYON_NUM_THREADS=1 and 2
runs of `flow_peer run DIR REPS tvl1 SIZE` ROUNDS times (each run prints the median time per
frame pair), and prints every pair of times, the ratio of the medians and the ratio of the minima
(the best estimate of an idle host's figure when other tenants preempt our vCPUs at random).

    python3 scripts/flow_tvl1_scaling.py target/release/examples/flow_peer /tmp/fp 128 10
"""
import json, os, statistics, subprocess, sys

binary, frames, size, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
reps = sys.argv[5] if len(sys.argv) > 5 else "3"
times = {1: [], 2: []}
for _ in range(rounds):
    for t in (1, 2):
        env = dict(os.environ, RAYON_NUM_THREADS=str(t))
        out = subprocess.run([binary, "run", frames, reps, "tvl1", size], env=env,
                             capture_output=True, text=True, check=True).stdout
        times[t].append(json.loads(out.strip().splitlines()[-1])["ms"])
print("1 thread ms:", " ".join(f"{v:.1f}" for v in times[1]))
print("2 threads ms:", " ".join(f"{v:.1f}" for v in times[2]))
m1, m2 = statistics.median(times[1]), statistics.median(times[2])
print(json.dumps({"size": int(size), "rounds": rounds,
                  "median_1t": m1, "median_2t": m2, "scaling_median": m1 / m2,
                  "min_1t": min(times[1]), "min_2t": min(times[2]),
                  "scaling_min": min(times[1]) / min(times[2])}))
