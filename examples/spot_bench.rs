//! Spotting benchmark on mex-data's synthetic long videos (exact truth): seeds 0-5 at 30 fps
//! (20 s, 3 micro + 2 macro) and 200 fps (6 s, 2 micro + 1 macro), blinks, head motion and
//! sensor noise on. Every spotter variant runs on the aligned canonical crops; MEGC scoring
//! (IoU >= 0.5, micro and macro matched apart, blinks never ground truth so a spotted blink is a
//! false positive), pooled F1 overall / micro / macro per frame rate.
//!
//! ```sh
//! cargo run --release --example spot_bench                 # global, mdmd, regional
//! cargo run --release --example spot_bench -- regional -v  # one variant, every video listed
//! cargo run --release --example spot_bench -- --seed=100    # held-out seeds 100-105
//! cargo run --release --example spot_bench -- --seed=300 --videos=30  # 30 videos per rate
//! ```
#![allow(missing_docs)]

use mex::experiment::spotting::{score_video, spot_video, LongVideo, SynthLongSpec, TypedCounts};
use mex::experiment::{config::DatasetSpec, spotting::load_videos};
use mex::flow::spot::{HeadMotion, MdmdConfig, Reference, RegionalConfig, SpotMethod, SpotterConfig};
use mex::metrics::SpotCounts;
use rayon::prelude::*;
use std::time::Instant;

/// A variant by name; `KEY=VALUE` arguments override the regional parameters (`high`, `low`,
/// `blink_ratio`, `smooth_s`, `cell`, `refresh_s`, `join_s`, `head_regression=0|1`, ...) and
/// the head-motion fit (`trim=0` for the plain least-squares similarity).
fn variant(name: &str, over: &[(String, f64)]) -> anyhow::Result<SpotterConfig> {
    let mut base = SpotterConfig::default();
    let mut r = RegionalConfig::default();
    for (k, v) in over {
        match k.as_str() {
            "high" => r.high = *v as f32,
            "low" => r.low = *v as f32,
            "blink_ratio" => r.blink_ratio = *v as f32,
            "smooth_s" => r.smooth_s = *v,
            "cell" => r.cell = *v as f32,
            "floor" => r.noise_floor = *v as f32,
            "refresh_s" => r.reference = Reference::Keyframe { refresh_s: *v },
            "window_s" => r.window_s = *v,
            "rel" => r.rel_extent = *v as f32,
            "warmup_s" => r.warmup_s = *v,
            "widen" => r.widen = *v as f32,
            "join_s" => r.join_s = *v,
            "head_regression" => r.head_regression = *v != 0.0,
            "trim" if *v == 0.0 => base.head_motion = HeadMotion::Similarity { step: 4 },
            "layout" if *v == 2.0 => {
                use mex::flow::spot::{
                    Region,
                    RegionRole::{Expression as X, Eye as E},
                };
                let g =
                    |n: &str, a, b, c, d, role| Region { name: n.into(), x0: a, y0: b, x1: c, y1: d, role };
                r.regions = vec![
                    g("brow_l", 0.18, 0.06, 0.47, 0.19, X),
                    g("brow_r", 0.53, 0.06, 0.82, 0.19, X),
                    g("eye_l", 0.24, 0.21, 0.45, 0.30, E),
                    g("eye_r", 0.54, 0.21, 0.75, 0.30, E),
                    g("nose", 0.41, 0.30, 0.59, 0.47, X),
                    g("cheek_l", 0.20, 0.33, 0.41, 0.50, X),
                    g("cheek_r", 0.59, 0.33, 0.80, 0.50, X),
                    g("mouth_l", 0.24, 0.50, 0.50, 0.72, X),
                    g("mouth_r", 0.50, 0.50, 0.76, 0.72, X),
                ];
            }
            other => anyhow::bail!("unknown parameter `{other}`"),
        }
    }
    Ok(match name {
        "global" => base.with_method(SpotMethod::Global),
        "mdmd" => base.with_method(SpotMethod::Mdmd(MdmdConfig::default())),
        "regional" => base.with_method(SpotMethod::Regional(r)),
        "regional-lag" => {
            base.with_method(SpotMethod::Regional(RegionalConfig { reference: Reference::Lag, ..r }))
        }
        other => anyhow::bail!("unknown variant `{other}` (global, mdmd, regional, regional-lag)"),
    })
}

fn f1s(c: &TypedCounts) -> (f64, f64, f64) {
    (c.overall().f1(), c.micro.f1(), c.macro_.f1())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let over: Vec<(String, f64)> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap_or(f64::NAN))))
        .collect();
    let only: Option<&str> = args.iter().find_map(|a| a.strip_prefix("--only="));
    let seed: u64 = match args.iter().find_map(|a| a.strip_prefix("--seed=")) {
        Some(s) => s.parse()?,
        None => 0,
    };
    let mut names: Vec<&str> =
        args.iter().filter(|a| !a.starts_with('-') && !a.contains('=')).map(String::as_str).collect();
    if names.is_empty() {
        names = vec!["global", "mdmd", "regional"];
    }
    let n: usize = match args.iter().find_map(|a| a.strip_prefix("--videos=")) {
        Some(s) => s.parse()?,
        None => 6,
    };
    let spec = SynthLongSpec { seeds: n, ..SynthLongSpec::default() };
    let mut videos: Vec<LongVideo> = load_videos(&DatasetSpec::SyntheticLong(spec), seed)?;
    if let Some(g) = only {
        videos.retain(|v| v.group == g);
    }
    println!("| variant | fps | F1 overall | F1 micro | F1 macro | TP/FP/FN | frames/s |");
    println!("|---|---|---|---|---|---|---|");
    for name in names {
        let cfg = variant(name, &over)?;
        let t0 = Instant::now();
        let spots =
            videos.par_iter().map(|v| spot_video(v, &cfg, 128, 32)).collect::<mex::Result<Vec<_>>>()?;
        let wall = t0.elapsed().as_secs_f64();
        let frames: usize = spots.iter().map(|s| s.frames).sum();
        let mut groups: Vec<(String, TypedCounts)> = Vec::new();
        for (v, s) in videos.iter().zip(&spots) {
            let c = score_video(v, s, 0.5)?;
            if verbose {
                let (o, _, _) = f1s(&c);
                println!("{} F1 {o:.2}", v.id);
                println!(
                    "  truth  {:?}",
                    v.truth.iter().map(|(k, s)| (k.to_string(), s.onset, s.offset)).collect::<Vec<_>>()
                );
                println!("  blinks {:?}", v.blinks.iter().map(|s| (s.onset, s.offset)).collect::<Vec<_>>());
                println!(
                    "  pred   {:?}",
                    s.intervals.iter().map(|i| (i.kind.to_string(), i.onset, i.offset)).collect::<Vec<_>>()
                );
                println!("  set aside as blinks {:?}", s.blinks);
            }
            match groups.iter_mut().find(|(g, _)| *g == v.group) {
                Some((_, t)) => {
                    t.micro += c.micro;
                    t.macro_ += c.macro_;
                }
                None => groups.push((v.group.clone(), c)),
            }
        }
        for (g, c) in &groups {
            let (o, mi, ma) = f1s(c);
            let oc: SpotCounts = c.overall();
            println!(
                "| {name} | {g} | {o:.3} | {mi:.3} | {ma:.3} | {}/{}/{} | {:.0} |",
                oc.tp,
                oc.fp,
                oc.fn_,
                frames as f64 / wall
            );
        }
    }
    Ok(())
}
