//! Batch detection and the motion-gated tracker.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use image::RgbImage;
use mex_align::{detect_batch, FaceTracker, Mtcnn, TrackerConfig};
use std::path::Path;

fn frame() -> RgbImage {
    image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rotated20.png")).unwrap().to_rgb8()
}

#[test]
fn batch_equals_single_and_tracker_redetects_on_motion() {
    let det = Mtcnn::new().unwrap();
    let a = frame();
    // The same frame shifted right by 12 px (the face moves).
    let mut b = RgbImage::new(a.width(), a.height());
    image::imageops::overlay(&mut b, &a, 12, 0);
    let frames = vec![a.clone(), b.clone(), a.clone()];
    let batch = detect_batch(&det, &frames).unwrap();
    for (f, got) in frames.iter().zip(&batch) {
        assert_eq!(&det.detect_rgb(f).unwrap(), got);
    }
    assert!((batch[1][0].bbox.x0 - batch[0][0].bbox.x0 - 12.0).abs() < 2.0);

    let mut tr = FaceTracker::new(det.clone(), TrackerConfig::default());
    assert_eq!(tr.track(&a).unwrap(), batch[0]);
    assert_eq!(tr.track(&a).unwrap(), batch[0]);
    assert_eq!(tr.detections(), 1, "an unchanged frame reuses the detection");
    assert_eq!(tr.track(&b).unwrap(), batch[1]);
    assert_eq!(tr.detections(), 2, "motion triggers a new detection");
    let mut forced = FaceTracker::new(det, TrackerConfig { max_gap: 1, ..TrackerConfig::default() });
    for _ in 0..4 {
        forced.track(&a).unwrap();
    }
    assert_eq!(forced.detections(), 2);
}
