//! The PR comment against a local HTTP server that speaks GitHub's REST shapes (wiremock with a
//! stateful responder): paginated listing with `Link` headers (next pages under
//! `/repositories/{id}/…` as GitHub does), create → 201, update (PATCH) → 200, injected failures.
//! Also `publish` end to end (job summary, comment, warnings) and the annotations.

#[path = "fixtures/reports/reports.rs"]
mod reports;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ci_gate::config::CommentMode;
use ci_gate::report::annotations;
use ci_gate::report::github::{CommentAction, GithubClient, GithubErrorKind};
use ci_gate::report::markdown::{self, MarkdownOptions};
use ci_gate::report::publish::{GithubEnv, PublishOptions, publish};
use ci_gate::report::{Report, Verdict};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "ghs_test_token";
const OWNER: &str = "acme";
const REPO: &str = "app";
const REPO_ID: u64 = 712_345;
const PR: u64 = 7;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
struct StoredComment {
    id: u64,
    body: String,
    login: String,
    kind: String,
}

/// What the next create does instead of succeeding normally.
#[derive(Debug, Clone)]
enum CreateFault {
    /// Answer this status (and headers) without creating anything.
    Status(u16, Vec<(&'static str, String)>, Value),
    /// Create the comment, then answer this status (the answer was lost on the way back).
    AfterCommit(u16),
    /// Answer this status at once, but store the comment so that it shows only after this many
    /// more lists (GitHub storing a create after the client gave up, ~32 s later).
    StoredLater(u16, usize),
}

#[derive(Debug, Default)]
struct State {
    comments: Vec<StoredComment>,
    next_id: u64,
    posts: usize,
    patches: usize,
    lists: usize,
    create_faults: VecDeque<CreateFault>,
    /// Comments stored late: (lists until visible, comment).
    late: Vec<(usize, StoredComment)>,
    list_status: Option<u16>,
    /// Login the created comments get.
    login: String,
    /// (method, path?query) of every request.
    log: Vec<String>,
    unauthorized: usize,
}

#[derive(Clone)]
struct GithubSim {
    state: Arc<Mutex<State>>,
    base: String,
    /// `/api/v3` on Enterprise Server.
    prefix: String,
}

impl GithubSim {
    fn comment_json(&self, c: &StoredComment) -> Value {
        json!({
            "url": format!("{}/repos/{OWNER}/{REPO}/issues/comments/{}", self.base, c.id),
            "html_url": format!("https://github.com/{OWNER}/{REPO}/pull/{PR}#issuecomment-{}", c.id),
            "issue_url": format!("{}/repos/{OWNER}/{REPO}/issues/{PR}", self.base),
            "id": c.id,
            "node_id": format!("IC_kwDOKx{}", c.id),
            "user": {
                "login": c.login,
                "id": 41898282,
                "node_id": "MDM6Qm90NDE4OTgyODI=",
                "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
                "gravatar_id": "",
                "url": "https://api.github.com/users/github-actions%5Bbot%5D",
                "html_url": "https://github.com/apps/github-actions",
                "followers_url": "https://api.github.com/users/github-actions%5Bbot%5D/followers",
                "following_url": "https://api.github.com/users/github-actions%5Bbot%5D/following{/other_user}",
                "gists_url": "https://api.github.com/users/github-actions%5Bbot%5D/gists{/gist_id}",
                "starred_url": "https://api.github.com/users/github-actions%5Bbot%5D/starred{/owner}{/repo}",
                "subscriptions_url": "https://api.github.com/users/github-actions%5Bbot%5D/subscriptions",
                "organizations_url": "https://api.github.com/users/github-actions%5Bbot%5D/orgs",
                "repos_url": "https://api.github.com/users/github-actions%5Bbot%5D/repos",
                "events_url": "https://api.github.com/users/github-actions%5Bbot%5D/events{/privacy}",
                "received_events_url": "https://api.github.com/users/github-actions%5Bbot%5D/received_events",
                "type": c.kind,
                "user_view_type": "public",
                "site_admin": false
            },
            "created_at": "2025-05-01T10:00:00Z",
            "updated_at": "2025-05-01T10:00:00Z",
            "author_association": "NONE",
            "body": c.body,
            "reactions": {
                "url": format!("{}/repos/{OWNER}/{REPO}/issues/comments/{}/reactions", self.base, c.id),
                "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
                "confused": 0, "heart": 0, "rocket": 0, "eyes": 0
            },
            "performed_via_github_app": null
        })
    }

    fn error(status: u16, message: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.to_string()
        }))
    }

    fn list(&self, req: &Request, st: &mut State) -> ResponseTemplate {
        st.lists += 1;
        for (left, c) in std::mem::take(&mut st.late) {
            if left <= 1 {
                st.comments.push(c);
            } else {
                st.late.push((left - 1, c));
            }
        }
        if let Some(status) = st.list_status {
            return Self::error(status, "Not Found");
        }
        let q = |k: &str| {
            req.url
                .query_pairs()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        let per_page = q("per_page").unwrap_or(30).clamp(1, 100);
        let page = q("page").unwrap_or(1).max(1);
        let total = st.comments.len();
        let pages = total.div_ceil(per_page).max(1);
        let items: Vec<Value> = st
            .comments
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|c| self.comment_json(c))
            .collect();
        // GitHub's next links point at /repositories/{id}/…, absolute.
        let link = |p: usize| {
            format!(
                "{}{}/repositories/{REPO_ID}/issues/{PR}/comments?per_page={per_page}&page={p}",
                self.base, self.prefix
            )
        };
        let mut rels = Vec::new();
        if page > 1 {
            rels.push(format!("<{}>; rel=\"prev\"", link(page - 1)));
        }
        if page < pages {
            rels.push(format!("<{}>; rel=\"next\"", link(page + 1)));
            rels.push(format!("<{}>; rel=\"last\"", link(pages)));
        }
        if page > 1 {
            rels.push(format!("<{}>; rel=\"first\"", link(1)));
        }
        let mut t = ResponseTemplate::new(200).set_body_json(items);
        if !rels.is_empty() {
            t = t.insert_header("link", rels.join(", ").as_str());
        }
        t
    }
}

