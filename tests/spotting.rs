//! Spotting experiments end to end on a tiny synthetic case (one 8 s video at 30 fps with one
//! micro- and one macro-expression and blinks): report, resume, and malformed configurations.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex::experiment::{run_experiment, ExperimentConfig, RunOptions, RunOutcome};

const TINY: &str = r#"
name = "tiny-spotting"
seed = 3
[task]
kind = "spotting"
[dataset]
kind = "synthetic_long"
seeds = 1
blinks_per_minute = 15.0
[[dataset.groups]]
fps = 30.0
duration_s = 8.0
n_micro = 1
n_macro = 1
[evaluation]
bootstrap = 50
[[variants]]
name = "global"
spotter = { method = { kind = "global" } }
[[variants]]
name = "regional"
"#;

#[test]
fn tiny_spotting_experiment_reports_and_resumes() {
    let cfg = ExperimentConfig::from_toml_str(TINY, "tiny.toml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let r = match run_experiment(&cfg, &out, &RunOptions::default()).unwrap() {
        RunOutcome::Spotting(r) => *r,
        other => panic!("expected a spotting report, got {other:?}"),
    };
    assert_eq!((r.n_videos, r.n_micro, r.n_macro), (1, 1, 1));
    assert_eq!(r.n_blinks, 2);
    assert_eq!(r.variants.len(), 2);
    assert_eq!(r.comparisons.len(), 1);
    for v in &r.variants {
        // every ground-truth interval is either found or missed
        assert_eq!(v.micro.counts.tp + v.micro.counts.fn_, 1, "{}", v.name);
        assert_eq!(v.macro_.counts.tp + v.macro_.counts.fn_, 1, "{}", v.name);
        assert_eq!(v.overall.counts, v.micro.counts + v.macro_.counts);
    }
    // the default (regional) spotter reports no blink and nothing that is not there; on this
    // video it finds the macro-expression and misses the micro-expression
    let reg = &r.variants[1];
    assert_eq!(reg.method, "regional");
    assert_eq!(reg.predictions_on_blinks, 0, "{:?}", reg.overall);
    assert_eq!((reg.overall.counts.tp, reg.overall.counts.fp), (1, 0), "{:?}", reg.overall);
    assert_eq!(reg.macro_.counts.tp, 1, "{:?}", reg.macro_);
    assert!(out.join("report.md").exists() && out.join("report.json").exists());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| regional | regional |"), "{md}");

    // a rerun reuses the spots on disk
    let spots = out.join("spots/regional.json");
    let t0 = std::fs::metadata(&spots).unwrap().modified().unwrap();
    let r2 = match run_experiment(&cfg, &out, &RunOptions::default()).unwrap() {
        RunOutcome::Spotting(r) => *r,
        other => panic!("{other:?}"),
    };
    assert_eq!(std::fs::metadata(&spots).unwrap().modified().unwrap(), t0);
    assert_eq!(r2.variants[1].overall.counts, reg.overall.counts);
}

#[test]
fn malformed_spotting_configs_name_the_field() {
    let err = |text: &str| ExperimentConfig::from_toml_str(text, "x.toml").unwrap_err().to_string();
    // a spotting task on a recognition dataset
    let e = err(&TINY.replace("kind = \"synthetic_long\"", "kind = \"synthetic\"").replace(
        "seeds = 1\nblinks_per_minute = 15.0\n[[dataset.groups]]\nfps = 30.0\nduration_s = 8.0\nn_micro = 1\nn_macro = 1\n",
        "",
    ));
    assert!(e.contains("dataset.kind"), "{e}");
    // a long-video dataset without the spotting task
    let e = err(&TINY.replace("[task]\nkind = \"spotting\"\n", ""));
    assert!(e.contains("dataset.kind") && e.contains("spotting"), "{e}");
    // events that cannot fit
    let e = err(&TINY.replace("duration_s = 8.0", "duration_s = 0.5"));
    assert!(e.contains("dataset.groups[0]"), "{e}");
    // an invalid spotter
    let e = err(&TINY.replace("{ kind = \"global\" }", "{ kind = \"regional\", high = 1.0, low = 3.0 }"));
    assert!(e.contains("variants[0].spotter") && e.contains("high"), "{e}");
    let e = err(&TINY.replace("kind = \"spotting\"", "kind = \"spotting\"\niou_threshold = 0.0"));
    assert!(e.contains("task.iou_threshold"), "{e}");
}

/// A rendered face (mex-data's synthetic generator, exact timing) with a blink and, 0.13 s after
/// it, a smile: the gap rule joins them into one event, whose blink part must be set aside and
/// whose smile must be reported with its extent.
#[test]
fn regional_spotter_sets_a_blink_aside_and_keeps_the_smile_next_to_it() {
    use mex::align::AlignConfig;
    use mex::core::GrayF32;
    use mex::data::synth::{
        EventKind, ExpressionEvent, FacialAction, SubjectStyle, SynthConfig, Synthesizer,
    };
    use mex::flow::spot::SpotterConfig;

    let synth = Synthesizer::astronaut(SynthConfig { fps: 30.0, ..SynthConfig::default() }).unwrap();
    let face = synth.subject(&SubjectStyle::neutral()).unwrap();
    let ev = |action, amplitude_px, onset, apex, offset, kind| ExpressionEvent {
        action,
        amplitude_px,
        onset,
        apex,
        offset,
        kind,
    };
    let blink = ev(FacialAction::Blink, 2.96, 60, 64, 68, EventKind::Blink);
    let smile = ev(FacialAction::Smile, 2.5, 72, 84, 96, EventKind::Macro);
    let run = |events: &[ExpressionEvent]| {
        let clip = synth.clip(&face, 160, events, 7).unwrap();
        let aligner = AlignConfig { size: 128, ..AlignConfig::default() }.build().unwrap();
        let t = aligner.transform(&clip.landmarks5()).unwrap();
        let (w, h) = clip.size();
        let mut raw = GrayF32::new(w, h);
        let mut sp = SpotterConfig::for_fps(30.0).build().unwrap();
        let mut found = Vec::new();
        for i in 0..clip.len() {
            clip.render_into(i, &mut raw).unwrap();
            let mut a = GrayF32::new(128, 128);
            mex::align::align::warp_gray_into(&raw, &t, &mut a).unwrap();
            sp.push(a).unwrap();
            found.extend(sp.take_events());
        }
        found.extend(sp.finish());
        (found, sp.take_blinks())
    };

    let (found, blinks) = run(&[blink, smile]);
    assert_eq!(blinks.len(), 1, "{blinks:?} {found:?}");
    assert!(blinks[0].iou(&blink.interval().unwrap()) >= 0.5, "{blinks:?}");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].interval.iou(&smile.interval().unwrap()) >= 0.5, "{found:?}");

    // the blink alone: set aside, nothing reported
    let (found, blinks) = run(&[blink]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(blinks.len(), 1, "{blinks:?}");
}

