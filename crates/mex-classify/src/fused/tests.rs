//! Tests of the fused block against candle's own ops.

use super::*;
use crate::ops::max_pool2d_padded;
use candle_core::{Device, Var};
use candle_nn::ModuleT;
use rand::{Rng, SeedableRng};

struct Ref {
    w: Var,
    b: Var,
    gamma: Var,
    beta: Var,
}

fn setup(g: &BlockGeom, seed: u64) -> (Tensor, Ref) {
    use rand::{Rng, SeedableRng};
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dev = Device::Cpu;
    let mut v = |n: usize, lo: f32, hi: f32| -> Vec<f32> { (0..n).map(|_| r.random_range(lo..hi)).collect() };
    let x = Tensor::from_vec(v(4 * g.cin * g.h * g.w, 0.0, 255.0), (4, g.cin, g.h, g.w), &dev).unwrap();
    let x = Tensor::cat(&[&x, &x.affine(0.5, -60.0).unwrap(), &x.affine(-1.0, 255.0).unwrap()], 0).unwrap();
    let w = Var::from_vec(v(g.nw(), -0.2, 0.2), (g.cout, g.cin, g.k, g.k), &dev).unwrap();
    let b = Var::from_vec(v(g.cout, -1.0, 1.0), g.cout, &dev).unwrap();
    let gamma = Var::from_vec(v(g.cout, -1.5, 1.5), g.cout, &dev).unwrap();
    let beta = Var::from_vec(v(g.cout, -1.0, 1.0), g.cout, &dev).unwrap();
    (x, Ref { w, b, gamma, beta })
}

/// Whether the AVX-512 kernels run here (see `mex_core::simd`); says that the test is
/// skipped when it does not.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    let ok = mex_core::simd::has_avx512();
    if !ok {
        eprintln!("skipped: no AVX-512 on this CPU");
    }
    ok
}

fn geom() -> BlockGeom {
    BlockGeom { cin: 3, h: 28, w: 28, cout: 16, k: 3, pad: 2, pool_k: 3, pool_s: 3, pool_p: 1, eps: 1e-5 }
}

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
}

#[test]
fn train_forward_and_gradients_match_candle_ops() {
    for (pad, seed) in [(2, 1), (1, 2), (0, 3)] {
        let g = BlockGeom { pad, ..geom() };
        let (x, r) = setup(&g, seed);
        // Reference: candle's conv2d, relu and batch statistics, then the padded max-pool op.
        let z = x.conv2d(r.w.as_tensor(), pad, 1, 1, 1).unwrap();
        let z =
            z.broadcast_add(&r.b.as_tensor().reshape((1, g.cout, 1, 1)).unwrap()).unwrap().relu().unwrap();
        let mean = z.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let d = z.broadcast_sub(&mean).unwrap();
        let var = d.sqr().unwrap().mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let xhat = d.broadcast_div(&(var.clone() + 1e-5).unwrap().sqrt().unwrap()).unwrap();
        let y = xhat
            .broadcast_mul(&r.gamma.as_tensor().reshape((1, g.cout, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&r.beta.as_tensor().reshape((1, g.cout, 1, 1)).unwrap())
            .unwrap();
        let want = max_pool2d_padded(&y, 3, 3, 1).unwrap();
        // A loss with a different weight on every output, so every gradient path matters.
        let lw = Tensor::arange(0f32, want.elem_count() as f32, &Device::Cpu)
            .unwrap()
            .affine(0.37, 0.0)
            .unwrap()
            .sin()
            .unwrap()
            .reshape(want.shape())
            .unwrap();
        let want_grads = (want.clone() * &lw).unwrap().sum_all().unwrap().backward().unwrap();

        let cache = SharedCache::default();
        let packed =
            pack_params(&[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())], None)
                .unwrap();
        let (got, stats) = forward_train(&x, &packed, g, &cache).unwrap();
        assert_eq!(got.dims(), want.dims());
        assert!(max_rel(&got, &want) < 1e-5, "pad {pad}: forward {}", max_rel(&got, &want));
        let want_mean = mean.flatten_all().unwrap();
        let want_var = var.flatten_all().unwrap();
        assert!(max_rel(&Tensor::new(stats.mean.as_slice(), &Device::Cpu).unwrap(), &want_mean) < 1e-5);
        assert!(max_rel(&Tensor::new(stats.var.as_slice(), &Device::Cpu).unwrap(), &want_var) < 1e-4);
        let grads = (got * &lw).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("weight", &r.w), ("bias", &r.b), ("gamma", &r.gamma), ("beta", &r.beta)] {
            let a = grads.get(v.as_tensor()).unwrap();
            let b = want_grads.get(v.as_tensor()).unwrap();
            let e = max_rel(a, b);
            assert!(e < 2e-4, "pad {pad}: d{name} differs by {e} (relative to its largest value)");
        }
    }
}

