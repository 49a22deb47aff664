//! `.ci-gate.yml`: every key optional; command-line flags override it. Unknown keys are an error
//! naming the key and the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::check::{Severity, find_rule};
use crate::discover::{Format, char_pos_to_byte, line_col};
use crate::provision::ProviderChoice;

/// The file name looked for in the project directory.
pub const FILE_NAME: &str = ".ci-gate.yml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub format: Option<Format>,
    pub prisma_version: Option<String>,
    pub migrations: Option<PathBuf>,
    pub base: Option<String>,
    #[serde(default)]
    pub postgres: PostgresConfig,
    #[serde(default)]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub seed: Option<PathBuf>,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleLevel>,
    pub fail_on: Option<FailOn>,
    pub comment: Option<CommentMode>,
    /// Per-migration statement timeout, e.g. "10min", "90s", "600000ms", or seconds as a number.
    pub statement_timeout: Option<DurationSetting>,
    /// The `lock_timeout` the deploy sets on its connection (e.g. `options=-c lock_timeout=5s`):
    /// ci-gate's migration sessions start with it, as production's do.
    pub lock_timeout: Option<DurationSetting>,
    /// Run migrations as the superuser instead of a database-owner role.
    pub superuser: Option<bool>,
    /// Where to keep the verified base state between runs (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PostgresConfig {
    pub provider: Option<ProviderChoice>,
    pub version: Option<StringOrNumber>,
    pub image: Option<String>,
    pub url: Option<String>,
    pub bin: Option<PathBuf>,
}

/// `version: 16` and `version: "16"` both work.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringOrNumber {
    String(String),
    Number(f64),
}

impl std::fmt::Display for StringOrNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StringOrNumber::String(s) => f.write_str(s),
            StringOrNumber::Number(n) => write!(f, "{n}"),
        }
    }
}

pub use crate::check::RuleLevel;
pub use crate::model::{CommentMode, FailOn};

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationSetting {
    Seconds(u64),
    Text(String),
}

impl DurationSetting {
    pub fn parse(&self) -> Option<Duration> {
        match self {
            DurationSetting::Seconds(s) => Some(Duration::from_secs(*s)),
            DurationSetting::Text(t) => parse_duration(t),
        }
    }
}

/// "90s", "10min", "10m", "1h", "500ms", "30".
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// The longest `statement_timeout` PostgreSQL accepts (INT_MAX milliseconds, about 24.8 days).
pub const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// `project/.ci-gate.yml`, else the first one in a parent directory up to `root`.
fn nearest(project: &Path, root: Option<&Path>) -> PathBuf {
    let own = project.join(FILE_NAME);
    let Some(root) = root else {
        return own;
    };
    project
        .ancestors()
        .take_while(|d| d.starts_with(root))
        .map(|d| d.join(FILE_NAME))
        .find(|f| f.is_file())
        .unwrap_or(own)
}

/// Why a timeout key's value is not one PostgreSQL accepts (None when it is).
fn timeout_problem(key: &str, value: &DurationSetting) -> Option<String> {
    match value.parse() {
        None => Some(format!("`{key}` is not a duration")),
        Some(d) if d > MAX_STATEMENT_TIMEOUT => Some(format!(
            "`{key}` is longer than PostgreSQL accepts ({} ms at most)",
            MAX_STATEMENT_TIMEOUT.as_millis()
        )),
        Some(d) if !d.is_zero() && d < Duration::from_millis(1) => {
            Some(format!("`{key}` is shorter than PostgreSQL's 1 ms unit"))
        }
        Some(_) => None,
    }
}

/// A config file that cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
    pub hint: String,
}

