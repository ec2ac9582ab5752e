//! `mex metrics classify|spot`: classification (UF1/UAR, ...) and spotting (IoU >= 0.5) metrics
//! from CSV files. Definitions: `docs/metrics.md`.
//!
//! Every malformed input (missing column, non-numeric value, empty file, unknown class, a row with
//! the wrong number of fields) is an error naming the file, the data row (1-based, header not
//! counted), the line and the column; `main` prints it and exits with status 2.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use mex_core::ClassSet;
use mex_metrics::{
    cluster_bootstrap, evaluate_spotting, megc_breakdown, BootstrapConfig, ConfusionMatrix, ExpressionType,
    Matching, Span, SpotConfig, SpotCounts, SpotRecord,
};
use serde_json::{json, Map, Value};

/// Arguments of `mex metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// Which metrics.
    #[command(subcommand)]
    pub command: MetricsCommand,
}

/// The `mex metrics` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MetricsCommand {
    /// UF1, UAR, accuracy, macro/weighted F1, kappa, per-class scores and the confusion matrix of
    /// pooled predictions. CSV with header; columns `label`, `pred` (class names or integers),
    /// optional `subject`, `dataset`, `group`.
    Classify(ClassifyArgs),
    /// MEGC spotting TP/FP/FN, precision, recall, F1 (IoU >= 0.5, one-to-one), pooled over videos.
    /// CSVs with columns `video`, `onset`, `offset`, optional `type` (micro/macro).
    Spot(SpotArgs),
}

/// Arguments of `mex metrics classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Predictions CSV (`label`, `pred`, optional `subject`, `dataset`, `group`).
    pub pred: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Class set: `megc3` (negative, positive, surprise), `casme2_5`, or a comma-separated list of
    /// names (index = position). Integers in the CSV must be below the number of classes.
    /// Default: `megc3` when any label is a MEGC name or index, else the distinct names in the
    /// file, sorted (said on stderr).
    #[arg(long)]
    pub classes: Option<String>,
    /// Percentile bootstrap CIs of UF1 and UAR with this many resamples (0 = off); resamples
    /// subjects when a `subject` column exists, samples otherwise.
    #[arg(long, default_value_t = 0, value_parser = super::parse_resamples)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Matching rule of `mex metrics spot`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MatchingArg {
    /// Predictions by onset, each to its best free ground truth (MEGC log order).
    Greedy,
    /// Maximum one-to-one matching.
    Maximum,
}

/// Arguments of `mex metrics spot`.
#[derive(Debug, clap::Args)]
pub struct SpotArgs {
    /// Ground-truth intervals CSV (`video`, `onset`, `offset`, optional `type`).
    #[arg(long)]
    pub gt: PathBuf,
    /// Predicted intervals CSV (same columns).
    #[arg(long)]
    pub pred: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// IoU threshold of a true positive.
    #[arg(long, default_value_t = 0.5)]
    pub iou: f64,
    /// Matching rule.
    #[arg(long, value_enum, default_value = "greedy")]
    pub matching: MatchingArg,
}

/// Runs `mex metrics classify|spot`.
pub fn run(args: MetricsArgs) -> Result<()> {
    let out = match args.command {
        MetricsCommand::Classify(a) => classify(&a)?,
        MetricsCommand::Spot(a) => spot(&a)?,
    };
    print!("{out}");
    Ok(())
}

/// A parsed CSV: header names (lower-cased) and rows with their line numbers.
struct Table {
    path: PathBuf,
    columns: HashMap<String, usize>,
    rows: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    fn read(path: &Path) -> Result<Self> {
        let shown = path.display();
        mex_core::check_table_size(path).map_err(anyhow::Error::msg)?;
        let bytes = std::fs::read(path).with_context(|| format!("{shown}: cannot read file"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            bail!("{shown}: empty file (expected a header line)");
        }
        let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes.as_slice());
        let header = rdr.headers().map_err(|e| csv_error(path, e))?.clone();
        let mut columns = HashMap::new();
        for (i, h) in header.iter().enumerate() {
            if !h.is_empty() && columns.insert(h.to_ascii_lowercase(), i).is_some() {
                bail!("{shown}: duplicate column `{}` in the header", super::shown_value(h));
            }
        }
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_error(path, e))?;
            if rec.iter().all(str::is_empty) {
                continue; // blank line
            }
            let line = rec.position().map_or(0, |p| p.line());
            rows.push((line, rec));
        }
        Ok(Self { path: path.to_path_buf(), columns, rows })
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.columns.get(name).copied().ok_or_else(|| {
            let mut have: Vec<&str> = self.columns.keys().map(String::as_str).collect();
            have.sort_unstable();
            anyhow!("{}: missing column `{name}` (header has: {})", self.path.display(), have.join(", "))
        })
    }

    fn cell(&self, row: usize, col: usize, name: &str) -> Result<&str> {
        let (line, rec) = &self.rows[row];
        match rec.get(col) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => {
                bail!("{}: row {} (line {line}), column `{name}`: empty value", self.path.display(), row + 1)
            }
        }
    }

    fn fail(&self, row: usize, name: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        let line = self.rows[row].0;
        anyhow!("{}: row {} (line {line}), column `{name}`: {msg}", self.path.display(), row + 1)
    }
}

