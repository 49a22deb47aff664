//! A git repository with a Prisma project at its root, built in a temp dir, and a `verify` that
//! runs the real binary on it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use super::{Run, assert_no_leftovers, ci_gate};

pub const INIT: &str = "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n";
pub const POSTS: &str = "-- CreateTable\nCREATE TABLE \"Post\" (\n    \"id\" SERIAL NOT NULL,\n    \"title\" TEXT NOT NULL,\n    \"authorId\" INTEGER NOT NULL,\n\n    CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- AddForeignKey\nALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\"(\"id\") ON DELETE RESTRICT ON UPDATE CASCADE;\n";

/// A git repository with a Prisma project at its root.
pub struct Repo {
    dir: tempfile::TempDir,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.email", "t@example.com"]);
        git(dir.path(), &["config", "user.name", "t"]);
        git(dir.path(), &["config", "commit.gpgsign", "false"]);
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"devDependencies":{"prisma":"6.19.0"}}"#,
        )
        .unwrap_or_default();
        let m = dir.path().join("prisma/migrations");
        std::fs::create_dir_all(&m).unwrap_or_default();
        std::fs::write(m.join("migration_lock.toml"), "provider = \"postgresql\"\n")
            .unwrap_or_default();
        Repo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, sql: &str) -> &Self {
        let d = self.path().join("prisma/migrations").join(name);
        std::fs::create_dir_all(&d).unwrap_or_default();
        std::fs::write(d.join("migration.sql"), sql).unwrap_or_default();
        self
    }

    pub fn remove(&self, name: &str) -> &Self {
        std::fs::remove_dir_all(self.path().join("prisma/migrations").join(name))
            .unwrap_or_default();
        self
    }

    pub fn commit(&self, msg: &str) -> &Self {
        git(self.path(), &["add", "-A"]);
        git(self.path(), &["commit", "-q", "-m", msg]);
        self
    }

    pub fn branch(&self, name: &str) -> &Self {
        git(self.path(), &["checkout", "-q", "-b", name]);
        self
    }

    /// A base branch with init + posts, and a `pr` branch checked out.
    pub fn with_base() -> Repo {
        let r = Repo::new();
        r.write("20240101000000_init", INIT)
            .write("20240201000000_posts", POSTS)
            .commit("base");
        r.branch("pr");
        r
    }
}

pub fn verify(dir: &Path, args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = ci_gate(tmp.path())
        .arg("verify")
        .arg(dir)
        .args(args)
        .args(["--provider", "local", "--json", "-"])
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).ok(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_no_leftovers(tmp.path(), &run);
    run
}
