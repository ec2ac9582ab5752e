//! mex-metrics (being built; see the crate README).
