//! The databases of a run, built from the migration sets: from scratch only (no base), or base,
//! seeded-and-traced, incremental and from scratch sharing the common prefix through templates
//! (DESIGN.md "run"). What each run applied becomes the outcomes, rows and check lines the later
//! stages read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::build::BuildError;
use super::build::{Builder, TracedRun};
use super::cache::{BaseCache, ClusterCache, PendingArchive};
use super::{ApplyMode, Outcome, Status};
use crate::discover::{Migration, MigrationSet};
use crate::fmt::human_ms;
use crate::model::{Change, CheckResult, CheckStatus, MigrationRow};
use crate::plan::{self, Classification, Plan};

/// The base cache entry to write from the cluster at shutdown (local provider, cache miss).
pub type ArchiveSlot = Arc<std::sync::Mutex<Option<PendingArchive>>>;

/// Phase timings in milliseconds, by phase name.
pub type Timings = BTreeMap<String, u64>;

/// What the databases showed.
pub struct BuildOutcome {
    pub plan: Option<Plan>,
    pub rows: Vec<MigrationRow>,
    /// (label, outcomes) of every run, for failure findings.
    pub runs: Vec<(String, Vec<Outcome>)>,
    pub drift: Vec<crate::inspect::Change>,
    /// The seeded, traced run of the new migrations (with a base only).
    pub traced: Option<TracedRun>,
    pub scratch: CheckResult,
    pub incremental: CheckResult,
    pub drift_check: CheckResult,
}

/// `--cache-dir`, for [`incremental`]: a SQL dump of the base (url and docker providers) or the
/// archived cluster (local provider).
pub struct Caches<'a> {
    pub dump: Option<&'a BaseCache>,
    pub cluster: Option<&'a ClusterCache>,
    /// The base database of a cluster restored from the cache, not verified yet.
    pub restored_db: Option<String>,
    /// Where a cache miss leaves the entry to write at shutdown.
    pub archive: &'a ArchiveSlot,
}

/// The note for a cache entry that cannot be used (it is then rebuilt and rewritten).
pub fn cache_unusable(why: &dyn std::fmt::Display) -> String {
    format!("base cache entry unusable ({why}): rebuilt from the migrations")
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub(crate) fn all_applied(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|o| o.status == Status::Applied)
}

/// The check line of one run.
fn run_check(outcomes: &[Outcome], took: Duration, what: &str) -> CheckResult {
    let count = |s: Status| outcomes.iter().filter(|o| o.status == s).count();
    let (applied, failed, skipped) = (
        count(Status::Applied),
        count(Status::Failed),
        count(Status::Skipped),
    );
    CheckResult {
        status: CheckStatus::failing_if(failed > 0),
        summary: if failed > 0 {
            format!(
                "{what}: {applied} applied, {failed} failed, {skipped} skipped ({})",
                human_ms(ms(took))
            )
        } else {
            format!("{what}: {applied} applied in {}", human_ms(ms(took)))
        },
        applied: Some(applied),
        failed: Some(failed),
        skipped: Some(skipped),
        findings: None,
        duration_ms: Some(ms(took)),
    }
}

fn row(o: &Outcome, change: Change, new: bool) -> MigrationRow {
    MigrationRow {
        name: o.name.clone(),
        path: o.path.clone(),
        status: o.status,
        duration_ms: ms(o.duration),
        new,
        change,
        mode: o.mode,
        rules: Vec::new(),
        lock: None,
        note: o.failure.as_ref().map(|f| {
            let code = f
                .sqlstate
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            format!(
                "line {}: {}{code}",
                f.line,
                crate::sql::split::excerpt(&f.message, 80)
            )
        })
        .or_else(|| {
            o.left_open.as_ref().map(|l| {
                format!(
                    "line {}: transaction left open (no COMMIT): rolled back when the session closes",
                    l.line
                )
            })
        }),
        outcome: Default::default(),
    }
}

