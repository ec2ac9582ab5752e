#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The generator's ground truth against its defining property, measured on the rendered frames.

use mex_core::{FlowField, GrayF32};
use mex_data::synth::*;
use mex_data::{loso, FrameSource};

/// Mean and max of |frame_t1(x + F(x)) − frame_t0(x)| over pixels at least `border` from the edge
/// (and, with `moving`, only where the ground truth moves by more than 0.2 px).
fn warp_residual_in(
    f0: &GrayF32,
    f1: &GrayF32,
    flow: &FlowField,
    border: usize,
    moving: Option<&FlowField>,
) -> (f32, f32) {
    let (w, h) = (f0.width() as usize, f0.height() as usize);
    let (mut s, mut m, mut n) = (0.0f64, 0.0f32, 0usize);
    for y in border..h - border {
        for x in border..w - border {
            if let Some(m) = moving {
                let (a, b) = m.get(x, y).unwrap();
                if a.hypot(b) < 0.2 {
                    continue;
                }
            }
            let (u, v) = flow.get(x, y).unwrap();
            let a = sample_bicubic(f1, x as f32 + u, y as f32 + v);
            let r = (a - f0.get_pixel(x as u32, y as u32)[0]).abs();
            s += f64::from(r);
            m = m.max(r);
            n += 1;
        }
    }
    ((s / n as f64) as f32, m)
}

/// Catmull-Rom bicubic sample (interior points only).
fn sample_bicubic(img: &GrayF32, x: f32, y: f32) -> f32 {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (xi, yi) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - xi as f32, y - yi as f32);
    let k = |t: f32| {
        let t2 = t * t;
        let t3 = t2 * t;
        [
            -0.5 * t3 + t2 - 0.5 * t,
            1.5 * t3 - 2.5 * t2 + 1.0,
            -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            0.5 * t3 - 0.5 * t2,
        ]
    };
    let (kx, ky) = (k(fx), k(fy));
    let mut acc = 0.0;
    for (j, wy) in ky.iter().enumerate() {
        let yy = (yi - 1 + j as i64).clamp(0, h - 1) as u32;
        for (i, wx) in kx.iter().enumerate() {
            let xx = (xi - 1 + i as i64).clamp(0, w - 1) as u32;
            acc += wx * wy * img.get_pixel(xx, yy)[0];
        }
    }
    acc
}

fn warp_residual(f0: &GrayF32, f1: &GrayF32, flow: &FlowField, border: usize) -> (f32, f32) {
    warp_residual_in(f0, f1, flow, border, None)
}

fn clean_clip(action: FacialAction, amp: f32, size: u32) -> SynthClip {
    ClipConfig {
        synth: SynthConfig::clean(size),
        action,
        amplitude_px: amp,
        n_frames: 30,
        onset: 3,
        apex: 12,
        offset: 25,
        ..ClipConfig::default()
    }
    .build()
    .unwrap()
}

#[test]
fn ground_truth_flow_inverts_the_backward_map_exactly() {
    // The defining property of the forward flow: B_t1(x + F(x)) = B_t0(x) for every pixel,
    // with head motion and two overlapping actions (expression + blink).
    let cfg = ClipConfig {
        synth: SynthConfig {
            size: 96,
            head: HeadMotion { translation_px: 2.0, rotation_deg: 2.0, frequency_hz: 3.0 },
            ..SynthConfig::clean(96)
        },
        action: FacialAction::BrowRaise,
        amplitude_px: 3.0,
        blink: Some((8, 10)),
        ..ClipConfig::default()
    };
    let clip = cfg.build().unwrap();
    for (t0, t1) in [(5, 25), (5, 12), (25, 40), (0, 59)] {
        let f = clip.flow(t0, t1).unwrap();
        let mut worst = 0.0f32;
        for y in 0..96 {
            for x in 0..96 {
                let (u, v) = f.get(x, y).unwrap();
                let a = clip.backward_map(t0, x as f32, y as f32);
                let b = clip.backward_map(t1, x as f32 + u, y as f32 + v);
                worst = worst.max((a.0 - b.0).abs()).max((a.1 - b.1).abs());
            }
        }
        assert!(worst < 1e-3, "t0 {t0} t1 {t1}: worst mismatch {worst}");
    }
}

