//! The indicators on real landmarks: dlib's own pipeline (HOG detector + 68-point predictor)
//! on the project's test videos, committed as fixtures by `scripts/indicators_dlib_ear.py`
//! together with the EAR computed by numpy and OpenDBM's blinks found by SciPy.
//! `single_face.mp4` has one blink, eyes closed at frame 27; `face_noface.mov` is the same
//! person for frames 0-71, then no face.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mex_core::{LandmarkScheme, Landmarks, Point2};
use mex_indicators::{FrameInput, IndicatorConfig};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}_dlib.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn landmarks(f: &Value) -> Option<Landmarks> {
    let pts = f["landmarks"].as_array()?;
    let p: Vec<Point2> = pts
        .iter()
        .map(|q| Point2::new(q[0].as_f64().unwrap() as f32, q[1].as_f64().unwrap() as f32))
        .collect();
    Some(Landmarks::new(LandmarkScheme::SixtyEight, p).unwrap())
}

#[test]
fn one_blink_closed_at_frame_27_in_both_videos_and_ear_matches_numpy() {
    for (name, n_face) in [("single_face", 72.0), ("face_noface", 72.0)] {
        let v = load(name);
        let fps = v["fps"].as_f64().unwrap();
        let mut t = IndicatorConfig::default().build(fps).unwrap();
        for f in v["frames"].as_array().unwrap() {
            let i = f["frame"].as_u64().unwrap() as usize;
            let lm = landmarks(f);
            let row =
                t.push(&FrameInput { time_s: i as f64 / fps, landmarks: lm.as_ref(), motion: None }).unwrap();
            match f["ear_mean"].as_f64() {
                Some(e) => {
                    assert!((row.ear_mean.unwrap() - e).abs() < 1e-6, "{name} frame {i}");
                    assert!((row.ear_left.unwrap() - f["ear_left"].as_f64().unwrap()).abs() < 1e-6);
                }
                None => assert!(row.ear_mean.is_none() && !row.face),
            }
        }
        let s = t.finish(None).unwrap();
        assert_eq!(s.get("n_face_frames"), Some(n_face), "{name}");
        assert_eq!(s.blinks.len(), 1, "{name}: {:?}", s.blinks);
        let b = s.blinks[0];
        assert!((26..=28).contains(&b.closure_frame), "{name}: {b:?}");
        // Eyes fully closed: a complete blink.
        assert!(b.complete, "{name}: {b:?}");
        // Closing from about frame 25, open again by frame 30.
        assert!(b.onset_frame >= 24 && b.offset_frame <= 30, "{name}: {b:?}");
        let want: Vec<usize> = v["opendbm_blink_frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let got: Vec<usize> = s.opendbm_blinks.iter().map(|b| b.closure_frame).collect();
        assert_eq!(got, want, "{name}: OpenDBM blinks as SciPy finds them");
        // 2.4 s of face: no rate, with the reason.
        assert!(s.get("blink_rate_per_min").is_none());
        println!("{name}: blink {b:?}");
    }
}
