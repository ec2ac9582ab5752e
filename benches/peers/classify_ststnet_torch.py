#!/usr/bin/env python3
"""PyTorch reference for mex-classify's STSTNet (christy1206/STSTNet main.py, same module).

Modes:
  fixture  --out DIR           random weights + inputs -> eval/train logits, gradients and BN
                               running statistics, written as safetensors fixtures (no data needed).
  logits   --data DIR --out F  released weights on the 442 released inputs -> per-sample logits
                               (CSV subject,file,label,l0,l1,l2), UF1/UAR printed.
  bench    --data DIR          inference (batch 442) and training-step (batch 256) timings with
                               1 and 2 threads; one epoch of one fold (reference recipe).
  compare  --data DIR          bench, then mex-classify's same timings (examples/ststnet_profile
                               json) with RAYON_NUM_THREADS 1 and 2, and a markdown table of ratios.
  train    --data DIR --out FOLDS [--epochs 800] [--seed 0] [--jobs 2] [--order label|dataset]
                               the reference recipe itself (main.py: Adam lr 5e-5, batch 256, no
                               shuffling, evaluation of the test fold after every epoch as main.py
                               does, last epoch), 68-fold LOSO, `jobs` folds at a time with one
                               torch thread each; one JSON file per finished fold in FOLDS
                               (resumable), then pooled and per-dataset UF1/UAR and the wall time.
"""
import argparse, json, os, sys, time

import numpy as np
import torch
import torch.nn as nn


class STSTNet(nn.Module):
    # Identical to christy1206/STSTNet main.py (padding argument added for the paper variant).
    def __init__(self, in_channels=3, out_channels=3, padding=2, p=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels=3, kernel_size=3, padding=padding)
        self.conv2 = nn.Conv2d(in_channels, out_channels=5, kernel_size=3, padding=padding)
        self.conv3 = nn.Conv2d(in_channels, out_channels=8, kernel_size=3, padding=padding)
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm2d(3)
        self.bn2 = nn.BatchNorm2d(5)
        self.bn3 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2, padding=0)
        self.dropout = nn.Dropout(p=p)
        self.fc = nn.Linear(in_features=5 * 5 * 16, out_features=out_channels)

    def forward(self, x):
        outs = []
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            y = self.dropout(self.maxpool(bn(self.relu(conv(x)))))
            outs.append(y)
        x = self.avgpool(torch.cat(outs, 1))
        return self.fc(x.reshape(x.size(0), -1))  # main.py: view (same values)


def load_inputs(data):
    import cv2
    root = os.path.join(data, "inputs") if os.path.isdir(os.path.join(data, "inputs")) else data
    rows = []
    for sub in sorted(os.listdir(root)):
        t = os.path.join(root, sub, "u_test")
        if not os.path.isdir(t):
            continue
        for lab in sorted(os.listdir(t)):
            for f in sorted(os.listdir(os.path.join(t, lab))):
                if f.endswith(".png"):
                    img = cv2.imread(os.path.join(t, lab, f))  # BGR uint8
                    rows.append((sub, f[:-4].rstrip(), int(lab), np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1))))
    return rows


def load_weights(model, path):
    from safetensors.torch import load_file
    model.load_state_dict(load_file(path))


def uf1_uar(gt, pred, k=3):
    f1s, ars = [], []
    gt, pred = np.asarray(gt), np.asarray(pred)
    for c in range(k):
        tp = int(((gt == c) & (pred == c)).sum()); fp = int(((gt != c) & (pred == c)).sum())
        fn = int(((gt == c) & (pred != c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn)); ars.append(tp / int((gt == c).sum()))
    return float(np.mean(f1s)), float(np.mean(ars))


def mode_fixture(out):
    from safetensors.torch import save_file
    torch.manual_seed(7)
    m = STSTNet(p=0.0)  # dropout off so that train-mode outputs are deterministic
    with torch.no_grad():  # non-trivial BN state
        for bn in (m.bn1, m.bn2, m.bn3):
            bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(0, 50); bn.running_var.uniform_(50, 500)
    sd = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
    save_file(sd, os.path.join(out, "ststnet_random_weights.safetensors"))
    x = (torch.rand(6, 3, 28, 28) * 255).floor()
    y = torch.tensor([0, 1, 2, 0, 2, 1])
    m.eval()
    logits_eval = m(x).detach()
    m.train()
    logits_train = m(x)
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]))(logits_train, y)
    loss.backward()
    io = {"input": x, "labels": y.to(torch.int64), "logits_eval": logits_eval,
          "logits_train": logits_train.detach(), "loss_weighted": loss.detach().reshape(1)}
    for k, p in m.named_parameters():
        io["grad." + k] = p.grad.detach().clone()
    for k, v in m.state_dict().items():
        if "running" in k:
            io["after." + k] = v.detach().clone()
    # the paper variant (padding 1), eval mode, same weights
    m1 = STSTNet(padding=1, p=0.0); m1.load_state_dict(sd); m1.eval()
    io["logits_eval_pad1"] = m1(x).detach()
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(out, "ststnet_random_io.safetensors"))
    print("wrote fixtures to", out)


