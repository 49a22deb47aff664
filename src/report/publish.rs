//! Where the report goes besides the terminal and `--json`: `--markdown`, `--sarif`, and in
//! GitHub Actions the job summary, annotations and the pull-request comment.
//!
//! Nothing here fails the run or changes the verdict: every problem (a file that cannot be
//! written, a fork PR's read-only token, GitHub down) comes back as a warning. In Actions each
//! warning is also printed as a `::warning::` annotation.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::github::{CommentAction, DEFAULT_API_URL, GithubClient, split_repository};
use super::markdown::{self, DEFAULT_MAX_CHARS, MarkdownOptions, SUMMARY_MAX_CHARS};
use super::{Report, annotations, sarif};
use crate::model::CommentMode;

/// What GitHub Actions tells a step, read once (tests build it by hand: the process environment
/// is global).
#[derive(Debug, Clone, Default)]
pub struct GithubEnv {
    /// `GITHUB_ACTIONS=true`.
    pub actions: bool,
    /// `GITHUB_EVENT_NAME`, e.g. `pull_request`.
    pub event_name: Option<String>,
    /// `GITHUB_EVENT_PATH`: the event payload (JSON).
    pub event_path: Option<PathBuf>,
    /// `GITHUB_REPOSITORY`: `owner/repo`.
    pub repository: Option<String>,
    /// `GITHUB_API_URL` (default `https://api.github.com`; `https://HOST/api/v3` on GHES).
    pub api_url: Option<String>,
    /// `GITHUB_SERVER_URL`, for the link to the run.
    pub server_url: Option<String>,
    /// `GITHUB_RUN_ID`, for the link to the run.
    pub run_id: Option<String>,
    /// `GITHUB_STEP_SUMMARY`: the file the job summary is appended to.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_WORKFLOW`: part of the comment's marker key.
    pub workflow: Option<String>,
}

impl GithubEnv {
    pub fn from_process_env() -> GithubEnv {
        GithubEnv::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any variable lookup (empty values count as unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> GithubEnv {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        GithubEnv {
            actions: var("GITHUB_ACTIONS").as_deref() == Some("true"),
            event_name: var("GITHUB_EVENT_NAME"),
            event_path: var("GITHUB_EVENT_PATH").map(PathBuf::from),
            repository: var("GITHUB_REPOSITORY"),
            api_url: var("GITHUB_API_URL"),
            server_url: var("GITHUB_SERVER_URL"),
            run_id: var("GITHUB_RUN_ID"),
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            workflow: var("GITHUB_WORKFLOW"),
        }
    }

    pub fn api_url(&self) -> &str {
        self.api_url.as_deref().unwrap_or(DEFAULT_API_URL)
    }

    /// `pull_request` or `pull_request_target`.
    pub fn is_pull_request_event(&self) -> bool {
        matches!(
            self.event_name.as_deref(),
            Some("pull_request" | "pull_request_target")
        )
    }

    /// The PR number from the event payload: `pull_request.number` (or `number`) on pull-request
    /// events, `issue.number` on comments on a pull request.
    pub fn pr_number(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.event_path.as_ref()?).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        if let Some(n) = json["pull_request"]["number"].as_u64() {
            return Some(n);
        }
        if json["pull_request"].is_object() {
            return json["number"].as_u64();
        }
        if json["issue"]["pull_request"].is_object() {
            return json["issue"]["number"].as_u64();
        }
        None
    }

    /// The run's page, where the job summary is shown.
    pub fn run_url(&self) -> Option<String> {
        let server = self
            .server_url
            .as_deref()
            .unwrap_or("https://github.com")
            .trim_end_matches('/');
        Some(format!(
            "{server}/{}/actions/runs/{}",
            self.repository.as_deref()?,
            self.run_id.as_deref()?
        ))
    }

    /// The marker key: workflow + migrations directory, so that two workflows (or two
    /// directories) keep a comment each.
    pub fn comment_key(&self, report: &Report) -> String {
        format!(
            "{}/{}",
            self.workflow.as_deref().unwrap_or("ci-gate"),
            report.migrations_dir
        )
    }
}

/// What to publish, and where.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// `--markdown PATH|-`: the comment body (≤ 65,000 bytes).
    pub markdown: Option<PathBuf>,
    /// `--sarif PATH|-`.
    pub sarif: Option<PathBuf>,
    /// `--comment` (or config `comment:`): auto = on pull-request events in Actions.
    pub comment: CommentMode,
    /// `--pr N` (default: from the event payload).
    pub pr: Option<u64>,
    /// `--github-token` / `GITHUB_TOKEN`.
    pub github_token: Option<String>,
    /// Stdout carries a report (`--json -`): annotations and warnings go to stderr instead
    /// (GitHub reads workflow commands from both). Implied by `--markdown -` and `--sarif -`.
    pub stdout_is_data: bool,
    pub env: GithubEnv,
}