impl Respond for GithubSim {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.state);
        let full = match req.url.query() {
            Some(q) => format!("{}?{q}", req.url.path()),
            None => req.url.path().to_string(),
        };
        st.log.push(format!("{} {full}", req.method));
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {TOKEN}") {
            st.unauthorized += 1;
            return Self::error(401, "Bad credentials");
        }
        let Some(path) = req.url.path().strip_prefix(self.prefix.as_str()) else {
            return Self::error(404, "Not Found");
        };
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = req.method.as_str();
        let list_path = segs == ["repos", OWNER, REPO, "issues", &PR.to_string(), "comments"]
            || segs
                == [
                    "repositories",
                    &REPO_ID.to_string(),
                    "issues",
                    &PR.to_string(),
                    "comments",
                ];
        match (method, segs.as_slice()) {
            ("GET", _) if list_path => self.list(req, &mut st),
            ("GET", ["user"]) => Self::error(403, "Resource not accessible by integration"),
            ("POST", ["repos", o, r, "issues", n, "comments"])
                if *o == OWNER && *r == REPO && *n == PR.to_string() =>
            {
                st.posts += 1;
                let body: Value = req.body_json().unwrap_or(Value::Null);
                let Some(text) = body["body"].as_str() else {
                    return Self::error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
                };
                if text.chars().count() > 65_536 {
                    return Self::error(
                        422,
                        "Validation Failed: Body is too long (maximum is 65536 characters)",
                    );
                }
                let fault = st.create_faults.pop_front();
                if let Some(CreateFault::Status(status, headers, body)) = fault {
                    let mut t = ResponseTemplate::new(status).set_body_json(body);
                    for (k, v) in headers {
                        t = t.insert_header(k, v.as_str());
                    }
                    return t;
                }
                st.next_id += 1;
                let c = StoredComment {
                    id: 2_000_000_000 + st.next_id,
                    body: text.to_string(),
                    login: st.login.clone(),
                    kind: "Bot".into(),
                };
                if let Some(CreateFault::StoredLater(status, lists)) = fault {
                    st.late.push((lists, c));
                    return Self::error(status, "Server Error");
                }
                st.comments.push(c.clone());
                if let Some(CreateFault::AfterCommit(status)) = fault {
                    return ResponseTemplate::new(status)
                        .set_body_string("<html><body><h1>502 Bad Gateway</h1></body></html>");
                }
                ResponseTemplate::new(201)
                    .insert_header(
                        "location",
                        format!(
                            "{}/repos/{OWNER}/{REPO}/issues/comments/{}",
                            self.base, c.id
                        )
                        .as_str(),
                    )
                    .set_body_json(self.comment_json(&c))
            }
            ("PATCH", ["repos", o, r, "issues", "comments", id]) if *o == OWNER && *r == REPO => {
                st.patches += 1;
                let body: Value = req.body_json().unwrap_or(Value::Null);
                let id: u64 = id.parse().unwrap_or(0);
                let Some(text) = body["body"].as_str() else {
                    return Self::error(422, "Invalid request.");
                };
                match st.comments.iter_mut().find(|c| c.id == id) {
                    Some(c) => {
                        c.body = text.to_string();
                        let c = c.clone();
                        ResponseTemplate::new(200).set_body_json(self.comment_json(&c))
                    }
                    None => Self::error(404, "Not Found"),
                }
            }
            _ => Self::error(404, "Not Found"),
        }
    }
}

