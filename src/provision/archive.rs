//! A cluster archived for `--cache-dir`, as the providers that start their own server share it:
//! the stopped data directory as one tar, with the SHA-256 it must have, hashed while written and
//! while read; and the one WAL segment a cleanly stopped cluster needs, read from
//! `pg_controldata`'s output.
//!
//! The local provider writes and unpacks the tar itself; the docker provider streams it out of
//! and into the container's tmpfs. Either way the bytes are hashed on the host.

use std::io;
use std::path::PathBuf;

/// A data directory archived at the end of an earlier run, with the SHA-256 it must have.
#[derive(Debug, Clone)]
pub struct Archive {
    pub path: PathBuf,
    pub sha256: String,
}

/// Reads or writes through to `inner` and hashes what passes.
pub(crate) struct Hashing<T> {
    pub inner: T,
    pub hash: sha2::Sha256,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hash: sha2::Sha256::default(),
        }
    }

    /// The SHA-256 of what passed, in hex.
    pub fn hex(&self) -> String {
        hex_digest(self.hash.clone())
    }
}

impl<T: io::Write> io::Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: io::Read> io::Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
}

pub(crate) fn hex_digest(hash: sha2::Sha256) -> String {
    sha2::Digest::finalize(hash)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a stopped cluster cannot be archived, from `pg_controldata`'s output.
#[derive(Debug, thiserror::Error)]
#[error("the cluster did not shut down cleanly (pg_controldata: {state})")]
pub struct NotShutDown {
    /// The "Database cluster state:" line, or "no state".
    pub state: String,
}

/// The WAL segment holding the last checkpoint of a cleanly stopped cluster, from the output of
/// `pg_controldata` (run with `LC_ALL=C`): the only segment it needs to start (the others are old
/// or recycled segments, 16 MB each).
pub(crate) fn redo_wal_file(controldata: &str) -> Result<String, NotShutDown> {
    let state_line = controldata
        .lines()
        .find(|l| l.starts_with("Database cluster state:"));
    let state_ok = state_line.is_some_and(|l| l.ends_with("shut down"));
    let file = controldata
        .lines()
        .find_map(|l| l.strip_prefix("Latest checkpoint's REDO WAL file:"))
        .map(|f| f.trim().to_string())
        .filter(|f| is_wal_segment(f));
    match (state_ok, file) {
        (true, Some(f)) => Ok(f),
        _ => Err(NotShutDown {
            state: state_line.unwrap_or("no state").to_string(),
        }),
    }
}

/// Whether `name` is a WAL segment's file name (24 hex digits).
pub(crate) fn is_wal_segment(name: &str) -> bool {
    name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redo_segment_of_a_clean_shutdown_is_found() {
        let clean = "pg_control version number:            1300\n\
                     Database cluster state:               shut down\n\
                     Latest checkpoint's REDO WAL file:    000000010000000000000003\n";
        assert_eq!(redo_wal_file(clean).unwrap(), "000000010000000000000003");
        let crashed = clean.replace("shut down", "in production");
        let err = redo_wal_file(&crashed).unwrap_err();
        assert!(err.to_string().contains("in production"), "{err}");
        assert!(
            redo_wal_file("")
                .unwrap_err()
                .to_string()
                .contains("no state")
        );
    }

    #[test]
    fn hashing_sees_every_byte_in_both_directions() {
        let mut w = Hashing::new(Vec::new());
        io::Write::write_all(&mut w, b"abc").unwrap();
        let sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(w.hex(), sha_abc);
        let mut r = Hashing::new(&b"abc"[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.hex(), sha_abc);
    }
}
