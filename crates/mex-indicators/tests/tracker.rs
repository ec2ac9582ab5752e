//! The tracker on hand-built faces: typed errors, blinks with known timing, rates, nulls with
//! reasons, asymmetry invariances, regional activity units.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mex_core::{Interval, LandmarkScheme, Landmarks, Point2};
use mex_indicators::{
    landmark_asymmetry, region_masks, Error, FrameInput, IndicatorConfig, IndicatorTracker, Region,
    RegionMotion, N_REGIONS,
};

/// A mirror-symmetric 68-point face about x = 100, inter-ocular distance 60 px, with the eyes'
/// lid gaps scaled by `open` (1 = neutral, EAR 0.3).
fn face(open: f64) -> Landmarks {
    let mut p = vec![Point2::new(0.0, 0.0); 68];
    // Jaw 0-16 on an arc.
    for (i, q) in p.iter_mut().enumerate().take(17) {
        let a = std::f64::consts::PI * (i as f64 / 16.0);
        *q = Point2::new((100.0 - 80.0 * a.cos()) as f32, (100.0 + 90.0 * a.sin()) as f32);
    }
    for (k, i) in (17..=21).enumerate() {
        p[i] = Point2::new(50.0 + 10.0 * k as f32, 70.0 - 3.0 * k as f32);
    }
    for (k, i) in (27..=30).enumerate() {
        p[i] = Point2::new(100.0, 90.0 + 12.0 * k as f32);
    }
    for (k, i) in (31..=33).enumerate() {
        p[i] = Point2::new(88.0 + 6.0 * k as f32, 140.0 + k as f32);
    }
    // Image-left eye 36-41: 30 px wide, lids 4.5 px from the axis (EAR 0.3 when open).
    let h = (4.5 * open) as f32;
    let eye = [(55.0, 0.0), (65.0, -h), (75.0, -h), (85.0, 0.0), (75.0, h), (65.0, h)];
    for (k, (x, y)) in eye.iter().enumerate() {
        p[36 + k] = Point2::new(*x, 90.0 + y);
    }
    // Mouth.
    p[48] = Point2::new(75.0, 165.0);
    p[49] = Point2::new(85.0, 160.0);
    p[50] = Point2::new(93.0, 158.0);
    p[51] = Point2::new(100.0, 159.0);
    p[59] = Point2::new(85.0, 172.0);
    p[58] = Point2::new(93.0, 175.0);
    p[57] = Point2::new(100.0, 176.0);
    p[60] = Point2::new(78.0, 165.0);
    p[61] = Point2::new(90.0, 164.0);
    p[62] = Point2::new(100.0, 164.0);
    p[67] = Point2::new(90.0, 168.0);
    p[66] = Point2::new(100.0, 168.0);
    p[8] = Point2::new(100.0, 190.0);
    // Mirror.
    for i in 0..68 {
        let j = mex_indicators::MIRROR_68[i];
        if j > i {
            p[j] = Point2::new(200.0 - p[i].x, p[i].y);
        }
    }
    Landmarks::new(LandmarkScheme::SixtyEight, p).unwrap()
}

fn push(t: &mut IndicatorTracker, time: f64, lm: Option<&Landmarks>) {
    t.push(&FrameInput { time_s: time, landmarks: lm, motion: None }).unwrap();
}

