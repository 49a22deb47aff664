//! The command line (a stable contract: scripts and workflows depend on it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::discover::Format;
use crate::model::{CommentMode, FailOn};
use crate::provision::ProviderChoice;
use crate::settings::Flags;

#[derive(Debug, Parser)]
#[command(
    name = "ci-gate",
    version,
    about = "Migration safety gate for PostgreSQL: applies your migrations on a throwaway server and reports what they really did"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the migration history on a throwaway Postgres and report.
    Verify(Box<VerifyArgs>),
    /// List every rule: id, category, default severity, one line.
    Rules,
    /// Print a rule's documentation.
    Explain {
        /// The rule id, e.g. migration-fails.
        rule: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The project directory (default: the current directory).
    pub project_dir: Option<PathBuf>,
    /// The migrations directory (default: auto-detected: config, prisma/migrations, next to schema.prisma).
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Migration format (default: auto-detected).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Git ref of the base (default: the PR base in GitHub Actions, else config, else origin/main).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// A directory holding the base branch's migrations (e.g. a checkout of main's
    /// prisma/migrations), instead of a git ref; relative to the current directory.
    #[arg(long, value_name = "DIR", conflicts_with = "base")]
    pub base_dir: Option<PathBuf>,
    /// Where the throwaway Postgres comes from.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// An existing server for --provider url (ci-gate creates and drops its own databases there).
    #[arg(
        long,
        value_name = "URL",
        env = "CI_GATE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// PostgreSQL major version (docker image tag; preferred local binaries).
    #[arg(long, value_name = "N")]
    pub pg_version: Option<String>,
    /// Docker image (default postgres:<pg-version>).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Directory with initdb and postgres for --provider local.
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// Read-only drift check against a real database (production), before deploying.
    #[arg(long, value_name = "URL")]
    pub live_url: Option<String>,
    /// Write the JSON report here ('-' for stdout).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write SARIF 2.1.0 here ('-' for stdout).
    #[arg(long, value_name = "PATH")]
    pub sarif: Option<PathBuf>,
    /// Write the Markdown report (the PR comment's body) here ('-' for stdout).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Post the report as one pull-request comment, updated in place (auto: on pull-request events in GitHub Actions).
    #[arg(long, value_enum)]
    pub comment: Option<CommentArg>,
    /// Pull request number for --comment (default: from the GitHub event payload).
    #[arg(long, value_name = "N")]
    pub pr: Option<u64>,
    /// Token for the PR comment (default: $GITHUB_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GITHUB_TOKEN",
        hide_env_values = true
    )]
    pub github_token: Option<String>,
    /// Which severity fails the gate (default: error).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOnArg>,
    /// Config file (default: <project>/.ci-gate.yml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store the verified base state here, keyed by the base migrations' content and the server's
    /// major version; later runs on the same base restore it instead of replaying it.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Run migrations as the superuser instead of a database-owner role.
    #[arg(long)]
    pub superuser: bool,
    /// Prisma version to emulate (overrides package.json, lockfiles and config).
    #[arg(long, value_name = "VERSION")]
    pub prisma_version: Option<String>,
    /// Only print the verdict line and findings.
    #[arg(long, short)]
    pub quiet: bool,
    /// List every migration and every check.
    #[arg(long, short)]
    pub verbose: bool,
    /// Show progress on stderr even when it is not a terminal (one line per phase). On a
    /// terminal, progress shows by itself once a run takes more than two seconds.
    #[arg(long)]
    pub progress: bool,
}

/// The environment variable `--database-url` falls back to.
const DATABASE_URL_ENV: &str = "CI_GATE_DATABASE_URL";

impl VerifyArgs {
    /// The options the pipeline reads, without clap types.
    pub fn flags(&self) -> Flags {
        let from_env = self.database_url.is_some()
            && std::env::var(DATABASE_URL_ENV).ok() == self.database_url
            && !std::env::args().any(|a| a.starts_with("--database-url"));
        Flags {
            project_dir: self.project_dir.clone(),
            migrations: self.migrations.clone(),
            format: self.format.map(Into::into),
            base: self.base.clone(),
            base_dir: self.base_dir.clone(),
            provider: self.provider.map(Into::into),
            database_url: self.database_url.clone(),
            database_url_env: from_env.then_some(DATABASE_URL_ENV),
            pg_version: self.pg_version.clone(),
            image: self.image.clone(),
            pg_bin: self.pg_bin.clone(),
            live_url: self.live_url.clone(),
            comment: self.comment.map(Into::into),
            fail_on: self.fail_on.map(Into::into),
            config: self.config.clone(),
            cache_dir: self.cache_dir.clone(),
            superuser: self.superuser,
            prisma_version: self.prisma_version.clone(),
        }
    }
}

/// Mirrors a domain enum as a clap value, so that no type below the CLI depends on clap.
macro_rules! value_enum {
    ($(#[$doc:meta])* $arg:ident => $domain:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub enum $arg { $($variant),+ }

        impl From<$arg> for $domain {
            fn from(a: $arg) -> $domain {
                match a { $($arg::$variant => <$domain>::$variant),+ }
            }
        }
    };
}

value_enum!(
    /// `--format`.
    FormatArg => Format { Prisma }
);
value_enum!(
    /// `--provider`.
    ProviderArg => ProviderChoice { Auto, Docker, Local, Url }
);
value_enum!(
    /// `--comment`.
    CommentArg => CommentMode { Auto, Always, Never }
);
value_enum!(
    /// `--fail-on`.
    FailOnArg => FailOn { Error, Warning, Never }
);
