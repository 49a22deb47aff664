//! Which image, and whether it is there: `--image`, else `postgres:<major of --pg-version, or
//! 16>`; present locally or pulled; its PostgreSQL major (the `PG_MAJOR` the official images and
//! ci-gate's test image set) checked against `--pg-version` before any container starts.

use futures_util::StreamExt;
use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::query_parameters::CreateImageOptionsBuilder;

use super::DEFAULT_PG_MAJOR;
use super::error::{StartError, is_not_found};
use crate::provision::ProvisionRequest;
use crate::provision::binaries::parse_major;

/// What ci-gate needs to know about the image it starts.
#[derive(Debug, Clone, Default)]
pub(super) struct ImageInfo {
    /// The image's id (`sha256:…`).
    pub id: String,
    /// `PG_MAJOR` from the image's environment, when set.
    pub major: Option<u32>,
    /// The image's own entrypoint (used for images that ship init scripts).
    pub entrypoint: Vec<String>,
}

/// `--image`, else `postgres:<major of --pg-version, or 16>` (`--pg-version 17.2` gives
/// `postgres:17`).
pub fn image_ref(req: &ProvisionRequest) -> String {
    if let Some(image) = req
        .image
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        return image.to_string();
    }
    let version = req
        .pg_version
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match version {
        Some(v) => match parse_major(v) {
            Some(major) => format!("postgres:{major}"),
            None => format!("postgres:{v}"),
        },
        None => format!("postgres:{DEFAULT_PG_MAJOR}"),
    }
}

/// The major `--pg-version` asks for; an unreadable one is bad input.
pub(super) fn wanted_major(req: &ProvisionRequest) -> Result<Option<u32>, StartError> {
    match req
        .pg_version
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Ok(None),
        Some(v) => parse_major(v)
            .map(Some)
            .ok_or_else(|| StartError::BadVersion {
                given: v.to_string(),
            }),
    }
}

/// The image must run the major asked for; `has` unknown (no `PG_MAJOR`) is checked on the
/// server's own version after it starts.
pub(super) fn check_major(
    req: &ProvisionRequest,
    image: &str,
    has: Option<u32>,
    wanted: Option<u32>,
) -> Result<(), StartError> {
    match (has, wanted) {
        (Some(has), Some(wanted)) if has != wanted => Err(StartError::MajorMismatch {
            image: image.to_string(),
            has,
            wanted,
            explicit: req.image.is_some(),
        }),
        _ => Ok(()),
    }
}

/// Inspect the image, pulling it first when it is not present.
pub(super) async fn ensure(docker: &Docker, image: &str) -> Result<ImageInfo, StartError> {
    let inspected = match docker.inspect_image(image).await {
        Err(e) if is_not_found(&e) => {
            pull(docker, image).await?;
            docker.inspect_image(image).await
        }
        other => other,
    };
    let inspected = inspected.map_err(|source| StartError::Inspect {
        image: image.to_string(),
        source,
    })?;
    let id = inspected.id.unwrap_or_default();
    let config = inspected.config.unwrap_or_default();
    let major = config
        .env
        .unwrap_or_default()
        .iter()
        .find_map(|e| e.strip_prefix("PG_MAJOR="))
        .and_then(parse_major);
    Ok(ImageInfo {
        id,
        major,
        entrypoint: config.entrypoint.unwrap_or_default(),
    })
}