#[test]
fn warping_frame_t_back_by_the_ground_truth_reproduces_the_onset_frame() {
    for action in FacialAction::EXPRESSIONS {
        let clip = clean_clip(action, 2.5, 128);
        let frames = clip.frames();
        let on = clip.interval().unwrap().onset;
        let apex = clip.interval().unwrap().apex;
        let flow = clip.flow_from_onset(apex).unwrap();
        let (mean, max) = warp_residual_in(&frames[on], &frames[apex], &flow, 8, Some(&flow));
        let (mean0, _) =
            warp_residual_in(&frames[on], &frames[apex], &FlowField::zeros(128, 128), 8, Some(&flow));
        eprintln!("{action:?}: residual mean {mean} max {max}; without flow {mean0}");
        // Over the moving pixels the residual is re-interpolation error only: below the default
        // sensor noise (1 gray level) and a small fraction of the uncompensated residual.
        assert!(mean < 1.0 && max < 20.0, "{action:?}: mean {mean} max {max}");
        assert!(mean0 > 5.0 * mean, "{action:?}: zero-flow residual {mean0} vs {mean}");
        // The peak of the flow is the requested amplitude.
        let peak = flow.magnitude().into_iter().fold(0.0f32, f32::max);
        assert!((peak - 2.5).abs() < 0.1, "{action:?}: peak {peak}");
    }
}

#[test]
fn residual_is_at_the_noise_level_with_noise_and_head_motion() {
    let sigma = 2.0;
    let cfg = ClipConfig {
        synth: SynthConfig {
            noise_sigma: sigma,
            head: HeadMotion { translation_px: 1.5, rotation_deg: 1.0, frequency_hz: 2.0 },
            ..SynthConfig::clean(128)
        },
        action: FacialAction::Smile,
        amplitude_px: 2.0,
        ..ClipConfig::default()
    };
    let clip = cfg.build().unwrap();
    let (on, apex) = (clip.interval().unwrap().onset, clip.interval().unwrap().apex);
    let (f0, f1) = (clip.frame(on).unwrap(), clip.frame(apex).unwrap());
    let flow = clip.flow(on, apex).unwrap();
    let (mean, _) = warp_residual(&f0, &f1, &flow, 8);
    // Difference of two noisy frames (one bilinearly resampled, which averages its noise down):
    // E|N(0, s²)| = s·sqrt(2/π) with s between sigma and sqrt(2)·sigma.
    let lo = sigma * (2.0f32 / std::f32::consts::PI).sqrt() * 0.9;
    let hi = sigma * 2.0f32.sqrt() * (2.0f32 / std::f32::consts::PI).sqrt() * 1.1;
    assert!(mean > lo && mean < hi, "mean residual {mean} not in [{lo}, {hi}]");
    // Head motion makes the uncompensated residual much larger.
    let (mean0, _) = warp_residual(&f0, &f1, &FlowField::zeros(128, 128), 8);
    assert!(mean0 > 1.5 * mean, "{mean0} vs {mean}");
}

#[test]
fn actions_move_the_right_regions_in_the_right_directions() {
    let mean_v = |clip: &SynthClip, p: mex_core::Point2| {
        let f = clip.flow_from_onset(clip.interval().unwrap().apex).unwrap();
        f.get(p.x.round() as usize, p.y.round() as usize).unwrap()
    };
    let smile = clean_clip(FacialAction::Smile, 2.0, 128);
    let g = *smile.geometry();
    let (u, v) = mean_v(&smile, g.mouth_corner[1]);
    assert!(v < -0.8 && u > 0.5, "smile right corner ({u}, {v})");
    let raise = clean_clip(FacialAction::BrowRaise, 2.0, 128);
    assert!(mean_v(&raise, g.brow_mid[0]).1 < -1.5);
    let lower = clean_clip(FacialAction::BrowLower, 2.0, 128);
    let (u, v) = mean_v(&lower, g.brow_inner[0]);
    assert!(v > 1.0 && u > 0.3, "brow lowerer ({u}, {v})");
    let dep = clean_clip(FacialAction::LipCornerDepressor, 2.0, 128);
    assert!(mean_v(&dep, g.mouth_corner[0]).1 > 1.5);
    // The chin and forehead corners do not move for a brow action.
    let (u, v) = mean_v(&raise, g.chin);
    assert!(u.abs() < 1e-3 && v.abs() < 1e-3);
}

#[test]
fn deterministic_per_seed() {
    let cfg = ClipConfig {
        synth: SynthConfig { size: 64, ..SynthConfig::default() },
        n_frames: 20,
        onset: 2,
        apex: 8,
        offset: 15,
        amplitude_px: 1.0,
        subject: SubjectStyle::random(3),
        seed: 11,
        ..ClipConfig::default()
    };
    let a = cfg.build().unwrap().frames();
    let b = cfg.build().unwrap().frames();
    assert_eq!(a, b);
    let c = ClipConfig { seed: 12, ..cfg }.build().unwrap().frames();
    assert_ne!(a, c);
    // frame(t) alone equals the t-th frame of frames().
    assert_eq!(cfg.build().unwrap().frame(7).unwrap(), a[7]);
    // Another subject gives another face.
    let d = ClipConfig { subject: SubjectStyle::random(4), ..cfg }.build().unwrap().frames();
    assert_ne!(a[0], d[0]);
}