/// The real-data path of spotting experiments: a CAS(ME)² tree (the loader's coding-file
/// fixture) whose two video folders hold the 72 frames of a real face video
/// (MEX_TEST_DATA/videos/single_face.mp4, decoded by FFmpeg), numbered from 540 so that the
/// fixture's macro-expression of s15 (557-572-608) spans the subject's blink and smile
/// (frames 16-68 of the clip). Frames are read in number order, the face aligned with MTCNN on
/// the first frame, and every annotation is scored.
#[test]
fn spotting_experiment_on_a_casme_sq_tree_of_real_frames() {
    let Some(data) = std::env::var_os("MEX_TEST_DATA").map(std::path::PathBuf::from) else {
        eprintln!("skipped: MEX_TEST_DATA not set");
        return;
    };
    if !std::process::Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: ffmpeg not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rawpic");
    for v in ["s15/15_0101disgustingteeth", "s16/16_0401anger1"] {
        let d = root.join(v);
        std::fs::create_dir_all(&d).unwrap();
        let st = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(data.join("videos/single_face.mp4"))
            .args(["-q:v", "2", "-start_number", "540"])
            .arg(d.join("img%d.jpg"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let coding = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/mex-data/tests/fixtures/casme_sq_code_final.xlsx");
    let toml = format!(
        r#"
name = "casme-sq-tree"
[task]
kind = "spotting"
[dataset]
kind = "long_video"
dataset = "casme_sq"
coding_file = {coding:?}
frames_root = {root:?}
[evaluation]
bootstrap = 20
[[variants]]
name = "regional"
"#
    );
    let cfg = ExperimentConfig::from_toml_str(&toml, "casme.toml").unwrap();
    let out = dir.path().join("run");
    let r = match run_experiment(&cfg, &out, &RunOptions::default()).unwrap() {
        RunOutcome::Spotting(r) => *r,
        other => panic!("expected a spotting report, got {other:?}"),
    };
    // the fixture's three annotations: s15 macro 557-608 and micro 1200-1210, one in s16
    assert_eq!(r.n_videos, 2);
    assert_eq!(r.n_micro + r.n_macro, 3, "{r:?}");
    let v = &r.variants[0];
    assert_eq!(v.overall.counts.tp + v.overall.counts.fn_, 3);
    // The fixture's annotation is made to span the subject's blink and smile; whether the
    // spotter reports them as one movement or sets the blink aside and reports the smile's
    // strongest part depends on the blink rule's margin on this JPEG copy (the video itself gives
    // one movement, crates/mex-cli/tests/flow.rs). Either way a movement is spotted inside the
    // annotated span of every video, in the report's spots: at least 4 of its frames (frames
    // counted inclusively, as the IoU counts them).
    let spots: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("spots/regional.json")).unwrap()).unwrap();
    for video in spots["videos"].as_array().unwrap() {
        let inside = video["intervals"].as_array().unwrap().iter().any(|i| {
            let (on, off) = (i["onset"].as_u64().unwrap(), i["offset"].as_u64().unwrap());
            on <= 608 && off >= 557 && off.min(608) + 1 - on.max(557) >= 4
        });
        assert!(inside, "no movement spotted in the blink-and-smile span: {video}");
    }
}

/// The held-out example names what it measures: seeds 300-329 of both groups, the regional
/// spotter as it is, and the same spotter without the three options its comment lists.
#[test]
fn the_held_out_example_says_what_it_compares() {
    use mex::flow::spot::{HeadMotion, SpotMethod, SpotterConfig};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/experiments/spotting_heldout.toml");
    let cfg = ExperimentConfig::from_file(&path).unwrap();
    assert_eq!(cfg.seed, 300);
    let videos = mex::experiment::spotting::load_videos(&cfg.dataset, cfg.seed).unwrap();
    assert_eq!(videos.len(), 60);
    assert!(
        videos.iter().any(|v| v.id == "30fps/seed300") && videos.iter().any(|v| v.id == "200fps/seed329")
    );
    let spotter = |i: usize| cfg.variants[i].spotter.clone().unwrap_or_default();
    assert_eq!(spotter(0), SpotterConfig::default());
    let plain = spotter(1);
    assert_eq!(plain.head_motion, HeadMotion::Similarity { step: 4 });
    let SpotMethod::Regional(r) = &plain.method else { panic!("{plain:?}") };
    assert!(r.join_s == 0.0 && !r.head_regression);
    plain.build().unwrap();
}