def mode_logits(data, out):
    rows = load_inputs(data)
    lines, gt, pred = [], [], []
    for sub in sorted({r[0] for r in rows}):
        rs = [r for r in rows if r[0] == sub]
        m = STSTNet(); load_weights(m, os.path.join(data, "weights", sub + ".safetensors")); m.eval()
        with torch.no_grad():
            lg = m(torch.from_numpy(np.stack([r[3] for r in rs]))).numpy()
        for r, l in zip(rs, lg):
            lines.append(f"{r[0]},{r[1]},{r[2]},{l[0]:.6f},{l[1]:.6f},{l[2]:.6f}")
            gt.append(r[2]); pred.append(int(np.argmax(l)))
    with open(out, "w") as f:
        f.write("subject,file,label,l0,l1,l2\n" + "\n".join(lines) + "\n")
    u, a = uf1_uar(gt, pred)
    print(json.dumps({"n": len(gt), "uf1": u, "uar": a}))


def mode_bench(data, reps):
    rows = load_inputs(data)
    x_all = torch.from_numpy(np.stack([r[3] for r in rows]))
    y_all = torch.tensor([r[2] for r in rows])
    res = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        m = STSTNet(); m.eval()
        with torch.no_grad():
            for _ in range(3):
                m(x_all)
            t = time.perf_counter()
            for _ in range(reps):
                m(x_all)
            dt = (time.perf_counter() - t) / reps
        res[f"infer_442_t{threads}_ms"] = dt * 1e3
        res[f"infer_442_t{threads}_samples_per_s"] = 442 / dt
        m.train(); opt = torch.optim.Adam(m.parameters(), lr=5e-5); lf = nn.CrossEntropyLoss()
        xb, yb = x_all[:256], y_all[:256]
        for _ in range(3):
            opt.zero_grad(); lf(m(xb), yb).backward(); opt.step()
        t = time.perf_counter()
        for _ in range(reps):
            opt.zero_grad(); lf(m(xb), yb).backward(); opt.step()
        dt = (time.perf_counter() - t) / reps
        res[f"train_step_256_t{threads}_ms"] = dt * 1e3
        res[f"train_step_256_t{threads}_samples_per_s"] = 256 / dt
        # one epoch of one fold (fold sub01: the other 67 subjects' samples, batches of 256)
        keep = [i for i, r in enumerate(rows) if r[0] != "sub01"]
        xt, yt = x_all[keep], y_all[keep]
        t = time.perf_counter()
        for _ in range(reps):
            for s in range(0, len(keep), 256):
                opt.zero_grad(); lf(m(xt[s:s + 256]), yt[s:s + 256]).backward(); opt.step()
        res[f"epoch_fold_t{threads}_ms"] = (time.perf_counter() - t) / reps * 1e3
    res["torch"] = torch.__version__
    return res


def mex_timings(reps):
    """mex-classify's model-level timings (examples/ststnet_profile.rs `json` mode) with 1 and 2
    rayon threads, in the same run as PyTorch's."""
    import subprocess
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "mex-classify", "--example", "ststnet_profile"],
                   cwd=root, check=True)
    exe = os.path.join(root, "target", "release", "examples", "ststnet_profile")
    out = {}
    for threads in (1, 2):
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        r = json.loads(subprocess.run([exe, "json", str(reps)], env=env, check=True,
                                      capture_output=True, text=True).stdout)
        for k in ("infer_442_ms", "train_step_256_ms", "epoch_fold_ms"):
            out[f"{k[:-3]}_t{threads}_ms"] = r[k]
    return out


def dataset_of(sub):
    return "casme2" if sub.startswith("sub") else ("smic" if sub.startswith("s") else "samm")


