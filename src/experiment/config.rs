//! Experiment files: a dataset, a protocol and a list of pipeline variants, read from TOML.

use crate::{Error, Result};
use mex_classify::{ModelConfig, TrainConfig};
use mex_data::manifest::{DataFiles, MegcFiles};
use mex_flow::spot::SpotterConfig;
use mex_flow::strain::StstnetInputConfig;
use mex_flow::FlowConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use super::spotting::{LongVideoSpec, SynthLongSpec, TaskSpec};

/// An experiment: every variant is trained and evaluated under the protocol on the dataset.
///
/// ```toml
/// name = "flow-methods"
/// seed = 7
///
/// [dataset]
/// kind = "synthetic"
/// n_subjects = 6
///
/// [protocol]
/// kind = "loso"
///
/// [[variants]]
/// name = "tvl1"
/// flow = { method = "tvl1" }
///
/// [[variants]]
/// name = "farneback"
/// flow = { method = "farneback" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the experiment (used in reports).
    pub name: String,
    /// Seed of everything random (data synthesis, weight initialisation, shuffling, bootstrap).
    /// It overrides each variant's `train.seed`.
    #[serde(default)]
    pub seed: u64,
    /// The data.
    pub dataset: DatasetSpec,
    /// What is measured: recognition (the default) or spotting.
    #[serde(default, skip_serializing_if = "TaskSpec::is_recognition")]
    pub task: TaskSpec,
    /// The evaluation protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// Confidence intervals and tests.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// The pipeline variants to compare (at least one, unique names).
    pub variants: Vec<VariantConfig>,
}

/// Where the samples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatasetSpec {
    /// The synthetic generator of `mex-data` (exact ground truth, no real faces).
    Synthetic(SyntheticSpec),
    /// A `mex-data` manifest (JSON written by `Dataset::write_json`) whose samples point to frame
    /// folders on disk: any loaded dataset (CASME II, SAMM, SMIC, the MEGC composite, ...).
    Manifest {
        /// The manifest file.
        path: PathBuf,
    },
    /// Precomputed STSTNet inputs in the released layout `<subject>/u_test/<label>/*.png`
    /// (the flow stage is skipped; every variant must take 3x28x28 inputs).
    StstnetInputs {
        /// The `inputs` folder.
        path: PathBuf,
    },
    /// CASME II as shipped: `coding` (the coding spreadsheet), `frames` (the folder holding
    /// `sub01`, ...) and `release` (`raw`, default, or `cropped`). Labels: the 5-class set.
    Casme2(DataFiles),
    /// SAMM (short clips) as shipped: `coding` and `frames`. Labels: SAMM's 8 emotions.
    Samm(DataFiles),
    /// SMIC-HS as shipped: `frames` (the `HS` folder). Labels: negative, positive, surprise.
    Smic(DataFiles),
    /// CAS(ME)² as shipped: `coding` and `frames` (`rawpic`). One sample per annotated movement,
    /// labelled macro / micro.
    #[serde(alias = "casme-sq")]
    CasmeSq(DataFiles),
    /// SAMM Long Videos as shipped: `coding` and `frames`. One sample per annotated movement,
    /// labelled macro / micro.
    #[serde(alias = "samm-lv")]
    SammLv(DataFiles),
    /// The MEGC2019 composite (3 classes) from CASME II, SAMM and SMIC-HS as shipped: tables
    /// `casme2`, `samm`, `smic` (each with the keys above) and `exclusions` (`official`, default,
    /// or `meb`).
    #[serde(alias = "megc")]
    Megc2019(MegcFiles),
    /// Synthetic long videos for spotting (`[task] kind = "spotting"`).
    SyntheticLong(SynthLongSpec),
    /// CAS(ME)² or SAMM Long Videos for spotting (`[task] kind = "spotting"`).
    LongVideo(LongVideoSpec),
}

