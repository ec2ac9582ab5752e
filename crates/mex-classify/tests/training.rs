#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Training: gradient check, optimisers, determinism, learning, LOSO with resume.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer as _;
use mex_classify::ops::cross_entropy;
use mex_classify::{
    fit, run_loso, ConvBlock, Dataset, Error, LosoConfig, Model, ModelConfig, Optimizer, OptimizerKind,
    SampleInfo, Selection, ShallowCnnConfig, StstnetConfig, TrainConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny_cnn() -> ModelConfig {
    ModelConfig::ShallowCnn(ShallowCnnConfig {
        in_channels: 2,
        input_size: 6,
        blocks: vec![ConvBlock { dropout: 0.0, ..ConvBlock::new(3, 3, 1, 2) }],
        hidden: vec![4],
        fc_dropout: 0.0,
        num_classes: 3,
    })
}

fn loss_of(m: &mut Model, x: &Tensor, y: &Tensor) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let logits = m.forward_train(x, &mut rng).unwrap();
    cross_entropy(&logits, y, None).unwrap()
}

#[test]
fn gradients_match_finite_differences_on_a_tiny_model() {
    // conv -> relu -> batchnorm (batch statistics) -> maxpool -> linear -> relu -> linear,
    // cross-entropy; every parameter checked by central differences (in f64 accumulation of
    // f32 losses, step 1e-2).
    let dev = Device::Cpu;
    let mut m = Model::new(&tiny_cnn(), 11, &dev).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let xv: Vec<f32> = (0..4 * 2 * 36).map(|_| rng.random::<f32>() * 2.0 - 0.5).collect();
    let x = Tensor::from_vec(xv, (4, 2, 6, 6), &dev).unwrap();
    let y = Tensor::new(&[0u32, 1, 2, 1], &dev).unwrap();
    let grads = loss_of(&mut m, &x, &y).backward().unwrap();
    let (mut checked, mut bad) = (0, Vec::new());
    for (name, var) in m.trainable_vars().unwrap() {
        let g = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for i in 0..base.len() {
            let h = 1e-2f32;
            let mut eval = |delta: f32| {
                let mut p = base.clone();
                p[i] += delta;
                var.set(&Tensor::from_vec(p, var.shape(), &dev).unwrap()).unwrap();
                loss_of(&mut m, &x, &y).to_scalar::<f32>().unwrap() as f64
            };
            let fd = (eval(h) - eval(-h)) / (2.0 * h as f64);
            var.set(&Tensor::from_vec(base.clone(), var.shape(), &dev).unwrap()).unwrap();
            checked += 1;
            if (fd - g[i] as f64).abs() > 2e-3 + 2e-2 * fd.abs() {
                bad.push(format!("{name}[{i}]: backprop {} vs finite difference {fd}", g[i]));
            }
        }
    }
    assert!(checked > 80, "{checked}");
    // ReLU / max kinks can make an isolated difference quotient straddle a corner.
    assert!(bad.len() <= checked / 50, "{} of {checked} mismatches:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn adamw_matches_candle_nn_adamw() {
    let dev = Device::Cpu;
    let init = [0.5f32, -1.0, 2.0];
    let a = Var::from_slice(&init, 3, &dev).unwrap();
    let b = Var::from_slice(&init, 3, &dev).unwrap();
    let cfg = TrainConfig {
        optimizer: OptimizerKind::AdamW,
        lr: 0.05,
        weight_decay: 0.1,
        ..TrainConfig::default()
    };
    let mut ours = Optimizer::new(vec![a.clone()], &cfg).unwrap();
    let params = candle_nn::ParamsAdamW { lr: 0.05, weight_decay: 0.1, ..Default::default() };
    let mut theirs = candle_nn::AdamW::new(vec![b.clone()], params).unwrap();
    let target = Tensor::new(&[1.0f32, 2.0, -3.0], &dev).unwrap();
    for _ in 0..20 {
        let la = a.as_tensor().sub(&target).unwrap().sqr().unwrap().sum_all().unwrap();
        ours.step(&la.backward().unwrap()).unwrap();
        let lb = b.as_tensor().sub(&target).unwrap().sqr().unwrap().sum_all().unwrap();
        theirs.step(&lb.backward().unwrap()).unwrap();
    }
    let va = a.as_tensor().to_vec1::<f32>().unwrap();
    let vb = b.as_tensor().to_vec1::<f32>().unwrap();
    for (x, y) in va.iter().zip(&vb) {
        assert!((x - y).abs() < 1e-5, "{va:?} vs {vb:?}");
    }
}

#[test]
fn adam_uses_coupled_l2_weight_decay() {
    // torch.optim.Adam(weight_decay=wd): g <- g + wd * theta, then the Adam update.
    let dev = Device::Cpu;
    let v = Var::from_slice(&[2.0f32], 1, &dev).unwrap();
    let (lr, wd) = (0.1f64, 0.5f64);
    let cfg = TrainConfig { optimizer: OptimizerKind::Adam, lr, weight_decay: wd, ..TrainConfig::default() };
    let mut opt = Optimizer::new(vec![v.clone()], &cfg).unwrap();
    let (mut theta, mut m, mut s) = (2.0f64, 0.0f64, 0.0f64);
    for t in 1..=5 {
        // loss = 3 * theta => gradient 3
        let loss = v.as_tensor().affine(3.0, 0.0).unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        let g = 3.0 + wd * theta;
        m = 0.9 * m + 0.1 * g;
        s = 0.999 * s + 0.001 * g * g;
        let mh = m / (1.0 - 0.9f64.powi(t));
        let sh = s / (1.0 - 0.999f64.powi(t));
        theta -= lr * mh / (sh.sqrt() + 1e-8);
        let got = v.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        assert!((got - theta).abs() < 1e-5, "step {t}: {got} vs {theta}");
    }
}

/// Samples whose class is which of three quadrant blocks is bright, with noise.
fn synthetic(subjects: usize, per_subject: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ds = Dataset::new((3, 28, 28));
    for s in 0..subjects {
        for k in 0..per_subject {
            let label = (k % 3) as u32;
            let mut x = vec![0f32; 3 * 28 * 28];
            for c in 0..3 {
                for yy in 0..28 {
                    for xx in 0..28 {
                        let quadrant = if xx >= 14 {
                            2
                        } else if yy < 14 {
                            0
                        } else {
                            1
                        };
                        let bright = quadrant == label;
                        let base = if bright { 200.0 } else { 40.0 };
                        x[c * 784 + yy * 28 + xx] = base + rng.random::<f32>() * 40.0;
                    }
                }
            }
            let info = SampleInfo { subject: format!("sub{s:02}"), id: format!("sub{s:02}_{k}"), label };
            ds.push(info, &x).unwrap();
        }
    }
    ds
}

/// Every parameter of `m`, flattened, in name order.
fn weights(m: &Model) -> Vec<Vec<f32>> {
    m.named_tensors().unwrap().iter().map(|(_, t)| t.flatten_all().unwrap().to_vec1().unwrap()).collect()
}

fn small_recipe(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig { lr: 5e-3, batch_size: 16, epochs, seed, shuffle: true, ..TrainConfig::default() }
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let ds = synthetic(2, 12, 1);
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let run = |seed| {
        let mut m = Model::new(&cfg, seed, &Device::Cpu).unwrap();
        let r = fit(&mut m, &ds, &small_recipe(3, seed)).unwrap();
        let w = weights(&m);
        (w, r.epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>())
    };
    let (a, la) = run(7);
    let (b, lb) = run(7);
    let (c, _) = run(8);
    assert_eq!(a, b);
    assert_eq!(la, lb);
    assert_ne!(a, c);
}

#[test]
fn fit_runs_on_a_pool_worker_with_the_same_result() {
    // Called from outside a rayon pool, `fit_with` moves the training onto a worker of the pool
    // (so the steps' parallel operations start without cross-thread wake-ups); inside a pool it
    // stays where it is. Both give the same weights.
    let ds = synthetic(2, 8, 4);
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let run = |inside: bool| {
        let mut m = Model::new(&cfg, 3, &Device::Cpu).unwrap();
        let mut on_worker = Vec::new();
        let train = |m: &mut Model, on_worker: &mut Vec<bool>| {
            mex_classify::fit_with(m, &ds, &small_recipe(2, 3), |_| {
                on_worker.push(rayon::current_thread_index().is_some())
            })
            .unwrap()
        };
        if inside {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            pool.install(|| train(&mut m, &mut on_worker));
        } else {
            train(&mut m, &mut on_worker);
        }
        let w = weights(&m);
        (w, on_worker)
    };
    let (a, on_a) = run(false);
    let (b, on_b) = run(true);
    assert_eq!(on_a, vec![true, true], "the epochs ran on the caller's thread, not on a pool worker");
    assert_eq!(on_b, vec![true, true]);
    assert_eq!(a, b);
}

#[test]
fn allocator_tuning_applies_on_glibc_and_training_is_unchanged() {
    // The settings only change where freed memory goes: the same training gives the same
    // weights before and after.
    let ds = synthetic(2, 6, 5);
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let run = || {
        let mut m = Model::new(&cfg, 1, &Device::Cpu).unwrap();
        fit(&mut m, &ds, &small_recipe(2, 1)).unwrap();
        weights(&m)
    };
    let before = run();
    let applied = mex_classify::tune_allocator_for_training();
    assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
    assert_eq!(run(), before);
}

#[test]
fn ststnet_learns_a_separable_problem() {
    let train = synthetic(3, 30, 2);
    let test = synthetic(1, 30, 3);
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let mut m = Model::new(&cfg, 0, &Device::Cpu).unwrap();
    let r = fit(&mut m, &train, &small_recipe(30, 0)).unwrap();
    assert!(r.epochs.last().unwrap().train_loss < r.epochs[0].train_loss * 0.7, "{:?}", r.epochs.last());
    let pred = m.predict(&test.inputs(&Device::Cpu).unwrap()).unwrap();
    let acc = pred.iter().zip(test.labels()).filter(|(p, l)| **p == *l).count() as f32 / test.len() as f32;
    assert!(acc > 0.8, "test accuracy {acc}");
}

#[test]
fn class_weights_change_the_gradient_as_pytorch_defines() {
    let dev = Device::Cpu;
    let logits = Tensor::new(&[[2.0f32, 0.0, 0.0], [0.0, 0.0, 1.0]], &dev).unwrap();
    let y = Tensor::new(&[0u32, 1], &dev).unwrap();
    let w = Tensor::new(&[1.0f32, 3.0, 1.0], &dev).unwrap();
    let l = cross_entropy(&logits, &y, Some(&w)).unwrap().to_scalar::<f32>().unwrap();
    let nll0 = (2f32.exp() + 2.0).ln() - 2.0;
    let nll1 = (2.0 + 1f32.exp()).ln();
    assert!((l - (nll0 + 3.0 * nll1) / 4.0).abs() < 1e-6);
    let bad = TrainConfig { class_weights: Some(vec![1.0, -1.0, 1.0]), ..TrainConfig::default() };
    assert!(matches!(bad.validate(), Err(Error::InvalidParam { name: "class_weights", .. })));
}

#[test]
fn loso_writes_folds_and_resumes() {
    let ds = synthetic(3, 6, 4);
    let dir = tempfile::tempdir().unwrap();
    let cfg = LosoConfig {
        model: ModelConfig::Ststnet(StstnetConfig::default()),
        train: small_recipe(2, 1),
        out_dir: Some(dir.path().to_path_buf()),
        save_weights: true,
        parallel_folds: 2,
        subjects: None,
    };
    let first = run_loso(&ds, &cfg, |_| {}).unwrap();
    assert_eq!(first.folds.len(), 3);
    assert!(first.folds.iter().all(|f| !f.resumed && f.predictions.len() == 6));
    for f in &first.folds {
        assert!(f.predictions.iter().all(|p| p.subject == f.subject));
        assert!(dir.path().join(format!("{}.json", f.subject)).exists());
        assert!(dir.path().join(format!("{}.safetensors", f.subject)).exists());
    }
    // the fold files and weights only: no temporary file left beside them
    let listing = |d: &std::path::Path| {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = first
        .folds
        .iter()
        .flat_map(|f| [format!("{}.json", f.subject), format!("{}.safetensors", f.subject)])
        .collect();
    want.sort();
    assert_eq!(listing(dir.path()), want);
    // saving weights where a folder is in the way fails and leaves no temporary file
    let blocked = tempfile::tempdir().unwrap();
    let p = blocked.path().join("w.safetensors");
    std::fs::create_dir_all(p.join("x")).unwrap();
    let m = Model::new(&cfg.model, 0, &Device::Cpu).unwrap();
    assert!(matches!(m.save(&p), Err(Error::Io { .. })));
    assert_eq!(listing(blocked.path()), ["w.safetensors"]);
    let second = run_loso(&ds, &cfg, |_| {}).unwrap();
    assert!(second.folds.iter().all(|f| f.resumed));
    assert_eq!(first.predictions(), second.predictions());
    // A different recipe must not silently reuse these folds.
    let other = LosoConfig { train: small_recipe(3, 1), ..cfg.clone() };
    assert!(matches!(run_loso(&ds, &other, |_| {}), Err(Error::Json { .. })));
    // Training in memory gives the same predictions as the resumable run (same seeds).
    // (one thread instead of two: candle's matmul may split its work differently, so compare
    // to float rounding)
    let mem = run_loso(&ds, &LosoConfig { out_dir: None, parallel_folds: 1, ..cfg }, |_| {}).unwrap();
    for (a, b) in first.predictions().iter().zip(mem.predictions()) {
        assert_eq!((&a.subject, &a.id, a.pred), (&b.subject, &b.id, b.pred));
        assert!(a.probs.iter().zip(&b.probs).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} vs {b:?}");
    }
}

#[test]
fn inner_validation_selects_an_epoch_from_training_subjects() {
    let ds = synthetic(4, 6, 5);
    let tc = TrainConfig { selection: Selection::InnerValidation { subjects: 1 }, ..small_recipe(4, 3) };
    let cfg = LosoConfig {
        model: ModelConfig::Ststnet(StstnetConfig::default()),
        train: tc,
        subjects: Some(vec!["sub00".into()]),
        ..LosoConfig::default()
    };
    let r = run_loso(&ds, &cfg, |_| {}).unwrap();
    let f = &r.folds[0];
    assert_eq!(f.subject, "sub00");
    assert!(f.selected_epoch < 4);
    assert!(f.epochs.iter().all(|e| e.val_uf1.is_some()));
    // too many validation subjects is an error, not a silent fallback
    let bad = TrainConfig { selection: Selection::InnerValidation { subjects: 3 }, ..small_recipe(1, 0) };
    let mut m = Model::new(&cfg.model, 0, &Device::Cpu).unwrap();
    let train = ds.subset(&(6..24).collect::<Vec<_>>());
    assert!(matches!(fit(&mut m, &train, &bad), Err(Error::InvalidParam { .. })));
}

#[test]
fn bad_training_inputs_are_typed_errors() {
    let cfg = ModelConfig::Ststnet(StstnetConfig::default());
    let mut m = Model::new(&cfg, 0, &Device::Cpu).unwrap();
    assert!(matches!(
        fit(&mut m, &Dataset::new((3, 28, 28)), &TrainConfig::default()),
        Err(Error::Dataset(_))
    ));
    let mut ds = Dataset::new((3, 28, 28));
    ds.push(SampleInfo { subject: "a".into(), id: "x".into(), label: 5 }, &[0.0; 2352]).unwrap();
    assert!(matches!(fit(&mut m, &ds, &TrainConfig::default()), Err(Error::Dataset(_))));
    let mut wrong = Dataset::new((3, 32, 32));
    wrong.push(SampleInfo { subject: "a".into(), id: "x".into(), label: 0 }, &[0.0; 3072]).unwrap();
    assert!(matches!(fit(&mut m, &wrong, &TrainConfig::default()), Err(Error::InputShape { .. })));
    assert!(ds
        .push(SampleInfo { subject: "a".into(), id: "y".into(), label: 0 }, &[f32::NAN; 2352])
        .is_err());
    assert!(TrainConfig { epochs: 0, ..TrainConfig::default() }.validate().is_err());
    let _ = DType::F32;
}

#[test]
fn a_diverged_fold_is_an_error_and_writes_no_fold_file() {
    // AdamW's decoupled decay with a learning rate far too large multiplies every weight by
    // (1 - lr * wd) = -1e9 per step: the weights overflow and the loss is not finite within a few
    // steps; the fold is an error and leaves nothing that a resume would read back.
    let ds = synthetic(3, 6, 4);
    let dir = tempfile::tempdir().unwrap();
    let cfg = LosoConfig {
        model: ModelConfig::Ststnet(StstnetConfig::default()),
        train: TrainConfig {
            optimizer: OptimizerKind::AdamW,
            lr: 1e9,
            weight_decay: 1.0,
            ..small_recipe(3, 1)
        },
        out_dir: Some(dir.path().to_path_buf()),
        save_weights: true,
        parallel_folds: 1,
        subjects: None,
    };
    let r = run_loso(&ds, &cfg, |_| {});
    assert!(matches!(r, Err(Error::NonFiniteLoss { .. })), "{r:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}
