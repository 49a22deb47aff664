//! No secret is ever printed: the values that must not appear in any output (passwords in the
//! connection URLs, `PGPASSWORD`, the GitHub token), collected once, and [`Secrets::scrub`], which
//! the edge (`commands`) applies to every text it prints or writes and to the [`Report`] before any
//! renderer sees it. URLs are also redacted where they are formatted ([`redact_url`]); this is
//! the net under that.

use crate::report::Report;

/// Secrets shorter than this are not scrubbed (they would match everywhere).
const MIN_LEN: usize = 4;

/// The environment variables whose values are secrets.
const SECRET_VARS: &[&str] = &[
    "PGPASSWORD",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "CI_GATE_GITHUB_TOKEN",
];

#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// From connection URLs and tokens given to this run, and the process environment.
    pub fn collect(urls: &[Option<&str>], tokens: &[Option<&str>]) -> Secrets {
        let mut s = Secrets::default();
        for url in urls.iter().flatten() {
            for p in url_passwords(url) {
                s.add(&p);
            }
        }
        for t in tokens.iter().flatten() {
            s.add(t);
        }
        for var in SECRET_VARS {
            if let Ok(v) = std::env::var(var) {
                s.add(&v);
            }
        }
        if let Ok(url) = std::env::var("CI_GATE_DATABASE_URL") {
            for p in url_passwords(&url) {
                s.add(&p);
            }
        }
        s
    }

    fn add(&mut self, value: &str) {
        let v = value.trim();
        if v.len() >= MIN_LEN && !self.values.iter().any(|x| x == v) {
            self.values.push(v.to_string());
            // Also its percent-encoded form, as it appears in a URL.
            let enc = percent_encode(v);
            if enc != v {
                self.values.push(enc);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        self.values.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }

    /// `text` with every secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Scrub every text of a report in place.
    pub fn scrub_report(&self, r: &mut Report) {
        if self.values.is_empty() {
            return;
        }
        let s = |t: &mut String| *t = self.scrub(t);
        let o = |t: &mut Option<String>| {
            if let Some(x) = t {
                *x = self.scrub(x);
            }
        };
        s(&mut r.project);
        r.notes.iter_mut().for_each(s);
        if let Some(server) = &mut r.server {
            server.notes.iter_mut().for_each(s);
        }
        for c in [
            &mut r.checks.scratch,
            &mut r.checks.incremental,
            &mut r.checks.drift,
            &mut r.checks.history,
            &mut r.checks.live,
        ] {
            s(&mut c.summary);
        }
        for row in &mut r.migrations {
            o(&mut row.note);
        }
        for f in &mut r.findings {
            s(&mut f.message);
            o(&mut f.statement);
            o(&mut f.fix);
            o(&mut f.allow_reason);
            f.evidence.iter_mut().for_each(s);
        }
    }
}

/// The passwords a libpq URL carries: in the userinfo and in `password=`/`sslpassword=`
/// query parameters (percent-decoded).
pub fn url_passwords(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@'))
        && at > scheme
        && let Some((_, pw)) = url[scheme + 3..at].split_once(':')
    {
        out.push(percent_decode(pw));
        out.push(pw.to_string());
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && k.to_ascii_lowercase().contains("password")
            {
                out.push(percent_decode(v));
                out.push(v.to_string());
            }
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The URL with every password (userinfo and query parameters) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let (Some(scheme), Some(at)) = (out.find("://"), out.rfind('@'))
        && at > scheme
        && let Some(colon) = out[scheme + 3..at].find(':')
    {
        out = format!("{}:***{}", &out[..scheme + 3 + colon], &out[at..]);
    }
    if let Some((head, query)) = out.clone().split_once('?') {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}?{}", pairs.join("&"));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_userinfo_and_query_are_found_and_redacted() {
        let url = "postgres://app:s%40cret@db/prod?user=x&password=hunter22&sslpassword=keypass1";
        let pws = url_passwords(url);
        for p in ["s@cret", "hunter22", "keypass1"] {
            assert!(pws.iter().any(|x| x == p), "{p} in {pws:?}");
        }
        let r = redact_url(url);
        assert_eq!(
            r,
            "postgres://app:***@db/prod?user=x&password=***&sslpassword=***"
        );
    }

    #[test]
    fn scrub_replaces_every_form() {
        let s = Secrets::collect(
            &[Some("postgres://u:p@ss word@h/d")],
            &[Some("ghp_SENTINEL")],
        );
        let t = s.scrub("token ghp_SENTINEL, pw p@ss word, encoded p%40ss%20word");
        assert!(
            !t.contains("SENTINEL") && !t.contains("p@ss") && !t.contains("p%40ss"),
            "{t}"
        );
    }

    #[test]
    fn short_values_are_not_scrubbed() {
        let s = Secrets::collect(&[Some("postgres://u:x@h/d")], &[]);
        assert_eq!(s.scrub("x marks"), "x marks");
    }
}
