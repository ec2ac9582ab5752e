//! Times MTCNN, dlib 68-point landmarks and alignment on one image; prints JSON (used by
//! benches/peers/align_peers.py to compare with facenet-pytorch and dlib in the same run).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p mex-align --example align_timing -- IMAGE [REPEATS] [DLIB_MODEL]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use mex_align::{AlignConfig, DlibRect, Mtcnn, ShapePredictor};

fn median_ms(mut f: impl FnMut(), repeats: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// CPU time (user + system) of the whole process so far, in ms (from /proc, Linux only; 0 elsewhere).
fn process_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses): state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) * 10.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map(String::as_str).unwrap_or("crates/mex-align/tests/data/frame640x480.png");
    let repeats: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let img = mex_align::load_image(path)?;
    let rgb = img.to_rgb8();
    let det = Mtcnn::new()?;
    let faces = det.detect_rgb(&rgb)?;
    let mtcnn = median_ms(|| drop(det.detect_rgb(&rgb).unwrap()), repeats);
    // CPU time per detection (all threads), which a loaded machine inflates less than wall time.
    let cpu_reps = repeats.max(50);
    let c0 = process_cpu_ms();
    for _ in 0..cpu_reps {
        drop(det.detect_rgb(&rgb)?);
    }
    let mtcnn_cpu = (process_cpu_ms() - c0) / cpu_reps as f64;
    let mut dlib = None;
    if let (Some(model), Some(face)) = (args.get(3), faces.first()) {
        let sp = ShapePredictor::from_file(model)?;
        let gray = img.to_luma8();
        let rect = DlibRect::from_bbox(&face.bbox);
        dlib = Some(median_ms(|| drop(sp.predict(&gray, rect)), repeats * 50));
    }
    let mut align = None;
    if let Some(face) = faces.first() {
        let al = AlignConfig::default().build()?;
        let g = mex_core::gray_f32_from_dynamic(&img)?;
        align = Some(median_ms(|| drop(al.align_gray(&g, &face.landmarks).unwrap()), repeats * 10));
    }
    println!(
        "{{\"threads\": {}, \"faces\": {}, \"mtcnn_ms\": {mtcnn:.3}, \"mtcnn_cpu_ms\": {mtcnn_cpu:.2}, \"dlib68_ms\": {}, \"align_ms\": {}}}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
        faces.len(),
        dlib.map_or("null".into(), |v| format!("{v:.4}")),
        align.map_or("null".into(), |v| format!("{v:.4}")),
    );
    Ok(())
}
