//! ci-gate: a migration safety gate for PostgreSQL.
//!
//! The pipeline, one module per stage: `discover` (files) → `plan` → `provision` (a server) →
//! `run` (apply + trace) → `inspect` → `check` (findings) → `report`.

pub mod provision;
pub mod check;
pub mod discover;
pub mod sql;
pub mod config;
pub mod run;
pub mod report;
pub mod cli;
pub mod error;
pub mod pipeline;
