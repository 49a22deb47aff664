//! [`Evidence`]: everything the earlier stages saw, in one borrowable value that every rule's
//! `check` reads. Rules never query a server or read a file; what they need is here.

use crate::check::Finding;
use crate::discover::MigrationSet;
use crate::inspect::Change;
use crate::live::LiveProblem;
use crate::plan::Plan;
use crate::run::Outcome;
use crate::run::seed::SeedReport;
use crate::run::trace::MigrationTrace;

/// What `--live-url` observed in production.
#[derive(Debug, Clone, Default)]
pub struct LiveEvidence {
    /// What production's migration-history table shows (failed, rolled-back, edited or unknown
    /// rows); the live rules turn each into a finding.
    pub history: Vec<LiveProblem>,
    /// Production's catalog against a database built from the migrations it recorded as applied
    /// (empty when not compared).
    pub drift: Vec<Change>,
    /// Whether that comparison ran (production has a history table whose migrations apply).
    pub compared: bool,
    /// How many migrations production records as applied, and how many deploy would apply.
    pub applied: usize,
    pub pending: usize,
}

/// What the stages saw, for the rules.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The head's migrations (the checkout).
    pub head: &'a MigrationSet,
    /// The base's migrations (what production has), when there is a base.
    pub base: Option<&'a MigrationSet>,
    /// Base against head, when there is a base.
    pub plan: Option<&'a Plan>,
    /// Every run's outcomes, labelled ("base", "from scratch", "incremental").
    pub runs: &'a [(String, Vec<crate::run::Outcome>)],
    /// Incremental against from-scratch schema.
    pub drift: &'a [Change],
    /// Whether that comparison was made (both schemas built, or the sequences identical); when
    /// false, an empty `drift` proves nothing.
    pub drift_compared: bool,
    /// The seeded, traced run of the new migrations (empty when not traced).
    pub traces: &'a [MigrationTrace],
    /// What the seeded run put in the tables, when it ran.
    pub seed: Option<&'a SeedReport>,
    /// Production, with `--live-url`.
    pub live: Option<&'a LiveEvidence>,
}

impl Evidence<'_> {
    /// `to_finding` over every problem of production's history table (with `--live-url`).
    pub fn live_findings(&self, to_finding: fn(&LiveProblem) -> Option<Finding>) -> Vec<Finding> {
        self.live
            .map(|l| l.history.iter().filter_map(to_finding).collect())
            .unwrap_or_default()
    }

    /// `each` over every run's outcomes (with the run's label), in run order.
    pub fn per_run(&self, each: fn(&[Outcome], &str) -> Vec<Finding>) -> Vec<Finding> {
        self.runs
            .iter()
            .flat_map(|(label, outcomes)| each(outcomes, label))
            .collect()
    }

    /// A history rule's findings: what production's history table says (with `--live-url`),
    /// then the base branch against the head (with a base).
    pub fn live_then_base(
        &self,
        live: fn(&LiveProblem) -> Option<Finding>,
        against_base: fn(&Plan, &MigrationSet, &MigrationSet) -> Vec<Finding>,
    ) -> Vec<Finding> {
        let mut out = self.live_findings(live);
        if let (Some(plan), Some(base)) = (self.plan, self.base) {
            out.extend(against_base(plan, base, self.head));
        }
        out
    }

    /// The outcomes of the runs labelled `label`.
    pub fn outcomes<'s>(&'s self, label: &'s str) -> impl Iterator<Item = &'s Outcome> + 's {
        self.runs
            .iter()
            .filter(move |(l, _)| l == label)
            .flat_map(|(_, o)| o.iter())
    }
}