/// Parameters of a synthetic dataset (a subset of `mex_data::synth::SynthDatasetConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticSpec {
    /// Number of subjects.
    pub n_subjects: usize,
    /// Clips per subject for negative, positive, surprise.
    pub clips_per_class: [usize; 3],
    /// 1 or 3 pseudo-datasets (3 mimics the MEGC composite: different fps and noise).
    pub pseudo_datasets: usize,
    /// Side of the face crop, pixels.
    pub size: u32,
    /// Frames per second of the first pseudo-dataset.
    pub fps: f32,
    /// Sensor noise standard deviation, gray levels.
    pub noise_sigma: f32,
    /// Peak displacement range of the expressions, pixels.
    pub amplitude_px: (f32, f32),
    /// Whether the head moves slightly (translation and rotation).
    pub head_motion: bool,
    /// Probability of a blink in a clip.
    pub blink_probability: f32,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            n_subjects: 6,
            clips_per_class: [3, 3, 3],
            pseudo_datasets: 1,
            size: 64,
            fps: 200.0,
            noise_sigma: 1.0,
            amplitude_px: (1.0, 2.5),
            head_motion: true,
            blink_probability: 0.1,
        }
    }
}

/// How samples are split into folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Protocol {
    /// Leave one subject out: one fold per subject.
    #[default]
    Loso,
    /// The MEGC2019 composite protocol: LOSO over the subjects of every dataset together, scores
    /// pooled over all folds and broken down per dataset.
    Composite,
    /// Leave one dataset out.
    Lodo,
    /// k folds of whole subjects (seeded assignment).
    Kfold {
        /// Number of folds (>= 2).
        k: usize,
    },
}

impl Protocol {
    /// Short name for reports.
    pub fn name(&self) -> String {
        match self {
            Protocol::Loso => "loso".into(),
            Protocol::Composite => "composite".into(),
            Protocol::Lodo => "lodo".into(),
            Protocol::Kfold { k } => format!("kfold{k}"),
        }
    }
}

/// Confidence intervals and paired tests of the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Subject-bootstrap resamples for the confidence intervals.
    pub bootstrap: usize,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Random relabellings of the paired permutation test between variants.
    pub permutations: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self { bootstrap: 1000, confidence: 0.95, permutations: 2000 }
    }
}

/// Face alignment before flow.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlignSpec {
    /// Frames are used as they are (already face crops, as the synthetic clips and the
    /// datasets' cropped releases are).
    #[default]
    None,
    /// MTCNN on the onset frame, then the onset's similarity transform applied to onset and apex.
    Mtcnn {
        /// Side of the aligned crop, pixels.
        size: u32,
    },
}

/// One pipeline variant: alignment, flow, input builder, model and training recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Unique name (used for folders, so letters, digits, `-` and `_` only).
    pub name: String,
    /// Face alignment.
    #[serde(default)]
    pub align: AlignSpec,
    /// Optical flow between onset and apex.
    #[serde(default = "default_flow")]
    pub flow: FlowConfig,
    /// Flow → network input (size, strain variant). The model's input shape must match:
    /// 3 channels take (u, v, strain), 2 channels take (u, v).
    #[serde(default)]
    pub input: StstnetInputConfig,
    /// The classifier.
    #[serde(default)]
    pub model: ModelConfig,
    /// The training recipe (its `seed` is replaced by the experiment's).
    #[serde(default = "default_train")]
    pub train: TrainConfig,
    /// The spotter of a spotting experiment (default: `SpotterConfig::default()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotter: Option<SpotterConfig>,
}

fn default_flow() -> FlowConfig {
    FlowConfig::TvL1(Default::default())
}

/// A short recipe that suits the small synthetic experiments (the STSTNet reference recipe is
/// `TrainConfig::ststnet_reference()`).
fn default_train() -> TrainConfig {
    TrainConfig { lr: 5e-3, epochs: 60, batch_size: 32, shuffle: true, ..TrainConfig::default() }
}