/// Write every requested output; return the warnings (never fails, never changes the verdict).
pub async fn publish(report: &Report, opts: &PublishOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    let env = &opts.env;
    let dash = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let to_stderr = opts.stdout_is_data || dash(&opts.markdown) || dash(&opts.sarif);
    let key = env.comment_key(report);
    let comment_body = || {
        markdown::render(
            report,
            &MarkdownOptions {
                key: key.clone(),
                max_chars: DEFAULT_MAX_CHARS,
                summary_link: if env.actions { env.run_url() } else { None },
            },
        )
    };

    if let Some(path) = &opts.markdown
        && let Err(e) = write_output(path, &comment_body())
    {
        warnings.push(format!(
            "cannot write the Markdown report to {}: {e}",
            path.display()
        ));
    }
    if let Some(path) = &opts.sarif
        && let Err(e) = write_output(path, &(sarif::render(report) + "\n"))
    {
        warnings.push(format!(
            "cannot write the SARIF report to {}: {e}",
            path.display()
        ));
    }

    if env.actions {
        if let Some(path) = &env.step_summary {
            let body = markdown::render(
                report,
                &MarkdownOptions {
                    key: key.clone(),
                    max_chars: SUMMARY_MAX_CHARS,
                    summary_link: None,
                },
            );
            if let Err(e) = append(path, &body) {
                warnings.push(format!(
                    "cannot append the report to the job summary ({}): {e}",
                    path.display()
                ));
            }
        }
        let lines = annotations::render(report);
        if !lines.is_empty() {
            emit(to_stderr, &lines);
        }
    }

    if let Some(w) = comment(report, opts, &comment_body).await {
        warnings.push(w);
    }

    if env.actions {
        for w in &warnings {
            emit(
                to_stderr,
                &format!("::warning title=ci-gate::{}\n", annotations::escape_data(w)),
            );
        }
    }
    warnings
}

/// Workflow commands to stdout, or to stderr when stdout carries a report.
fn emit(to_stderr: bool, text: &str) {
    if to_stderr {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Post or update the PR comment when asked; a warning when it cannot be done.
async fn comment(
    report: &Report,
    opts: &PublishOptions,
    body: &dyn Fn() -> String,
) -> Option<String> {
    let env = &opts.env;
    let wanted = match opts.comment {
        CommentMode::Never => false,
        CommentMode::Always => true,
        CommentMode::Auto => env.actions && (env.is_pull_request_event() || opts.pr.is_some()),
    };
    if !wanted {
        return None;
    }
    let prefix = "the pull-request comment was not posted";
    let Some(pr) = opts.pr.or_else(|| env.pr_number()) else {
        return Some(format!(
            "{prefix}: no pull-request number (pass --pr N, or run on a pull_request event)"
        ));
    };
    let Some(repository) = env.repository.as_deref() else {
        return Some(format!(
            "{prefix}: GITHUB_REPOSITORY is not set (owner/repo)"
        ));
    };
    let Some(token) = opts
        .github_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    else {
        return Some(format!(
            "{prefix}: no GitHub token (set GITHUB_TOKEN or pass --github-token); the report is in the job summary"
        ));
    };
    let (owner, repo) = match split_repository(repository) {
        Ok(x) => x,
        Err(e) => return Some(format!("{prefix}: {e}")),
    };
    let client = match GithubClient::new(env.api_url(), token.trim()) {
        Ok(c) => c,
        Err(e) => return Some(format!("{prefix}: {e}")),
    };
    let body = body();
    let marker = markdown::marker(&env.comment_key(report));
    match client.upsert_comment(owner, repo, pr, &body, &marker).await {
        Ok(action) => {
            let (what, url) = match &action {
                CommentAction::Created { url, .. } => ("posted", url),
                CommentAction::Updated { url, .. } => ("updated", url),
                CommentAction::Unchanged { url, .. } => ("unchanged", url),
            };
            eprintln!(
                "pull-request comment {what}: {}",
                url.clone()
                    .unwrap_or_else(|| format!("{repository}#{pr} (comment {})", action.id()))
            );
            None
        }
        Err(e) => Some(format!("{prefix}: {e}")),
    }
}

/// Write `text` to `path`, or to stdout for `-`.
fn write_output(path: &Path, text: &str) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    } else {
        std::fs::write(path, text)
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        f.write_all(b"\n")?;
    }
    f.write_all(b"\n")
}
