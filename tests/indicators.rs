//! Validation of mex-indicators on synthetic ground truth from mex-data's landmark tracks:
//! blink detection (F1, onset/offset timing) over many blinks, frame rates and noise levels;
//! landmark and motion asymmetry against the true left/right ratio; expressivity against the
//! true amplitude. The figures printed here (`--nocapture`) are the ones in docs/indicators.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex::data::synth::{FacialAction, LandmarkTrack, LandmarkTrackConfig, SidedExpression, TrackHeadMotion};
use mex_core::{Interval, Point2};
use mex_indicators::{
    point_in_polygon, region_polygons, Blink, FrameInput, IndicatorConfig, RegionMotion, Summary, N_REGIONS,
};

/// Pushes a track's noisy landmarks (and, when given, regional motion) through the tracker.
fn run(track: &LandmarkTrack, motion: Option<&[RegionMotion]>, movements: Option<&[Interval]>) -> Summary {
    let fps = f64::from(track.config().fps);
    let mut t = IndicatorConfig::default().build(fps).unwrap();
    for (i, lm) in track.landmarks.iter().enumerate() {
        let m = motion.map(|m| &m[i]);
        t.push(&FrameInput { time_s: track.time_s(i), landmarks: Some(lm), motion: m }).unwrap();
    }
    t.finish(movements).unwrap()
}

/// One-to-one matching of detections to true blinks: a detection matches a free true blink when
/// its closure frame lies within the true blink's onset..=offset.
fn match_blinks(track: &LandmarkTrack, det: &[Blink]) -> (usize, usize, usize, Vec<(i64, i64)>) {
    let truth = &track.config().blinks;
    let edge = IndicatorConfig::default().blinks.edge_fraction as f32;
    let mut used = vec![false; truth.len()];
    let mut tp = 0;
    let mut errs = Vec::new();
    for d in det {
        if let Some(k) = (0..truth.len())
            .find(|&k| !used[k] && (truth[k].onset..=truth[k].offset).contains(&d.closure_frame))
        {
            used[k] = true;
            tp += 1;
            let (on, off) = truth[k].edges(edge).unwrap();
            errs.push((d.onset_frame as i64 - on as i64, d.offset_frame as i64 - off as i64));
        }
    }
    (tp, det.len() - tp, truth.len() - tp, errs)
}

#[test]
fn blinks_f1_and_timing_over_frame_rates_and_noise() {
    let (mut tp, mut fp, mut fneg, mut n_true) = (0, 0, 0, 0);
    let (mut within, mut n_err) = (0, 0);
    let (mut otp, mut ofp, mut ofn) = (0, 0, 0);
    for (k, &fps) in [30.0f32, 60.0, 120.0, 200.0].iter().enumerate() {
        for (j, &noise) in [0.0f32, 0.25, 0.5].iter().enumerate() {
            let seed = (10 * k + j) as u64;
            let track = LandmarkTrackConfig {
                fps,
                n_frames: (60.0 * fps) as usize,
                interocular_px: 100.0,
                landmark_noise_px: noise,
                head: TrackHeadMotion { translation_px: 2.0, rotation_deg: 2.0, frequency_hz: 0.3 },
                seed,
                ..LandmarkTrackConfig::default()
            }
            .with_random_blinks(20.0, (0.15, 0.35), (0.5, 1.0), 0.5, seed)
            .unwrap()
            .build()
            .unwrap();
            let s = run(&track, None, None);
            let (a, b, c, errs) = match_blinks(&track, &s.blinks);
            let w = errs.iter().filter(|e| e.0.abs() <= 1 && e.1.abs() <= 1).count();
            let (oa, ob, oc, _) = match_blinks(&track, &s.opendbm_blinks);
            println!(
                "fps {fps:>5} noise {noise:.2} px: {} blinks, adaptive tp {a} fp {b} fn {c}, edges within 1 frame \
                 {w}/{}; OpenDBM tp {oa} fp {ob} fn {oc}",
                track.config().blinks.len(),
                errs.len()
            );
            n_true += track.config().blinks.len();
            (tp, fp, fneg) = (tp + a, fp + b, fneg + c);
            (otp, ofp, ofn) = (otp + oa, ofp + ob, ofn + oc);
            within += w;
            n_err += errs.len();
        }
    }
    let f1 = 2.0 * tp as f64 / (2 * tp + fp + fneg) as f64;
    let of1 = 2.0 * otp as f64 / (2 * otp + ofp + ofn).max(1) as f64;
    let frac = within as f64 / n_err as f64;
    println!(
        "adaptive: {n_true} blinks, F1 {f1:.3}, onset and offset within 1 frame {frac:.3}; OpenDBM F1 {of1:.3}"
    );
    assert!(n_true >= 200, "{n_true}");
    assert!(f1 >= 0.95, "F1 {f1}");
    assert!(frac >= 0.95, "edges within one frame: {frac}");
}