struct Sim {
    server: MockServer,
    state: Arc<Mutex<State>>,
    prefix: String,
}

impl Sim {
    async fn start() -> Sim {
        Sim::start_with_prefix("").await
    }

    async fn start_with_prefix(prefix: &str) -> Sim {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            login: "github-actions[bot]".into(),
            ..State::default()
        }));
        Mock::given(any())
            .respond_with(GithubSim {
                state: state.clone(),
                base: server.uri(),
                prefix: prefix.to_string(),
            })
            .mount(&server)
            .await;
        Sim {
            server,
            state,
            prefix: prefix.to_string(),
        }
    }

    fn api_url(&self) -> String {
        format!("{}{}", self.server.uri(), self.prefix)
    }

    fn client(&self) -> GithubClient {
        GithubClient::new(&self.api_url(), TOKEN)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_relist_delay(Duration::ZERO)
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn add_comment(&self, body: &str, login: &str, kind: &str) -> u64 {
        let mut st = self.st();
        st.next_id += 1;
        let id = 1_000_000 + st.next_id;
        st.comments.push(StoredComment {
            id,
            body: body.to_string(),
            login: login.to_string(),
            kind: kind.to_string(),
        });
        id
    }

    fn bodies(&self) -> Vec<String> {
        self.st().comments.iter().map(|c| c.body.clone()).collect()
    }
}

fn marker() -> String {
    markdown::marker("PR check/prisma/migrations")
}

fn body(report: &Report) -> String {
    markdown::render(
        report,
        &MarkdownOptions {
            key: "PR check/prisma/migrations".into(),
            ..MarkdownOptions::default()
        },
    )
}

async fn upsert(
    sim: &Sim,
    body: &str,
) -> Result<CommentAction, ci_gate::report::github::GithubError> {
    sim.client()
        .upsert_comment(OWNER, REPO, PR, body, &marker())
        .await
}