/// No base: every migration from an empty database.
pub async fn scratch_only(
    builder: &Builder<'_>,
    head: &MigrationSet,
    timings: &mut Timings,
) -> Result<BuildOutcome, BuildError> {
    let t = Instant::now();
    let db = builder.create("scratch", None).await?;
    let all: Vec<&Migration> = head.migrations.iter().collect();
    let outcomes = builder.apply(&db, &all).await?;
    let took = t.elapsed();
    timings.insert("scratch".into(), ms(took));
    Ok(BuildOutcome {
        plan: None,
        rows: outcomes.iter().map(|o| row(o, Change::New, true)).collect(),
        scratch: run_check(&outcomes, took, &format!("{} migrations", outcomes.len())),
        runs: vec![("from scratch".into(), outcomes)],
        drift: vec![],
        traced: None,
        incremental: CheckResult::not_run("no base: from scratch only"),
        drift_check: CheckResult::not_run("no base: nothing to compare"),
    })
}

/// The shared prefix's database, applied once (or restored from a cache).
struct Prefix {
    db: String,
    outcomes: Vec<Outcome>,
    /// Restored from a cache rather than replayed.
    restored: bool,
}

/// 1. The shared prefix, applied once. When base is exactly that prefix, it *is* the base.
async fn prefix(
    builder: &Builder<'_>,
    base: &MigrationSet,
    prefix: &[&Migration],
    caches: &Caches<'_>,
    notes: &mut Vec<String>,
) -> Result<Prefix, BuildError> {
    let prefix_is_base = prefix.len() == base.migrations.len();
    let owner = builder.owner.as_ref().map(|(n, _)| n.as_str());
    // A cluster restored from the cache holds the base, once its history checks out.
    let mut restored = false;
    let mut adopted = None;
    if let (true, Some(db), Some(c)) = (prefix_is_base, &caches.restored_db, caches.cluster) {
        match c.verify(builder.server, db, base).await {
            Ok(()) => {
                restored = true;
                adopted = Some(db.clone());
                c.touch();
            }
            Err(why) => {
                notes.push(cache_unusable(&why));
                c.invalidate();
                let _ = builder.server.drop_database(db).await;
            }
        }
    }
    let mut db = match adopted {
        Some(db) => db,
        None => {
            builder
                .create(if prefix_is_base { "base" } else { "prefix" }, None)
                .await?
        }
    };
    // The base cache applies when base is exactly the shared prefix (the usual pull request).
    if let (true, Some(c)) = (prefix_is_base, caches.dump) {
        match c.restore(builder.server, &db, owner, base).await {
            Ok(r) => restored = r,
            Err(why) => {
                notes.push(cache_unusable(&why));
                c.invalidate();
                let _ = builder.server.drop_database(&db).await;
                db = builder.create("base2", None).await?;
            }
        }
    }
    let outcomes = if restored {
        prefix
            .iter()
            .map(|m| Outcome::applied(m, Duration::ZERO, ApplyMode::WholeFile))
            .collect()
    } else {
        builder.replay(&db, prefix).await?
    };
    if let (true, false, Some(c)) = (prefix_is_base, restored, caches.dump)
        && all_applied(&outcomes)
        && let Err(why) = c.save(builder.server, &db, owner, base)
    {
        notes.push(format!("base cache not written: {why}"));
    }
    // Local provider, cache miss: keep a clone of the verified base for the archive written at
    // shutdown (the base itself is changed in place later).
    if let (true, false, Some(c)) = (prefix_is_base, restored, caches.cluster)
        && all_applied(&outcomes)
    {
        let clone = builder.create("cache", Some(&db)).await?;
        if let Ok(mut slot) = caches.archive.lock() {
            *slot = Some(c.pending(&clone, owner, builder.server, base));
        }
    }
    Ok(Prefix {
        db,
        outcomes,
        restored,
    })
}

