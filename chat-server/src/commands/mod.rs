//! The operator subcommands beside `serve`, one file each.

pub mod export;
pub mod migrate;
