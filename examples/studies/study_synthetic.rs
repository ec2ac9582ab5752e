//! A synthetic screening study with a known effect, end to end through `mex::study`.
//!
//! ```text
//! cargo run --release --example study_synthetic -- [OUT_DIR] [--effect G] [--seed S] [--columns] [--measured]
//! ```
//!
//! With `--columns` the indicators are written as columns of the table instead of analysis JSON
//! files (the form of `examples/studies/synthetic.csv`).
//!
//! With `--measured` every recording is a synthetic 68-point landmark track of one minute at
//! 30 fps (`mex_data::synth::LandmarkTrackConfig`: 0.3 px landmark noise, inter-ocular distance
//! 100 px) whose blinks (count per minute) and smile (peak amplitude, in inter-ocular distances)
//! follow the subject's drawn values, and the three indicators are measured from the landmarks
//! by `mex_indicators::IndicatorTracker` as `mex analyze` measures them: `blink_rate_per_min`,
//! `mouth_corner_excursion_peak_iod` (expressivity) and `asymmetry_composite_mean` (symmetric
//! faces: no group difference). The measured values are linear in the drawn ones (blink counts
//! rounded to whole blinks), so the true standardised effects are the same.
//!
//! Draws two groups of subjects (`patient`, `control`), two sessions each, and writes one analysis
//! JSON per recording (the `"indicators"` object `mex analyze` writes) with three indicators:
//!
//! * `expressivity`: lower in patients by a true standardised effect `G` (default 0.8) on subject
//!   means;
//! * `blink_rate` (blinks per minute): lower in patients by the same standardised effect;
//! * `asymmetry`: no group difference (true effect 0).
//!
//! plus a clinical score that rises as expressivity falls, a table `recordings.csv` referencing the
//! JSON files, and a study file `study.toml`; then runs the study into `OUT_DIR/report` and prints
//! whether each interval covers the true effect. The values are drawn from known distributions,
//! not rendered as video clips and re-measured: the example checks the statistics, not the face
//! analysis.

use anyhow::{bail, Context, Result};
use mex::study::{run_study, StudyConfig, StudyMode, StudyOutcome};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Between-subject SD, within-subject (session) SD, subjects per group, sessions per subject.
const SD_B: f64 = 1.0;
const SD_W: f64 = 0.5;
const N_PER_GROUP: usize = 30;
const SESSIONS: usize = 2;

/// One minute of synthetic landmarks with `blink_rate` blinks (rounded) and one smile of
/// `smile_iod`; returns the measured (expressivity, blink rate, asymmetry).
fn measure_track(blink_rate: f64, smile_iod: f64, seed: u64) -> Result<(f64, f64, f64)> {
    use mex::data::synth::{FacialAction, LandmarkTrackConfig, SidedExpression};
    use mex::indicators::{FrameInput, IndicatorConfig, IndicatorTracker};
    let fps = 30.0;
    let mut cfg = LandmarkTrackConfig {
        fps: fps as f32,
        n_frames: 1800,
        interocular_px: 100.0,
        landmark_noise_px: 0.3,
        seed,
        ..LandmarkTrackConfig::default()
    };
    cfg.expressions.push(SidedExpression {
        action: FacialAction::Smile,
        amplitude_iod: smile_iod as f32,
        gains: [1.0, 1.0],
        onset: 900,
        apex: 915,
        offset: 945,
    });
    let track = cfg.with_random_blinks(blink_rate as f32, (0.15, 0.3), (0.8, 1.0), 0.6, seed)?.build()?;
    let mut t = IndicatorTracker::new(IndicatorConfig::default(), fps)?;
    for (i, lm) in track.landmarks.iter().enumerate() {
        t.push(&FrameInput { time_s: i as f64 / fps, landmarks: Some(lm), motion: None })?;
    }
    let s = t.finish(None)?;
    let get = |k: &str| s.get(k).with_context(|| format!("{k} not measured"));
    Ok((
        get("mouth_corner_excursion_peak_iod")?,
        get("blink_rate_per_min")?,
        get("asymmetry_composite_mean")?,
    ))
}