impl ExperimentConfig {
    /// Reads and validates an experiment file. Errors name the file and the offending field.
    /// A `.json` file (such as the `config.json` a run writes beside its report) is read as JSON.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_config_text(path)?;
        let file = path.display().to_string();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            let cfg: ExperimentConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
                file: file.clone(),
                field: format!("line {} column {}", e.line(), e.column()),
                reason: e.to_string(),
            })?;
            cfg.validate(&file)?;
            return Ok(cfg);
        }
        Self::from_toml_str(&text, &file)
    }

    /// Parses and validates TOML; `file` is used in messages.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self> {
        let cfg: ExperimentConfig = toml::from_str(text).map_err(|e| {
            let (field, reason) = locate_in_tagged_tables(text).unwrap_or_else(|| {
                (
                    e.span().map(|s| describe_span(text, s)).unwrap_or_else(|| "<document>".into()),
                    e.message().to_string(),
                )
            });
            Error::Config { file: file.into(), field, reason }
        })?;
        if let Some((field, reason)) = locate_in_tagged_tables(text) {
            return Err(Error::Config { file: file.into(), field, reason });
        }
        cfg.validate(file)?;
        Ok(cfg)
    }

    /// Checks the values that the types cannot: unique names, ranges, model input shapes.
    pub fn validate(&self, file: &str) -> Result<()> {
        let bad = |field: String, reason: String| Error::Config { file: file.into(), field, reason };
        if self.name.trim().is_empty() {
            return Err(bad("name".into(), "must not be empty".into()));
        }
        // The name appears in file names and reports: no path separators, no `..`.
        if self.name.chars().count() > 100
            || !self.name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ' | '.'))
            || self.name.contains("..")
        {
            return Err(bad(
                "name".into(),
                format!(
                    "`{}`: use at most 100 letters, digits, spaces, '-', '_' and '.' (no path separators or `..`)",
                    self.name.chars().take(60).collect::<String>().escape_debug()
                ),
            ));
        }

        if self.variants.is_empty() {
            return Err(bad("variants".into(), "at least one [[variants]] table is required".into()));
        }
        if let Protocol::Kfold { k } = self.protocol {
            if k < 2 {
                return Err(bad("protocol.k".into(), format!("{k}: need at least 2 folds")));
            }
        }
        let e = &self.evaluation;
        if e.bootstrap == 0 || e.permutations == 0 {
            return Err(bad("evaluation".into(), "bootstrap and permutations must be >= 1".into()));
        }
        if !(e.confidence > 0.0 && e.confidence < 1.0) {
            return Err(bad("evaluation.confidence".into(), format!("{}: must lie in (0, 1)", e.confidence)));
        }
        super::spotting::validate_task(self, &bad)?;
        if let DatasetSpec::Synthetic(s) = &self.dataset {
            if s.n_subjects < 2 {
                return Err(bad(
                    "dataset.n_subjects".into(),
                    "need at least 2 subjects for a protocol".into(),
                ));
            }
        }
        for (i, v) in self.variants.iter().enumerate() {
            let at = |f: &str| format!("variants[{i}].{f}");
            if v.name.is_empty() || !v.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(at("name"), format!("`{}`: use letters, digits, '-' and '_'", v.name)));
            }
            if self.variants[..i].iter().any(|o| o.name == v.name) {
                return Err(bad(at("name"), format!("`{}` is used twice", v.name)));
            }
            v.model.validate().map_err(|e| bad(at("model"), e.to_string()))?;
            v.train.validate().map_err(|e| bad(at("train"), e.to_string()))?;
            v.flow.build().map_err(|e| bad(at("flow"), e.to_string()))?;
            let (c, h, w) = v.model.input_shape();
            if !(c == 2 || c == 3) {
                return Err(bad(
                    at("model"),
                    format!("takes {c} input channels; flow inputs have 2 (u, v) or 3 (u, v, strain)"),
                ));
            }
            if h != v.input.size || w != v.input.size {
                return Err(bad(
                    at("input.size"),
                    format!("{} but the model takes {h}x{w} inputs", v.input.size),
                ));
            }
            if let AlignSpec::Mtcnn { size } = v.align {
                if size < 32 {
                    return Err(bad(at("align.size"), format!("{size}: need at least 32 pixels")));
                }
            }
            if matches!(self.dataset, DatasetSpec::StstnetInputs { .. }) && (c, h, w) != (3, 28, 28) {
                return Err(bad(at("model"), "precomputed STSTNet inputs are 3x28x28".into()));
            }
        }
        check_limits(self).map_err(|(field, reason)| bad(field, reason))?;
        Ok(())
    }
}

