#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! STSTNet inference (batch 442) and one training step (batch 256), plus OFF-ApexNet and the
//! shallow CNN. Inputs are random 0..255 values of the real shape (28x28x3); the peer script
//! benches/peers/classify_ststnet_torch.py times PyTorch on the same shapes.

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mex_classify::ops::cross_entropy;
use mex_classify::{
    Model, ModelConfig, OffApexNetConfig, Optimizer, ShallowCnnConfig, StstnetConfig, TrainConfig,
};
use rand::SeedableRng;

fn configs() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Ststnet(StstnetConfig::default()),
        ModelConfig::OffApexNet(OffApexNetConfig { in_channels: 3, ..OffApexNetConfig::published() }),
        ModelConfig::ShallowCnn(ShallowCnnConfig::default()),
    ]
}

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let mut g = c.benchmark_group("classify_infer");
    for cfg in configs() {
        let m = Model::new(&cfg, 0, &dev).unwrap();
        let x = Tensor::rand(0f32, 255f32, (442, 3, 28, 28), &dev).unwrap();
        g.bench_with_input(BenchmarkId::new(cfg.name(), 442), &x, |b, x| {
            b.iter(|| m.forward_eval(x).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("classify_train_step");
    for cfg in configs() {
        let mut m = Model::new(&cfg, 0, &dev).unwrap();
        let x = Tensor::rand(0f32, 255f32, (256, 3, 28, 28), &dev).unwrap();
        let y = Tensor::from_vec((0..256u32).map(|i| i % 3).collect::<Vec<_>>(), 256, &dev).unwrap();
        let vars: Vec<Var> = m.trainable_vars().unwrap().into_iter().map(|(_, v)| v).collect();
        let mut opt = Optimizer::new(vars, &TrainConfig::default()).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        g.bench_function(BenchmarkId::new(cfg.name(), 256), |b| {
            b.iter(|| {
                let logits = m.forward_train(&x, &mut rng).unwrap();
                let loss = cross_entropy(&logits, &y, None).unwrap();
                opt.step(&loss.backward().unwrap()).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