#[test]
fn eval_forward_matches_candle_batch_norm() {
    for pad in [2, 1, 0] {
        eval_forward_matches_candle_batch_norm_at(BlockGeom { pad, ..geom() });
    }
}

/// The vectorised inference pooling against the scalar one, both directions, on maps of
/// every width it accepts (random values with many ties at zero, as after a ReLU).
#[cfg(target_arch = "x86_64")]
#[test]
fn pool3_avx512_matches_pool3_sample() {
    if !has_avx512() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for w in 15..=30 {
        let g = BlockGeom { w, h: w + 1, ..geom() };
        if !pool3_avx512_fits(&g) {
            continue;
        }
        let mut sc = PoolScratch::default();
        sc.prepare(&g);
        let map: Vec<f32> = (0..g.plane_out()).map(|_| (rng.random::<f32>() * 4.0 - 1.0).max(0.0)).collect();
        let n = g.ph() * g.pw();
        for ab in [(0.7f32, -0.2f32), (-1.3, 0.4), (1.0, 0.0), (-1.0, 0.0)] {
            for track in [false, true] {
                let (mut want, mut got) = (vec![0f32; n], vec![1f32; n]);
                let (mut warg, mut garg) = (vec![0u32; n], vec![7u32; n]);
                let (wa, ga) = if track { (Some(&mut warg[..]), Some(&mut garg[..])) } else { (None, None) };
                if ab.0 < 0.0 {
                    pool3_sample::<true>(&g, &map, ab, &mut want, wa, &mut sc);
                    // SAFETY: AVX-512F checked above.
                    unsafe { pool3_avx512::<true>(&g, &map, ab, &mut got, ga, &sc.ywin) };
                } else {
                    pool3_sample::<false>(&g, &map, ab, &mut want, wa, &mut sc);
                    // SAFETY: AVX-512F checked above.
                    unsafe { pool3_avx512::<false>(&g, &map, ab, &mut got, ga, &sc.ywin) };
                }
                assert_eq!(got, want, "w {w}, scale {}", ab.0);
                if track {
                    assert_eq!(garg, warg, "arg-max, w {w}, scale {}", ab.0);
                }
            }
        }
    }
}

/// The AVX-512 backward pass (three `dz` maps at once, 27-accumulator weight gradients)
/// against the generic one it replaces: bitwise equal weight and bias gradients, for conv
/// paddings 2, 1 and 0 (map widths 30, 28, 26: row strides 32, 30, 28) and for channel
/// counts that leave one or two channels after the groups of three.
#[cfg(target_arch = "x86_64")]
#[test]
fn backward_avx512_matches_the_generic_backward_bitwise() {
    if !has_avx512() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for (pad, cout) in [(2, 16), (1, 16), (0, 16), (2, 4), (2, 5), (1, 3)] {
        let g = BlockGeom { pad, cout, ..geom() };
        let (pin, pout, npool) = (g.cin * g.plane_in(), g.cout * g.plane_out(), g.cout * g.ph() * g.pw());
        let x: Vec<f32> = (0..g.cin * g.h * g.w).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let wt: Vec<f32> = (0..g.nw()).map(|_| rng.random::<f32>() - 0.5).collect();
        let bias: Vec<f32> = (0..cout).map(|_| rng.random::<f32>() * 0.2 - 0.1).collect();
        let ones = vec![1f32; cout];
        let zeros = vec![0f32; cout];
        let params = FwdParams { wt: &wt, bias: &bias, scale: &ones, shift: &zeros };
        let (mut xp, mut act) = (vec![0f32; pin], vec![0f32; pout]);
        let (mut out, mut arg) = (vec![0f32; npool], vec![0u32; npool]);
        let mut sums = vec![0f64; 2 * cout];
        let io = SampleIo {
            x: &x,
            xp: &mut xp,
            act: &mut act,
            out: &mut out,
            arg: Some(&mut arg),
            sums: Some(&mut sums),
        };
        assert!(forward_sample(&g, &params, io, &mut PoolScratch::default()));
        let gout: Vec<f32> = (0..npool).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let bn: Vec<BnBack> = (0..cout)
            .map(|_| BnBack {
                mean: rng.random::<f32>() * 0.3,
                invstd: 1.0 + rng.random::<f32>(),
                k: rng.random::<f32>() * 2.0 - 1.0,
                c1: rng.random::<f32>() * 0.01,
                c2: rng.random::<f32>() * 0.01,
            })
            .collect();
        let run = |avx512: bool| {
            let mut dz = vec![0f32; DZ_MAPS * dz_len(&g)];
            // Accumulated onto non-zero gradients, as for the second sample of a block.
            let mut dw: Vec<f32> = (0..g.nw()).map(|i| i as f32 * 1e-3).collect();
            let mut db: Vec<f32> = (0..cout).map(|i| i as f32 * 0.1).collect();
            let io =
                BackIo { xp: &xp, act: &act, arg: &arg, gout: &gout, dz: &mut dz, dw: &mut dw, db: &mut db };
            // SAFETY: AVX-512F and FMA checked above.
            unsafe {
                if avx512 {
                    backward_sample_avx512(&g, &bn, io)
                } else {
                    backward_sample_avx2(&g, &bn, io)
                }
            }
            (dw, db)
        };
        let (want_w, want_b) = run(false);
        let (got_w, got_b) = run(true);
        assert_eq!(got_b, want_b, "bias gradient, pad {pad}, cout {cout}");
        assert_eq!(got_w, want_w, "weight gradient, pad {pad}, cout {cout}");
        assert!(want_w.iter().enumerate().any(|(i, &v)| v != i as f32 * 1e-3), "gradient not computed");
    }
}

