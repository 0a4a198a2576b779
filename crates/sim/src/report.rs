//! What a run measured: a serialisable report (deterministic: no wall-clock values) and its
//! summary table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::churn::Lifetime;
use crate::engine::EngineStats;
use crate::scenario::Scenario;

/// The report of a scenario: one run per network size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The scenario as run (after overrides).
    pub scenario: Scenario,
    /// One run per size, in the scenario's order.
    pub runs: Vec<RunReport>,
}

/// The measurements of one network size.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// Nodes in the network, the bootstrap node included, Sybils excluded.
    pub nodes: u32,
    /// Simulated seconds measured (after the warm-up).
    pub duration_secs: u64,
    /// How long nodes stayed online in this run.
    pub session: Lifetime,
    /// Mean of the session distribution in seconds, `None` without churn.
    pub session_mean_secs: Option<f64>,
    /// Median of the session distribution in seconds, `None` without churn.
    pub session_median_secs: Option<f64>,
    /// Nodes online at the end.
    pub live_nodes_end: u32,
    /// Sessions ended by churn during the run.
    pub departures: u64,
    /// Lookups: hops, latency, success.
    pub lookups: LookupReport,
    /// BEP 44 items: how many could be fetched at each check.
    pub items: ItemReport,
    /// The engine's counters.
    pub engine: EngineStats,
}

/// Lookup measurements.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LookupReport {
    /// Lookups started.
    pub issued: u64,
    /// Lookups that reported a result (the others' issuers left first or the run ended).
    pub completed: u64,
    /// Completed lookups whose K closest answered nodes are exactly the true K closest live ones.
    pub succeeded: u64,
    /// `succeeded / completed`.
    pub success_rate: f64,
    /// Mean fraction of the true K closest live nodes a lookup found.
    pub mean_overlap: f64,
    /// Mean hop count of completed lookups.
    pub mean_hops: f64,
    /// `hops[h]`: lookups that took `h` hops.
    pub hops: Vec<u64>,
    /// Latency percentiles (50, 90, 99) in ms.
    pub latency_ms_p50_p90_p99: [f64; 3],
    /// Latency histogram: `latency_ms[i]` lookups took `[i, i+1) * LATENCY_BIN_MS` ms.
    pub latency_ms: Vec<u64>,
    /// Per minute of the run: lookups completed and succeeded.
    pub per_minute: Vec<MinuteStats>,
}

/// Width of a latency histogram bin, in ms.
pub const LATENCY_BIN_MS: u64 = 100;

/// Lookup outcomes in one minute of simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// Lookups completed in the minute.
    pub completed: u64,
    /// Of them, successful.
    pub succeeded: u64,
}

/// Item survival.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ItemReport {
    /// Items put.
    pub count: u32,
    /// Acknowledged stores summed over the initial puts.
    pub initial_stores: u64,
    /// One entry per check round.
    pub checks: Vec<ItemCheck>,
}

/// The outcome of one round of gets, one per item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ItemCheck {
    /// Seconds after the warm-up the round started.
    pub at_secs: u64,
    /// Gets that completed.
    pub completed: u32,
    /// Gets that found their item.
    pub found: u32,
}

impl LookupReport {
    /// Fills the derived fields from the raw counts and the sorted latencies in ms.
    pub fn finish(&mut self, overlap_sum: f64, hop_sum: u64, latencies_ms: &mut [f64]) {
        let completed = self.completed.max(1) as f64;
        self.success_rate = self.succeeded as f64 / completed;
        self.mean_overlap = overlap_sum / completed;
        self.mean_hops = hop_sum as f64 / completed;
        latencies_ms.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            let last = latencies_ms.len().saturating_sub(1) as f64;
            latencies_ms
                .get((last * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        self.latency_ms_p50_p90_p99 = [pct(0.5), pct(0.9), pct(0.99)];
        for &ms in latencies_ms.iter() {
            let bin = (ms as u64 / LATENCY_BIN_MS) as usize;
            if self.latency_ms.len() <= bin {
                self.latency_ms.resize(bin + 1, 0);
            }
            self.latency_ms[bin] += 1;
        }
    }
}

impl Report {
    /// The report as a plain-text table, one row per network size.
    pub fn summary_table(&self) -> String {
        let mut out = format!(
            "scenario {:?}, seed {} (session: mean session length; success: lookups that found \
             the true K closest live nodes)\n",
            self.scenario.name, self.scenario.seed
        );
        let _ = writeln!(
            out,
            "{:>8} {:>10} {:>9} {:>9} {:>8} {:>9} {:>7} {:>9} {:>9} {:>12} {:>10}",
            "nodes",
            "session",
            "lookups",
            "success",
            "overlap",
            "mean hops",
            "p50 ms",
            "p99 ms",
            "items",
            "events",
            "MB sent"
        );
        for run in &self.runs {
            let l = &run.lookups;
            let items = run.items.checks.last().map_or("-".to_string(), |c| {
                format!("{}/{}", c.found, run.items.count)
            });
            let _ = writeln!(
                out,
                "{:>8} {:>10} {:>9} {:>8.2}% {:>8.3} {:>9.2} {:>7.0} {:>9.0} {:>9} {:>12} {:>10.1}",
                run.nodes,
                run.session_mean_secs
                    .map_or("-".to_string(), |secs| format!("~{:.0} min", secs / 60.0)),
                l.completed,
                l.success_rate * 100.0,
                l.mean_overlap,
                l.mean_hops,
                l.latency_ms_p50_p90_p99[0],
                l.latency_ms_p50_p90_p99[2],
                items,
                run.engine.events,
                run.engine.bytes_sent as f64 / 1e6,
            );
        }
        out
    }
}