fn csv_error(path: &Path, e: csv::Error) -> anyhow::Error {
    let shown = path.display();
    let pos = e.position().map(|p| (p.line(), p.record()));
    match (e.kind(), pos) {
        (csv::ErrorKind::UnequalLengths { expected_len, len, .. }, Some((line, record))) => anyhow!(
            "{shown}: row {record} (line {line}): {len} fields where the header has {expected_len} \
             (unequal row lengths)"
        ),
        (_, Some((line, _))) => anyhow!("{shown}: line {line}: {e}"),
        _ => anyhow!("{shown}: {e}"),
    }
}

fn class_set(spec: &str) -> Result<ClassSet> {
    match spec.trim() {
        "megc3" => Ok(ClassSet::megc3()),
        "casme2_5" => Ok(ClassSet::casme2_5()),
        list => {
            let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if names.is_empty() {
                bail!("--classes: expected megc3, casme2_5 or a comma-separated list of class names");
            }
            for (i, n) in names.iter().enumerate() {
                if names[..i].contains(n) {
                    bail!("--classes: class `{}` is listed twice", super::shown_value(n));
                }
                if n.parse::<f64>().is_ok() {
                    bail!(
                        "--classes: class name `{}` is a number, which would be ambiguous with a class \
                         index; use names such as c{}",
                        super::shown_value(n),
                        super::shown_value(n)
                    );
                }
            }
            Ok(ClassSet::new("custom", &names))
        }
    }
}

fn classify(a: &ClassifyArgs) -> Result<String> {
    let t = Table::read(&a.pred)?;
    let (cl, cp) = (t.column("label")?, t.column("pred")?);
    let classes = match &a.classes {
        Some(spec) => class_set(spec)?,
        None => {
            let megc = ClassSet::megc3();
            let mut names: Vec<String> = Vec::new();
            for row in 0..t.rows.len() {
                for (col, name) in [(cl, "label"), (cp, "pred")] {
                    let v = t.cell(row, col, name)?;
                    if !names.iter().any(|n| n == v) {
                        names.push(v.to_string());
                    }
                }
            }
            if names.is_empty() || names.iter().any(|n| megc.parse(n).is_ok()) {
                // MEGC names (or indices), possibly with a typo: read as MEGC, so that an unknown
                // class is reported with its row.
                megc
            } else if names.iter().any(|n| n.parse::<f64>().is_ok()) {
                bail!(
                    "{}: the labels mix numbers and names that are not the MEGC classes; give the class \
                     set with --classes",
                    a.pred.display()
                );
            } else {
                names.sort();
                eprintln!("mex: classes inferred from {}: {}", a.pred.display(), names.join(", "));
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                ClassSet::new("inferred", &refs)
            }
        }
    };
    let optional = |name: &str| t.columns.get(name).copied();
    let (cs, cd, cg) = (optional("subject"), optional("dataset"), optional("group"));
    if t.rows.is_empty() {
        bail!("{}: no data rows after the header", a.pred.display());
    }
    let parse = |row: usize, col: usize, name: &str| -> Result<usize> {
        let v = t.cell(row, col, name)?;
        classes.parse(v).map_err(|_| {
            t.fail(
                row,
                name,
                format!(
                    "unknown class `{v}` (classes: {} or 0..{})",
                    classes.names.join(", "),
                    classes.len().saturating_sub(1)
                ),
            )
        })
    };
    let text = |row: usize, col: Option<usize>, name: &str| -> Result<Option<String>> {
        col.map(|c| t.cell(row, c, name).map(str::to_string)).transpose()
    };
    let n = t.rows.len();
    let (mut truth, mut pred) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut subjects, mut datasets, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    for row in 0..n {
        truth.push(parse(row, cl, "label")?);
        pred.push(parse(row, cp, "pred")?);
        if let Some(s) = text(row, cs, "subject")? {
            subjects.push(s);
        }
        if let Some(s) = text(row, cd, "dataset")? {
            datasets.push(s);
        }
        if let Some(s) = text(row, cg, "group")? {
            groups.push(s);
        }
    }
    let k = classes.len();
    let m = ConfusionMatrix::from_labels(&truth, &pred, k)?;
    let r = m.report()?;
    let name = |c: usize| classes.name(c).unwrap_or("?").to_string();
    let per_class: Vec<Value> = r
        .per_class
        .iter()
        .map(|s| {
            json!({"label": name(s.label), "precision": s.precision, "recall": s.recall, "f1": s.f1,
                   "support": s.support})
        })
        .collect();
    let mut obj = Map::new();
    obj.insert("n".into(), json!(r.n));
    obj.insert("uf1".into(), json!(r.uf1));
    obj.insert("uar".into(), json!(r.uar));
    obj.insert("accuracy".into(), json!(r.accuracy));
    obj.insert("macro_f1".into(), json!(r.macro_f1));
    obj.insert("weighted_f1".into(), json!(r.weighted_f1));
    obj.insert("kappa".into(), json!(r.kappa));
    obj.insert("classes".into(), json!(classes.names));
    obj.insert("per_class".into(), json!(per_class));
    obj.insert("confusion".into(), json!(r.confusion));
    let breakdown = |keys: &[String]| -> Result<Value> {
        let b = megc_breakdown(&truth, &pred, keys, k)?;
        let mut map = Map::new();
        for (key, s) in b.per_group {
            map.insert(key, json!({"n": s.n, "uf1": s.uf1, "uar": s.uar}));
        }
        Ok(Value::Object(map))
    };
    if cd.is_some() {
        obj.insert("per_dataset".into(), breakdown(&datasets)?);
    }
    if cg.is_some() {
        obj.insert("per_group".into(), breakdown(&groups)?);
    }
    if a.bootstrap > 0 {
        let cfg = BootstrapConfig { n_resamples: a.bootstrap, confidence: 0.95, seed: a.seed };
        let clusters: Vec<String> =
            if cs.is_some() { subjects.clone() } else { (0..n).map(|i| i.to_string()).collect() };
        let uf1 = cluster_bootstrap(
            &clusters,
            |idx| ConfusionMatrix::from_indices(&truth, &pred, idx, k)?.uf1(),
            &cfg,
        )?;
        let uar = cluster_bootstrap(
            &clusters,
            |idx| ConfusionMatrix::from_indices(&truth, &pred, idx, k)?.uar(),
            &cfg,
        )?;
        obj.insert(
            "bootstrap".into(),
            json!({
                "level": if cs.is_some() { "subject" } else { "sample" },
                "n_resamples": a.bootstrap, "confidence": 0.95, "seed": a.seed,
                "uf1": {"lower": uf1.lower, "upper": uf1.upper},
                "uar": {"lower": uar.lower, "upper": uar.upper},
            }),
        );
    }
    if a.json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&Value::Object(obj))?));
    }
    Ok(classify_table(&a.pred, &obj, &classes))
}

