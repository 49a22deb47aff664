//! Prisma discovery quirks from reference/formats.md §1.1–1.3, one test each, on real
//! directories.

use ci_gate::discover::prisma::{self, checksum};
use ci_gate::discover::{DiscoverError, FsTree, LayoutProblem};

fn project(migrations: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = dir.path().join("prisma/migrations");
    std::fs::create_dir_all(&m).unwrap_or_else(|e| panic!("{e}"));
    for (name, sql) in migrations {
        std::fs::create_dir_all(m.join(name)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(m.join(name).join("migration.sql"), sql).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn read(dir: &tempfile::TempDir) -> Result<ci_gate::discover::MigrationSet, DiscoverError> {
    prisma::read(&FsTree::new(dir.path()), "prisma/migrations")
}

#[test]
fn every_immediate_subdirectory_is_a_migration_named_verbatim() {
    let dir = project(&[
        ("20240101000000_init", b"SELECT 1;"),
        ("weird name ü", b"SELECT 2;"),
    ]);
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = set.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["20240101000000_init", "weird name ü"]);
    assert_eq!(
        set.migrations[0].path,
        "prisma/migrations/20240101000000_init/migration.sql"
    );
}

#[test]
fn root_files_are_ignored() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    std::fs::write(
        dir.path().join("prisma/migrations/notes.sql"),
        "DROP TABLE x;",
    )
    .unwrap_or_default();
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.migrations.len(), 1);
}

#[test]
fn symlinked_directories_are_skipped() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    let target = dir.path().join("elsewhere");
    std::fs::create_dir_all(&target).unwrap_or_default();
    std::fs::write(target.join("migration.sql"), "SELECT 2;").unwrap_or_default();
    std::os::unix::fs::symlink(
        &target,
        dir.path().join("prisma/migrations/20240102000000_linked"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.migrations.len(), 1);
    assert!(
        set.notes
            .iter()
            .any(|n| n.message.contains("symlink skipped"))
    );
}

#[test]
fn order_is_by_bytes_with_a_note_when_locale_compare_differs() {
    let dir = project(&[
        ("20240101000000_b", b"SELECT 1;"),
        ("20240101000000_B", b"SELECT 2;"),
        ("20240101000000_a", b"SELECT 3;"),
    ]);
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = set.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["20240101000000_B", "20240101000000_a", "20240101000000_b"]
    );
    assert!(
        set.notes
            .iter()
            .any(|n| n.message.contains("localeCompare"))
    );
}

#[test]
fn timestamped_names_give_no_order_note() {
    let dir = project(&[
        ("20240101000000_init", b"SELECT 1;"),
        ("20240102000000_Next", b"SELECT 2;"),
    ]);
    assert!(
        read(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .notes
            .is_empty()
    );
}

#[test]
fn missing_migration_sql_is_p3015() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    std::fs::create_dir_all(dir.path().join("prisma/migrations/20240102000000_stray"))
        .unwrap_or_default();
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        set.problems,
        vec![LayoutProblem::MissingScript {
            dir: "prisma/migrations/20240102000000_stray".into()
        }]
    );
}

#[test]
fn lock_file_provider_is_the_first_line_starting_with_provider() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    std::fs::write(
        dir.path().join("prisma/migrations/migration_lock.toml"),
        "# provider = \"sqlite\"\nprovider = \"postgresql\"\n",
    )
    .unwrap_or_default();
    assert!(
        read(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .problems
            .is_empty()
    );
}

#[test]
fn lock_file_without_spaces_reads_wrong_and_is_p3019() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    std::fs::write(
        dir.path().join("prisma/migrations/migration_lock.toml"),
        "provider=\"postgresql\"\n",
    )
    .unwrap_or_default();
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&set.problems[..], [LayoutProblem::UnreadableLockProvider { read_as, .. }] if read_as == "provider=\"postgresql")
    );
}

#[test]
fn lock_file_without_provider_line_is_provider_not_found() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    std::fs::write(
        dir.path().join("prisma/migrations/migration_lock.toml"),
        "# empty\n",
    )
    .unwrap_or_default();
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&set.problems[..], [LayoutProblem::UnreadableLockProvider { read_as, .. }] if read_as == "<PROVIDER NOT FOUND>")
    );
}

#[test]
fn missing_lock_file_is_not_checked() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
    assert!(
        read(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .problems
            .is_empty()
    );
}

#[test]
fn non_postgres_provider_is_refused() {
    for provider in ["sqlite", "mysql", "cockroachdb"] {
        let dir = project(&[("20240101000000_init", b"SELECT 1;")]);
        std::fs::write(
            dir.path().join("prisma/migrations/migration_lock.toml"),
            format!("provider = \"{provider}\"\n"),
        )
        .unwrap_or_default();
        assert!(
            matches!(read(&dir), Err(DiscoverError::NotPostgres { line: 1, .. })),
            "{provider}"
        );
    }
}

#[test]
fn bom_and_crlf_are_kept_as_read() {
    let bytes = b"\xEF\xBB\xBFCREATE TABLE a ();\r\nCREATE TABLE b ();\r\n";
    let dir = project(&[("20240101000000_init", bytes)]);
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.migrations[0].text.as_bytes(), bytes);
    assert_eq!(set.migrations[0].checksum, checksum(bytes));
}

#[test]
fn checksum_is_sha256_of_the_file_like_sha256sum() {
    let dir = project(&[("20240101000000_init", b"SELECT 1;\n")]);
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    // printf 'SELECT 1;\n' | sha256sum
    assert_eq!(
        set.migrations[0].checksum,
        "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"
    );
    assert_eq!(set.migrations[0].checksum.len(), 64);
    assert!(
        set.migrations[0]
            .checksum
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn invalid_utf8_is_replaced_and_checksummed_as_prisma_6_6_reads_it() {
    let bytes = b"-- caf\xFF\nSELECT 1;\n";
    let dir = project(&[("20240101000000_init", bytes)]);
    let set = read(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.migrations[0].text, "-- caf\u{FFFD}\nSELECT 1;\n");
    assert_eq!(
        set.migrations[0].checksum,
        checksum("-- caf\u{FFFD}\nSELECT 1;\n".as_bytes())
    );
    assert!(matches!(
        &set.problems[..],
        [LayoutProblem::NotUtf8 {
            line: 1,
            column: 7,
            byte_offset: 6,
            ..
        }]
    ));
}

#[test]
fn empty_directory_is_an_error() {
    let dir = project(&[]);
    assert!(matches!(read(&dir), Err(DiscoverError::Empty { .. })));
}
