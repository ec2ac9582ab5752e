//! mex-data (being built; see the crate README).