#[test]
fn typed_errors_never_panics() {
    let cfg = IndicatorConfig::default();
    assert!(matches!(IndicatorTracker::new(cfg, 0.0), Err(Error::InvalidParam { name: "fps", .. })));
    assert!(IndicatorTracker::new(cfg, f64::NAN).is_err());
    let mut t = IndicatorTracker::new(cfg, 30.0).unwrap();
    let good = face(1.0);
    // NaN landmarks (the fields are public, so a caller can build them).
    let mut bad = good.clone();
    bad.points[40].y = f32::NAN;
    let e = t.push(&FrameInput { time_s: 0.0, landmarks: Some(&bad), motion: None }).unwrap_err();
    assert!(matches!(e, Error::NonFiniteLandmark { frame: 0, index: 40, .. }), "{e}");
    // Wrong scheme.
    let five = Landmarks::new(LandmarkScheme::Five, good.points[..5].to_vec()).unwrap();
    let e = t.push(&FrameInput { time_s: 0.0, landmarks: Some(&five), motion: None }).unwrap_err();
    assert!(matches!(e, Error::WrongScheme { n_points: 5, .. }), "{e}");
    // Time going backwards or standing still.
    push(&mut t, 1.0, Some(&good));
    let e = t.push(&FrameInput { time_s: 1.0, landmarks: None, motion: None }).unwrap_err();
    assert!(matches!(e, Error::TimeNotIncreasing { frame: 1, .. }), "{e}");
    assert!(t.push(&FrameInput { time_s: 0.5, landmarks: None, motion: None }).is_err());
    // Negative motion.
    let mut m = RegionMotion::new([0.0; N_REGIONS]);
    m.px_per_frame[3] = -1.0;
    let e = t.push(&FrameInput { time_s: 2.0, landmarks: Some(&good), motion: Some(&m) }).unwrap_err();
    assert!(matches!(e, Error::InvalidMotion { region: "eye_right", .. }), "{e}");
    assert_eq!(t.len(), 1, "failed pushes add nothing");
    // Movement outside the recording.
    let e = t.clone().finish(Some(&[Interval::new(0, 0, 5).unwrap()])).unwrap_err();
    assert!(matches!(e, Error::InvalidMovement { offset: 5, n_frames: 1, .. }), "{e}");
    // No face at all.
    let mut t = IndicatorTracker::new(cfg, 30.0).unwrap();
    for i in 0..10 {
        push(&mut t, i as f64, None);
    }
    assert!(matches!(t.finish(None), Err(Error::NoFace { n_frames: 10 })));
    assert!(matches!(
        IndicatorTracker::new(cfg, 30.0).unwrap().finish(None),
        Err(Error::NoFace { n_frames: 0 })
    ));
}

/// Openness of the eyes in a blink with a triangular closure from `on` to `off`, deepest at the
/// middle.
fn openness(i: usize, on: usize, off: usize, depth: f64) -> f64 {
    if i < on || i > off {
        return 1.0;
    }
    let mid = 0.5 * (on + off) as f64;
    let half = 0.5 * (off - on) as f64;
    1.0 - depth * (1.0 - (i as f64 - mid).abs() / half)
}

#[test]
fn blinks_rate_and_intervals_on_a_known_minute() {
    // 60 s at 30 fps, blinks every 4 s (15 blinks), each 11 frames, depth 0.9; a 1 s face gap
    // at 30.5-31.5 s (no blink there).
    let fps = 30.0;
    let mut t = IndicatorTracker::new(IndicatorConfig::default(), fps).unwrap();
    let starts: Vec<usize> = (0..15).map(|k| 60 + 120 * k).collect();
    for i in 0..1800 {
        let time = i as f64 / fps;
        let gap = (30.5..31.5).contains(&time);
        let open = starts.iter().map(|&s| openness(i, s, s + 10, 0.9)).fold(1.0, f64::min);
        let lm = face(open);
        push(&mut t, time, (!gap).then_some(&lm));
    }
    let s = t.finish(None).unwrap();
    assert_eq!(s.get("n_face_frames"), Some(1770.0));
    assert!((s.get("face_time_s").unwrap() - 59.0).abs() < 1e-6);
    assert_eq!(s.blinks.len(), 15);
    for (b, &st) in s.blinks.iter().zip(&starts) {
        // Closure at the middle; edges where the closure passes 25 % of its depth (closure
        // fractions 0.2, 0.4, ... 1.0 over frames st + 1 ... st + 5).
        assert_eq!(b.closure_frame, st + 5);
        assert_eq!((b.onset_frame, b.offset_frame), (st + 2, st + 8), "{b:?}");
        assert!((b.amplitude - 0.27).abs() < 1e-3 && b.complete);
        assert!(s.in_blink(st + 2) && s.in_blink(st + 8) && !s.in_blink(st + 1) && !s.in_blink(st + 9));
    }
    assert!((s.get("blink_rate_per_min").unwrap() - 15.0 * 60.0 / 59.0).abs() < 1e-9);
    // Intervals of 4 s, except the one spanning the face gap, which is left out.
    assert!((s.get("ibi_mean_s").unwrap() - 4.0).abs() < 1e-9);
    assert!(s.get("ibi_sd_s").unwrap() < 1e-9);
    assert_eq!(s.opendbm_blinks.len(), 15);
    assert!((s.get("opendbm_blinkdur_mean_s").unwrap() - 4.0).abs() < 1e-9);
    assert!(s.get("asymmetry_composite_mean").unwrap() < 1e-5);
    assert!(
        s.get("expressivity_score").is_none()
            && s.reasons["expressivity_score"].contains("no regional motion")
    );
    assert!(s.reasons["movements_per_min"].contains("no spotted movements"));
}