fn main() -> Result<()> {
    let mut out = PathBuf::from("target/study-synthetic");
    let (mut effect, mut seed, mut columns, mut measured) = (0.8f64, 1u64, false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--effect" => effect = args.next().context("--effect G")?.parse()?,
            "--seed" => seed = args.next().context("--seed S")?.parse()?,
            "--columns" => columns = true,
            "--measured" => measured = true,
            s if s.starts_with("--") => bail!("unknown option {s}"),
            s => out = PathBuf::from(s),
        }
    }
    // The true effect is defined on subject means (the unit of the group comparison): the SD of a
    // subject's mean over SESSIONS recordings is sqrt(SD_B² + SD_W² / SESSIONS).
    let sd_mean = (SD_B * SD_B + SD_W * SD_W / SESSIONS as f64).sqrt();
    let shift = effect * sd_mean;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n01 = Normal::new(0.0, 1.0)?;
    let rec_dir = out.join("recordings");
    std::fs::create_dir_all(&rec_dir)?;
    let mut csv = if columns {
        String::from("subject,group,session,score,age,sex,site,expressivity,blink_rate,asymmetry\n")
    } else {
        String::from("recording,subject,group,session,score,age,sex,site\n")
    };
    for g in 0..2 {
        let (group, patient) = if g == 0 { ("patient", true) } else { ("control", false) };
        for s in 0..N_PER_GROUP {
            let subject = format!("{}{s:02}", &group[..1]);
            let d = if patient { -shift } else { 0.0 };
            let expr_b = d + SD_B * n01.sample(&mut rng);
            let blink_b = d + SD_B * n01.sample(&mut rng);
            let asym_b = SD_B * n01.sample(&mut rng);
            let score = if patient {
                20.0 - 4.0 * expr_b + 2.0 * n01.sample(&mut rng)
            } else {
                5.0 + n01.sample(&mut rng)
            };
            let age = 45.0 + 12.0 * n01.sample(&mut rng);
            let sex = if s % 2 == 0 { "F" } else { "M" };
            let site = if s % 3 == 0 { "site-B" } else { "site-A" };
            for session in 1..=SESSIONS {
                let w = |rng: &mut ChaCha8Rng| SD_W * n01.sample(rng);
                let mut expressivity = 2.0 + 0.5 * (expr_b + w(&mut rng));
                let mut blink_rate = 17.0 + 5.0 * (blink_b + w(&mut rng));
                let mut asymmetry = 0.1 + 0.03 * (asym_b + w(&mut rng));
                if measured {
                    let rec_seed =
                        seed.wrapping_mul(1_000_003).wrapping_add((g * 1000 + s * 10 + session) as u64);
                    // smile peak 0.1 iod on average (0.02 iod per unit of the drawn value)
                    let smile_iod = (0.1 + 0.04 * (expressivity - 2.0)).max(0.005);
                    (expressivity, blink_rate, asymmetry) =
                        measure_track(blink_rate.max(1.0), smile_iod, rec_seed)?;
                }
                if columns {
                    writeln!(
                        csv,
                        "{subject},{group},{session},{score:.2},{age:.0},{sex},{site},{expressivity:.4},{blink_rate:.3},{asymmetry:.5}"
                    )?;
                    continue;
                }
                let name = format!("{subject}_s{session}.json");
                let json = serde_json::json!({
                    "indicators": {
                        "expressivity": expressivity,
                        "blink_rate": blink_rate,
                        "asymmetry": asymmetry,
                    },
                    "n_frames": 1800, "fps": 30.0, "duration_s": 60.0,
                });
                mex::io::write_json_atomic(&rec_dir.join(&name), &json)?;
                writeln!(
                    csv,
                    "recordings/{name},{subject},{group},{session},{score:.2},{age:.0},{sex},{site}"
                )?;
            }
        }
    }
    mex::io::write_atomic(&out.join("recordings.csv"), csv.as_bytes())?;
    let toml = format!(
        "# written by `cargo run --example study_synthetic` (true effect {effect}, seed {seed})\n\
         name = \"synthetic (true g = -{effect} for expressivity and blink_rate, 0 for asymmetry)\"\n\
         table = \"recordings.csv\"\npositive = \"patient\"\nnegative = \"control\"\nseed = {seed}\n"
    );
    mex::io::write_atomic(&out.join("study.toml"), toml.as_bytes())?;
    let cfg = StudyConfig::from_file(&out.join("study.toml"))?;
    let StudyOutcome::Report(r) = run_study(&cfg, &out.join("report"), StudyMode::All, None)? else {
        bail!("no report");
    };
    for i in &r.indicators {
        let truth = if i.name == "asymmetry" { 0.0 } else { -effect };
        let g = i.hedges_g.context("Hedges' g not computable")?;
        println!(
            "{:<13} true g {truth:+.2}  estimated {:+.2} [{:+.2}, {:+.2}]  covers: {}  BH p {:.4}",
            i.name,
            g.estimate,
            g.ci_low,
            g.ci_high,
            g.covers(truth),
            i.p_adjusted.unwrap_or(f64::NAN)
        );
    }
    if let Some(c) = &r.classifier {
        println!("classifier AUC {:.3} [{:.3}, {:.3}]", c.auc.estimate, c.auc.ci_low, c.auc.ci_high);
    }
    println!("report: {}", out.join("report/report.md").display());
    Ok(())
}
