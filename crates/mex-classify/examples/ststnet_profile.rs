#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Times the stages of an STSTNet forward pass (batch 442) and of one training step (batch 256):
//! the fused convolution block alone (eval, training forward, training backward) and the whole
//! model. `RAYON_NUM_THREADS=1 cargo run --release -p mex-classify --example ststnet_profile`
//! (`... -- json 20` prints the model-level timings the peer script compares with PyTorch).

use candle_core::{Device, Tensor, Var};
use mex_classify::fused::{self, pack_params, BlockGeom, SharedCache};
use mex_classify::{Model, ModelConfig, StstnetConfig};
use std::time::Instant;

fn time<T>(what: &str, reps: usize, mut f: impl FnMut() -> T) -> T {
    let _ = f();
    let t = Instant::now();
    let mut out = None;
    for _ in 0..reps {
        out = Some(f());
    }
    println!("{what:<34} {:>9.3} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    out.unwrap()
}

/// Median wall time of `reps` calls, in milliseconds.
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// `ststnet_profile json REPS`: the model-level timings the peer script compares with PyTorch
/// (inference on 442 samples, one training step on 256, one epoch of a 435-sample fold in
/// batches of 256), as JSON, with the threads of `RAYON_NUM_THREADS`.
fn json(reps: usize) {
    let dev = Device::Cpu;
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let mut m = Model::new(&cfg, 0, &dev).unwrap();
    // `MEX_PROFILE_DATA=DIR`: the released composite inputs instead of uniform noise (the maps'
    // signs, and so the branches of the kernels, differ on real data).
    let x = match std::env::var_os("MEX_PROFILE_DATA") {
        Some(d) => {
            mex_classify::data::load_ststnet_inputs(std::path::Path::new(&d)).unwrap().inputs(&dev).unwrap()
        }
        None => Tensor::rand(0f32, 255f32, (442, 3, 28, 28), &dev).unwrap(),
    };
    let infer = median_ms(reps, || {
        m.forward_eval(&x).unwrap();
    });
    let vars = m.trainable_vars().unwrap().into_iter().map(|(_, v)| v).collect();
    let mut opt = mex_classify::Optimizer::new(vars, &mex_classify::TrainConfig::default()).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let batches: Vec<(Tensor, Tensor)> = [(0, 256), (256, 179)]
        .iter()
        .map(|&(s, n)| {
            let xb = x.narrow(0, s, n).unwrap().contiguous().unwrap();
            let yb = Tensor::from_vec((0..n as u32).map(|i| i % 3).collect::<Vec<_>>(), n, &dev).unwrap();
            (xb, yb)
        })
        .collect();
    let mut step = |xb: &Tensor, yb: &Tensor| {
        let l = mex_classify::ops::cross_entropy(&m.forward_train(xb, &mut rng).unwrap(), yb, None).unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
    };
    let train = median_ms(reps, || step(&batches[0].0, &batches[0].1));
    let epoch = median_ms(reps, || {
        for (xb, yb) in &batches {
            step(xb, yb);
        }
    });
    let threads = rayon::current_num_threads();
    println!(
        "{{\"threads\": {threads}, \"infer_442_ms\": {infer:.3}, \"train_step_256_ms\": {train:.3}, \
         \"epoch_fold_ms\": {epoch:.3}}}"
    );
}

fn main() {
    // As the training binaries do (see the function's docs); `MEX_DEFAULT_MALLOC=1` leaves
    // glibc's defaults, for comparison.
    if std::env::var_os("MEX_DEFAULT_MALLOC").is_none() {
        mex_classify::tune_allocator_for_training();
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("json") {
        let reps = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(20);
        // On a worker of the rayon pool, as `fit` and the LOSO trainer run: the many small
        // parallel ops of a step then start without waking a worker and sleeping the caller.
        rayon::join(|| json(reps), || ());
        return;
    }
    // `ststnet_profile fit DATA_DIR EPOCHS`: `fit` itself on the first 435 released inputs
    // (one fold's size), milliseconds per epoch.
    if args.get(1).map(String::as_str) == Some("fit") {
        let dir = args.get(2).expect("usage: ststnet_profile fit DATA_DIR [EPOCHS]");
        let ds = mex_classify::data::load_ststnet_inputs(std::path::Path::new(dir)).unwrap();
        let epochs: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(50);
        let train = ds.subset(&(0..435).collect::<Vec<_>>());
        let cfg = ModelConfig::Ststnet(StstnetConfig::default());
        let mut m = Model::new(&cfg, 0, &Device::Cpu).unwrap();
        let tc = mex_classify::TrainConfig { epochs, ..mex_classify::TrainConfig::ststnet_reference() };
        let t = Instant::now();
        mex_classify::fit(&mut m, &train, &tc).unwrap();
        println!("fit: {:.2} ms per epoch", t.elapsed().as_secs_f64() * 1e3 / epochs as f64);
        return;
    }
    let dev = Device::Cpu;
    let x = Tensor::rand(0f32, 255f32, (442, 3, 28, 28), &dev).unwrap();
    let xb = x.narrow(0, 0, 256).unwrap().contiguous().unwrap();
    let g = BlockGeom {
        cin: 3,
        h: 28,
        w: 28,
        cout: 16,
        k: 3,
        pad: 2,
        pool_k: 3,
        pool_s: 3,
        pool_p: 1,
        eps: 1e-5,
    };
    let w = Var::from_tensor(&Tensor::rand(-0.1f32, 0.1, (16, 3, 3, 3), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::rand(-0.1f32, 0.1, 16, &dev).unwrap()).unwrap();
    let gm = Var::from_tensor(&Tensor::ones(16, candle_core::DType::F32, &dev).unwrap()).unwrap();
    let bt = Var::from_tensor(&Tensor::zeros(16, candle_core::DType::F32, &dev).unwrap()).unwrap();
    let (rm, rv) = (bt.as_tensor().clone(), gm.as_tensor().clone());
    let params = [(w.as_tensor(), b.as_tensor(), gm.as_tensor(), bt.as_tensor())];
    let pe = pack_params(&params, Some(&[(&rm, &rv)])).unwrap();
    // `ststnet_profile eval N`: only the fused eval block, N times (for `perf stat`).
    if args.get(1).map(String::as_str) == Some("eval") {
        let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
        time("fused eval 442", n, || fused::forward_eval(&x, &pe, g).unwrap());
        return;
    }
    // `ststnet_profile infer N`: only the model-level inference, N times.
    if args.get(1).map(String::as_str) == Some("infer") {
        let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
        let m = Model::new(&ModelConfig::Ststnet(StstnetConfig::default()), 0, &dev).unwrap();
        time("STSTNet eval forward 442", n, || m.forward_eval(&x).unwrap());
        return;
    }
    time("fused eval 442", 20, || fused::forward_eval(&x, &pe, g).unwrap());
    let cache = SharedCache::default();
    let pt = pack_params(&params, None).unwrap();
    let gout = Tensor::rand(-1f32, 1., (256, 16, 10, 10), &dev).unwrap();
    time("fused train forward 256", 20, || fused::forward_train(&xb, &pt, g, &cache).unwrap());
    time("fused train forward+backward 256", 20, || {
        let pt = pack_params(&params, None).unwrap();
        let (y, _) = fused::forward_train(&xb, &pt, g, &cache).unwrap();
        (y * &gout).unwrap().sum_all().unwrap().backward().unwrap()
    });

    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let mut m = Model::new(&cfg, 0, &dev).unwrap();
    time("STSTNet eval forward 442", 20, || m.forward_eval(&x).unwrap());
    let yb = Tensor::from_vec((0..256u32).map(|i| i % 3).collect::<Vec<_>>(), 256, &dev).unwrap();
    let vars = m.trainable_vars().unwrap().into_iter().map(|(_, v)| v).collect();
    let mut opt = mex_classify::Optimizer::new(vars, &mex_classify::TrainConfig::default()).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    // `ststnet_profile train N`: only the training step, N times.
    if args.get(1).map(String::as_str) == Some("train") {
        let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(50);
        time("STSTNet train step 256", n, || {
            let l = mex_classify::ops::cross_entropy(&m.forward_train(&xb, &mut rng).unwrap(), &yb, None)
                .unwrap();
            opt.step(&l.backward().unwrap()).unwrap()
        });
        return;
    }
    time("STSTNet forward_train 256", 20, || m.forward_train(&xb, &mut rng).unwrap());
    time("STSTNet train step 256", 20, || {
        let l =
            mex_classify::ops::cross_entropy(&m.forward_train(&xb, &mut rng).unwrap(), &yb, None).unwrap();
        opt.step(&l.backward().unwrap()).unwrap()
    });
}
