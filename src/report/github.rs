//! The pull-request comment, through GitHub's REST API (octocrab, rustls with ring).
//!
//! One comment per marker, kept current: list **every** page of the PR's comments, find ours by
//! the marker on its first line, update it (nothing when the body is unchanged) or create it.
//!
//! Writes are never retried blindly. octocrab's default retry policy (`Simple(3)`) re-sends POSTs
//! on 5xx and transport errors, which can post the same comment twice; so the client that writes
//! has retries off, and after an ambiguous failure of a create (5xx, timeout, connection lost,
//! unreadable answer) ci-gate lists the comments again, with backoff, for at least a minute
//! (GitHub has been seen to store a create about 32 s after the client gave up), and creates only
//! if ours is still absent, at most once more. Reads (GET) are retried twice on 5xx and transport errors.
//!
//! Every failure is a [`GithubError`] that the caller turns into a warning: a fork PR's read-only
//! token (403), a missing repository or PR (404), a rejected body (422), rate limits (403/429 with
//! rate-limit headers), server errors.

use std::time::Duration;

use octocrab::service::middleware::retry::RetryConfig;
use octocrab::{Octocrab, Page};
use serde::Deserialize;
use serde_json::json;

use super::markdown::has_marker;

/// GitHub.com's API root; Enterprise Server's is `https://HOST/api/v3` (`GITHUB_API_URL`).
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The login of `GITHUB_TOKEN`'s comments.
pub const ACTIONS_BOT: &str = "github-actions[bot]";
/// Stop following `next` links after this many pages (100 comments each).
const MAX_PAGES: usize = 200;

/// An issue comment, as much of it as ci-gate reads.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user: Option<CommentUser>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommentUser {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// What [`GithubClient::upsert_comment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentAction {
    Created {
        id: u64,
        url: Option<String>,
    },
    Updated {
        id: u64,
        url: Option<String>,
    },
    /// Our comment already had this body: nothing sent.
    Unchanged {
        id: u64,
        url: Option<String>,
    },
}