impl Config {
    /// Load `explicit`, or the nearest `.ci-gate.yml` from `project` up to `root` (the
    /// repository's root: a monorepo keeps one at its root for every project); no file gives the
    /// default config, an absent explicit file is an error.
    pub fn load(
        project: &Path,
        explicit: Option<&Path>,
        root: Option<&Path>,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (nearest(project, root), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok((Config::default(), None));
            }
            Err(e) => {
                return Err(ConfigError {
                    file: path,
                    line: None,
                    message: format!("cannot read the config file: {e}"),
                    hint: "check the path given to --config".into(),
                });
            }
        };
        let config = Config::parse(&text, &path)?;
        Ok((config, Some(path)))
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_yaml::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let hint = if msg.contains("unknown field") {
                "remove or correct the key; valid keys: format, prisma-version, migrations, base, postgres \
                 (provider, version, image, url, bin), extensions, roles, seed, rules, fail-on, comment, \
                 statement-timeout, lock-timeout, superuser, cache-dir"
            } else if msg.contains("unknown variant") {
                "use one of the values listed in the message"
            } else {
                "fix the YAML syntax"
            };
            // libyaml also breaks lines at a lone CR; count lines as the rest of ci-gate does
            // (by `\n`), from the error's character index.
            let line = e.location().map(|l| line_col(text, char_pos_to_byte(text, l.index() + 1)).0);
            ConfigError { file: path.to_path_buf(), line, message: msg, hint: hint.into() }
        })?;
        for id in config.rules.keys() {
            if find_rule(id).is_none() && !crate::check::squawk::is_squawk_rule(id) {
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: line_of(text, id),
                    message: format!("unknown rule `{id}` under `rules:`"),
                    hint: "run `ci-gate rules` for the list of rule ids".into(),
                });
            }
        }
        if let Some(v) = &config.prisma_version
            && crate::discover::prisma_version::parse(v, "").is_none()
        {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: line_of(text, "prisma-version"),
                message: format!("`prisma-version: {v}` is not a Prisma version"),
                hint: "write a version such as 6.19.0 or 7.4 (the prisma package's version)".into(),
            });
        }
        for (key, value) in [
            ("statement-timeout", &config.statement_timeout),
            ("lock-timeout", &config.lock_timeout),
        ] {
            if let Some(message) = value.as_ref().and_then(|t| timeout_problem(key, t)) {
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: line_of(text, key),
                    message,
                    hint: "write it like 600, \"90s\", \"10min\" or \"1h\"; 0 means no limit"
                        .into(),
                });
            }
        }
        Ok(config)
    }

    /// Severity for a rule after overrides; `None` when the rule is off.
    pub fn severity_for(&self, rule: &str, default: Severity) -> Option<Severity> {
        match self.rules.get(rule) {
            Some(level) => level.severity(),
            None => Some(default),
        }
    }
}

fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new(".ci-gate.yml"))
    }

    #[test]
    fn full_example_from_the_design_parses() {
        let c = parse(
            "format: prisma\nprisma-version: \"6.19\"\nmigrations: prisma/migrations\nbase: origin/main\n\
             postgres: { provider: auto, version: \"16\", image: \"postgres:16-alpine\" }\n\
             extensions: [pgcrypto, citext]\nroles: [authenticated, anon]\nseed: prisma/ci-seed.sql\n\
             rules: { migration-fails: error }\nfail-on: error\ncomment: auto\nstatement-timeout: 10min\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.extensions, vec!["pgcrypto", "citext"]);
        assert_eq!(
            c.statement_timeout.and_then(|t| t.parse()),
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = parse("format: prisma\nextentions: [x]\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("extentions"), "{}", e.message);
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with(".ci-gate.yml:2:"));
    }

    #[test]
    fn config_lone_cr_error_line_inside_file() {
        // Found by the config fuzz target: YAML counts a lone CR as a line break, so the error
        // named line 3 of a file with two.
        let e = parse("format: prisma\r\rextentions: [x]\nroles: []\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.line, Some(1), "{e}");
        let e = parse("format: prisma\n\u{e9}\u{e9}: x\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn unknown_rule_is_an_error() {
        let e = parse("rules:\n  drops-colum: off\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("drops-colum"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn bad_provider_value_is_an_error() {
        let e = parse("postgres: { provider: kubernetes }\n")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("kubernetes"), "{}", e.message);
    }

    #[test]
    fn statement_timeout_beyond_what_postgres_accepts_is_bad_input() {
        for text in [
            "statement-timeout: 1000000h\n",
            "statement-timeout: 18446744073709551615\n",
            "statement-timeout: \"1e400\"\n",
            "statement-timeout: \"0.1ms\"\n",
        ] {
            let e = parse(text)
                .err()
                .unwrap_or_else(|| panic!("accepted {text}"));
            assert!(e.message.contains("statement-timeout"), "{}", e.message);
            assert_eq!(e.line, Some(1));
        }
        let zero = parse("statement-timeout: 0\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            zero.statement_timeout.and_then(|t| t.parse()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("soon"), None);
        // Out of range is not a duration (it used to panic converting float seconds).
        assert_eq!(parse_duration("1e400"), None);
        assert_eq!(parse_duration("-5"), None);
    }
}
