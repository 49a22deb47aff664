//! ci-gate's static layer alone (`ci_gate::check::squawk::lint`, the squawk-linter wrapper) over
//! every `migration.sql` of a Prisma project, in one process, as `squawk` is run over the same
//! files. No new CLI: this links the library of the release build.
//!
//! Usage: `static_layer PROJECT_DIR` → one JSON line on stdout:
//! `{"files":N,"read_ms":..,"lint_ms":..,"total_ms":..,"findings":..,"raw":..}`.
//!
//! Built by benches/run.sh against target/release (see `build_static_layer` there):
//! rustc --edition 2024 -O benches/static_layer.rs --extern ci_gate=target/release/libci_gate.rlib
//!       -L dependency=target/release/deps -o benches/out/static_layer
//! If the library's API moved and this no longer compiles, the harness reports the static layer
//! as "not measured" and says why.

use std::process::ExitCode;
use std::time::Instant;

use ci_gate::check::squawk::{LintContext, lint};
use ci_gate::config::Config;
use ci_gate::discover::{FsTree, prisma, prisma_version};

fn main() -> ExitCode {
    let Some(project) = std::env::args().nth(1) else {
        eprintln!("usage: static_layer PROJECT_DIR");
        return ExitCode::from(2);
    };
    let t0 = Instant::now();
    // Discovery as verify does it (read, UTF-8 check, checksum), from the work tree.
    let set = match prisma::read(&FsTree::new(&project), "prisma/migrations") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("static_layer: {project}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let read = t0.elapsed();
    // The generated projects pin Prisma 6.19.0 (one transaction per file); PostgreSQL 15 as served.
    let version = prisma_version::parse("6.19.0", "benchmark");
    let ctx = LintContext::for_prisma(15, version.as_ref());
    let config = Config::default();
    let t1 = Instant::now();
    let (mut findings, mut raw) = (0usize, 0usize);
    for m in &set.migrations {
        let out = lint(m, &ctx, &config);
        findings += out.findings.len();
        raw += out.raw_counts.values().sum::<usize>();
    }
    let lint_took = t1.elapsed();
    println!(
        "{{\"files\":{},\"read_ms\":{:.3},\"lint_ms\":{:.3},\"total_ms\":{:.3},\"findings\":{findings},\"raw\":{raw}}}",
        set.migrations.len(),
        read.as_secs_f64() * 1e3,
        lint_took.as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3,
    );
    ExitCode::SUCCESS
}