#[test]
fn asymmetry_is_invariant_to_similarity_and_grows_with_the_displacement() {
    let f = face(1.0);
    let moved = |d: f32| {
        let mut g = f.clone();
        g.points[48].y -= d;
        g.points[49].y -= 0.5 * d;
        g
    };
    let a0 = landmark_asymmetry(&moved(6.0)).unwrap();
    // Rotate by 20 degrees, scale by 1.7, translate.
    let s = mex_core::Similarity::from_params(1.7, 20f64.to_radians(), 13.0, -40.0);
    let a1 = landmark_asymmetry(&moved(6.0).transformed(&s)).unwrap();
    assert!((a0.mouth - a1.mouth).abs() < 1e-5 && (a0.composite - a1.composite).abs() < 1e-5);
    // Mouth-only asymmetry: (6 + 3) px over the 12 mouth pairs, in inter-ocular units (60 px).
    assert!((a0.mouth - 9.0 / 60.0 / 12.0).abs() < 1e-4, "{a0:?}");
    assert!(a0.brows < 1e-6 && a0.eyes < 1e-6);
    let mut last = 0.0;
    for d in [1.0, 2.0, 4.0, 8.0] {
        let m = landmark_asymmetry(&moved(d)).unwrap().mouth;
        assert!(m > last);
        last = m;
    }
}

#[test]
fn activity_units_noise_floor_and_movement_asymmetry() {
    // 100 frames at 50 fps: noise 0.1 px/frame everywhere; a movement at frames 40-49 with
    // 1.0 px/frame on the image-left mouth corner and 0.5 on the right.
    let fps = 50.0;
    let lm = face(1.0);
    let mut t = IndicatorTracker::new(IndicatorConfig::default(), fps).unwrap();
    for i in 0..100 {
        let mut v = [0.1 + 0.01 * (i % 3) as f64; N_REGIONS];
        if (40..50).contains(&i) {
            v[Region::MouthCornerLeft.index()] = 1.0;
            v[Region::MouthCornerRight.index()] = 0.5;
        }
        let m = RegionMotion::new(v);
        let row =
            t.push(&FrameInput { time_s: i as f64 / fps, landmarks: Some(&lm), motion: Some(&m) }).unwrap();
        // px/frame -> inter-ocular distances per second: v * fps / 60.
        let a = row.activity.unwrap();
        assert!((a[0] - v[0] * fps / 60.0).abs() < 1e-9);
    }
    let s = t.finish(Some(&[Interval::new(40, 45, 49).unwrap()])).unwrap();
    let frac = s.get("activity_mouth_corner_left_active_fraction").unwrap();
    assert!((frac - 0.1).abs() < 1e-12, "{frac}");
    assert_eq!(s.get("activity_brow_left_active_fraction"), Some(0.0));
    // Energies: per frame, three noise regions per side plus 1^2 (left) or 0.5^2 (right); the
    // px -> inter-ocular-per-second factor cancels in the ratio.
    let (mut el, mut er) = (0.0, 0.0);
    for i in 40..50 {
        let v: f64 = 0.1 + 0.01 * (i % 3) as f64;
        el += 3.0 * v * v + 1.0;
        er += 3.0 * v * v + 0.25;
    }
    let ma = s.movements[0].motion_asymmetry.unwrap();
    assert!((ma - (el - er) / (el + er)).abs() < 1e-9, "{ma}");
    assert!(s.get("expressivity_score").unwrap() > 0.0);
    assert_eq!(s.get("movement_count"), Some(1.0));
    // 2 s of face: rates are null with the reason.
    assert!(s.get("movements_per_min").is_none() && s.reasons["movements_per_min"].contains("minimum"));
}

