//! mex-flow (being built; see the crate README).