/// `docker pull`, anonymously (a private registry needs `docker pull` with the user's login).
async fn pull(docker: &Docker, image: &str) -> Result<(), StartError> {
    // A digest reference is pulled as it is; `name:tag` as name and tag.
    let options = if image.contains('@') {
        CreateImageOptionsBuilder::new().from_image(image)
    } else {
        let (name, tag) = split_image(image);
        CreateImageOptionsBuilder::new().from_image(&name).tag(&tag)
    };
    let mut progress = docker.create_image(Some(options.build()), None, None);
    while let Some(step) = progress.next().await {
        step.map_err(|source| StartError::Pull {
            image: image.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Whether `image` is a well-formed Docker image reference: `[host[:port]/]path[:tag][@digest]`,
/// path components lowercase `[a-z0-9]` joined by `.`, `_`, `__` or `-`; tag `[A-Za-z0-9_]
/// [A-Za-z0-9_.-]{0,127}`; digest `algorithm:hex`. (The grammar of distribution/reference.)
pub fn valid_image_ref(image: &str) -> bool {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !valid_digest(d)) {
        return false;
    }
    let (name, tag) = split_image(rest);
    let tag_given = rest.len() > name.len();
    (!tag_given || valid_tag(&tag)) && valid_name(&name)
}

fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = !alg.is_empty()
        && alg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
    alg_ok && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok && tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn valid_name(name: &str) -> bool {
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a dot, a colon or `localhost` is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = host.split_once(':').unwrap_or((host, ""));
        let host_ok = !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
        if !host_ok || (!port.is_empty() && !port.chars().all(|c| c.is_ascii_digit())) {
            return false;
        }
    }
    !parts.is_empty() && parts.iter().all(|p| valid_component(p))
}

fn valid_component(p: &str) -> bool {
    let bytes = p.as_bytes();
    !p.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && !p.contains("..")
        && !p.contains("___")
}

/// Split `name[:tag]` (the name may contain a registry port: `host:5000/pg:15`). No tag means
/// `latest`, as for `docker run`.
pub(super) fn split_image(image: &str) -> (String, String) {
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::ProviderChoice;

    fn req(image: Option<&str>, pg: Option<&str>) -> ProvisionRequest {
        ProvisionRequest {
            provider: ProviderChoice::Docker,
            database_url: None,
            pg_version: pg.map(str::to_string),
            image: image.map(str::to_string),
            pg_bin: None,
            run_id: "t".into(),
        }
    }

    #[test]
    fn the_image_follows_pg_version_unless_one_is_named() {
        assert_eq!(image_ref(&req(None, None)), "postgres:16");
        assert_eq!(image_ref(&req(None, Some("17"))), "postgres:17");
        assert_eq!(image_ref(&req(None, Some("18.1"))), "postgres:18");
        assert_eq!(
            image_ref(&req(Some("ci-gate-test/postgres:15"), Some("17"))),
            "ci-gate-test/postgres:15"
        );
    }

    #[test]
    fn a_major_other_than_the_one_asked_for_is_refused() {
        let explicit = req(Some("pg:15"), Some("17"));
        let err = check_major(&explicit, "pg:15", Some(15), Some(17)).unwrap_err();
        let shown = crate::provision::ProvisionError::from(err);
        let text = shown.to_string();
        assert!(
            matches!(shown, crate::provision::ProvisionError::Unavailable { .. }),
            "exit 3"
        );
        assert!(
            text.contains("runs PostgreSQL 15") && text.contains("asks for 17"),
            "{text}"
        );
        assert!(
            text.contains("postgres:17") && text.contains("--pg-version 15"),
            "{text}"
        );
        assert!(check_major(&explicit, "pg:15", Some(15), Some(15)).is_ok());
        assert!(
            check_major(&explicit, "pg:15", None, Some(17)).is_ok(),
            "checked after start"
        );
        assert!(check_major(&explicit, "pg:15", Some(15), None).is_ok());
        assert!(matches!(
            wanted_major(&req(None, Some("seventeen"))),
            Err(StartError::BadVersion { .. })
        ));
        assert_eq!(wanted_major(&req(None, Some(" 17 "))).unwrap(), Some(17));
    }

    #[test]
    fn malformed_image_references_are_told_apart_from_absent_ones() {
        for ok in [
            "postgres",
            "postgres:16",
            "postgres:16-alpine",
            "ghcr.io/owner/ci-gate:1.0.0",
            "localhost:5000/pg:15",
            "registry.example.com/team/postgres_x",
            "postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image_ref(ok), "{ok}");
        }
        for bad in [
            "Postgres:16",
            "postgres:",
            "post gres",
            "postgres::16",
            ":16",
            "postgres:-x",
            "pg/",
            "-pg",
            "postgres@sha256:xyz",
            "",
        ] {
            assert!(!valid_image_ref(bad), "{bad}");
        }
    }

    #[test]
    fn splits_name_and_tag() {
        assert_eq!(split_image("postgres:16"), ("postgres".into(), "16".into()));
        assert_eq!(
            split_image("postgres"),
            ("postgres".into(), "latest".into())
        );
        assert_eq!(
            split_image("reg.local:5000/pg/postgres:15-alpine"),
            ("reg.local:5000/pg/postgres".into(), "15-alpine".into())
        );
        assert_eq!(
            split_image("reg.local:5000/postgres"),
            ("reg.local:5000/postgres".into(), "latest".into())
        );
    }
}
