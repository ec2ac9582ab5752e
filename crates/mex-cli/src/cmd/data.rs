//! `mex data index|check|stats`: from a dataset as shipped to a checked manifest for `mex eval`.

use anyhow::{bail, Context};
use mex_data::manifest::{
    check, index, index_megc, stats, CheckOptions, DataFiles, DatasetKind, FrameSelection, IndexOptions,
    IndexReport, MissingFrames, Release,
};
use mex_data::megc::{megc_rows, read_megc_gt, MegcRules};
use mex_data::Dataset;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Arguments of `mex data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DataCommand {
    /// Read a dataset as shipped (coding file + frames folder) into a manifest for `mex eval`.
    Index(IndexArgs),
    /// Check that every frame a manifest points to exists and decodes (exit 2 if any does not).
    Check(CheckArgs),
    /// The table a paper needs: samples per class and dataset, subjects, demographics, clip
    /// lengths, frame rates.
    Stats(StatsArgs),
}

/// Datasets on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KindArg {
    /// CASME II.
    Casme2,
    /// SAMM (short clips).
    Samm,
    /// SMIC-HS.
    Smic,
    /// CAS(ME)^2 long videos.
    #[value(alias = "casme_sq")]
    CasmeSq,
    /// SAMM Long Videos.
    #[value(alias = "samm_lv")]
    SammLv,
    /// The MEGC2019 composite, built from the CASME II, SAMM and SMIC-HS manifests (--part).
    #[value(alias = "megc2019")]
    Megc,
}

impl KindArg {
    fn kind(self) -> DatasetKind {
        match self {
            KindArg::Casme2 => DatasetKind::Casme2,
            KindArg::Samm => DatasetKind::Samm,
            KindArg::Smic => DatasetKind::Smic,
            KindArg::CasmeSq => DatasetKind::CasmeSq,
            KindArg::SammLv => DatasetKind::SammLv,
            KindArg::Megc => DatasetKind::Megc2019,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReleaseArg {
    /// `CASME2_RAW_selected/subNN/EPxx_yy/imgN.jpg`.
    Raw,
    /// `Cropped/subNN/EPxx_yy/reg_imgN.jpg`.
    Cropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RulesArg {
    /// The exclusions that reproduce the official 442-sample list.
    Official,
    /// MEB's exclusions (also drops sub05/EP12_03f).
    Meb,
}

/// Arguments of `mex data index`.
#[derive(Debug, clap::Args)]
struct IndexArgs {
    /// The dataset: casme2, samm, smic, casme-sq, samm-lv, or megc (the composite of the
    /// casme2, samm and smic manifests given with --part).
    #[arg(value_enum)]
    dataset: KindArg,
    /// The coding spreadsheet as shipped (.xlsx/.xls/.ods, or the same table as .csv); not for smic.
    #[arg(long)]
    coding: Option<PathBuf>,
    /// The frames folder (casme2: the folder holding sub01, ...; samm: 006, ...; smic: the HS
    /// folder holding s1, ...; casme-sq: rawpic; samm-lv: the folder of 006_1, ...).
    #[arg(long)]
    frames: Option<PathBuf>,
    /// CASME II only: the frame release the frames folder holds.
    #[arg(long, value_enum)]
    release: Option<ReleaseArg>,
    /// A per-subject table (CSV or spreadsheet: Subject, and Sex/Gender, Ethnicity, Age or Age
    /// band) whose values fill the samples' demographic fields.
    #[arg(long)]
    demographics: Option<PathBuf>,
    /// megc: a manifest written by `mex data index casme2|samm|smic` (repeat for each part).
    #[arg(long = "part")]
    parts: Vec<PathBuf>,
    /// megc: the exclusion rules.
    #[arg(long, value_enum, default_value = "official")]
    rules: RulesArg,
    /// megc: compare the result with the official list (combined_3class_gt.csv).
    #[arg(long)]
    gt: Option<PathBuf>,
    /// Fail (exit 2) when a clip's frames are missing instead of leaving it out.
    #[arg(long)]
    strict: bool,
    /// List every sample left out (default: the first 5 per reason).
    #[arg(long, short)]
    verbose: bool,
    /// The manifest to write (JSON).
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `mex data check`.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// A manifest written by `mex data index`.
    manifest: PathBuf,
    /// Read only the onset, apex and offset frames of each clip (what `mex eval` reads).
    #[arg(long)]
    key_frames: bool,
    /// Only test that the files exist; do not decode them.
    #[arg(long)]
    no_decode: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Arguments of `mex data stats`.
#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// A manifest written by `mex data index`.
    manifest: PathBuf,
    /// JSON instead of the text table.
    #[arg(long)]
    json: bool,
}

/// Runs `mex data`.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Index(a) => run_index(a),
        DataCommand::Check(a) => run_check(a),
        DataCommand::Stats(a) => run_stats(a),
    }
}

fn read_manifest(path: &Path) -> anyhow::Result<Dataset> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        bail!(
            "{}: give the JSON manifest written by `mex data index` (CSV has no label set)",
            path.display()
        );
    }
    Ok(Dataset::read_json(path)?)
}

fn run_index(a: IndexArgs) -> anyhow::Result<()> {
    let kind = a.dataset.kind();
    let report = if kind == DatasetKind::Megc2019 {
        if a.coding.is_some() || a.frames.is_some() || a.release.is_some() || a.demographics.is_some() {
            bail!(
                "megc is built from manifests: index casme2, samm and smic first, then give them with --part (not --coding/--frames)"
            );
        }
        if a.parts.is_empty() {
            bail!("megc needs the casme2, samm and smic manifests: --part casme2.json --part samm.json --part smic.json");
        }
        let parts = a.parts.iter().map(|p| read_manifest(p)).collect::<anyhow::Result<Vec<_>>>()?;
        let refs: Vec<&Dataset> = parts.iter().collect();
        let rules = match a.rules {
            RulesArg::Official => MegcRules::default(),
            RulesArg::Meb => MegcRules::meb(),
        };
        index_megc(&refs, &rules)?
    } else {
        if !a.parts.is_empty() || a.gt.is_some() {
            bail!("--part and --gt are for megc only");
        }
        let Some(frames) = a.frames.clone() else {
            bail!("{} needs --frames: {}", kind, kind.frames_hint());
        };
        let files = DataFiles {
            coding: a.coding.clone(),
            frames,
            release: a.release.map(|r| match r {
                ReleaseArg::Raw => Release::Raw,
                ReleaseArg::Cropped => Release::Cropped,
            }),
            demographics: a.demographics.clone(),
        };
        let opts = IndexOptions {
            missing_frames: if a.strict { MissingFrames::Error } else { MissingFrames::Drop },
        };
        index(kind, &files, &opts)?
    };
    mex::io::write_json_atomic(&a.out, &report.dataset)?;
    print_index_summary(kind, &report, a.verbose);
    if let Some(gt) = &a.gt {
        compare_with_gt(&report.dataset, gt)?;
    }
    println!("manifest: {}", a.out.display());
    Ok(())
}

fn print_index_summary(kind: DatasetKind, r: &IndexReport, verbose: bool) {
    let ds = &r.dataset;
    println!(
        "{}: {} samples, {} subjects, {} left out",
        kind.title(),
        ds.len(),
        ds.subjects().len(),
        r.dropped.len()
    );
    let mut by: BTreeMap<&str, Vec<&mex_data::manifest::Dropped>> = BTreeMap::new();
    for d in &r.dropped {
        by.entry(d.reason.as_str()).or_default().push(d);
    }
    for (reason, list) in &by {
        println!("left out, {reason}: {}", list.len());
        let shown = if verbose { list.len() } else { list.len().min(5) };
        for d in &list[..shown] {
            println!("  {} ({}): {}", d.sample, d.provenance, d.detail);
        }
        if shown < list.len() {
            println!("  ... and {} more (--verbose lists them all)", list.len() - shown);
        }
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    println!();
    print!("{}", stats(ds).to_text());
}

fn compare_with_gt(ds: &Dataset, gt: &Path) -> anyhow::Result<()> {
    let official = read_megc_gt(gt)?;
    let mut ours = megc_rows(ds);
    ours.sort();
    let mut theirs = official.clone();
    theirs.sort();
    let missing: Vec<_> = theirs.iter().filter(|r| ours.binary_search(r).is_err()).collect();
    let extra: Vec<_> = ours.iter().filter(|r| theirs.binary_search(r).is_err()).collect();
    if missing.is_empty() && extra.is_empty() {
        println!("official list {}: identical ({} rows)", gt.display(), theirs.len());
    } else {
        println!(
            "official list {}: {} rows; {} of them not in the manifest, {} manifest rows not in it",
            gt.display(),
            theirs.len(),
            missing.len(),
            extra.len()
        );
        for r in missing.iter().take(10) {
            println!("  not in the manifest: {},{},{},{}", r.dataset, r.subject, r.video, r.label);
        }
        for r in extra.iter().take(10) {
            println!("  not in the official list: {},{},{},{}", r.dataset, r.subject, r.video, r.label);
        }
    }
    Ok(())
}

fn run_check(a: CheckArgs) -> anyhow::Result<()> {
    let ds = read_manifest(&a.manifest)?;
    let opts = CheckOptions {
        frames: if a.key_frames { FrameSelection::Key } else { FrameSelection::All },
        decode: !a.no_decode,
    };
    let show = !a.quiet && std::io::stderr().is_terminal();
    let pb = indicatif::ProgressBar::with_draw_target(
        None,
        if show { indicatif::ProgressDrawTarget::stderr() } else { indicatif::ProgressDrawTarget::hidden() },
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames [{elapsed_precise} < {eta}]")
    {
        pb.set_style(style);
    }
    let r = check(&ds, &opts, &|done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    });
    pb.finish_and_clear();
    for p in r.missing.iter().chain(&r.undecodable) {
        println!("{} ({}): {}", p.path.display(), p.sample, p.problem);
    }
    let what = if opts.decode { "present and decodable" } else { "present" };
    if r.is_ok() {
        println!("{}: {} samples, {} frames, all {what}", a.manifest.display(), r.n_samples, r.n_frames);
        return Ok(());
    }
    bail!(
        "{}: {} missing and {} undecodable (frames or folders) in {} of {} samples, listed above",
        a.manifest.display(),
        r.missing.len(),
        r.undecodable.len(),
        r.n_bad_samples,
        r.n_samples
    )
}

fn run_stats(a: StatsArgs) -> anyhow::Result<()> {
    let ds = read_manifest(&a.manifest)?;
    let s = stats(&ds);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s).context("serialising the statistics")?);
    } else {
        print!("{}", s.to_text());
    }
    Ok(())
}