/// The AVX-512 moments against the generic ones: bitwise equal sums (maps of stride 32, 30
/// and 28, so with and without a scalar tail; odd and even channel counts, since maps are
/// summed two at a time).
#[cfg(target_arch = "x86_64")]
#[test]
fn moments_avx512_match_sample_moments_bitwise() {
    if !has_avx512() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for (pad, cout) in [(2, 16), (1, 5), (0, 3), (2, 1), (2, 8)] {
        let g = BlockGeom { pad, cout, ..geom() };
        let act: Vec<f32> =
            (0..g.cout * g.plane_out()).map(|_| (rng.random::<f32>() * 3.0 - 1.0).max(0.0)).collect();
        let (mut want, mut got) = (vec![0.5f64; 2 * g.cout], vec![0.5f64; 2 * g.cout]);
        sample_moments(&g, &act, &mut want);
        // SAFETY: AVX-512F checked above.
        unsafe { moments_avx512(&g, &act, &mut got) };
        assert_eq!(got, want, "pad {pad}, {cout} channels");
    }
}

/// The AVX-512 convolution (row segments and lane shifts for 3x3 kernels) against the
/// generic per-channel convolution: bitwise equal maps for paddings 2, 1 and 0 (row strides
/// 32, 30, 28, so the row segments are misaligned in different ways).
#[cfg(target_arch = "x86_64")]
#[test]
fn conv4_avx512_matches_conv_channels_bitwise() {
    if !has_avx512() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for pad in [2, 1, 0] {
        let g = BlockGeom { pad, ..geom() };
        let x: Vec<f32> = (0..g.cin * g.h * g.w).map(|_| rng.random::<f32>() * 255.0).collect();
        let mut xp = vec![0f32; g.cin * g.plane_in()];
        assert!(pad_sample(&g, &x, &mut xp));
        let wt: Vec<f32> = (0..g.nw()).map(|_| rng.random::<f32>() - 0.5).collect();
        let bias: Vec<f32> = (0..g.cout).map(|_| rng.random::<f32>() - 0.5).collect();
        let (mut want, mut got) = (vec![0f32; g.cout * g.plane_out()], vec![1f32; g.cout * g.plane_out()]);
        for o in 0..g.cout {
            conv_channels::<true, CH512, 1>(&g, &xp, &wt, &bias, o, &mut want);
        }
        // SAFETY: AVX-512F and FMA checked above.
        unsafe {
            for o0 in (0..g.cout).step_by(4) {
                conv4_avx512(&g, &xp, &wt, &bias, o0, &mut got);
            }
        }
        zero_unused_columns(&g, &mut want);
        zero_unused_columns(&g, &mut got);
        assert_eq!(got, want, "pad {pad}");
        assert!(want.iter().any(|&v| v > 0.0));
    }
}

#[test]
fn all_finite_finds_one_bad_value_anywhere() {
    let mut x = vec![1.5f32; 10_000];
    assert!(all_finite(&x));
    for (i, bad) in [(0, f32::NAN), (4095, f32::INFINITY), (4096, f32::NEG_INFINITY), (9_999, f32::NAN)] {
        x[i] = bad;
        assert!(!all_finite(&x), "{bad} at {i}");
        x[i] = f32::MAX;
    }
    assert!(all_finite(&x));
}

