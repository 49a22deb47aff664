//! ci-gate's static layer alone (`ci_gate::check::squawk::lint_all`, the squawk-linter wrapper, on
//! every available core) over every `migration.sql` of a Prisma project, in one process, as
//! `squawk` is run over the same files. No new CLI: this links the library of the release build.
//!
//! Usage: `static_layer PROJECT_DIR` → one JSON line on stdout:
//! `{"files":N,"read_ms":..,"lint_ms":..,"total_ms":..,"findings":..,"raw":..,"threads":..}`.
//!
//! Built by benches/run.sh against target/release (see `build_static_layer` there):
//! rustc --edition 2024 -O benches/static_layer.rs --extern ci_gate=target/release/libci_gate.rlib
//!       -L dependency=target/release/deps -o benches/out/static_layer
//! If the library's API moved and this no longer compiles, the harness reports the static layer
//! as "not measured" and says why.
//!
//! With `--breakdown` (built with `--cfg breakdown` and `--extern` squawk_syntax/squawk_linter,
//! as run.sh does when it finds them) it instead times, over the same files, each layer alone:
//! squawk-syntax's parse, parse + squawk-linter with squawk's default rules, the same plus the
//! parse's `errors()` (what squawk-cli's `check_sql` does per file, in process), ci-gate's `lint`
//! file by file on one thread, and `lint_all` on every core, printing
//! `{"files":N,"parse_ms":..,"squawk_lib_ms":..,"squawk_cli_ms":..,"cigate_lint_ms":..,
//! "cigate_lint_all_ms":..,"threads":..}` (the first four single-threaded).

use std::process::ExitCode;
use std::time::Instant;

use ci_gate::check::squawk::{LintContext, RuleLevels, lint_all};
use ci_gate::discover::{FsTree, prisma, prisma_version};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let breakdown = args.iter().any(|a| a == "--breakdown");
    let Some(project) = args.iter().find(|a| !a.starts_with("--")).cloned() else {
        eprintln!("usage: static_layer [--breakdown] PROJECT_DIR");
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
    // No `rules:` configured: ci-gate's default levels, as verify without a .ci-gate.yml.
    let config = RuleLevels::default();
    if breakdown {
        #[cfg(breakdown)]
        {
            let texts: Vec<&str> = set.migrations.iter().map(|m| m.text.as_str()).collect();
            let t = Instant::now();
            for text in &texts {
                std::hint::black_box(squawk_syntax::SourceFile::parse(text));
            }
            let parse = t.elapsed();
            let t = Instant::now();
            for text in &texts {
                let parse = squawk_syntax::SourceFile::parse(text);
                let mut linter = squawk_linter::Linter::with_default_rules();
                linter.settings.pg_version = "15".parse().unwrap_or_default();
                linter.settings.assume_in_transaction = ctx.assume_in_transaction;
                std::hint::black_box(linter.lint(&parse, text));
            }
            let lib = t.elapsed();
            let t = Instant::now();
            for text in &texts {
                let parse = squawk_syntax::SourceFile::parse(text);
                std::hint::black_box(parse.errors());
                let mut linter = squawk_linter::Linter::with_default_rules();
                linter.settings.pg_version = "15".parse().unwrap_or_default();
                linter.settings.assume_in_transaction = ctx.assume_in_transaction;
                std::hint::black_box(linter.lint(&parse, text));
            }
            let cli = t.elapsed();
            let t = Instant::now();
            for m in &set.migrations {
                std::hint::black_box(ci_gate::check::squawk::lint(m, &ctx, &config));
            }
            let ours = t.elapsed();
            let refs: Vec<_> = set.migrations.iter().collect();
            let t = Instant::now();
            std::hint::black_box(lint_all(&refs, &ctx, &config));
            let ours_all = t.elapsed();
            println!(
                "{{\"files\":{},\"parse_ms\":{:.3},\"squawk_lib_ms\":{:.3},\"squawk_cli_ms\":{:.3},\"cigate_lint_ms\":{:.3},\"cigate_lint_all_ms\":{:.3},\"threads\":{}}}",
                texts.len(),
                parse.as_secs_f64() * 1e3,
                lib.as_secs_f64() * 1e3,
                cli.as_secs_f64() * 1e3,
                ours.as_secs_f64() * 1e3,
                ours_all.as_secs_f64() * 1e3,
                threads()
            );
            return ExitCode::SUCCESS;
        }
        #[cfg(not(breakdown))]
        {
            eprintln!("static_layer: built without --cfg breakdown");
            return ExitCode::from(2);
        }
    }
    let t1 = Instant::now();
    let refs: Vec<_> = set.migrations.iter().collect();
    let (mut findings, mut raw) = (0usize, 0usize);
    for out in lint_all(&refs, &ctx, &config) {
        findings += out.findings.len();
        raw += out.raw_counts.values().sum::<usize>();
    }
    let lint_took = t1.elapsed();
    println!(
        "{{\"files\":{},\"read_ms\":{:.3},\"lint_ms\":{:.3},\"total_ms\":{:.3},\"findings\":{findings},\"raw\":{raw},\"threads\":{}}}",
        set.migrations.len(),
        read.as_secs_f64() * 1e3,
        lint_took.as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3,
        threads()
    );
    ExitCode::SUCCESS
}

/// The cores `lint_all` may use (it uses one below 8 files).
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