/// The cluster cache's base database, when the shared prefix is shorter than base (edited,
/// deleted or out-of-order migrations) and its history still checks out; else it is dropped, so
/// the base can be built under its name.
async fn whole_base_restored(
    builder: &Builder<'_>,
    base: &MigrationSet,
    caches: &Caches<'_>,
    notes: &mut Vec<String>,
) -> Option<String> {
    let (db, c) = (caches.restored_db.as_ref()?, caches.cluster?);
    match c.verify(builder.server, db, base).await {
        Ok(()) => {
            c.touch();
            Some(db.clone())
        }
        Err(why) => {
            notes.push(cache_unusable(&why));
            c.invalidate();
            let _ = builder.server.drop_database(db).await;
            None
        }
    }
}

/// 3a. Seeded and traced: a clone of base with synthetic rows, then the new migrations statement
/// by statement, observing locks, rewrites and catalog changes.
async fn seeded_trace(
    builder: &Builder<'_>,
    base_db: &str,
    deploy: &[&Migration],
    seed: Option<&(String, String)>,
    notes: &mut Vec<String>,
) -> Result<TracedRun, BuildError> {
    let db = builder.create("seeded", Some(base_db)).await?;
    let seed_sql = seed.map(|(path, sql)| (path.as_str(), sql.as_str()));
    let tr = builder.trace(&db, deploy, seed_sql, false).await?;
    if tr.outside.is_empty() {
        return super::resume::resume(builder, base_db, deploy, seed_sql, tr, notes).await;
    }
    // The statements reached tables the focus did not seed: trace again with all of them, so
    // every observed check covers what it claims.
    notes.push(format!(
        "seeded run: the new migrations reached {} beyond the tables they name and those tables' foreign-key parents; traced again with all {} tables seeded",
        tr.outside.join(", "),
        tr.focus.total
    ));
    let _ = builder.server.drop_database(&db).await;
    let db = builder.create("seeded_all", Some(base_db)).await?;
    let tr = builder.trace(&db, deploy, seed_sql, true).await?;
    super::resume::resume(builder, base_db, deploy, seed_sql, tr, notes).await
}

/// 5. Drift: the from-scratch catalog against the incremental one, when both applied.
async fn drift(
    builder: &Builder<'_>,
    identical: bool,
    inc: Option<&(String, Vec<Outcome>)>,
    scratch: Option<&(String, Vec<Outcome>)>,
    timings: &mut Timings,
) -> Result<(Vec<crate::inspect::Change>, CheckResult), BuildError> {
    if identical {
        let check =
            CheckResult::settled(CheckStatus::Pass, "identical sequences: nothing can differ");
        return Ok((Vec::new(), check));
    }
    let (Some((inc_db, inc)), Some((scr_db, scr))) = (inc, scratch) else {
        return Ok((Vec::new(), CheckResult::not_run("skipped: a run failed")));
    };
    if !all_applied(inc) || !all_applied(scr) {
        return Ok((Vec::new(), CheckResult::not_run("skipped: a run failed")));
    }
    let t = Instant::now();
    let (a, b) = (
        builder.inspect(scr_db).await?,
        builder.inspect(inc_db).await?,
    );
    let changes = crate::inspect::diff(&a, &b);
    timings.insert("inspect".into(), ms(t.elapsed()));
    let real = changes.iter().filter(|c| !c.is_minor()).count();
    let check = CheckResult {
        status: CheckStatus::failing_if(real > 0),
        summary: match (real, changes.len() - real) {
            (0, 0) => "incremental and from-scratch schemas are identical".into(),
            (0, minor) => format!(
                "incremental and from-scratch schemas agree except for the column order or comments of {minor} objects"
            ),
            (real, _) => format!("{real} objects differ between incremental and from scratch"),
        },
        findings: Some(changes.len()),
        ..CheckResult::not_run("")
    };
    Ok((changes, check))
}

