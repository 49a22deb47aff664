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
    print!("{out}");
    ExitCode::SUCCESS
}

/// `ci-gate explain RULE`: the rule's documentation.
pub fn explain(rule: &str) -> ExitCode {
    match crate::check::find_rule(rule)
        .map(|r| r.doc.to_string())
        .or_else(|| crate::check::squawk::explain(rule))
    {
        Some(doc) => {
            print!("{doc}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "error: unknown rule `{rule}`\nhint: run `ci-gate rules` for the list of rule ids"
            );
            ExitCode::from(2)
        }
    }
}

/// `ci-gate verify`: run the pipeline, print the terminal report, write the files, publish.
pub fn verify(args: &VerifyArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let settings = match Settings::resolve(args.flags()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let json_path = args.json.clone();
    let (quiet, verbose) = (args.quiet, args.verbose);
    let mut publish_opts = PublishOptions {
        markdown: args.markdown.clone(),
        sarif: args.sarif.clone(),
        comment: args.comment.map_or(CommentMode::Auto, Into::into),
        pr: args.pr,
        github_token: args.github_token.clone(),
        stdout_is_data: json_path.as_deref().is_some_and(|p| p.as_os_str() == "-"),
        env: GithubEnv::from_process_env(),
    };
    let in_actions = std::env::var("GITHUB_ACTIONS").ok().as_deref() == Some("true");
    match runtime.block_on(pipeline::verify(settings)) {
        Ok(report) => {
            let json_to_stdout = json_path.as_deref().is_some_and(|p| p.as_os_str() == "-");
            let tty = if json_to_stdout {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
            let color = tty && std::env::var_os("NO_COLOR").is_none();
            let mut text = terminal::render(
                &report,
                &terminal::TerminalOptions {
                    color,
                    verbose,
                    width: None,
                },
            );
            if quiet {
                text = text
                    .lines()
                    .filter(|l| !l.starts_with(['┌', '│', '├', '└', '╞', '╘']))
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n";
            }
            if in_actions {
                // SQL excerpts come from the pull request: stop GitHub from reading workflow
                // commands (::error::, ::add-mask::…) out of them.
                let token = format!("ci-gate-{}", std::process::id());
                text = format!("::stop-commands::{token}\n{text}::{token}::\n");
            }
            if json_to_stdout {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            if let Some(path) = json_path {
                let body = json::render(&report);
                if path.as_os_str() == "-" {
                    println!("{body}");
                } else if let Err(e) = std::fs::write(&path, body + "\n") {
                    let err = UserError::environment(format!(
                        "cannot write the JSON report to {}: {e}",
                        path.display()
                    ))
                    .hint("check that the directory exists and is writable");
                    eprintln!("{err}");
                    return ExitCode::from(err.exit_code());
                }
            }
            if let Some(mode) = report.comment {
                publish_opts.comment = mode;
            }
            for w in runtime.block_on(publish::publish(&report, &publish_opts)) {
                eprintln!("warning: {w}");
            }
            let _ = std::io::stdout().flush();
            ExitCode::from(pipeline::exit_code(&report))
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
