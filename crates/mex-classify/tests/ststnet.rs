#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! STSTNet against PyTorch (fixtures written by benches/peers/classify_ststnet_torch.py) and the
//! released weights on the released inputs.

use candle_core::{DType, Device, Tensor};
use mex_classify::ops::cross_entropy;
use mex_classify::{data, Error, Model, ModelConfig, StstnetConfig};
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn io() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("ststnet_random_io.safetensors"), &Device::Cpu).unwrap()
}

fn v(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: {x} vs torch {y}");
    }
}

fn cfg(p: f32, pad: usize) -> ModelConfig {
    ModelConfig::Ststnet(StstnetConfig { dropout: p, conv_padding: pad, ..StstnetConfig::default() })
}

#[test]
fn eval_logits_match_pytorch() {
    let io = io();
    let m = Model::load(&cfg(0.5, 2), fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
    let got = m.forward_eval(&io["input"]).unwrap();
    assert_close(&v(&got), &v(&io["logits_eval"]), 1e-4, "eval logits");
    let m1 = Model::load(&cfg(0.5, 1), fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
    let got = m1.forward_eval(&io["input"]).unwrap();
    assert_close(&v(&got), &v(&io["logits_eval_pad1"]), 1e-4, "eval logits, padding 1");
}

#[test]
fn portable_eval_path_matches_pytorch_too() {
    // The path STSTNet takes on non-CPU devices (candle's standard ops), run on the CPU.
    let io = io();
    for (pad, key) in [(2, "logits_eval"), (1, "logits_eval_pad1")] {
        let m =
            Model::load(&cfg(0.5, pad), fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
        let got = m.forward_eval_portable(&io["input"]).unwrap().unwrap();
        assert_close(&v(&got), &v(&io[key]), 1e-4, "portable eval logits");
    }
}

#[test]
fn train_mode_logits_gradients_and_running_stats_match_pytorch() {
    let io = io();
    // The fixture was made with dropout 0 so that train mode is deterministic.
    let mut m =
        Model::load(&cfg(0.0, 2), fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let logits = m.forward_train(&io["input"], &mut rng).unwrap();
    assert_close(&v(&logits), &v(&io["logits_train"]), 1e-4, "train logits");
    let y = io["labels"].to_dtype(DType::U32).unwrap();
    let w = Tensor::new(&[1.0f32, 2.0, 0.5], &Device::Cpu).unwrap();
    let loss = cross_entropy(&logits, &y, Some(&w)).unwrap();
    assert_close(&[loss.to_scalar::<f32>().unwrap()], &v(&io["loss_weighted"]), 1e-5, "weighted loss");
    let grads = loss.backward().unwrap();
    for (name, var) in m.trainable_vars().unwrap() {
        let g = grads.get(var.as_tensor()).unwrap();
        assert_close(&v(g), &v(&io[&format!("grad.{name}")]), 2e-3, &format!("grad {name}"));
    }
    for (name, t) in m.named_tensors().unwrap() {
        if name.contains("running") {
            assert_close(&v(&t), &v(&io[&format!("after.{name}")]), 1e-4, &name);
        }
    }
    assert_eq!(m.num_batches_tracked(), 1);
}

#[test]
fn trainable_parameter_count_is_1683() {
    // convs 84 + 140 + 224, BatchNorm affine 32, fc 1203 (christy1206/STSTNet `main.py`).
    assert_eq!(cfg(0.5, 2).num_trainable(), 1683);
    assert_eq!(cfg(0.5, 1).num_trainable(), 1683);
    let m = Model::new(&cfg(0.5, 2), 1, &Device::Cpu).unwrap();
    let n: usize = m.trainable_vars().unwrap().iter().map(|(_, v)| v.elem_count()).sum();
    assert_eq!(n, 1683);
}

#[test]
fn output_shapes_for_both_paddings_and_batch_sizes() {
    for pad in [1, 2] {
        let mut m = Model::new(&cfg(0.5, pad), 3, &Device::Cpu).unwrap();
        for n in [1, 5] {
            let x = Tensor::zeros((n, 3, 28, 28), DType::F32, &Device::Cpu).unwrap();
            assert_eq!(m.forward_eval(&x).unwrap().dims(), &[n, 3]);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let x = Tensor::rand(0f32, 1f32, (n + 1, 3, 28, 28), &Device::Cpu).unwrap();
            assert_eq!(m.forward_train(&x, &mut rng).unwrap().dims(), &[n + 1, 3]);
        }
        let bad = Tensor::zeros((2, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(m.forward_eval(&bad), Err(Error::InputShape { .. })));
    }
}

#[test]
fn save_load_round_trip_and_pytorch_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    let mut m = Model::new(&cfg(0.5, 2), 42, &Device::Cpu).unwrap();
    // move the running statistics away from their initial values
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let x = Tensor::rand(0f32, 255f32, (4, 3, 28, 28), &Device::Cpu).unwrap();
    m.forward_train(&x, &mut rng).unwrap();
    m.save(&p).unwrap();
    let back = Model::load(&cfg(0.5, 2), &p, &Device::Cpu).unwrap();
    assert_eq!(back.num_batches_tracked(), 1);
    for ((n1, t1), (n2, t2)) in m.named_tensors().unwrap().iter().zip(back.named_tensors().unwrap().iter()) {
        assert_eq!(n1, n2);
        assert_eq!(v(t1), v(t2), "{n1}");
    }
    assert_eq!(v(&m.forward_eval(&x).unwrap()), v(&back.forward_eval(&x).unwrap()));
    // The file has exactly the PyTorch state-dict names of the released weights.
    let saved = candle_core::safetensors::load(&p, &Device::Cpu).unwrap();
    let released =
        candle_core::safetensors::load(fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
    let mut a: Vec<_> = saved.keys().collect();
    let mut b: Vec<_> = released.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(saved["bn1.num_batches_tracked"].dtype(), DType::I64);
}

#[test]
fn missing_or_misshaped_tensor_is_a_typed_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut t =
        candle_core::safetensors::load(fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
    t.remove("bn2.running_var");
    let p = dir.path().join("missing.safetensors");
    candle_core::safetensors::save(&t, &p).unwrap();
    match Model::load(&cfg(0.5, 2), &p, &Device::Cpu) {
        Err(Error::MissingTensor { name, .. }) => assert_eq!(name, "bn2.running_var"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let mut t =
        candle_core::safetensors::load(fixture("ststnet_random_weights.safetensors"), &Device::Cpu).unwrap();
    t.insert("fc.weight".into(), Tensor::zeros((3, 300), DType::F32, &Device::Cpu).unwrap());
    let p = dir.path().join("shape.safetensors");
    candle_core::safetensors::save(&t, &p).unwrap();
    match Model::load(&cfg(0.5, 2), &p, &Device::Cpu) {
        Err(Error::TensorShape { name, expected, found, .. }) => {
            assert_eq!(name, "fc.weight");
            assert_eq!(expected, vec![3, 400]);
            assert_eq!(found, vec![3, 300]);
        }
        other => panic!("expected TensorShape, got {other:?}"),
    }
    let p = dir.path().join("garbage.safetensors");
    std::fs::write(&p, b"not a checkpoint").unwrap();
    assert!(matches!(Model::load(&cfg(0.5, 2), &p, &Device::Cpu), Err(Error::Checkpoint { .. })));
    assert!(matches!(
        Model::load(&cfg(0.5, 2), dir.path().join("nope.safetensors"), &Device::Cpu),
        Err(Error::Io { .. })
    ));
}

fn data_dir() -> Option<PathBuf> {
    match std::env::var("MEX_TEST_DATA") {
        Ok(d) => Some(PathBuf::from(d).join("ststnet-composite")),
        Err(_) => {
            eprintln!("skipped: MEX_TEST_DATA not set");
            None
        }
    }
}

/// UF1 and UAR by the MEGC2019 definitions, written out independently of the crate.
fn uf1_uar(gt: &[u32], pred: &[u32]) -> (f64, f64) {
    let (mut f1, mut ar) = (0.0, 0.0);
    for c in 0..3 {
        let tp = gt.iter().zip(pred).filter(|(g, p)| **g == c && **p == c).count() as f64;
        let fp = gt.iter().zip(pred).filter(|(g, p)| **g != c && **p == c).count() as f64;
        let fneg = gt.iter().zip(pred).filter(|(g, p)| **g == c && **p != c).count() as f64;
        f1 += 2.0 * tp / (2.0 * tp + fp + fneg);
        ar += tp / gt.iter().filter(|g| **g == c).count() as f64;
    }
    (f1 / 3.0, ar / 3.0)
}

#[test]
fn released_weights_reproduce_published_composite_result() {
    let Some(dir) = data_dir() else { return };
    let ds = data::load_ststnet_inputs(&dir.join("inputs")).unwrap();
    assert_eq!(ds.len(), 442);
    assert_eq!(ds.subjects().len(), 68);
    let torch: HashMap<(String, String), Vec<f32>> =
        std::fs::read_to_string(fixture("ststnet_released_logits_torch.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                ((f[0].to_string(), f[1].to_string()), f[3..6].iter().map(|x| x.parse().unwrap()).collect())
            })
            .collect();
    let (mut gt, mut pred) = (Vec::new(), Vec::new());
    for s in ds.subjects() {
        let m = Model::load(&cfg(0.5, 2), dir.join("weights").join(format!("{s}.safetensors")), &Device::Cpu)
            .unwrap();
        let idx = ds.indices_of(&s);
        let logits =
            m.forward_eval(&ds.batch(&idx, &Device::Cpu).unwrap()).unwrap().to_vec2::<f32>().unwrap();
        for (&i, l) in idx.iter().zip(&logits) {
            let info = &ds.samples()[i];
            let t = &torch[&(info.subject.clone(), info.id.clone())];
            assert_close(l, t, 1e-4, &format!("{}/{}", info.subject, info.id));
        }
        gt.extend(idx.iter().map(|&i| ds.samples()[i].label));
        pred.extend(m.predict(&ds.batch(&idx, &Device::Cpu).unwrap()).unwrap());
    }
    let (uf1, uar) = uf1_uar(&gt, &pred);
    eprintln!("released STSTNet weights: UF1 {uf1:.6} UAR {uar:.6}");
    assert_eq!(format!("{uf1:.4}"), "0.7209");
    assert_eq!(format!("{uar:.3}"), "0.725");
    assert_eq!(format!("{uar:.4}"), "0.7250");
}