/// With a base: base, seeded trace, incremental and from scratch, sharing the prefix through
/// templates.
pub async fn incremental(
    builder: &Builder<'_>,
    base: &MigrationSet,
    head: &MigrationSet,
    seed: Option<&(String, String)>,
    caches: Caches<'_>,
    notes: &mut Vec<String>,
    timings: &mut Timings,
) -> Result<BuildOutcome, BuildError> {
    let plan = plan::plan(base, head);
    let k = plan.shared_prefix;
    let mut runs = Vec::new();

    // 1. The shared prefix; 2. the rest of base, on a clone of it.
    let t = Instant::now();
    let shared: Vec<&Migration> = head.migrations[..k].iter().collect();
    let pre = prefix(builder, base, &shared, &caches, notes).await?;
    let prefix_ok = all_applied(&pre.outcomes);
    runs.push(("base".to_string(), pre.outcomes.clone()));
    let mut base_ok = prefix_ok;
    let restored_base = if k < base.migrations.len() && prefix_ok {
        whole_base_restored(builder, base, &caches, notes).await
    } else {
        None
    };
    let from_cache = pre.restored || restored_base.is_some();
    let base_db = if k == base.migrations.len() || !prefix_ok {
        pre.db.clone()
    } else if let Some(db) = restored_base {
        // The pull request edits, deletes or reorders base migrations, but the base itself did
        // not change: the cached cluster still holds it.
        let rest = base.migrations[k..].iter();
        let out = rest.map(|m| Outcome::applied(m, Duration::ZERO, ApplyMode::WholeFile));
        runs.push(("base".to_string(), out.collect()));
        db
    } else {
        let db = builder.create("base", Some(&pre.db)).await?;
        let rest: Vec<&Migration> = base.migrations[k..].iter().collect();
        let out = builder.replay(&db, &rest).await?;
        base_ok = all_applied(&out);
        runs.push(("base".to_string(), out));
        db
    };
    let base_took = t.elapsed();
    timings.insert("base".into(), ms(base_took));

    let deploy: Vec<&Migration> = plan.deploy.iter().map(|&i| &head.migrations[i]).collect();
    let mut traced = None;
    if base_ok && !deploy.is_empty() {
        let t = Instant::now();
        traced = Some(seeded_trace(builder, &base_db, &deploy, seed, notes).await?);
        timings.insert("trace".into(), ms(t.elapsed()));
    }

    // 3b. The scratch database is cloned from the prefix now, before incremental changes base
    //     (which may be the prefix) in place.
    let scratch_db = if !plan.identical_sequences && prefix_ok {
        let t = Instant::now();
        let db = builder.create("scratch", Some(&pre.db)).await?;
        timings.insert("clone".into(), ms(t.elapsed()));
        Some(db)
    } else {
        None
    };

    // 3. Incremental: base + the migrations deploy would apply, in deploy order, applied in place
    //    on the base database (every clone of base was taken above).
    let (inc_out, incremental) = if base_ok {
        let t = Instant::now();
        let out = builder.apply(&base_db, &deploy).await?;
        let took = t.elapsed();
        timings.insert("incremental".into(), ms(took));
        let how = if from_cache {
            "restored from the base cache"
        } else {
            "applied once"
        };
        let what = format!(
            "{} new on base ({} migrations, {how} in {})",
            deploy.len(),
            base.migrations.len(),
            human_ms(ms(base_took))
        );
        let check = run_check(&out, took, &what);
        (Some((base_db.clone(), out)), check)
    } else {
        let check = CheckResult::settled(
            CheckStatus::Fail,
            "the base migrations do not apply: nothing to build on",
        );
        (None, check)
    };

    // 4. Scratch: head from empty, sharing the prefix; skipped when it is provably the same
    //    sequence as incremental.
    let mut scratch_out: Option<(String, Vec<Outcome>)> = None;
    let scratch = if plan.identical_sequences {
        CheckResult::settled(
            incremental.status,
            format!(
                "same sequence as incremental (base + {} new): not built twice",
                deploy.len()
            ),
        )
    } else if !prefix_ok {
        CheckResult::settled(CheckStatus::Fail, "the shared migrations do not apply")
    } else {
        let t = Instant::now();
        let db = scratch_db.clone().unwrap_or_default();
        let rest: Vec<&Migration> = head.migrations[k..].iter().collect();
        let out = builder.apply(&db, &rest).await?;
        let took = t.elapsed();
        timings.insert("scratch".into(), ms(took));
        let what = format!(
            "{} migrations ({} shared with base, cloned)",
            head.migrations.len(),
            k
        );
        let check = run_check(&out, took, &what);
        runs.push(("from scratch".to_string(), out.clone()));
        scratch_out = Some((db, out));
        check
    };
    if let Some((_, out)) = &inc_out {
        runs.push(("incremental".to_string(), out.clone()));
    }

    let identical = plan.identical_sequences;
    let (drift, drift_check) = drift(
        builder,
        identical,
        inc_out.as_ref(),
        scratch_out.as_ref(),
        timings,
    )
    .await?;
    let inc = inc_out.as_ref().map(|(_, o)| o.as_slice());
    let scr = scratch_out.as_ref().map(|(_, o)| o.as_slice());
    let mut rows = rows(&plan, head, &pre.outcomes, inc, scr);
    if let Some(tr) = &traced {
        mark_locks(&mut rows, tr);
    }
    Ok(BuildOutcome {
        plan: Some(plan),
        rows,
        runs,
        drift,
        traced,
        scratch,
        incremental,
        drift_check,
    })
}

