//! The one error type `main` sees: a headline, the cause, a hint, and the exit code.
//!
//! Exit codes: 2 = bad input (CLI, config, migration directory), 3 = environment (no Postgres,
//! Docker down, a server fault). Findings are not errors: they make the verdict (exit 1).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    BadInput = 2,
    Environment = 3,
}

#[derive(Debug)]
pub struct UserError {
    pub kind: ExitKind,
    pub headline: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl UserError {
    pub fn bad_input(headline: impl Into<String>) -> UserError {
        UserError {
            kind: ExitKind::BadInput,
            headline: headline.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn environment(headline: impl Into<String>) -> UserError {
        UserError {
            kind: ExitKind::Environment,
            headline: headline.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> UserError {
        let d = detail.into();
        if !d.trim().is_empty() {
            self.detail = Some(d);
        }
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> UserError {
        let h = hint.into();
        if !h.trim().is_empty() {
            self.hint = Some(h);
        }
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.kind as u8
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.headline)?;
        if let Some(d) = &self.detail {
            for line in d.lines() {
                write!(f, "\n  {}", line.trim_start())?;
            }
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UserError {}

impl From<crate::config::ConfigError> for UserError {
    fn from(e: crate::config::ConfigError) -> Self {
        let hint = e.hint.clone();
        UserError::bad_input(e.to_string()).hint(hint)
    }
}

impl From<crate::discover::DiscoverError> for UserError {
    fn from(e: crate::discover::DiscoverError) -> Self {
        let hint = e.hint();
        UserError::bad_input(e.to_string()).hint(hint)
    }
}

impl From<crate::provision::ProvisionError> for UserError {
    fn from(e: crate::provision::ProvisionError) -> Self {
        use crate::provision::ProvisionError as P;
        match e {
            P::Unavailable { what, detail, hint } => {
                UserError::environment(what).detail(detail).hint(hint)
            }
            P::BadInput { what, hint } => UserError::bad_input(what).hint(hint),
        }
    }
}

/// A sqlx error as one line for users: the server's message and SQLSTATE for a database error
/// (never sqlx's own `Display` of it, which appends "at line N": a line of PostgreSQL's C source,
/// easily read as the migration's line), else the error's text.
pub fn sqlx_text(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(d) => match d.code() {
            Some(code) => format!("{} (SQLSTATE {code})", d.message()),
            None => d.message().to_string(),
        },
        None => e.to_string(),
    }
}

/// The server's message for a database error, else the error's text.
pub fn db_message(e: &sqlx::Error) -> String {
    e.as_database_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}