def train_fold(args):
    """One LOSO fold of main.py's recipe; returns the fold's record (also written to disk)."""
    data, out, sub, epochs, seed, order, fold_idx = args
    path = os.path.join(out, sub + ".json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    torch.set_num_threads(1)
    rows = load_inputs(data)  # sorted by subject, label, file
    train = [r for r in rows if r[0] != sub]
    if order == "label":  # main.py: u_train/<label>/ folders one after the other
        train = sorted(train, key=lambda r: r[2])  # stable: dataset order within a label
    test = [r for r in rows if r[0] == sub]
    xtr = torch.from_numpy(np.stack([r[3] for r in train])); ytr = torch.tensor([r[2] for r in train])
    xte = torch.from_numpy(np.stack([r[3] for r in test])); yte = torch.tensor([r[2] for r in test])
    torch.manual_seed(seed * 1000 + fold_idx)
    m = STSTNet()
    opt = torch.optim.Adam(m.parameters(), lr=5e-5)
    lf = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        m.train()
        for s in range(0, len(train), 256):
            opt.zero_grad(); lf(m(xtr[s:s + 256]), ytr[s:s + 256]).backward(); opt.step()
        m.eval()  # main.py evaluates the test fold after every epoch (and keeps the last)
        with torch.no_grad():
            pred = m(xte).argmax(1)
    rec = {"subject": sub, "labels": yte.tolist(), "preds": pred.tolist(),
           "seconds": time.perf_counter() - t0, "epochs": epochs, "seed": seed, "order": order}
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f)
    os.replace(path + ".tmp", path)
    print(f"fold {sub:>5}: {rec['seconds']:.1f} s", file=sys.stderr, flush=True)
    return rec


def mode_train(data, out, epochs, seed, jobs, order):
    import multiprocessing as mp
    os.makedirs(out, exist_ok=True)
    subs = sorted({r[0] for r in load_inputs(data)})
    t = time.perf_counter()
    with mp.get_context("fork").Pool(jobs) as pool:
        recs = pool.map(train_fold, [(data, out, s, epochs, seed, order, i) for i, s in enumerate(subs)],
                        chunksize=1)
    wall = time.perf_counter() - t
    res = {"epochs": epochs, "seed": seed, "order": order, "torch": torch.__version__}
    gt = [l for r in recs for l in r["labels"]]; pr = [p for r in recs for p in r["preds"]]
    res["uf1"], res["uar"] = uf1_uar(gt, pr)
    res["n"] = len(gt)
    for ds in ("casme2", "smic", "samm"):
        g = [l for r in recs if dataset_of(r["subject"]) == ds for l in r["labels"]]
        p = [q for r in recs if dataset_of(r["subject"]) == ds for q in r["preds"]]
        u, a = uf1_uar(g, p)
        res[ds] = {"n": len(g), "uf1": u, "uar": a}
    res["wall_s_this_call"] = wall
    res["sum_fold_s"] = sum(r["seconds"] for r in recs)
    print(json.dumps(res, indent=1))


def mode_compare(data, reps):
    torch_res = mode_bench(data, reps)
    mex = mex_timings(reps)
    rows = []
    for what, tk, mk, n in (("inference, batch 442", "infer_442", "infer_442", 442),
                            ("training step, batch 256", "train_step_256", "train_step_256", 256),
                            ("one epoch of one fold (435 samples)", "epoch_fold", "epoch_fold", 435)):
        for t in (1, 2):
            tm, mm = torch_res[f"{tk}_t{t}_ms"], mex[f"{mk}_t{t}_ms"]
            rows.append((what, t, tm, mm, tm / mm, n * 1e3 / tm, n * 1e3 / mm))
    print(f"PyTorch {torch_res['torch']} vs mex-classify, same run (ms; samples/s; speed-up = PyTorch time / mex time)")
    print("| what | threads | PyTorch ms | mex ms | speed-up | PyTorch samples/s | mex samples/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f}x | {r[5]:,.0f} | {r[6]:,.0f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fixture", "logits", "bench", "compare", "train"])
    ap.add_argument("--data", default=os.path.join(os.environ.get("MEX_TEST_DATA", "."), "ststnet-composite"),
                    help="the released STSTNet inputs and weights (default: $MEX_TEST_DATA/ststnet-composite)")
    ap.add_argument("--out", default="crates/mex-classify/tests/fixtures")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--order", choices=["label", "dataset"], default="label")
    a = ap.parse_args()
    if a.mode == "fixture":
        mode_fixture(a.out)
    elif a.mode == "logits":
        mode_logits(a.data, a.out)
    elif a.mode == "compare":
        mode_compare(a.data, a.reps)
    elif a.mode == "train":
        mode_train(a.data, a.out, a.epochs, a.seed, a.jobs, a.order)
    else:
        print(json.dumps(mode_bench(a.data, a.reps), indent=1))
