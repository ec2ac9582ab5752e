//! Throughput of the hot metric paths: ROC-AUC, confusion-matrix UF1, the subject bootstrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mex_metrics::{cluster_bootstrap, roc_auc, BootstrapConfig, ConfusionMatrix};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("metrics");
    for n in [442usize, 100_000] {
        let truth: Vec<bool> = (0..n).map(|_| rng.random_bool(0.4)).collect();
        let scores: Vec<f64> = (0..n).map(|_| (rng.random::<f64>() * 100.0).round() / 100.0).collect();
        g.bench_with_input(BenchmarkId::new("roc_auc", n), &n, |b, _| {
            b.iter(|| roc_auc(&truth, &scores).unwrap())
        });
        let t: Vec<usize> = (0..n).map(|_| rng.random_range(0..3)).collect();
        let p: Vec<usize> = (0..n).map(|_| rng.random_range(0..3)).collect();
        g.bench_with_input(BenchmarkId::new("confusion_uf1", n), &n, |b, _| {
            b.iter(|| ConfusionMatrix::from_labels(&t, &p, 3).unwrap().uf1().unwrap())
        });
    }
    // MEGC-sized LOSO result: 442 samples, 68 subjects, 2000 resamples.
    let t: Vec<usize> = (0..442).map(|_| rng.random_range(0..3)).collect();
    let p: Vec<usize> = (0..442).map(|_| rng.random_range(0..3)).collect();
    let subj: Vec<usize> = (0..442).map(|i| i % 68).collect();
    g.bench_function("cluster_bootstrap_uf1_442x2000", |b| {
        b.iter(|| {
            cluster_bootstrap(
                &subj,
                |idx| ConfusionMatrix::from_indices(&t, &p, idx, 3)?.uf1(),
                &BootstrapConfig::default(),
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
