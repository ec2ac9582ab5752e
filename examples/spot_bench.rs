//! Spotting benchmark on mex-data's synthetic long videos (exact truth): seeds 0-5 at 30 fps
//! (20 s, 3 micro + 2 macro) and 200 fps (6 s, 2 micro + 1 macro), blinks, head motion and
//! sensor noise on. Every spotter variant runs on the aligned canonical crops; MEGC scoring
//! (IoU >= 0.5, micro and macro matched apart, blinks never ground truth so a spotted blink is a
//! false positive), pooled F1 overall / micro / macro per frame rate.
//!
//! ```sh
//! cargo run --release --example spot_bench                 # global, mdmd, regional
//! cargo run --release --example spot_bench -- regional -v  # one variant, every video listed
//! ```
#![allow(missing_docs)]

use mex::experiment::spotting::{score_video, spot_video, LongVideo, SynthLongSpec, TypedCounts};
use mex::experiment::{config::DatasetSpec, spotting::load_videos};
use mex::flow::spot::{MdmdConfig, SpotMethod, SpotterConfig};
use mex::metrics::SpotCounts;
use rayon::prelude::*;
use std::time::Instant;

fn variant(name: &str) -> anyhow::Result<SpotterConfig> {
    let base = SpotterConfig::default();
    Ok(match name {
        "global" => base.with_method(SpotMethod::Global),
        "mdmd" => base.with_method(SpotMethod::Mdmd(MdmdConfig::default())),
        "regional" => base,
        other => anyhow::bail!("unknown variant `{other}` (global, mdmd, regional)"),
    })
}

fn f1s(c: &TypedCounts) -> (f64, f64, f64) {
    (c.overall().f1(), c.micro.f1(), c.macro_.f1())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let mut names: Vec<&str> = args.iter().filter(|a| !a.starts_with('-')).map(String::as_str).collect();
    if names.is_empty() {
        names = vec!["global", "mdmd", "regional"];
    }
    let videos: Vec<LongVideo> = load_videos(&DatasetSpec::SyntheticLong(SynthLongSpec::default()), 0)?;
    println!("| variant | fps | F1 overall | F1 micro | F1 macro | TP/FP/FN | frames/s |");
    println!("|---|---|---|---|---|---|---|");
    for name in names {
        let cfg = variant(name)?;
        let t0 = Instant::now();
        let spots = videos
            .par_iter()
            .map(|v| spot_video(v, &cfg, 128, 32))
            .collect::<mex::Result<Vec<_>>>()?;
        let wall = t0.elapsed().as_secs_f64();
        let frames: usize = spots.iter().map(|s| s.frames).sum();
        let mut groups: Vec<(String, TypedCounts)> = Vec::new();
        for (v, s) in videos.iter().zip(&spots) {
            let c = score_video(v, s, 0.5)?;
            if verbose {
                let (o, _, _) = f1s(&c);
                println!("{} F1 {o:.2}", v.id);
                println!("  truth  {:?}", v.truth.iter().map(|(k, s)| (k.to_string(), s.onset, s.offset)).collect::<Vec<_>>());
                println!("  blinks {:?}", v.blinks.iter().map(|s| (s.onset, s.offset)).collect::<Vec<_>>());
                println!("  pred   {:?}", s.intervals.iter().map(|i| (i.kind.to_string(), i.onset, i.offset)).collect::<Vec<_>>());
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