fn num(v: &Value) -> String {
    v.as_f64().map_or_else(|| "n/a".to_string(), |x| format!("{x:.4}"))
}

fn classify_table(path: &Path, obj: &Map<String, Value>, classes: &ClassSet) -> String {
    let mut s = String::new();
    let w = classes.names.iter().map(String::len).max().unwrap_or(5).max(8);
    let _ = writeln!(s, "{} — n = {}, {} classes", path.display(), obj["n"], classes.len());
    for (label, key) in [
        ("UF1", "uf1"),
        ("UAR", "uar"),
        ("accuracy", "accuracy"),
        ("macro F1", "macro_f1"),
        ("weighted F1", "weighted_f1"),
        ("kappa", "kappa"),
    ] {
        let _ = write!(s, "  {label:<12} {}", num(&obj[key]));
        if let Some(b) = obj.get("bootstrap").and_then(|b| b.get(key)) {
            let _ = write!(s, "  (95% CI {} – {})", num(&b["lower"]), num(&b["upper"]));
        }
        s.push('\n');
    }
    let _ =
        writeln!(s, "\n  {:<w$} {:>9} {:>8} {:>8} {:>8}", "class", "precision", "recall", "f1", "support");
    for c in obj["per_class"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "  {:<w$} {:>9} {:>8} {:>8} {:>8}",
            c["label"].as_str().unwrap_or("?"),
            num(&c["precision"]),
            num(&c["recall"]),
            num(&c["f1"]),
            c["support"].to_string()
        );
    }
    let _ = writeln!(s, "\n  confusion (rows = truth, columns = prediction)");
    let _ = write!(s, "  {:<w$}", "");
    for n in &classes.names {
        let _ = write!(s, " {n:>w$}");
    }
    s.push('\n');
    for (i, row) in obj["confusion"].as_array().into_iter().flatten().enumerate() {
        let _ = write!(s, "  {:<w$}", classes.name(i).unwrap_or("?"));
        for v in row.as_array().into_iter().flatten() {
            let _ = write!(s, " {:>w$}", v.to_string());
        }
        s.push('\n');
    }
    for (key, title) in [("per_dataset", "dataset"), ("per_group", "group")] {
        if let Some(Value::Object(m)) = obj.get(key) {
            let _ = writeln!(s, "\n  {title:<w$} {:>6} {:>8} {:>8}", "n", "UF1", "UAR");
            for (k, v) in m {
                let _ = writeln!(
                    s,
                    "  {k:<w$} {:>6} {:>8} {:>8}",
                    v["n"].to_string(),
                    num(&v["uf1"]),
                    num(&v["uar"])
                );
            }
        }
    }
    if let Some(b) = obj.get("bootstrap") {
        let _ = writeln!(
            s,
            "\n  bootstrap: {} resamples at {} level, seed {}",
            b["n_resamples"],
            b["level"].as_str().unwrap_or("?"),
            b["seed"]
        );
    }
    s
}

