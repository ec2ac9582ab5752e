//! One module per subcommand; each exposes an `Args` struct and `run`.

pub mod align;
pub mod flow;
pub mod metrics;
pub mod reproduce;
pub mod spot;