#[test]
fn region_masks_scale_with_the_face() {
    let f = face(1.0);
    let m1 = region_masks(&f, 400, 400).unwrap();
    let s = mex_core::Similarity::from_params(2.0, 0.0, 0.0, 0.0);
    let m2 = region_masks(&f.transformed(&s), 400, 400).unwrap();
    for r in Region::ALL {
        let a1 = m1.masks[r.index()].iter().filter(|&&b| b).count() as f64;
        let a2 = m2.masks[r.index()].iter().filter(|&&b| b).count() as f64;
        assert!(a1 > 10.0, "{r:?} {a1}");
        assert!((a2 / a1 - 4.0).abs() < 0.4, "{r:?} {a1} {a2}");
    }
    // Mirror-symmetric face: left and right regions have (nearly) equal areas.
    let area = |r: Region| m1.masks[r.index()].iter().filter(|&&b| b).count() as i64;
    for (l, r) in [(Region::BrowLeft, Region::BrowRight), (Region::CheekLeft, Region::CheekRight)] {
        assert!((area(l) - area(r)).abs() <= area(l) / 10, "{l:?}");
    }
}

/// Seeded random inputs (wild coordinates, collapsed eyes, gaps, odd motion, random movement
/// intervals): every call returns a value or a typed error, never a panic, and a finished
/// summary holds only finite values or nulls with reasons.
#[test]
fn random_inputs_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for round in 0..40 {
        let fps = [0.5, 30.0, 200.0][round % 3];
        let mut t = IndicatorTracker::new(IndicatorConfig::default(), fps).unwrap();
        let mut time = 0.0;
        for _ in 0..200 {
            time += 0.001 + next() / fps;
            let scale = [1e-9, 1.0, 100.0, 1e30][(next() * 4.0) as usize % 4] as f32;
            let mut lm = face(next());
            for p in lm.points.iter_mut() {
                if next() < 0.1 {
                    *p = Point2::new(scale * next() as f32, scale * next() as f32);
                }
            }
            if next() < 0.05 {
                for i in 36..48 {
                    lm.points[i] = Point2::new(5.0, 5.0);
                }
            }
            let mut m = RegionMotion::new([0.0; N_REGIONS]);
            for v in m.px_per_frame.iter_mut() {
                *v = [0.0, next(), 1e6, -1.0, f64::NAN][(next() * 5.0) as usize % 5];
            }
            let face_here = next() < 0.8;
            let _ = t.push(&FrameInput {
                time_s: if next() < 0.02 { time - 1.0 } else { time },
                landmarks: face_here.then_some(&lm),
                motion: (next() < 0.5).then_some(&m),
            });
        }
        let n = t.len();
        let a = (next() * (n + 2) as f64) as usize;
        let b = (next() * (n + 2) as f64) as usize;
        let mv = [Interval { onset: a.min(b), apex: a.min(b), offset: a.max(b) }];
        match t.finish(Some(&mv)) {
            Ok(s) => {
                for (k, v) in &s.values {
                    match v {
                        Some(x) => assert!(x.is_finite(), "{k}"),
                        None => assert!(s.reasons.contains_key(k), "{k}"),
                    }
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// Variable frame rate: durations, face time and rates follow the timestamps, not the nominal
/// frame rate.
#[test]
fn variable_frame_rate_uses_timestamps() {
    // 30 s, frame intervals alternating 20 ms and 46.7 ms (nominal 30 fps), one blink every 5 s.
    let mut t = IndicatorTracker::new(IndicatorConfig::default(), 30.0).unwrap();
    let (mut time, mut times) = (0.0, Vec::new());
    for i in 0..900 {
        times.push(time);
        let open = (0..6).map(|k| openness(i, 60 + 150 * k, 70 + 150 * k, 0.9)).fold(1.0, f64::min);
        let lm = face(open);
        push(&mut t, time, Some(&lm));
        time += if i % 2 == 0 { 0.020 } else { 0.140 / 3.0 };
    }
    let s = t.finish(None).unwrap();
    // Face time: the first frame counts one nominal period, then every interval.
    let want = 1.0 / 30.0 + times[899] - times[0];
    assert!((s.get("face_time_s").unwrap() - want).abs() < 1e-9);
    assert_eq!(s.blinks.len(), 6);
    let b = s.blinks[0];
    assert!((b.duration_s - (times[68] - times[62] + 1.0 / 30.0)).abs() < 1e-9, "{b:?}");
    assert!((s.get("blink_rate_per_min").unwrap() - 6.0 * 60.0 / want).abs() < 1e-9);
}
