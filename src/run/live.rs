//! `--live-url`: read production's history and catalog (read-only), and build the database its
//! applied history should give, for the live rules to compare.

use sqlx::Connection;

use super::Status;
use super::build::Builder;
use crate::check::LiveEvidence;
use crate::discover::{Migration, MigrationSet};
use crate::error::UserError;

/// What production showed, for the check stage.
pub async fn observe(
    builder: &Builder<'_>,
    url: &str,
    head: &MigrationSet,
    notes: &mut Vec<String>,
) -> Result<LiveEvidence, UserError> {
    let (mut conn, schema) = crate::live::connect(url).await?;
    let history = crate::live::read_history(&mut conn, &schema).await?;
    let live_catalog =
        crate::inspect::inspect(&mut conn, &crate::inspect::InspectOptions::default())
            .await
            .map_err(|e| {
                UserError::environment("could not read the live database's catalog")
                    .detail(e.to_string())
            })?;
    let _ = conn.close().await;
    let analysis = crate::live::analyze(&history, head);
    if history.rows.is_none() {
        notes.push(format!("the live database has no {schema}._prisma_migrations table: it is not managed by Prisma Migrate; drift not compared"));
    }
    if !analysis.pending.is_empty() {
        notes.push(format!(
            "`prisma migrate deploy` would apply on the live database: {}",
            analysis.pending.join(", ")
        ));
    }
    if !analysis.unknown.is_empty() {
        notes.push(format!(
            "the live drift comparison lacks {} applied migrations with no local directory",
            analysis.unknown.len()
        ));
    }
    let mut evidence = LiveEvidence {
        history: analysis.problems.clone(),
        applied: analysis.applied.len(),
        pending: analysis.pending.len(),
        ..LiveEvidence::default()
    };
    if history.rows.is_some() {
        let db = builder.create("live", None).await?;
        let applied: Vec<&Migration> = analysis
            .applied
            .iter()
            .map(|&i| &head.migrations[i])
            .collect();
        let out = builder.replay(&db, &applied).await?;
        if let Some(failed) = out.iter().find(|o| o.status == Status::Failed) {
            notes.push(format!("the migrations production recorded as applied do not apply here ({} fails): live drift not compared", failed.name));
        } else {
            let expected = builder.inspect(&db).await?;
            evidence.drift = crate::inspect::diff(&expected, &live_catalog);
            evidence.compared = true;
        }
    }
    Ok(evidence)
}