/// Mean magnitude of the true displacement change between frames `t − 1` and `t` over a grid of
/// points inside each region of the neutral face (pixels per frame): what a perfect
/// head-motion-compensated flow would measure.
fn true_motion(track: &LandmarkTrack) -> Vec<RegionMotion> {
    let polys = region_polygons(track.neutral()).unwrap();
    let grids: Vec<Vec<Point2>> = polys
        .iter()
        .map(|(_, poly)| {
            let (x0, x1) = poly.iter().fold((f32::MAX, f32::MIN), |a, p| (a.0.min(p.x), a.1.max(p.x)));
            let (y0, y1) = poly.iter().fold((f32::MAX, f32::MIN), |a, p| (a.0.min(p.y), a.1.max(p.y)));
            let mut g = Vec::new();
            let step = 2.0;
            let mut y = y0;
            while y <= y1 {
                let mut x = x0;
                while x <= x1 {
                    if point_in_polygon(poly, x, y) {
                        g.push(Point2::new(x, y));
                    }
                    x += step;
                }
                y += step;
            }
            g
        })
        .collect();
    (0..track.landmarks.len())
        .map(|t| {
            let mut v = [0.0; N_REGIONS];
            if t > 0 {
                for (r, g) in grids.iter().enumerate() {
                    let s: f64 = g
                        .iter()
                        .map(|p| {
                            let (a, b) = track.displacement(t, p.x, p.y);
                            let (c, d) = track.displacement(t - 1, p.x, p.y);
                            f64::from((a - c).hypot(b - d))
                        })
                        .sum();
                    v[r] = s / g.len().max(1) as f64;
                }
            }
            RegionMotion::new(v)
        })
        .collect()
}

/// Spearman rank correlation (no ties in the inputs used here).
fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let rank = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let (rx, ry) = (rank(x), rank(y));
    let n = x.len() as f64;
    let d2: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - b) * (a - b)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

fn expression_track(action: FacialAction, amp: f32, gains: [f32; 2], noise: f32, seed: u64) -> LandmarkTrack {
    LandmarkTrackConfig {
        fps: 30.0,
        n_frames: 120,
        interocular_px: 100.0,
        expressions: vec![SidedExpression {
            action,
            amplitude_iod: amp,
            gains,
            onset: 40,
            apex: 55,
            offset: 75,
        }],
        landmark_noise_px: noise,
        seed,
        ..LandmarkTrackConfig::default()
    }
    .build()
    .unwrap()
}