impl CommentAction {
    pub fn id(&self) -> u64 {
        match self {
            CommentAction::Created { id, .. }
            | CommentAction::Updated { id, .. }
            | CommentAction::Unchanged { id, .. } => *id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GithubErrorKind {
    /// Missing or unusable settings (no token, bad repository name, bad API URL).
    Config,
    /// 401.
    Unauthorized,
    /// 403 that is not a rate limit (fork PR, read-only token, missing permission).
    Forbidden,
    /// 404.
    NotFound,
    /// 422 (e.g. body too long).
    Unprocessable,
    /// 429, or 403 with rate-limit headers.
    RateLimited,
    /// 5xx.
    Server,
    /// No HTTP answer (connection, TLS, timeout).
    Transport,
    /// An answer that could not be read.
    Decode,
    /// Any other status.
    Other,
}

/// A GitHub API failure, for a warning (never a changed verdict).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
pub struct GithubError {
    pub kind: GithubErrorKind,
    pub status: Option<u16>,
    pub message: String,
    pub hint: Option<String>,
}

impl GithubError {
    pub fn config(message: impl Into<String>) -> GithubError {
        GithubError {
            kind: GithubErrorKind::Config,
            status: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Whether a write that failed this way may nevertheless have happened on the server.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self.kind,
            GithubErrorKind::Server | GithubErrorKind::Transport | GithubErrorKind::Decode
        )
    }

    fn from_octocrab(e: octocrab::Error, what: &str) -> GithubError {
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let status = source.status_code.as_u16();
                let header = |name: &str| {
                    source
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let msg = source.message.trim().to_string();
                let rate_limited = status == 429
                    || (status == 403
                        && (header("x-ratelimit-remaining").as_deref() == Some("0")
                            || header("retry-after").is_some()
                            || msg.to_lowercase().contains("rate limit")));
                let (kind, hint) = if rate_limited {
                    let reset = source
                        .rate_limit_reset_at()
                        .map(|t| format!("the limit resets at {}", t.format("%H:%M:%S UTC")))
                        .or_else(|| header("retry-after").map(|s| format!("retry after {s} s")));
                    (GithubErrorKind::RateLimited, reset)
                } else {
                    match status {
                        401 => (
                            GithubErrorKind::Unauthorized,
                            Some("the token is missing, expired or wrong".to_string()),
                        ),
                        403 => (
                            GithubErrorKind::Forbidden,
                            Some(
                                "a pull request from a fork gets a read-only GITHUB_TOKEN; other tokens need \
                                 `pull-requests: write` (or `issues: write`); the report is in the job summary"
                                    .to_string(),
                            ),
                        ),
                        404 => (
                            GithubErrorKind::NotFound,
                            Some(
                                "check the repository, the pull-request number and that the token can see them"
                                    .to_string(),
                            ),
                        ),
                        422 => (GithubErrorKind::Unprocessable, None),
                        s if s >= 500 => (GithubErrorKind::Server, None),
                        _ => (GithubErrorKind::Other, None),
                    }
                };
                let label = if rate_limited {
                    "rate limit reached".to_string()
                } else {
                    format!("GitHub answered {status}")
                };
                GithubError {
                    kind,
                    status: Some(status),
                    message: format!("{what}: {label}: {msg}"),
                    hint,
                }
            }
            octocrab::Error::Serde { .. } | octocrab::Error::Json { .. } => GithubError {
                kind: GithubErrorKind::Decode,
                status: None,
                message: format!("{what}: unreadable answer from GitHub: {e}"),
                hint: None,
            },
            // GitHub answered, but not in the shape of its REST API (octocrab's catch-all, whose
            // Display is only "Other": say what it was).
            octocrab::Error::Other { source, .. } => GithubError {
                kind: GithubErrorKind::Decode,
                status: None,
                message: format!(
                    "{what}: GitHub's answer is not in the shape its REST API gives: {}",
                    one_line(&source.to_string())
                ),
                hint: Some(
                    "check the API URL (GITHUB_API_URL; on GitHub Enterprise Server it ends in /api/v3)"
                        .to_string(),
                ),
            },
            other => GithubError {
                kind: GithubErrorKind::Transport,
                status: None,
                message: format!(
                    "{what}: cannot reach GitHub: {}",
                    one_line(&other.to_string())
                ),
                hint: None,
            },
        }
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// A GitHub REST client for the PR comment.
pub struct GithubClient {
    /// GETs: retried on 5xx and transport errors.
    read: Octocrab,
    /// POST/PATCH: never retried by octocrab.
    write: Octocrab,
    relist_delay: Duration,
    /// How long to keep listing after an ambiguous create before posting again.
    relist_window: Duration,
}

/// At most this many lists after an ambiguous create.
const MAX_RELISTS: usize = 6;

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient").finish_non_exhaustive()
    }
}

impl GithubClient {
    /// A client for `api_url` (GitHub.com's or Enterprise Server's `…/api/v3`, or a test
    /// server's). Must be called inside a Tokio runtime.
    pub fn new(api_url: &str, token: &str) -> Result<GithubClient, GithubError> {
        let build = |retry: RetryConfig| -> Result<Octocrab, GithubError> {
            Octocrab::builder()
                .personal_token(token.to_string())
                .base_uri(api_url.trim_end_matches('/'))
                .map_err(|e| {
                    GithubError::config(format!("invalid GitHub API URL `{api_url}`: {e}"))
                })?
                .add_retry_config(retry)
                .set_connect_timeout(Some(Duration::from_secs(10)))
                .set_read_timeout(Some(Duration::from_secs(30)))
                .set_write_timeout(Some(Duration::from_secs(30)))
                .build()
                .map_err(|e| {
                    GithubError::config(format!(
                        "cannot set up the GitHub client: {}",
                        one_line(&e.to_string())
                    ))
                })
        };
        Ok(GithubClient {
            read: build(RetryConfig::Simple(2))?,
            write: build(RetryConfig::None)?,
            relist_delay: Duration::from_secs(2),
            relist_window: Duration::from_secs(60),
        })
    }

    /// How long to wait before listing again after an ambiguous create (GitHub's reads may lag
    /// its writes a little). Default 2 s.
    pub fn with_relist_delay(mut self, delay: Duration) -> GithubClient {
        self.relist_delay = delay;
        self
    }

    /// How long to keep listing after an ambiguous create before posting again (default 60 s).
    pub fn with_relist_window(mut self, window: Duration) -> GithubClient {
        self.relist_window = window;
        self
    }

    /// Every comment of issue/PR `number`, following `Link: rel="next"` to the last page.
    pub async fn list_comments(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
    ) -> Result<Vec<IssueComment>, GithubError> {
        check_name(owner)?;
        check_name(repo)?;
        let what = format!("listing the comments of {owner}/{repo}#{number}");
        let mut page: Page<IssueComment> = self
            .read
            .get(
                format!("/repos/{owner}/{repo}/issues/{number}/comments"),
                Some(&[("per_page", "100")]),
            )
            .await
            .map_err(|e| GithubError::from_octocrab(e, &what))?;
        let mut all = page.take_items();
        let mut pages = 1;
        while let Some(mut next) = self
            .read
            .get_page::<IssueComment>(&page.next)
            .await
            .map_err(|e| GithubError::from_octocrab(e, &what))?
        {
            all.append(&mut next.take_items());
            page = next;
            pages += 1;
            if pages >= MAX_PAGES {
                break;
            }
        }
        Ok(all)
    }

    /// Create or update the comment whose first line is `marker`.
    pub async fn upsert_comment(
        &self,
        owner: &str,
        repo: &str,
        pr: u64,
        body: &str,
        marker: &str,
    ) -> Result<CommentAction, GithubError> {
        let comments = self.list_comments(owner, repo, pr).await?;
        if let Some(ours) = self.find(&comments, marker).await {
            return self.update_if_changed(owner, repo, ours, body, false).await;
        }
        let first = match self.create(owner, repo, pr, body).await {
            Ok(c) => {
                return Ok(CommentAction::Created {
                    id: c.id,
                    url: c.html_url,
                });
            }
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(e),
        };
        // The POST may have succeeded before the answer was lost: look (for a while) before
        // posting again.
        let mut delay = self.relist_delay;
        let mut waited = Duration::ZERO;
        let mut listed = false;
        let mut last_error = None;
        for _ in 0..MAX_RELISTS {
            tokio::time::sleep(delay).await;
            waited += delay;
            match self.list_comments(owner, repo, pr).await {
                Ok(comments) => {
                    listed = true;
                    if let Some(ours) = self.find(&comments, marker).await {
                        return self.update_if_changed(owner, repo, ours, body, true).await;
                    }
                }
                Err(e) => last_error = Some(e),
            }
            if waited >= self.relist_window {
                break;
            }
            delay = (delay * 2).min(self.relist_window.saturating_sub(waited));
        }
        if !listed {
            let then = last_error.map(|e| e.message).unwrap_or_default();
            return Err(GithubError {
                message: format!(
                    "{}; then {then} (not posting again, to avoid a duplicate comment)",
                    first.message
                ),
                ..first
            });
        }
        let c = self.create(owner, repo, pr, body).await?;
        Ok(CommentAction::Created {
            id: c.id,
            url: c.html_url,
        })
    }

    async fn create(
        &self,
        owner: &str,
        repo: &str,
        pr: u64,
        body: &str,
    ) -> Result<IssueComment, GithubError> {
        self.write
            .post(
                format!("/repos/{owner}/{repo}/issues/{pr}/comments"),
                Some(&json!({ "body": body })),
            )
            .await
            .map_err(|e| {
                GithubError::from_octocrab(e, &format!("commenting on {owner}/{repo}#{pr}"))
            })
    }

    async fn update_if_changed(
        &self,
        owner: &str,
        repo: &str,
        ours: &IssueComment,
        body: &str,
        just_created: bool,
    ) -> Result<CommentAction, GithubError> {
        if same_body(ours.body.as_deref().unwrap_or(""), body) {
            return Ok(if just_created {
                CommentAction::Created {
                    id: ours.id,
                    url: ours.html_url.clone(),
                }
            } else {
                CommentAction::Unchanged {
                    id: ours.id,
                    url: ours.html_url.clone(),
                }
            });
        }
        let route = format!("/repos/{owner}/{repo}/issues/comments/{}", ours.id);
        let what = format!("updating comment {} on {owner}/{repo}", ours.id);
        let payload = json!({ "body": body });
        // PATCH is idempotent: one retry after an ambiguous failure is safe.
        let mut result: Result<IssueComment, GithubError> = self
            .write
            .patch(&route, Some(&payload))
            .await
            .map_err(|e| GithubError::from_octocrab(e, &what));
        if matches!(&result, Err(e) if e.is_ambiguous()) {
            tokio::time::sleep(self.relist_delay).await;
            result = self
                .write
                .patch(&route, Some(&payload))
                .await
                .map_err(|e| GithubError::from_octocrab(e, &what));
        }
        let c = result?;
        Ok(CommentAction::Updated {
            id: c.id,
            url: c.html_url.or_else(|| ours.html_url.clone()),
        })
    }

    /// Our comment among `comments`: the marker on the first line. When several carry it, prefer
    /// `github-actions[bot]`'s, then the token's user's, then any bot's; the newest among equals.
    async fn find<'a>(
        &self,
        comments: &'a [IssueComment],
        marker: &str,
    ) -> Option<&'a IssueComment> {
        let matches: Vec<&IssueComment> = comments
            .iter()
            .filter(|c| c.body.as_deref().is_some_and(|b| has_marker(b, marker)))
            .collect();
        if matches.len() <= 1 {
            return matches.first().copied();
        }
        let login = |c: &IssueComment| c.user.as_ref().map(|u| u.login.clone());
        let me = if matches
            .iter()
            .any(|c| login(c).as_deref() == Some(ACTIONS_BOT))
        {
            None
        } else {
            self.token_login().await
        };
        matches.into_iter().max_by_key(|c| {
            let l = login(c);
            let rank = if l.as_deref() == Some(ACTIONS_BOT) {
                3
            } else if me.is_some() && l == me {
                2
            } else if c
                .user
                .as_ref()
                .and_then(|u| u.kind.as_deref())
                .is_some_and(|k| k.eq_ignore_ascii_case("bot"))
            {
                1
            } else {
                0
            };
            (rank, c.id)
        })
    }

