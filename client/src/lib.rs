//! stressctl, the command-line client of stressd (memstress).
//!
//! The binary is a thin wrapper around [`app::run`]; everything else (clap definitions,
//! humanised formatting, JSON mapping, the `--follow` rules, history paging, error classification) lives here so
//! it is unit-tested and reusable by integration tests.

pub mod app;
pub mod cli;
pub mod error;
mod fleet;
pub(crate) mod follow;
pub(crate) mod human;
pub(crate) mod json;
pub(crate) mod paging;
mod progress;
pub(crate) mod text;
pub(crate) mod tls;
pub(crate) mod top;

pub use app::run;
pub use cli::Cli;
pub use error::CliError;