#[test]
fn amplitudes_that_fold_or_bad_intervals_are_rejected() {
    let base = ClipConfig::default();
    assert!(ClipConfig { amplitude_px: 3.5, ..base }.build().is_err());
    assert!(ClipConfig { offset: 60, ..base }.build().is_err());
    assert!(ClipConfig { apex: 3, ..base }.build().is_err());
    assert!(ClipConfig { synth: SynthConfig { size: 8, ..SynthConfig::default() }, ..base }.build().is_err());
    let bad_style = SubjectStyle { scale: f32::NAN, ..SubjectStyle::neutral() };
    assert!(ClipConfig { subject: bad_style, ..base }.build().is_err());
    let e = ClipConfig { synth: SynthConfig::clean(24), amplitude_px: 3.0, n_frames: 60, ..base }.build();
    assert!(e.is_err(), "a 3 px action on a 24 px face folds");
}

#[test]
fn long_video_schedule_is_valid_and_seeded() {
    let cfg = LongVideoConfig {
        synth: SynthConfig { size: 128, ..LongVideoConfig::default().synth },
        duration_s: 20.0,
        n_micro: 4,
        n_macro: 3,
        seed: 5,
        ..LongVideoConfig::default()
    };
    let (n, ev) = cfg.schedule().unwrap();
    assert_eq!(n, 600);
    let micro: Vec<_> = ev.iter().filter(|e| e.kind == EventKind::Micro).collect();
    let macro_: Vec<_> = ev.iter().filter(|e| e.kind == EventKind::Macro).collect();
    assert_eq!((micro.len(), macro_.len()), (4, 3));
    assert_eq!(ev.iter().filter(|e| e.kind == EventKind::Blink).count(), 4);
    for e in &micro {
        assert!(e.interval().unwrap().duration_s(30.0) < 0.5);
    }
    for e in &macro_ {
        assert!(e.interval().unwrap().duration_s(30.0) >= 0.5);
    }
    for w in ev.windows(2) {
        assert!(w[0].offset < w[1].onset, "events overlap: {:?}", w);
    }
    assert_eq!(cfg.schedule().unwrap().1, ev);
    assert_ne!(LongVideoConfig { seed: 6, ..cfg }.schedule().unwrap().1, ev);
    // Frames move only during events (clean rendering).
    let clean = LongVideoConfig { synth: SynthConfig { fps: 30.0, ..SynthConfig::clean(128) }, ..cfg };
    let v = clean.build().unwrap();
    let quiet = (0..n).find(|&t| ev.iter().all(|e| t + 1 < e.onset || t > e.offset + 1)).unwrap();
    assert_eq!(v.flow(0, quiet).unwrap().mean_magnitude(), 0.0);
    let m = macro_[0];
    assert!(v.flow(m.onset, m.apex).unwrap().mean_magnitude() > 0.0);
    assert!(LongVideoConfig { duration_s: 1.0, ..cfg }.schedule().is_err());
}

#[test]
fn composite_dataset_works_like_a_real_one() {
    let cfg = SynthDatasetConfig {
        synth: SynthConfig { size: 64, ..SynthConfig::default() },
        n_subjects: 6,
        clips_per_class: [2, 1, 1],
        seed: 9,
        ..SynthDatasetConfig::default()
    };
    let sd = SynthDataset::generate(&cfg).unwrap();
    let ds = &sd.dataset;
    assert_eq!(ds.len(), 24);
    assert_eq!(ds.class_counts(), vec![12, 6, 6]);
    assert_eq!(ds.dataset_names(), vec!["synth_a", "synth_b", "synth_c"]);
    assert_eq!(loso(ds).len(), 6);
    assert_eq!(mex_data::leave_one_dataset_out(ds).unwrap().len(), 3);
    for (i, s) in ds.samples.iter().enumerate() {
        let clip = sd.clip(i).unwrap();
        let iv = clip.interval().unwrap();
        assert_eq!((s.onset, s.apex, s.offset), (Some(iv.onset), Some(iv.apex), Some(iv.offset)));
        assert_eq!(s.label, clip.label());
        assert!(iv.duration_s(f64::from(s.fps.unwrap())) < 0.5);
        let aus = s.au_numbers();
        assert_eq!(aus, clip.expression().unwrap().action.aus());
    }
    // Frames through the FrameSource trait: onset..offset, equal to the clip's frames.
    let s = &ds.samples[3];
    let frames = sd.clip_frames(s).unwrap();
    assert_eq!(frames.len(), s.offset.unwrap() - s.onset.unwrap() + 1);
    let (on, ap) = sd.onset_apex(s).unwrap();
    assert_eq!(on, frames[0]);
    assert_eq!(ap, sd.clip(3).unwrap().frame(s.apex.unwrap()).unwrap());
    // Same seed, same dataset.
    let again = SynthDataset::generate(&cfg).unwrap();
    assert_eq!(again.dataset, sd.dataset);
    assert_eq!(again.clip(5).unwrap().frames(), sd.clip(5).unwrap().frames());
    assert!(SynthDatasetConfig { pseudo_datasets: 2, ..cfg }.validate().is_err());
}

