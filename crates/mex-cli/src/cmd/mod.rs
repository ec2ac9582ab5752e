//! One module per subcommand; each exposes an `Args` struct and `run`.

pub mod align;
pub mod analyze;
pub mod data;
pub mod demo;
pub mod eval;
pub mod flow;
pub mod metrics;
pub mod reproduce;
pub mod robustness;
pub mod spot;

/// A plain-text table of an experiment report's variants.
pub fn summary_table(r: &mex::experiment::Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "experiment {} ({}, {} samples, {} folds)",
        r.experiment, r.protocol, r.n_samples, r.n_folds
    );
    let _ = writeln!(s, "{:<22} {:>24} {:>24} {:>9}", "variant", "UF1 [95% CI]", "UAR [95% CI]", "accuracy");
    for v in &r.variants {
        let ci = |c: &mex::metrics::ConfidenceInterval| {
            format!("{:.3} [{:.3}, {:.3}]", c.estimate, c.lower, c.upper)
        };
        let _ = writeln!(s, "{:<22} {:>24} {:>24} {:>9.3}", v.name, ci(&v.uf1), ci(&v.uar), v.accuracy);
    }
    for c in &r.comparisons {
        let _ = writeln!(
            s,
            "{} vs {}: UF1 difference {:+.3}, permutation p = {:.3}, McNemar p = {:.3}",
            c.a, c.b, c.uf1_difference, c.permutation_p, c.mcnemar_p
        );
    }
    s
}