#[test]
fn asymmetry_follows_the_true_left_right_ratio() {
    let ratios = [1.0f32, 0.8, 0.6, 0.4, 0.2, 0.0];
    for (action, amp) in [(FacialAction::Smile, 0.06f32), (FacialAction::LipCornerDepressor, 0.08)] {
        let (mut truth, mut idx, mut mot, mut mot_truth, mut pct) = (vec![], vec![], vec![], vec![], vec![]);
        for (k, &r) in ratios.iter().enumerate() {
            let tr = expression_track(action, amp, [1.0, r], 0.2, k as u64);
            let motion = true_motion(&tr);
            let s = run(&tr, Some(&motion), Some(&[Interval::new(40, 55, 75).unwrap()]));
            // Landmark index: mean mouth asymmetry over the frames around the apex.
            let mut t = IndicatorConfig::default().build(30.0).unwrap();
            let mut near_apex = Vec::new();
            for (i, lm) in tr.landmarks.iter().enumerate() {
                let row =
                    t.push(&FrameInput { time_s: tr.time_s(i), landmarks: Some(lm), motion: None }).unwrap();
                if (50..=60).contains(&i) {
                    near_apex.push(row.asymmetry.unwrap().mouth);
                }
            }
            truth.push(f64::from(1.0 - r));
            idx.push(near_apex.iter().sum::<f64>() / near_apex.len() as f64);
            let ma = s.movements[0].motion_asymmetry.unwrap();
            mot.push(ma);
            let r2 = f64::from(r * r);
            mot_truth.push((1.0 - r2) / (1.0 + r2));
            pct.push(s.get("mouth_excursion_asymmetry_pct").unwrap());
        }
        let rho = spearman(&truth, &idx);
        let rho_m = spearman(&truth, &mot);
        let max_err = mot.iter().zip(&mot_truth).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("{action:?} amplitude {amp} IOD, ratios {ratios:?}");
        println!("  landmark mouth asymmetry {idx:.4?}, Spearman vs 1 - ratio {rho:.3}");
        println!("  motion asymmetry {mot:.3?} (truth (1 - r^2)/(1 + r^2) {mot_truth:.3?}), max error {max_err:.3}");
        println!(
            "  Emotrics mouth excursion asymmetry % {pct:.1?} (truth {:.0?})",
            truth.iter().map(|t| 100.0 * t).collect::<Vec<_>>()
        );
        assert!(rho >= 0.95, "{rho}");
        assert!(rho_m >= 0.95, "{rho_m}");
        assert!(max_err < 0.05, "{max_err}");
        for (p, t) in pct.iter().zip(&truth) {
            assert!((p - 100.0 * t).abs() < 7.0, "{p} vs {}", 100.0 * t);
        }
    }
}

#[test]
fn expressivity_rises_with_amplitude() {
    let amps = [0.0f32, 0.01, 0.02, 0.04, 0.08];
    for action in [FacialAction::Smile, FacialAction::BrowRaise] {
        let mut scores = Vec::new();
        for (k, &a) in amps.iter().enumerate() {
            let tr = expression_track(action, a, [1.0, 1.0], 0.2, 100 + k as u64);
            // Measured motion = truth + a seeded noise floor of 0.02-0.06 px/frame.
            let motion: Vec<RegionMotion> = true_motion(&tr)
                .into_iter()
                .enumerate()
                .map(|(t, mut m)| {
                    for (r, v) in m.px_per_frame.iter_mut().enumerate() {
                        *v += 0.02 + 0.04 * (((t * 31 + r * 17) % 13) as f64 / 12.0);
                    }
                    m
                })
                .collect();
            let s = run(&tr, Some(&motion), None);
            scores.push(s.get("expressivity_score").unwrap());
        }
        let rho = spearman(&amps.iter().map(|&a| f64::from(a)).collect::<Vec<_>>(), &scores);
        println!("{action:?}: amplitudes {amps:?} IOD -> expressivity {scores:.4?} IOD/s, Spearman {rho:.3}");
        assert!(scores.windows(2).all(|w| w[1] > w[0]), "{scores:?}");
        assert!(scores[0] < 0.1 * scores[4]);
    }
}