#[test]
fn pad_sample_overwrites_a_dirty_buffer() {
    for pad in [0, 1, 2] {
        let g = BlockGeom { pad, h: 5, w: 4, ..geom() };
        let x: Vec<f32> = (0..g.cin * 20).map(|i| i as f32 + 1.0).collect();
        let mut xp = vec![f32::NAN; g.cin * g.plane_in()];
        pad_sample(&g, &x, &mut xp);
        let s = g.stride();
        for c in 0..g.cin {
            for (i, &v) in xp[c * g.plane_in()..(c + 1) * g.plane_in()].iter().enumerate() {
                let (y, xx) = ((i / s) as isize - pad as isize, (i % s) as isize - pad as isize);
                let inside = (0..5).contains(&y) && (0..4).contains(&xx) && i < (5 + 2 * pad) * s;
                let want = if inside { x[c * 20 + y as usize * 4 + xx as usize] } else { 0.0 };
                assert_eq!(v, want, "pad {pad} channel {c} at {i}");
            }
        }
    }
}

fn eval_forward_matches_candle_batch_norm_at(g: BlockGeom) {
    let (x, r) = setup(&g, 7);
    let dev = Device::Cpu;
    let rm = Tensor::new(
        &[0.5f32, 3.0, 10.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.5, 2.5, 3.5],
        &dev,
    )
    .unwrap();
    let rv = (rm.clone() * 2.0).unwrap().affine(1.0, 0.3).unwrap();
    let bn = candle_nn::BatchNorm::new(
        g.cout,
        rm.clone(),
        rv.clone(),
        r.gamma.as_tensor().clone(),
        r.beta.as_tensor().clone(),
        1e-5,
    )
    .unwrap();
    let z = x.conv2d(r.w.as_tensor(), g.pad, 1, 1, 1).unwrap();
    let z = z.broadcast_add(&r.b.as_tensor().reshape((1, g.cout, 1, 1)).unwrap()).unwrap().relu().unwrap();
    let want = max_pool2d_padded(&bn.forward_t(&z, false).unwrap(), 3, 3, 1).unwrap();
    let packed = pack_params(
        &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
        Some(&[(&rm, &rv)]),
    )
    .unwrap();
    let got = forward_eval(&x, &packed, g).unwrap();
    assert!(max_rel(&got, &want) < 1e-5, "{}", max_rel(&got, &want));
}

#[test]
fn stale_backward_is_an_error_and_bad_shapes_are_refused() {
    let g = geom();
    let (x, r) = setup(&g, 9);
    let cache = SharedCache::default();
    let packed =
        pack_params(&[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())], None)
            .unwrap();
    let (y1, _) = forward_train(&x, &packed, g, &cache).unwrap();
    let (_y2, _) = forward_train(&x, &packed, g, &cache).unwrap();
    let err = y1.sum_all().unwrap().backward().unwrap_err().to_string();
    assert!(err.contains("older forward"), "{err}");
    let nan = x.affine(0.0, f32::NAN as f64).unwrap();
    let err = forward_eval(
        &nan,
        &pack_params(
            &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
            Some(&[(r.b.as_tensor(), r.gamma.as_tensor())]),
        )
        .unwrap(),
        g,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("non-finite"), "{err}");
    // One infinity in the last sample's last value, training path.
    let mut v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    if let Some(last) = v.last_mut() {
        *last = f32::INFINITY;
    }
    let inf = Tensor::from_vec(v, x.shape(), x.device()).unwrap();
    let err = forward_train(&inf, &packed, g, &cache).unwrap_err().to_string();
    assert!(err.contains("non-finite"), "{err}");
    let bad = BlockGeom { h: 20, ..g };
    assert!(forward_eval(&x, &packed, bad).is_err());
    assert!(forward_eval(&x, &packed, g).is_err(), "training layout is too short for eval");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let g = geom();
    let (x, r) = setup(&g, 11);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let cache = SharedCache::default();
            let packed = pack_params(
                &[(r.w.as_tensor(), r.b.as_tensor(), r.gamma.as_tensor(), r.beta.as_tensor())],
                None,
            )
            .unwrap();
            let (y, _) = forward_train(&x, &packed, g, &cache).unwrap();
            let gr = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let gw = gr.get(r.w.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), gw)
        })
    };
    assert_eq!(run(1), run(3));
}
