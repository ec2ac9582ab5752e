#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Times the stages of an STSTNet forward pass (batch 442) and one training step (batch 256).
//! `cargo run --release -p mex-classify --example ststnet_profile`

use candle_core::{Device, Module, Tensor};
use mex_classify::ops::max_pool2d_padded;
use mex_classify::{Model, ModelConfig, StstnetConfig};
use std::time::Instant;

fn time<T>(what: &str, reps: usize, mut f: impl FnMut() -> T) -> T {
    let _ = f();
    let t = Instant::now();
    let mut out = None;
    for _ in 0..reps {
        out = Some(f());
    }
    println!("{what:<28} {:>9.3} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    out.unwrap()
}

fn main() {
    let dev = Device::Cpu;
    let x = Tensor::rand(0f32, 255f32, (442, 3, 28, 28), &dev).unwrap();
    let w = Tensor::rand(-0.1f32, 0.1, (16, 3, 3, 3), &dev).unwrap();
    time("conv2d 3->16 pad 2 (candle)", 10, || x.conv2d(&w, 2, 1, 1, 1).unwrap());
    let y = time("conv2d_direct 3->16 pad 2", 10, || mex_classify::ops::conv2d_direct(&x, &w, 2).unwrap());
    let y = time("relu", 10, || y.relu().unwrap());
    time("max_pool2d_padded 3/3/1", 10, || max_pool2d_padded(&y, 3, 3, 1).unwrap());
    let lin = candle_nn::Linear::new(Tensor::rand(-0.1f32, 0.1, (3, 400), &dev).unwrap(), None);
    let f = Tensor::rand(0f32, 1., (442, 400), &dev).unwrap();
    time("linear 400->3", 10, || lin.forward(&f).unwrap());
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let m = Model::new(&cfg, 0, &dev).unwrap();
    time("STSTNet eval forward 442", 10, || m.forward_eval(&x).unwrap());
    let mut m = m;
    let xb = x.narrow(0, 0, 256).unwrap();
    let yb = Tensor::from_vec((0..256u32).map(|i| i % 3).collect::<Vec<_>>(), 256, &dev).unwrap();
    let vars = m.trainable_vars().unwrap().into_iter().map(|(_, v)| v).collect();
    let mut opt = mex_classify::Optimizer::new(vars, &mex_classify::TrainConfig::default()).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    time("forward_train 256", 10, || m.forward_train(&xb, &mut rng).unwrap());
    time("train step 256", 10, || {
        let l =
            mex_classify::ops::cross_entropy(&m.forward_train(&xb, &mut rng).unwrap(), &yb, None).unwrap();
        opt.step(&l.backward().unwrap()).unwrap()
    });
}