fn read_spans(path: &Path, allow_no_rows: bool) -> Result<(Vec<SpotRecord>, bool)> {
    let t = Table::read(path)?;
    let (cv, con, coff) = (t.column("video")?, t.column("onset")?, t.column("offset")?);
    let ct = t.columns.get("type").copied();
    if t.rows.is_empty() && !allow_no_rows {
        bail!("{}: no data rows after the header", path.display());
    }
    let frame = |row: usize, col: usize, name: &str| -> Result<usize> {
        let v = t.cell(row, col, name)?;
        v.parse::<usize>()
            .map_err(|_| t.fail(row, name, format!("`{v}` is not a non-negative integer frame")))
    };
    let mut out = Vec::with_capacity(t.rows.len());
    for row in 0..t.rows.len() {
        let video = t.cell(row, cv, "video")?.to_string();
        let (onset, offset) = (frame(row, con, "onset")?, frame(row, coff, "offset")?);
        let span = Span::new(onset, offset)
            .map_err(|_| t.fail(row, "offset", format!("offset {offset} is before onset {onset}")))?;
        let kind = match ct {
            Some(c) => {
                let v = t.cell(row, c, "type")?;
                Some(
                    v.parse::<ExpressionType>()
                        .map_err(|_| t.fail(row, "type", format!("unknown type `{v}` (micro or macro)")))?,
                )
            }
            None => None,
        };
        out.push(SpotRecord { video, kind, span });
    }
    Ok((out, ct.is_some()))
}

fn counts_json(c: &SpotCounts) -> Value {
    json!({"tp": c.tp, "fp": c.fp, "fn": c.fn_, "precision": c.precision(), "recall": c.recall(), "f1": c.f1()})
}

fn spot(a: &SpotArgs) -> Result<String> {
    let cfg = SpotConfig {
        iou_threshold: a.iou,
        matching: match a.matching {
            MatchingArg::Greedy => Matching::Greedy,
            MatchingArg::Maximum => Matching::Maximum,
        },
    };
    cfg.validate().context("--iou")?;
    let (gt, gt_typed) = read_spans(&a.gt, false)?;
    let (pred, pred_typed) = read_spans(&a.pred, true)?;
    if gt_typed != pred_typed {
        let (with, without) = if gt_typed { (&a.gt, &a.pred) } else { (&a.pred, &a.gt) };
        bail!(
            "{} has a `type` column but {} has none: give the type (micro/macro) in both or in neither",
            with.display(),
            without.display()
        );
    }
    let e = evaluate_spotting(&gt, &pred, &cfg)?;
    let mut obj = match counts_json(&e.overall) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(per_type) = &e.per_type {
        let m: BTreeMap<String, Value> =
            per_type.iter().map(|(k, c)| (k.to_string(), counts_json(c))).collect();
        obj.insert("per_type".into(), json!(m));
    }
    let pv: BTreeMap<&str, Value> =
        e.per_video.iter().map(|(k, c)| (k.as_str(), json!({"tp": c.tp, "fp": c.fp, "fn": c.fn_}))).collect();
    obj.insert("per_video".into(), json!(pv));
    obj.insert("iou_threshold".into(), json!(a.iou));
    if a.json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&Value::Object(obj))?));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} vs {} — IoU >= {}, one-to-one, {} videos",
        a.pred.display(),
        a.gt.display(),
        a.iou,
        e.per_video.len()
    );
    let _ = writeln!(
        s,
        "  {:<8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8}",
        "", "TP", "FP", "FN", "precision", "recall", "F1"
    );
    let mut line = |label: &str, c: &SpotCounts| {
        let _ = writeln!(
            s,
            "  {label:<8} {:>6} {:>6} {:>6} {:>9.4} {:>8.4} {:>8.4}",
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall(),
            c.f1()
        );
    };
    if let Some(per_type) = &e.per_type {
        for (k, c) in per_type {
            line(&k.to_string(), c);
        }
    }
    line("overall", &e.overall);
    Ok(s)
}
