//! ci-gate: a migration safety gate for PostgreSQL.
//!
//! The pipeline, one module per stage: `discover` (files) → `plan` → `provision` (a server) →
//! `run` (apply + trace) → `inspect` → `check` (findings) → `report`.

pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod discover;
pub mod error;
pub mod fmt;
pub mod format;
pub mod git;
pub mod inspect;
pub mod live;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod provision;
pub mod report;
pub mod run;
pub mod secrets;
pub mod settings;
pub mod sql;