/// How the indicators move under landmark-level degradations: landmark noise, face size (with a
/// fixed 0.5 px noise), frame rate and in-plane head rotation. A neutral face with 20 blinks per
/// minute (depths 0.5-1) and one smile per 10 s (0.04 IOD, symmetric), 60 s per condition.
#[test]
fn robustness_of_indicators_under_landmark_degradations() {
    let base = |fps: f32, iod: f32, noise: f32, rot: f32, seed: u64| {
        let n = (60.0 * fps) as usize;
        let per = (10.0 * fps) as usize;
        let expressions = (0..6)
            .map(|k| SidedExpression {
                action: FacialAction::Smile,
                amplitude_iod: 0.04,
                gains: [1.0, 1.0],
                onset: k * per + per / 4,
                apex: k * per + per / 4 + (0.4 * fps) as usize,
                offset: k * per + per / 4 + (1.0 * fps) as usize,
            })
            .collect();
        LandmarkTrackConfig {
            fps,
            n_frames: n,
            interocular_px: iod,
            expressions,
            landmark_noise_px: noise,
            head: TrackHeadMotion { translation_px: 0.02 * iod, rotation_deg: rot, frequency_hz: 0.2 },
            seed,
            ..LandmarkTrackConfig::default()
        }
        .with_random_blinks(20.0, (0.15, 0.35), (0.5, 1.0), 0.5, seed)
        .unwrap()
        .build()
        .unwrap()
    };
    println!(
        "| condition | blink F1 (adaptive) | blink F1 (OpenDBM) | EAR baseline | asymmetry composite (IOD) |"
    );
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    let conds: Vec<(String, LandmarkTrack)> = vec![
        ("reference: 30 fps, IOD 100 px, noise 0.25 px".into(), base(30.0, 100.0, 0.25, 0.0, 1)),
        ("noise 0.5 px".into(), base(30.0, 100.0, 0.5, 0.0, 2)),
        ("noise 1 px".into(), base(30.0, 100.0, 1.0, 0.0, 3)),
        ("noise 2 px".into(), base(30.0, 100.0, 2.0, 0.0, 4)),
        ("IOD 40 px (noise 0.5 px)".into(), base(30.0, 40.0, 0.5, 0.0, 5)),
        ("IOD 200 px (noise 0.5 px)".into(), base(30.0, 200.0, 0.5, 0.0, 6)),
        ("15 fps".into(), base(15.0, 100.0, 0.25, 0.0, 7)),
        ("60 fps".into(), base(60.0, 100.0, 0.25, 0.0, 8)),
        ("200 fps".into(), base(200.0, 100.0, 0.25, 0.0, 9)),
        ("head rotation ±10°".into(), base(30.0, 100.0, 0.25, 10.0, 10)),
    ];
    for (name, tr) in &conds {
        let s = run(tr, None, None);
        let f1 = |det: &[Blink]| {
            let (tp, fp, fneg, _) = match_blinks(tr, det);
            2.0 * tp as f64 / (2 * tp + fp + fneg).max(1) as f64
        };
        let (fa, fo) = (f1(&s.blinks), f1(&s.opendbm_blinks));
        let asym = s.get("asymmetry_composite_mean").unwrap();
        println!("| {name} | {fa:.3} | {fo:.3} | {:.3} | {asym:.4} |", s.get("ear_baseline").unwrap());
        rows.push((fa, asym));
    }
    // Landmark noise inflates the asymmetry index of a symmetric face (a known bias).
    assert!(rows[0].1 < rows[1].1 && rows[1].1 < rows[2].1 && rows[2].1 < rows[3].1);
    // In-plane head rotation is normalised away.
    assert!((rows[9].1 - rows[0].1).abs() < 0.2 * rows[0].1, "{rows:?}");
    // Blinks stay detectable up to 1 px of noise at IOD 100 px.
    assert!(rows[..3].iter().all(|r| r.0 >= 0.9), "{rows:?}");
}

/// Regions on mex's canonical aligned crop: rasterised once from the 68-point template in crop
/// pixels; every region lies inside the crop, with the expected vertical order and sizes.
#[test]
fn regions_on_the_canonical_aligned_crop() {
    use mex::align::AlignConfig;
    use mex_core::{LandmarkScheme, Landmarks};
    use mex_indicators::{region_masks, Region};
    let al = AlignConfig::default().build().unwrap();
    let size = al.config().size as usize;
    let tpl =
        Landmarks::new(LandmarkScheme::SixtyEight, al.template_pixels(LandmarkScheme::SixtyEight)).unwrap();
    let masks = region_masks(&tpl, size, size).unwrap();
    let centroid = |r: Region| {
        let m = &masks.masks[r.index()];
        let (mut sy, mut n) = (0.0f64, 0.0f64);
        for (i, _) in m.iter().enumerate().filter(|(_, b)| **b) {
            sy += (i / size) as f64;
            n += 1.0;
        }
        (n, sy / n.max(1.0))
    };
    let iod = mex_indicators::interocular_distance(&tpl).unwrap();
    for r in Region::ALL {
        let (n, _) = centroid(r);
        // Each region covers between 0.5 % and 40 % of an IOD x IOD square... of the crop.
        assert!(n > 0.005 * iod * iod && n < 0.4 * (size * size) as f64, "{r:?}: {n} px");
    }
    let y = |r: Region| centroid(r).1;
    assert!(y(Region::BrowLeft) < y(Region::EyeLeft) && y(Region::EyeLeft) < y(Region::CheekLeft));
    assert!(y(Region::Nose) < y(Region::UpperLip) && y(Region::UpperLip) < y(Region::Chin));
    // A uniform flow-magnitude plane averages to itself in every region.
    let means = masks.regional_means(&vec![0.25f32; size * size]).unwrap();
    assert!(means.iter().all(|m| (m.unwrap() - 0.25).abs() < 1e-9));
}
