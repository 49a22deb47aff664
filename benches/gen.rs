//! Benchmark history generator: a thin command-line wrapper around the test suite's generator
//! (`tests/common/history.rs`, single-sourced: this file only includes it).
//!
//! Usage: `gen DIR N` writes a Prisma 6.19.0 project with N migrations into DIR (see
//! history.rs). The first k migrations are identical for every N ≥ k, so `gen DIR N+5` over a
//! checkout of `gen DIR N` adds exactly 5 new migrations (a pull request) and updates
//! `schema.prisma`.
//!
//! Built by benches/run.sh with: rustc --edition 2024 -O benches/gen.rs -o benches/out/gen

#[path = "../tests/common/history.rs"]
mod history;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, n) = match args.as_slice() {
        [dir, n] => match n.parse::<usize>() {
            Ok(n) if n > 0 => (PathBuf::from(dir), n),
            _ => {
                eprintln!("gen: N must be a positive integer, got {n:?}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: gen DIR N");
            return ExitCode::from(2);
        }
    };
    match history::generate_prisma_history(&dir, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