/// Most bootstrap resamples or permutations an experiment may ask for.
pub const MAX_RESAMPLES: usize = 100_000;
/// Most synthetic subjects, and clips per subject and class.
pub const MAX_SYNTH_SUBJECTS: usize = 500;
/// Most synthetic clips per subject and class.
pub const MAX_SYNTH_CLIPS: usize = 1_000;
/// Largest network input side, pixels.
pub const MAX_INPUT_SIDE: usize = 512;
/// Most trainable and running parameters of a model.
pub const MAX_MODEL_PARAMS: usize = 50_000_000;

/// Range checks of the numbers that size work or memory (documented limits), so that an absurd
/// value is a clear error rather than an allocation failure or a run that never ends.
fn check_limits(cfg: &ExperimentConfig) -> std::result::Result<(), (String, String)> {
    let e = &cfg.evaluation;
    for (field, v) in [("evaluation.bootstrap", e.bootstrap), ("evaluation.permutations", e.permutations)] {
        if v > MAX_RESAMPLES {
            return Err((field.into(), format!("{v}: at most {MAX_RESAMPLES}")));
        }
    }
    if let DatasetSpec::Synthetic(s) = &cfg.dataset {
        if s.n_subjects > MAX_SYNTH_SUBJECTS {
            return Err((
                "dataset.n_subjects".into(),
                format!("{}: at most {MAX_SYNTH_SUBJECTS}", s.n_subjects),
            ));
        }
        if let Some(c) = s.clips_per_class.iter().find(|&&c| c > MAX_SYNTH_CLIPS) {
            return Err((
                "dataset.clips_per_class".into(),
                format!("{c}: at most {MAX_SYNTH_CLIPS} per class"),
            ));
        }
    }
    for (i, v) in cfg.variants.iter().enumerate() {
        let (_, h, w) = v.model.input_shape();
        if h > MAX_INPUT_SIDE || w > MAX_INPUT_SIDE || v.input.size > MAX_INPUT_SIDE {
            return Err((
                format!("variants[{i}].model"),
                format!("input {h}x{w} (input.size {}): at most {MAX_INPUT_SIDE} a side", v.input.size),
            ));
        }
        let params = v.model.param_specs().iter().try_fold(0usize, |acc, p| {
            p.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).and_then(|n| acc.checked_add(n))
        });
        match params {
            Some(n) if n <= MAX_MODEL_PARAMS => {}
            _ => {
                return Err((
                    format!("variants[{i}].model"),
                    format!("more than {MAX_MODEL_PARAMS} parameters (check `hidden` and `input_size`)"),
                ))
            }
        }
    }
    Ok(())
}

