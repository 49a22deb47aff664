//! The `url` provider: an existing server (a CI service container, a shared dev server).
//!
//! ci-gate creates its own `cigate_<run>_*` databases (and one owner role) there and drops them
//! at shutdown; it writes nothing else. Nothing is started, so there is nothing to stop.

use std::str::FromStr;
use std::time::Instant;

use sqlx::postgres::PgConnectOptions;

use super::{Guard, ProviderKind, ProvisionError, ProvisionRequest, Server};

pub async fn provision(req: &ProvisionRequest) -> Result<Server, ProvisionError> {
    let started = Instant::now();
    let url = req
        .database_url
        .as_deref()
        .ok_or_else(|| ProvisionError::BadInput {
            what: "--provider url needs --database-url".into(),
            hint: "pass --database-url postgres://USER:PASSWORD@HOST:PORT/postgres".into(),
        })?;
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ProvisionError::BadInput {
            what: format!(
                "--database-url must be a postgres:// or postgresql:// URL, got `{}`",
                redact(url)
            ),
            hint: "use the form postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
        });
    }
    let opts = PgConnectOptions::from_str(url).map_err(|e| ProvisionError::BadInput {
        what: format!("--database-url is not a valid PostgreSQL URL: {e}"),
        hint: "use the form postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
    })?;
    Server::connect(
        ProviderKind::Url,
        opts,
        req.run_id.clone(),
        started,
        Guard::Url,
    )
    .await
}

/// The password in a URL (percent-decoded), if any.
pub fn password(url: &str) -> Option<String> {
    let scheme = url.find("://")?;
    let at = url.rfind('@')?;
    let creds = &url[scheme + 3..at];
    let (_, pw) = creds.split_once(':')?;
    let bytes = pw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&pw[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The URL with its passwords (userinfo and `password=` parameters) replaced by `***`, for
/// messages.
pub fn redact(url: &str) -> String {
    crate::secrets::redact_url(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn extracts_percent_encoded_passwords() {
        assert_eq!(
            super::password("postgres://u:p%40ss@h/d"),
            Some("p@ss".into())
        );
        assert_eq!(super::password("postgres://u@h/d"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(super::redact("postgres://u@h/d"), "postgres://u@h/d");
    }
}
