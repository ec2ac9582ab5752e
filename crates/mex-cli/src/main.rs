//! The `mex` binary: a thin clap layer over the mex crates.
//!
//! Every command returns `anyhow::Result`; an error is printed as one line on stderr and the
//! process exits with status 2 (bad input, unreadable file, invalid parameter).

use clap::{Parser, Subcommand};

mod cmd;

/// Facial micro-expression analysis.
#[derive(Debug, Parser)]
#[command(name = "mex", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classification (UF1/UAR, ...) and spotting (IoU >= 0.5) metrics from CSV files.
    Metrics(cmd::metrics::MetricsArgs),
    /// Dense optical flow between two frames.
    Flow(cmd::flow::FlowArgs),
    /// Spot micro- and macro-expressions in a video file or a folder of frames.
    Spot(cmd::spot::SpotArgs),
    /// Detect, landmark and align faces in an image.
    Align(cmd::align::AlignArgs),
    /// Reproduce published results (STSTNet on the MEGC2019 composite set).
    Reproduce(cmd::reproduce::ReproduceArgs),
    /// Degradation curves of an experiment under lighting, noise, blur, JPEG, rotation, scale and
    /// frame-rate perturbations of the test clips.
    Robustness(cmd::robustness::RobustnessArgs),
    /// Analyse one's own clip: faces, landmarks, motion, spotted intervals (and classes).
    Analyze(cmd::analyze::AnalyzeArgs),
    /// The whole chain on a synthetic micro-expression: face, alignment, spotting, flow, class.
    Demo(cmd::demo::DemoArgs),
    /// Run an experiment (dataset x protocol x pipeline variants) and write its report.
    Eval(cmd::eval::EvalArgs),
    /// Screening study: compare two groups over facial indicators (effect sizes, AUC, ICC, classifier).
    Study(cmd::study::StudyArgs),
    /// Index a dataset as shipped into a manifest, check its frames, and print its statistics.
    Data(cmd::data::DataArgs),
}

fn main() {
    #[cfg(unix)]
    // SAFETY: runs first in `main`, before any other thread exists; it only restores SIGPIPE's
    // default disposition, so that writing into a closed pipe (`mex ... | head`) ends the process
    // quietly as other Unix tools do, instead of a panic inside `println!`.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Reproduce(_) | Command::Eval(_)) {
        // Training: freed step buffers stay with the process instead of being returned to the
        // kernel and faulted back in at every step (see the function's docs).
        mex_classify::tune_allocator_for_training();
    }
    let result = match cli.command {
        Command::Metrics(a) => cmd::metrics::run(a),
        Command::Flow(a) => cmd::flow::run(a),
        Command::Spot(a) => cmd::spot::run(a),
        Command::Align(a) => cmd::align::run(a),
        Command::Reproduce(a) => cmd::reproduce::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Robustness(a) => cmd::robustness::run(a),
        Command::Study(a) => cmd::study::run(a),
        Command::Data(a) => cmd::data::run(a),
    };
    if std::env::var_os("MEX_PEAK_RSS").is_some() {
        // For memory tests and benchmarks: the peak resident set size (Linux).
        if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
            if let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:")) {
                eprintln!("mex: peak RSS {}", l.trim_start_matches("VmHWM:").trim());
            }
        }
    }
    if let Err(e) = result {
        eprintln!("mex: error: {e:#}");
        std::process::exit(2);
    }
}