/// Parses `table` minus its tag key as a `T`; on failure, the offending key and the message.
fn probe<T: serde::de::DeserializeOwned + Serialize>(
    table: &toml::Table,
    tag: &str,
    prefix: &str,
) -> Option<(String, String)> {
    let mut t = table.clone();
    t.remove(tag);
    let text = toml::to_string(&t).ok()?;
    match toml::from_str::<T>(&text) {
        Ok(parsed) => {
            // Keys the type does not know are ignored by serde's defaults: refuse them here.
            let known: toml::Table = toml::Table::try_from(&parsed).ok()?;
            let unknown = t.keys().find(|k| !known.contains_key(*k))?;
            Some((format!("{prefix}.{unknown}"), format!("unknown key `{unknown}`")))
        }
        Err(e) => {
            let key = e.span().map(|s| describe_span(&text, s)).unwrap_or_default();
            let key = key.split(" (line").next().unwrap_or("").to_string();
            let field = if key.is_empty() || key.starts_with("line") {
                prefix.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            Some((field, e.message().to_string()))
        }
    }
}

/// Serde reports errors inside internally tagged tables (`[dataset]`, `flow = {...}`,
/// `model = {...}`) at the table, not the key, and ignores unknown keys there: re-parse those
/// tables with their concrete type to name the offending key.
fn locate_in_tagged_tables(text: &str) -> Option<(String, String)> {
    let doc: toml::Table = toml::from_str(text).ok()?;
    if let Some(ds) = doc.get("dataset").and_then(|v| v.as_table()) {
        if ds.get("kind").and_then(|k| k.as_str()) == Some("synthetic") {
            if let Some(hit) = probe::<SyntheticSpec>(ds, "kind", "dataset") {
                return Some(hit);
            }
        }
        let files_hit = match ds.get("kind").and_then(|k| k.as_str()) {
            Some("casme2" | "samm" | "smic" | "casme_sq" | "casme-sq" | "samm_lv" | "samm-lv") => {
                probe::<DataFiles>(ds, "kind", "dataset")
            }
            Some("megc2019" | "megc") => probe::<MegcFiles>(ds, "kind", "dataset"),
            _ => None,
        };
        if files_hit.is_some() {
            return files_hit;
        }
    }
    let variants = doc.get("variants").and_then(|v| v.as_array())?;
    for (i, v) in variants.iter().enumerate() {
        let Some(v) = v.as_table() else { continue };
        if let Some(f) = v.get("flow").and_then(|f| f.as_table()) {
            let at = format!("variants[{i}].flow");
            let hit = match f.get("method").and_then(|m| m.as_str()) {
                Some("tvl1") => probe::<mex_flow::TvL1Config>(f, "method", &at),
                Some("farneback") => probe::<mex_flow::FarnebackConfig>(f, "method", &at),
                Some("dis") => probe::<mex_flow::DisConfig>(f, "method", &at),
                _ => None,
            };
            if hit.is_some() {
                return hit;
            }
        }
        if let Some(m) = v.get("model").and_then(|m| m.as_table()) {
            let at = format!("variants[{i}].model");
            let hit = match m.get("model").and_then(|m| m.as_str()) {
                Some("ststnet") => probe::<mex_classify::StstnetConfig>(m, "model", &at),
                Some("off_apex_net") => probe::<mex_classify::OffApexNetConfig>(m, "model", &at),
                Some("shallow_cnn") => probe::<mex_classify::ShallowCnnConfig>(m, "model", &at),
                _ => None,
            };
            if hit.is_some() {
                return hit;
            }
        }
    }
    None
}

/// Turns a byte span of a TOML parse error into a readable location (`line L` plus the line's key).
pub(crate) fn describe_span(text: &str, span: std::ops::Range<usize>) -> String {
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let line = lines.get(line_no - 1).copied().unwrap_or("").trim();
    // The table the line belongs to: the last `[table]` / `[[array]]` header above it.
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for l in lines.iter().take(line_no - 1) {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let n = counts.entry(name.trim().to_string()).or_insert(0);
            table = format!("{}[{}]", name.trim(), *n);
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.trim().to_string();
        }
    }
    let key = line.split('=').next().unwrap_or("").trim();
    match (key.is_empty() || key.starts_with('['), table.is_empty()) {
        (true, true) => format!("line {line_no}"),
        (true, false) => format!("{table} (line {line_no})"),
        (false, true) => format!("{key} (line {line_no})"),
        (false, false) => format!("{table}.{key} (line {line_no})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
seed = 3
[dataset]
kind = "synthetic"
n_subjects = 3
[[variants]]
name = "a"
flow = { method = "farneback" }
"#;

    #[test]
    fn minimal_config_parses_with_defaults() {
        let c = ExperimentConfig::from_toml_str(MINIMAL, "t.toml").unwrap();
        assert_eq!(c.protocol, Protocol::Loso);
        assert_eq!(c.variants[0].input.size, 28);
        assert!(matches!(c.variants[0].flow, FlowConfig::Farneback(_)));
        match &c.dataset {
            DatasetSpec::Synthetic(s) => assert_eq!(s.n_subjects, 3),
            other => panic!("{other:?}"),
        }
    }

    fn err_of(text: &str) -> String {
        ExperimentConfig::from_toml_str(text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn malformed_configs_name_the_field() {
        let e = err_of(&MINIMAL.replace("n_subjects = 3", "n_subjects = \"three\""));
        assert!(e.contains("x.toml") && e.contains("n_subjects"), "{e}");
        let e = err_of(&MINIMAL.replace("kind = \"synthetic\"", "kind = \"nope\""));
        assert!(e.contains("nope") && e.contains("dataset"), "{e}");
        let e = err_of(&MINIMAL.replace("method = \"farneback\"", "method = \"farneback\", levels = -1"));
        assert!(e.contains("variants[0].flow.levels"), "{e}");
        let e = err_of(&MINIMAL.replace("method = \"farneback\"", "method = \"farneback\", levls = 3"));
        assert!(e.contains("levls"), "{e}");
        let e = err_of(&format!("{MINIMAL}model = {{ model = \"ststnet\", num_classes = \"x\" }}\n"));
        assert!(e.contains("variants[0].model.num_classes"), "{e}");
        let e = err_of(&MINIMAL.replace("name = \"a\"", "name = \"a b\""));
        assert!(e.contains("variants[0].name"), "{e}");
        let e = err_of(&format!("{MINIMAL}\n[[variants]]\nname = \"a\"\n"));
        assert!(e.contains("variants[1].name") && e.contains("twice"), "{e}");
        let e = err_of(&MINIMAL.replace("seed = 3", "seed = 3\nsede = 4"));
        assert!(e.contains("sede"), "{e}");
        let mut c = ExperimentConfig::from_toml_str(MINIMAL, "t.toml").unwrap();
        c.variants[0].input.size = 32;
        let e = c.validate("t.toml").unwrap_err().to_string();
        assert!(e.contains("variants[0].input.size") && e.contains("28x28"), "{e}");
        let e = err_of("name = \"t\"\nvariants = []\n[dataset]\nkind = \"synthetic\"\n");
        assert!(e.contains("variants"), "{e}");
        let e = err_of(&MINIMAL.replace("[[variants]]", "[protocol]\nkind = \"kfold\"\nk = 1\n[[variants]]"));
        assert!(e.contains("protocol.k"), "{e}");
    }

    #[test]
    fn dataset_kinds_name_the_data_as_shipped() {
        use mex_data::manifest::{MegcExclusions, Release};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/experiments/");
        let mut seen = Vec::new();
        for f in [
            "casme2_ststnet.toml",
            "samm_ststnet.toml",
            "smic_ststnet.toml",
            "casme_sq_micro_macro.toml",
            "samm_lv_micro_macro.toml",
            "megc2019_ststnet.toml",
        ] {
            let c = ExperimentConfig::from_file(Path::new(&format!("{dir}{f}"))).unwrap();
            seen.push(std::mem::discriminant(&c.dataset));
            match &c.dataset {
                DatasetSpec::Casme2(d) => {
                    assert_eq!(d.release, Some(Release::Cropped));
                    assert!(d.coding.as_ref().unwrap().ends_with("CASME2-coding-20140508.xlsx"));
                }
                DatasetSpec::Smic(d) => assert!(d.coding.is_none() && d.frames.ends_with("HS")),
                DatasetSpec::Megc2019(m) => {
                    assert_eq!(m.exclusions, MegcExclusions::Official);
                    assert_eq!(m.casme2.release, Some(Release::Cropped));
                    assert_eq!(c.protocol, Protocol::Composite);
                }
                DatasetSpec::Samm(_) | DatasetSpec::CasmeSq(_) | DatasetSpec::SammLv(_) => {}
                other => panic!("{f}: {other:?}"),
            }
        }
        seen.dedup();
        assert_eq!(seen.len(), 6);
        let base = "name = \"t\"\n[[variants]]\nname = \"a\"\n[dataset]\n";
        let ok = |ds: &str| ExperimentConfig::from_toml_str(&format!("{base}{ds}"), "x.toml");
        let c = ok("kind = \"casme-sq\"\ncoding = \"c.xlsx\"\nframes = \"rawpic\"\n").unwrap();
        assert!(matches!(c.dataset, DatasetSpec::CasmeSq(_)));
        // Unknown or misspelt keys are named.
        let e = ok("kind = \"casme2\"\ncoding = \"c.xlsx\"\nframe = \"f\"\n").unwrap_err().to_string();
        assert!(e.contains("frame"), "{e}");
        let e = ok("kind = \"casme2\"\ncoding = \"c.xlsx\"\nframes = \"f\"\nrelease = \"crop\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dataset") && e.contains("crop"), "{e}");
        let e = ok("kind = \"megc2019\"\ncasme2 = { frames = \"f\" }\nsamm = { frames = \"f\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("smic"), "{e}");
    }
}