    /// The login of the token's user (`GET /user`; GITHUB_TOKEN cannot call it: then `None`).
    async fn token_login(&self) -> Option<String> {
        self.read
            .get::<CommentUser, _, ()>("/user", None)
            .await
            .ok()
            .map(|u| u.login)
    }
}

fn same_body(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n").trim_end() == b.replace("\r\n", "\n").trim_end()
}

/// Owner and repository names: GitHub allows letters, digits, `-`, `_` and `.`.
fn check_name(name: &str) -> Result<(), GithubError> {
    if !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        Ok(())
    } else {
        Err(GithubError::config(format!(
            "`{name}` is not a GitHub owner or repository name"
        )))
    }
}

/// `owner/repo` → (`owner`, `repo`).
pub fn split_repository(full: &str) -> Result<(&str, &str), GithubError> {
    let (owner, repo) = full.split_once('/').ok_or_else(|| {
        GithubError::config(format!(
            "GITHUB_REPOSITORY `{full}` is not of the form owner/repo"
        ))
    })?;
    check_name(owner)?;
    check_name(repo)?;
    Ok((owner, repo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        assert_eq!(split_repository("acme/app").ok(), Some(("acme", "app")));
        assert!(split_repository("acme").is_err());
        assert!(split_repository("acme/../x").is_err());
        assert!(split_repository("a/b?c").is_err());
    }

    #[test]
    fn bodies_compare_modulo_crlf_and_trailing_space() {
        assert!(same_body("a\r\nb\n", "a\nb"));
        assert!(!same_body("a\nb", "a\nc"));
    }
}
