//! mex-classify (being built; see the crate README).