/// One row per head migration, from the run that applied it.
fn rows(
    plan: &Plan,
    head: &MigrationSet,
    prefix_out: &[Outcome],
    inc: Option<&[Outcome]>,
    scr: Option<&[Outcome]>,
) -> Vec<MigrationRow> {
    let by_name = |o: Option<&[Outcome]>| -> HashMap<String, Outcome> {
        o.unwrap_or_default()
            .iter()
            .map(|x| (x.name.clone(), x.clone()))
            .collect()
    };
    let (inc_by_name, scr_by_name) = (by_name(inc), by_name(scr));
    let k = plan.shared_prefix;
    let mut rows = Vec::new();
    for (i, m) in head.migrations.iter().enumerate() {
        let change = match &plan.head[i].class {
            Classification::Unchanged => Change::Unchanged,
            Classification::Edited => Change::Edited,
            Classification::Renamed { .. } => Change::Renamed,
            Classification::New {
                out_of_order_before: Some(_),
            } => Change::OutOfOrder,
            Classification::New {
                out_of_order_before: None,
            } => Change::New,
        };
        let new = plan.deploy.contains(&i);
        let outcome = if i < k {
            prefix_out.get(i).map(|o| {
                let mut o = o.clone();
                if o.status == Status::Applied {
                    o.status = Status::Unchanged;
                }
                o
            })
        } else if new {
            inc_by_name
                .get(&m.name)
                .or(scr_by_name.get(&m.name))
                .cloned()
        } else {
            scr_by_name.get(&m.name).cloned()
        };
        let outcome = outcome.unwrap_or(Outcome {
            name: m.name.clone(),
            path: m.path.clone(),
            status: if change == Change::Unchanged {
                Status::Unchanged
            } else {
                Status::Skipped
            },
            duration: Duration::ZERO,
            mode: ApplyMode::WholeFile,
            failure: None,
            left_open: None,
        });
        rows.push(row(&outcome, change, new));
    }
    rows
}

/// The strongest lock each traced migration took on a table that existed before.
fn mark_locks(rows: &mut [MigrationRow], traced: &TracedRun) {
    for t in &traced.traces {
        if let (Some(row), Some((mode, table))) = (
            rows.iter_mut().find(|r| r.name == t.name),
            super::trace::strongest_lock(t),
        ) {
            row.lock = Some(format!("{mode} on {table}"));
        }
    }
}
