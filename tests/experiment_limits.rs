//! Experiment files with absurd numbers, unknown keys or names that would escape the output
//! folder: each is a config error naming the field, before any work starts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex::experiment::ExperimentConfig;

const BASE: &str = r#"
name = "NAME"
seed = 5
[dataset]
kind = "synthetic"
n_subjects = 3
clips_per_class = CLIPS
size = 48
[evaluation]
bootstrap = BOOT
permutations = 50
[[variants]]
name = "dis"
flow = { method = "dis" }
TRAIN
"#;

fn cfg(name: &str, clips: &str, boot: &str, train: &str) -> Result<ExperimentConfig, String> {
    let text =
        BASE.replace("NAME", name).replace("CLIPS", clips).replace("BOOT", boot).replace("TRAIN", train);
    ExperimentConfig::from_toml_str(&text, "x.toml").map_err(|e| e.to_string())
}

const TRAIN: &str = "train = { lr = 0.005, epochs = 4, batch_size = 8 }";

#[test]
fn limits_and_unknown_keys_are_config_errors() {
    assert!(cfg("tiny", "[1, 1, 1]", "50", TRAIN).is_ok());
    let e = cfg("../../x", "[1, 1, 1]", "50", TRAIN).unwrap_err();
    assert!(e.contains("`name`") && e.contains("path separators"), "{e}");
    let e = cfg("tiny", "[1, 1, 1]", "4294967296", TRAIN).unwrap_err();
    assert!(e.contains("evaluation.bootstrap") && e.contains("100000"), "{e}");
    let e = cfg("tiny", "[1, 1000000000, 1]", "50", TRAIN).unwrap_err();
    assert!(e.contains("clips_per_class"), "{e}");
    let e = cfg("tiny", "[1, 1, 1]", "50", "train = { lr = 0.005, epochs = 4, batch_size = 8, bogus = 1 }")
        .unwrap_err();
    assert!(e.contains("bogus"), "{e}");
    let big = format!("{TRAIN}\nmodel = {{ model = \"off_apex_net\", variant = \"merged\", in_channels = 2, hidden = 1000000000 }}");
    let e = cfg("tiny", "[1, 1, 1]", "50", &big).unwrap_err();
    assert!(e.contains("parameters") || e.contains("hidden"), "{e}");
}
