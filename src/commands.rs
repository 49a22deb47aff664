//! The subcommands behind `main`: what each prints and which exit code it gives. `main` only
//! parses the command line and dispatches here.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use crate::check::ALL_RULES;
use crate::cli::VerifyArgs;
use crate::error::UserError;
use crate::model::CommentMode;
use crate::pipeline;
use crate::report::publish::{self, GithubEnv, PublishOptions};
use crate::report::{json, terminal};
use crate::secrets::Secrets;
use crate::settings::Settings;

/// `ci-gate rules`: every rule, its category, default severity and one line.
pub fn rules() -> ExitCode {
    let mut out = String::new();
    for r in ALL_RULES {
        out.push_str(&format!(
            "{:<30} {:<12} {:<8} {}\n",
            r.id,
            r.category.to_string(),
            r.default_severity.to_string(),
            r.summary
        ));
    }
    out.push_str("\nStatic lint (squawk-linter; rules that fire on nearly every Prisma file are off, turn them on under `rules:`):\n");
    for (id, summary, severity, on) in crate::check::squawk::squawk_rules() {
        let sev = if on {
            severity.to_string()
        } else {
            "off".to_string()
        };
        out.push_str(&format!("{id:<45} {sev:<8} {summary}\n"));
    }
    self::out(&out);
    ExitCode::SUCCESS
}

/// `ci-gate explain RULE`: the rule's page, as published under `docs/rules/`; for an unknown id,
/// the closest known one.
pub fn explain(rule: &str) -> ExitCode {
    match crate::report::rule_docs::explain(rule) {
        Some(doc) => {
            out(&doc);
            ExitCode::SUCCESS
        }
        None => {
            let hint = match crate::report::rule_docs::suggest(rule) {
                Some(id) => format!("did you mean `{id}`? (`ci-gate explain {id}`)"),
                None => "run `ci-gate rules` for the list of rule ids".to_string(),
            };
            err(&format!("error: unknown rule `{rule}`\nhint: {hint}\n"));
            ExitCode::from(2)
        }
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error: the rest is dropped, the run goes
/// on (files, the comment) and keeps its exit code.
fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Write to stderr, ignoring a closed stream.
fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An output file (`--json`, `--sarif`, `--markdown`): its directory is created, and a path that
/// cannot be written is bad input before any work.
fn prepare_output(path: &std::path::Path, flag: &str) -> Result<(), UserError> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let bad = |e: std::io::Error| {
        UserError::bad_input(format!(
            "{flag} {}: cannot write there: {e}",
            path.display()
        ))
        .hint(format!("pass a writable path to {flag}, or '-' for stdout"))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(bad)?;
    }
    if path.is_dir() {
        return Err(bad(std::io::Error::other("it is a directory")));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(bad)?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// `ci-gate verify`: run the pipeline, print the terminal report, write the files, publish.
pub fn verify(args: &VerifyArgs) -> ExitCode {
    let secrets = Secrets::collect(
        &[args.database_url.as_deref(), args.live_url.as_deref()],
        &[args.github_token.as_deref()],
    );
    let fail = |e: UserError| {
        err(&secrets.scrub(&format!("{e}\n")));
        ExitCode::from(e.exit_code())
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(UserError::environment(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    for (path, flag) in [
        (&args.json, "--json"),
        (&args.sarif, "--sarif"),
        (&args.markdown, "--markdown"),
    ] {
        if let Some(p) = path
            && let Err(e) = prepare_output(p, flag)
        {
            return fail(e);
        }
    }
    let settings = match Settings::resolve(args.flags()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let ticker = progress_mode(args).map(crate::progress::Ticker::start);
    let verified = runtime.block_on(pipeline::verify(settings));
    drop(ticker);
    let mut report = match verified {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    secrets.scrub_report(&mut report);
    let json_to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let text = secrets.scrub(&terminal_text(&report, args, json_to_stdout));
    if json_to_stdout {
        err(&text)
    } else {
        out(&text)
    }
    if let Some(path) = &args.json {
        let body = secrets.scrub(&json::render(&report)) + "\n";
        if path.as_os_str() == "-" {
            out(&body);
        } else if let Err(e) = std::fs::write(path, body) {
            return fail(
                UserError::environment(format!(
                    "cannot write the JSON report to {}: {e}",
                    path.display()
                ))
                .hint("check that the directory exists and is writable"),
            );
        }
    }
    let publish_opts = PublishOptions {
        markdown: args.markdown.clone(),
        sarif: args.sarif.clone(),
        comment: report
            .comment
            .or(args.comment.map(Into::into))
            .unwrap_or(CommentMode::Auto),
        pr: args.pr,
        github_token: args.github_token.clone(),
        stdout_is_data: json_to_stdout,
        env: GithubEnv::from_process_env(),
    };
    // A signal is honoured while GitHub is slow to answer (its calls can take a minute).
    let published = runtime.block_on(async {
        tokio::select! {
            warnings = publish::publish(&report, &publish_opts) => Ok(warnings),
            signal = pipeline::shutdown_signal() => Err(signal),
        }
    });
    match published {
        Ok(warnings) => {
            for w in warnings {
                err(&secrets.scrub(&format!("warning: {w}\n")));
            }
            ExitCode::from(pipeline::exit_code(&report))
        }
        Err(signal) => fail(UserError::environment(format!(
            "interrupted by {signal} while publishing the report; the terminal report above is complete, the pull-request comment and job summary may not be current"
        ))),
    }
}

/// Progress on stderr: redrawn in place on a terminal (not with `--quiet`), one line per phase
/// with `--progress` elsewhere, none in CI logs unless asked.
fn progress_mode(args: &VerifyArgs) -> Option<crate::progress::Mode> {
    use crate::progress::Mode;
    match (std::io::stderr().is_terminal(), args.progress) {
        (true, _) if !args.quiet || args.progress => Some(Mode::Live),
        (false, true) => Some(Mode::Lines),
        _ => None,
    }
}

/// The terminal report: colour on a tty, `--quiet` without the table, and in GitHub Actions
/// fenced so that SQL from the pull request cannot issue workflow commands.
fn terminal_text(
    report: &crate::report::Report,
    args: &VerifyArgs,
    json_to_stdout: bool,
) -> String {
    let tty = if json_to_stdout {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let color = tty && std::env::var_os("NO_COLOR").is_none();
    let opts = terminal::TerminalOptions {
        color,
        verbose: args.verbose,
        width: None,
    };
    let mut text = terminal::render(report, &opts);
    if args.quiet {
        text = text
            .lines()
            .filter(|l| !l.starts_with(['┌', '│', '├', '└', '╞', '╘']))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
    }
    if std::env::var("GITHUB_ACTIONS").ok().as_deref() == Some("true") {
        // SQL excerpts come from the pull request: stop GitHub from reading workflow commands
        // (::error::, ::add-mask::…) out of them.
        let token = format!("ci-gate-{}", std::process::id());
        text = format!("::stop-commands::{token}\n{text}::{token}::\n");
    }
    text
}
