//! mex-align (being built; see the crate README).