#[tokio::test]
async fn first_run_creates_exactly_one_comment() {
    let sim = Sim::start().await;
    sim.add_comment("LGTM", "octocat", "User");
    let action = upsert(&sim, &body(&reports::failing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(action, CommentAction::Created { .. }),
        "{action:?}"
    );
    let st = sim.st();
    assert_eq!(st.posts, 1);
    assert_eq!(st.patches, 0);
    assert_eq!(st.unauthorized, 0);
    assert_eq!(st.comments.len(), 2);
    assert!(st.comments[1].body.starts_with(&format!("{}\n", marker())));
    if let CommentAction::Created { url, .. } = action {
        assert!(url.unwrap_or_default().contains("#issuecomment-"));
    }
}

#[tokio::test]
async fn second_run_updates_the_same_comment() {
    let sim = Sim::start().await;
    let first = upsert(&sim, &body(&reports::failing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = upsert(&sim, &body(&reports::passing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(second, CommentAction::Updated { .. }),
        "{second:?}"
    );
    assert_eq!(first.id(), second.id());
    let st = sim.st();
    assert_eq!((st.posts, st.patches), (1, 1), "{:#?}", st.log);
    assert_eq!(st.comments.len(), 1);
    assert!(st.comments[0].body.contains("ci-gate: pass"));
    // The update is a PATCH to the comment's own URL.
    assert!(
        st.log
            .iter()
            .any(|l| l == &format!("PATCH /repos/{OWNER}/{REPO}/issues/comments/{}", first.id())),
        "{:#?}",
        st.log
    );
}

#[tokio::test]
async fn our_comment_is_found_on_the_second_page() {
    let sim = Sim::start().await;
    for i in 0..130 {
        sim.add_comment(&format!("comment {i}"), "octocat", "User");
    }
    // A reviewer quoting our comment (marker not on the first line) is not ours.
    sim.add_comment(&format!("> quoting\n{}\nfoo", marker()), "octocat", "User");
    let ours = sim.add_comment(
        &format!("{}\nold body", marker()),
        "github-actions[bot]",
        "Bot",
    );
    for i in 0..20 {
        sim.add_comment(&format!("later {i}"), "octocat", "User");
    }
    let action = upsert(&sim, &body(&reports::failing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        action,
        CommentAction::Updated {
            id: ours,
            url: Some(format!(
                "https://github.com/{OWNER}/{REPO}/pull/{PR}#issuecomment-{ours}"
            ))
        }
    );
    let st = sim.st();
    assert_eq!(st.posts, 0, "no new comment: {:#?}", st.log);
    assert_eq!(st.lists, 2, "two pages of 100");
    assert!(
        st.log
            .iter()
            .any(|l| l.starts_with(&format!("GET /repositories/{REPO_ID}/issues/{PR}/comments"))),
        "followed the Link header: {:#?}",
        st.log
    );
    assert_eq!(st.unauthorized, 0, "the token is sent to page 2 too");
}

#[tokio::test]
async fn unchanged_body_sends_no_patch() {
    let sim = Sim::start().await;
    let text = body(&reports::failing());
    upsert(&sim, &text).await.unwrap_or_else(|e| panic!("{e}"));
    let again = upsert(&sim, &text).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(again, CommentAction::Unchanged { .. }),
        "{again:?}"
    );
    let st = sim.st();
    assert_eq!((st.posts, st.patches), (1, 0));
}

#[tokio::test]
async fn several_matches_prefer_the_actions_bot() {
    let sim = Sim::start().await;
    let human = sim.add_comment(&format!("{}\ncopied by hand", marker()), "octocat", "User");
    let bot = sim.add_comment(&format!("{}\nold", marker()), "github-actions[bot]", "Bot");
    let later_human = sim.add_comment(&format!("{}\nagain", marker()), "octocat", "User");
    let action = upsert(&sim, "new body")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(action.id(), bot);
    assert!(human < bot && bot < later_human);
    assert_eq!(sim.st().patches, 1);
}

#[tokio::test]
async fn a_502_after_the_comment_was_created_does_not_duplicate_it() {
    let sim = Sim::start().await;
    sim.st()
        .create_faults
        .push_back(CreateFault::AfterCommit(502));
    let text = body(&reports::failing());
    let action = upsert(&sim, &text).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(action, CommentAction::Created { .. }),
        "{action:?}"
    );
    let st = sim.st();
    assert_eq!(st.posts, 1, "the POST was not retried: {:#?}", st.log);
    assert_eq!(st.comments.len(), 1, "exactly one comment");
    assert_eq!(st.lists, 2, "listed again before deciding");
    assert_eq!(st.patches, 0, "the body was already right");
}

#[tokio::test]
async fn a_502_before_the_comment_was_created_posts_once_more() {
    let sim = Sim::start().await;
    sim.st().create_faults.push_back(CreateFault::Status(
        502,
        vec![],
        json!({"message": "Server Error"}),
    ));
    let action = upsert(&sim, &body(&reports::failing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(action, CommentAction::Created { .. }));
    let st = sim.st();
    assert_eq!(st.posts, 2);
    assert_eq!(st.comments.len(), 1);
}

#[tokio::test]
async fn a_create_github_stores_late_is_found_by_listing_again_not_posted_twice() {
    // Issue 13: the client gave up on a create that GitHub stored about 32 s later; listing once
    // two seconds after was not enough, and a second POST made a duplicate comment.
    let sim = Sim::start().await;
    sim.st()
        .create_faults
        .push_back(CreateFault::StoredLater(502, 4));
    let action = upsert(&sim, &body(&reports::failing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(action, CommentAction::Created { .. }),
        "{action:?}"
    );
    let st = sim.st();
    assert_eq!(st.posts, 1, "no second POST: {:#?}", st.log);
    assert_eq!(st.comments.len(), 1, "exactly one comment");
    assert_eq!(st.lists, 1 + 4, "listed until it showed up");
}

#[tokio::test]
async fn listing_again_after_an_ambiguous_create_lasts_a_minute_with_backoff() {
    // Real delays, scaled down: 50 ms doubling within a 300 ms window lists three more times
    // (after 50, 100 and 150 ms: the last delay clipped to the window), then posts once more.
    let sim = Sim::start().await;
    sim.st().create_faults.push_back(CreateFault::Status(
        502,
        vec![],
        json!({"message": "Server Error"}),
    ));
    let client = GithubClient::new(&sim.api_url(), TOKEN)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_relist_delay(Duration::from_millis(50))
        .with_relist_window(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let action = client
        .upsert_comment(OWNER, REPO, PR, &body(&reports::failing()), &marker())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(action, CommentAction::Created { .. }));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let st = sim.st();
    assert_eq!(st.lists, 1 + 3, "{:#?}", st.log);
    assert_eq!(st.posts, 2);
    assert_eq!(st.comments.len(), 1);
}

#[tokio::test]
async fn two_502s_give_up_after_one_more_create() {
    let sim = Sim::start().await;
    for _ in 0..2 {
        sim.st().create_faults.push_back(CreateFault::Status(
            502,
            vec![],
            json!({"message": "Server Error"}),
        ));
    }
    let err = upsert(&sim, &body(&reports::failing()))
        .await
        .err()
        .unwrap_or_else(|| panic!("succeeded"));
    assert_eq!(err.kind, GithubErrorKind::Server);
    assert_eq!(err.status, Some(502));
    let st = sim.st();
    assert_eq!(st.posts, 2, "at most one more create");
    assert!(st.comments.is_empty());
}

#[tokio::test]
async fn rate_limit_is_an_error_not_a_wait() {
    let sim = Sim::start().await;
    let reset = (chrono_now() + 3600).to_string();
    sim.st().create_faults.push_back(CreateFault::Status(
        403,
        vec![
            ("x-ratelimit-limit", "1000".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", reset),
        ],
        json!({"message": "API rate limit exceeded for installation ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
    ));
    let started = std::time::Instant::now();
    let err = upsert(&sim, "x")
        .await
        .err()
        .unwrap_or_else(|| panic!("succeeded"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.kind, GithubErrorKind::RateLimited, "{err}");
    assert!(err.to_string().contains("rate limit"), "{err}");
    assert_eq!(sim.st().posts, 1);
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test]
async fn not_found_and_unprocessable_are_errors() {
    let sim = Sim::start().await;
    sim.st().list_status = Some(404);
    let err = upsert(&sim, "x")
        .await
        .err()
        .unwrap_or_else(|| panic!("succeeded"));
    assert_eq!(err.kind, GithubErrorKind::NotFound);
    assert_eq!(sim.st().posts, 0);

    let sim = Sim::start().await;
    let huge = format!("{}\n{}", marker(), "x".repeat(70_000));
    let err = upsert(&sim, &huge)
        .await
        .err()
        .unwrap_or_else(|| panic!("succeeded"));
    assert_eq!(err.kind, GithubErrorKind::Unprocessable);
    assert!(err.to_string().contains("Body is too long"), "{err}");
}

#[tokio::test]
async fn enterprise_server_api_path_is_kept() {
    let sim = Sim::start_with_prefix("/api/v3").await;
    for i in 0..120 {
        sim.add_comment(&format!("c{i}"), "octocat", "User");
    }
    let text = body(&reports::failing());
    let a = upsert(&sim, &text).await.unwrap_or_else(|e| panic!("{e}"));
    let b = upsert(&sim, &body(&reports::passing()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(a, CommentAction::Created { .. }));
    assert!(matches!(b, CommentAction::Updated { .. }));
    assert_eq!(a.id(), b.id());
    let st = sim.st();
    assert_eq!(st.lists, 4, "two pages, twice");
    assert!(
        st.log.iter().all(|l| l.contains(" /api/v3/")),
        "{:#?}",
        st.log
    );
    assert_eq!(st.unauthorized, 0);
}

// ---- publish ----

fn pr_env(sim: &Sim, dir: &std::path::Path, workflow: &str) -> GithubEnv {
    let event = dir.join("event.json");
    std::fs::write(
        &event,
        json!({"action": "synchronize", "number": PR, "pull_request": {"number": PR}}).to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    GithubEnv {
        actions: true,
        event_name: Some("pull_request".into()),
        event_path: Some(event),
        repository: Some(format!("{OWNER}/{REPO}")),
        api_url: Some(sim.api_url()),
        server_url: Some("https://github.com".into()),
        run_id: Some("4242".into()),
        step_summary: Some(dir.join("summary.md")),
        workflow: Some(workflow.into()),
    }
}

fn options(env: GithubEnv, comment: CommentMode) -> PublishOptions {
    PublishOptions {
        markdown: None,
        sarif: None,
        comment,
        pr: None,
        github_token: Some(TOKEN.into()),
        stdout_is_data: false,
        env,
    }
}

#[tokio::test]
async fn publish_on_a_pull_request_writes_summary_and_upserts_one_comment_per_workflow() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = reports::failing();
    let warnings = publish(
        &report,
        &options(pr_env(&sim, dir.path(), "PR check"), CommentMode::Auto),
    )
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let summary =
        std::fs::read_to_string(dir.path().join("summary.md")).unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.contains("### ❌ ci-gate: fail — 3 errors, 1 warning"));
    assert_eq!(sim.bodies().len(), 1);
    let first = sim.bodies()[0].clone();
    assert!(
        first.starts_with("<!-- ci-gate:v1 key=PR_check/prisma/migrations -->\n"),
        "{first}"
    );
    assert!(first.contains("(https://github.com/acme/app/actions/runs/4242)"));

    // Next push: same workflow updates; another workflow keeps its own comment.
    let warnings = publish(
        &reports::passing(),
        &options(pr_env(&sim, dir.path(), "PR check"), CommentMode::Auto),
    )
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let warnings = publish(
        &reports::passing(),
        &options(pr_env(&sim, dir.path(), "Nightly"), CommentMode::Auto),
    )
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let st = sim.st();
    assert_eq!((st.posts, st.patches), (2, 1), "{:#?}", st.log);
    assert!(st.comments[0].body.contains("ci-gate: pass"));
    assert!(
        st.comments[1]
            .body
            .starts_with("<!-- ci-gate:v1 key=Nightly/prisma/migrations -->")
    );
    // The summary got every run appended.
    let summary =
        std::fs::read_to_string(dir.path().join("summary.md")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.matches("<!-- ci-gate:v1").count(), 3);
}

#[tokio::test]
async fn a_403_on_create_is_a_warning_and_the_summary_is_still_written() {
    let sim = Sim::start().await;
    sim.st().create_faults.push_back(CreateFault::Status(
        403,
        vec![],
        json!({"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment", "status": "403"}),
    ));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = reports::failing();
    let verdict = report.verdict;
    let code = ci_gate::pipeline::exit_code(&report);
    let sarif_path = dir.path().join("out.sarif");
    let md_path = dir.path().join("comment.md");
    let mut opts = options(pr_env(&sim, dir.path(), "PR check"), CommentMode::Auto);
    opts.sarif = Some(sarif_path.clone());
    opts.markdown = Some(md_path.clone());
    let warnings = publish(&report, &opts).await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("403"), "{}", warnings[0]);
    assert!(warnings[0].contains("Resource not accessible by integration"));
    assert!(
        warnings[0].contains("fork"),
        "explains the fork case: {}",
        warnings[0]
    );
    // The verdict is the report's, untouched; the outputs are all there.
    assert_eq!(report.verdict, verdict);
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(ci_gate::pipeline::exit_code(&report), code);
    let summary =
        std::fs::read_to_string(dir.path().join("summary.md")).unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.contains("ci-gate: fail"));
    assert!(sarif_path.exists());
    let md = std::fs::read_to_string(&md_path).unwrap_or_else(|e| panic!("{e}"));
    assert!(md.starts_with("<!-- ci-gate:v1 key=PR_check/prisma/migrations -->"));
    assert_eq!(sim.st().posts, 1, "no retry of a 403");
    assert!(sim.bodies().is_empty());
}

#[tokio::test]
async fn an_oversized_report_is_cut_to_a_valid_comment() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = reports::oversized();
    let warnings = publish(
        &report,
        &options(pr_env(&sim, dir.path(), "PR check"), CommentMode::Always),
    )
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let bodies = sim.bodies();
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert!(b.len() <= 65_000, "{}", b.len());
    reports::check_markdown(b).unwrap_or_else(|e| panic!("{e}"));
    assert!(b.contains(
        "not shown here; see the [job summary](https://github.com/acme/app/actions/runs/4242)"
    ));
    // The job summary has room for all of it.
    let summary =
        std::fs::read_to_string(dir.path().join("summary.md")).unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.len() > 65_000);
    reports::check_markdown(&summary).unwrap_or_else(|e| panic!("{e}"));
    assert!(!summary.contains("not shown here"));
}

#[tokio::test]
async fn no_comment_outside_pull_requests_or_when_never() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut env = pr_env(&sim, dir.path(), "Deploy");
    env.event_name = Some("push".into());
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"ref":"refs/heads/main"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let warnings = publish(
        &reports::failing(),
        &options(env.clone(), CommentMode::Auto),
    )
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let warnings = publish(
        &reports::failing(),
        &options(pr_env(&sim, other.path(), "PR"), CommentMode::Never),
    )
    .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(sim.st().log.is_empty(), "{:#?}", sim.st().log);
    // `always` on a push with no PR number: a warning, no request.
    let warnings = publish(
        &reports::failing(),
        &options(env.clone(), CommentMode::Always),
    )
    .await;
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("--pr"), "{}", warnings[0]);
    // … and with --pr it comments.
    let mut opts = options(env, CommentMode::Always);
    opts.pr = Some(PR);
    let warnings = publish(&reports::failing(), &opts).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(sim.bodies().len(), 1);
}

#[tokio::test]
async fn missing_token_is_a_warning() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut opts = options(pr_env(&sim, dir.path(), "PR"), CommentMode::Auto);
    opts.github_token = None;
    let warnings = publish(&reports::failing(), &opts).await;
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("GITHUB_TOKEN"), "{}", warnings[0]);
    assert!(sim.st().log.is_empty());
    assert!(dir.path().join("summary.md").exists());
}

#[test]
fn github_env_reads_the_event_payload() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let event = dir.path().join("e.json");
    let vars = |payload: &str, name: &str| {
        std::fs::write(&event, payload).unwrap_or_else(|e| panic!("{e}"));
        let path = event.display().to_string();
        let name = name.to_string();
        GithubEnv::from_lookup(move |k| match k {
            "GITHUB_ACTIONS" => Some("true".into()),
            "GITHUB_EVENT_NAME" => Some(name.clone()),
            "GITHUB_EVENT_PATH" => Some(path.clone()),
            "GITHUB_REPOSITORY" => Some("acme/app".into()),
            "GITHUB_API_URL" => Some(String::new()),
            _ => None,
        })
    };
    let e = vars(
        r#"{"number": 12, "pull_request": {"number": 12}}"#,
        "pull_request",
    );
    assert!(e.actions && e.is_pull_request_event());
    assert_eq!(e.pr_number(), Some(12));
    assert_eq!(e.api_url(), "https://api.github.com", "empty = unset");
    let e = vars(r#"{"pull_request": {"number": 5}}"#, "pull_request_target");
    assert!(e.is_pull_request_event());
    assert_eq!(e.pr_number(), Some(5));
    let e = vars(
        r#"{"issue": {"number": 9, "pull_request": {"url": "x"}}}"#,
        "issue_comment",
    );
    assert!(!e.is_pull_request_event());
    assert_eq!(e.pr_number(), Some(9));
    let e = vars(r#"{"issue": {"number": 9}}"#, "issue_comment");
    assert_eq!(e.pr_number(), None, "a comment on an issue, not a PR");
    let e = vars(r#"{"ref": "refs/heads/main"}"#, "push");
    assert_eq!(e.pr_number(), None);
}

// ---- annotations ----

#[test]
fn annotations_are_escaped_worst_first_and_carry_location_and_title() {
    let r = reports::failing();
    let lines = annotations::lines(&r);
    assert_eq!(lines.len(), 4);
    assert!(
        lines[..3].iter().all(|l| l.starts_with("::error ")),
        "{lines:#?}"
    );
    assert!(lines[3].starts_with("::warning "));
    let fails = lines
        .iter()
        .find(|l| l.contains("title=migration-fails"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(
        fails,
        "::error file=prisma/migrations/20240415120000_post_published_at/migration.sql,line=7,col=39,title=migration-fails::from scratch: column \"slug\" does not exist (SQLSTATE 42703)%0AFix: fix the statement so that it applies on a database built from the migrations before it"
    );
    // A finding about a directory has no line.
    assert!(lines.iter().any(|l| {
        l.starts_with("::error file=prisma/migrations/x,title=invalid-migration-layout::")
    }));
    // Allowed findings are notices, with the reason.
    let allowed = annotations::lines(&reports::allowed());
    assert!(allowed[0].starts_with("::warning "));
    assert!(
        allowed.iter().any(|l| l.starts_with("::notice ")
            && l.contains("title=drops-column (allowed)")
            && l.contains("%0AAllowed: column unused since v2.3, see #812")),
        "{allowed:#?}"
    );
}

#[test]
fn annotation_escaping_of_properties_and_data() {
    let mut r = reports::passing();
    let mut f = reports::many_findings(1, 0, 0).findings.remove(0);
    f.file = Some("db/a,b:c%.sql".into());
    f.message = "50% done\r\nnext: line, with comma".into();
    f.rule = "squawk/ban-drop-column".into();
    r.findings = vec![f];
    r.finalize();
    let lines = annotations::lines(&r);
    assert_eq!(
        lines,
        [
            "::error file=db/a%2Cb%3Ac%25.sql,line=1,col=1,title=squawk/ban-drop-column::50%25 done%0D%0Anext: line, with comma"
        ]
    );
}

#[test]
fn annotations_at_most_ten_per_level_then_one_notice() {
    let r = reports::many_findings(14, 12, 3);
    let lines = annotations::lines(&r);
    let count = |p: &str| lines.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(count("::error "), 10);
    assert_eq!(count("::warning "), 10);
    assert_eq!(count("::notice "), 4, "3 notices + the count");
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("::notice title=ci-gate::6 more findings are not annotated"),
        "{last}"
    );
    // Worst first.
    let first_warning = lines
        .iter()
        .position(|l| l.starts_with("::warning"))
        .unwrap_or(0);
    assert!(
        lines[..first_warning]
            .iter()
            .all(|l| l.starts_with("::error"))
    );

    // Many notices: 9 + the count, so the count itself is not dropped.
    let lines = annotations::lines(&reports::many_findings(0, 0, 15));
    assert_eq!(lines.len(), 10);
    assert!(lines[9].contains("6 more findings"), "{}", lines[9]);

    let clean = annotations::render(&reports::passing());
    assert!(clean.is_empty());
}

#[test]
fn marker_helpers_match_only_the_first_line() {
    let m = marker();
    assert!(markdown::has_marker(&format!("{m}\n### x"), &m));
    assert!(!markdown::has_marker(&format!("x\n{m}"), &m));
    assert!(!markdown::has_marker(
        &format!("{}\n", markdown::marker("other")),
        &m
    ));
    let _ = PathBuf::new();
}

#[tokio::test]
async fn a_wrong_shape_answer_is_named_as_such_not_as_unreachable() {
    // Issue 13: a 200 whose JSON is not a list of comments was "cannot reach GitHub: Other".
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"unexpected": true}"#, "application/json"),
        )
        .mount(&server)
        .await;
    let client = GithubClient::new(&server.uri(), TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let e = client
        .list_comments(OWNER, REPO, PR)
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted a wrong-shape answer"));
    assert_eq!(e.kind, GithubErrorKind::Decode, "{e:?}");
    assert!(!e.message.contains("cannot reach"), "{}", e.message);
    assert!(
        e.message.contains("not in the shape") && e.message.contains("pagination"),
        "{}",
        e.message
    );
    assert!(
        e.hint.as_deref().is_some_and(|h| h.contains("/api/v3")),
        "{e:?}"
    );
}

#[tokio::test]
async fn sigterm_while_github_hangs_is_honoured_at_once() {
    // Issue 13: SIGINT/SIGTERM were ignored while a GitHub call hung (up to a minute).
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .set_delay(Duration::from_secs(120)),
        )
        .mount(&server)
        .await;
    let project = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = project.path().join("prisma/migrations/20240101000000_init");
    std::fs::create_dir_all(&m).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        m.join("migration.sql"),
        "CREATE TABLE \"T\" (\"id\" INT);\n",
    )
    .unwrap_or_default();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ci-gate"))
        .env("TMPDIR", tmp.path())
        .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GITHUB_ACTIONS")
        .args([
            "verify",
            &project.path().to_string_lossy(),
            "--provider",
            "local",
        ])
        .args(["--comment", "always", "--pr", &PR.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "ci-gate never called GitHub"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let signalled = std::time::Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "SIGTERM ignored during the GitHub call"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM while publishing"),
        "{stderr}"
    );
}