/// Bilinear sample of a flow field at `(x, y)`.
fn flow_at(f: &FlowField, x: f32, y: f32) -> (f32, f32) {
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let g = |xx: usize, yy: usize| f.get(xx, yy).unwrap();
    let (a, b, c, d) = (g(x0, y0), g(x0 + 1, y0), g(x0, y0 + 1), g(x0 + 1, y0 + 1));
    let l = |p: f32, q: f32, r: f32, s: f32| {
        (p * (1.0 - fx) + q * fx) * (1.0 - fy) + (r * (1.0 - fx) + s * fx) * fy
    };
    (l(a.0, b.0, c.0, d.0), l(a.1, b.1, c.1, d.1))
}

#[test]
fn rendered_landmarks68_move_with_the_exact_flow_and_close_in_a_blink() {
    // A smile with a blink and head motion: each landmark of frame t0 lands, under the exact
    // forward flow t0 -> t1, on the same landmark of frame t1.
    let cfg = ClipConfig {
        synth: SynthConfig { fps: 100.0, ..SynthConfig::default() },
        amplitude_px: 2.0,
        n_frames: 40,
        onset: 2,
        apex: 20,
        offset: 38,
        blink: Some((10, 12)),
        seed: 3,
        ..ClipConfig::default()
    };
    let clip = cfg.build().unwrap();
    let l0 = clip.landmarks68(2).unwrap();
    assert_eq!(clip.landmarks68(0).unwrap().points.len(), 68);
    for t1 in [16usize, 20, 30] {
        let l1 = clip.landmarks68(t1).unwrap();
        let flow = clip.flow(2, t1).unwrap();
        let mut worst = 0.0f32;
        for (p0, p1) in l0.points.iter().zip(&l1.points) {
            let (u, v) = flow_at(&flow, p0.x, p0.y);
            worst = worst.max((p0.x + u - p1.x).hypot(p0.y + v - p1.y));
        }
        // The flow is exact on the pixel grid; bilinear sampling between pixels costs a little.
        assert!(worst < 0.05, "frame {t1}: {worst} px");
    }
    // The blink (frames 10-21, apex 16) closes the lids: the eye aspect ratio dips.
    let ear = |t: usize| {
        let p = clip.landmarks68(t).unwrap().points;
        let d = |a: usize, b: usize| p[a].distance(&p[b]);
        let e = |i: usize| (d(i + 1, i + 5) + d(i + 2, i + 4)) / (2.0 * d(i, i + 3));
        0.5 * (e(36) + e(42))
    };
    assert!(ear(16) < 0.85 * ear(8), "{} vs {}", ear(16), ear(8));
    assert!((ear(25) - ear(8)).abs() < 0.02 * ear(8));
}

#[test]
fn landmark_tracks_are_deterministic_and_blinks_placed_apart() {
    let mk = || {
        LandmarkTrackConfig {
            fps: 60.0,
            n_frames: 3600,
            landmark_noise_px: 0.3,
            seed: 4,
            ..Default::default()
        }
        .with_random_blinks(20.0, (0.15, 0.35), (0.5, 1.0), 0.5, 4)
        .unwrap()
    };
    let (a, b) = (mk(), mk());
    assert_eq!(a, b);
    assert_eq!(a.blinks.len(), 20);
    for w in a.blinks.windows(2) {
        assert!(w[1].onset > w[0].offset + 30, "{w:?}");
    }
    assert_eq!(a.build().unwrap().landmarks, b.build().unwrap().landmarks);
    assert!(LandmarkTrackConfig { fps: 0.0, ..Default::default() }.build().is_err());
}
