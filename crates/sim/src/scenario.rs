//! Scenarios: what to simulate, read from TOML files and adjusted by command-line flags.
//!
//! Every field has a default, so a scenario file names only what it changes. Unknown keys are
//! errors, so a typo does not silently run the wrong experiment.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::churn::Lifetime;
use crate::network::NetworkConfig;
use crate::SimError;

/// Most nodes in one run (the synthetic address space and the 8 GiB budget allow about this).
pub const NODES_MAX: u32 = 1_000_000;

/// One experiment: a network, its churn, its workload and its adversaries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// A name for reports and plot titles.
    pub name: String,
    /// The one seed every random choice derives from.
    pub seed: u64,
    /// Network sizes to run, one run each (a sweep when more than one).
    pub sizes: Vec<u32>,
    /// Simulated time after the warm-up, in seconds.
    pub duration_secs: u64,
    /// Time over which the initial nodes join, before measurements start, in seconds.
    pub warmup_secs: u64,
    /// Latency and loss.
    pub network: NetworkConfig,
    /// DHT settings shared by all honest nodes.
    pub dht: DhtSettings,
    /// Node sessions and absences.
    pub churn: ChurnConfig,
    /// Lookups issued during the run.
    pub lookups: LookupWorkload,
    /// BEP 44 items put and fetched during the run.
    pub items: ItemWorkload,
    /// Misbehaving nodes.
    pub adversaries: Adversaries,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            seed: 1,
            sizes: vec![1000],
            duration_secs: 600,
            warmup_secs: 1200,
            network: NetworkConfig::default(),
            dht: DhtSettings::default(),
            churn: ChurnConfig::default(),
            lookups: LookupWorkload::default(),
            items: ItemWorkload::default(),
            adversaries: Adversaries::default(),
        }
    }
}

/// DHT parameters under study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhtSettings {
    /// Bucket size and lookup result size.
    pub k: usize,
    /// Parallel queries per lookup.
    pub alpha: usize,
}

impl Default for DhtSettings {
    fn default() -> Self {
        DhtSettings { k: 8, alpha: 3 }
    }
}

/// How nodes come and go. The bootstrap node (node 0) never leaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnConfig {
    /// How long a node stays online.
    pub session: Lifetime,
    /// A sweep over session distributions: when not empty, every network size is run once per
    /// entry (in place of `session`), so lookup success can be read against session length.
    pub sessions: Vec<Lifetime>,
    /// How long a departed node stays away before rejoining.
    pub absence: Lifetime,
    /// A rejoining node keeps its id (as clients that save their state do).
    pub keep_id: bool,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        ChurnConfig {
            session: Lifetime::Never,
            sessions: Vec::new(),
            absence: Lifetime::Exponential { mean_secs: 600.0 },
            keep_id: true,
        }
    }
}

/// The lookup workload: `find_node` for random keys from random live nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LookupWorkload {
    /// Lookups started per second across the network (a Poisson process).
    pub per_sec: f64,
}

impl Default for LookupWorkload {
    fn default() -> Self {
        LookupWorkload { per_sec: 2.0 }
    }
}

/// The BEP 44 workload: immutable items put at the start, fetched periodically.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItemWorkload {
    /// Items put right after the warm-up.
    pub count: u32,
    /// Seconds between two checks of every item (a get from a random live node).
    pub check_every_secs: u64,
    /// Seconds between republications by the application (a put from a random live node);
    /// `None`: only the publishing node's own core ever republishes, while it lives.
    pub republish_secs: Option<u64>,
}

impl Default for ItemWorkload {
    fn default() -> Self {
        ItemWorkload {
            count: 0,
            check_every_secs: 300,
            republish_secs: None,
        }
    }
}

/// Misbehaving nodes, as fractions of the network (excluding the bootstrap node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adversaries {
    /// Nodes that never answer anything (firewalled, or gone quiet).
    pub silent: f64,
    /// Nodes that answer pings but drop every other query.
    pub drop_queries: f64,
    /// Nodes that answer lookups with far-away nodes instead of close ones.
    pub wrong_nodes: f64,
    /// A Sybil flock: this many extra nodes with ids sharing a long prefix with `sybil_target`,
    /// which swallow `get` and `put` for keys near it.
    pub sybils: u32,
    /// The key the flock surrounds, 40 hex digits; default: the first item's key.
    pub sybil_target: Option<String>,
}

/// Command-line values that replace the scenario's.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// One network size instead of the scenario's sizes.
    pub nodes: Option<u32>,
    /// Another seed.
    pub seed: Option<u64>,
    /// Another duration, in seconds.
    pub duration_secs: Option<u64>,
    /// Another warm-up, in seconds.
    pub warmup_secs: Option<u64>,
    /// Another session distribution (replacing any sweep of them).
    pub session: Option<Lifetime>,
    /// Another mean loss rate.
    pub loss: Option<f32>,
    /// Other adversaries.
    pub adversaries: Option<Adversaries>,
    /// Another republishing interval in seconds (`Some(None)`: the application never republishes).
    pub republish_secs: Option<Option<u64>>,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text)
    }

    /// Parses a scenario from TOML text and checks it.
    pub fn parse(text: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|err| SimError::Parse(err.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Applies command-line overrides and checks the result.
    pub fn with_overrides(mut self, overrides: &Overrides) -> Result<Scenario, SimError> {
        if let Some(nodes) = overrides.nodes {
            self.sizes = vec![nodes];
        }
        if let Some(seed) = overrides.seed {
            self.seed = seed;
        }
        if let Some(secs) = overrides.duration_secs {
            self.duration_secs = secs;
        }
        if let Some(secs) = overrides.warmup_secs {
            self.warmup_secs = secs;
        }
        if let Some(session) = overrides.session {
            self.churn.session = session;
            self.churn.sessions.clear();
        }
        if let Some(loss) = overrides.loss {
            self.network.loss = loss;
        }
        if let Some(adversaries) = &overrides.adversaries {
            self.adversaries = adversaries.clone();
        }
        if let Some(republish) = overrides.republish_secs {
            self.items.republish_secs = republish;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks values a run cannot work with.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |what: String| Err(SimError::Invalid(what));
        if self.sizes.is_empty() {
            return invalid("`sizes` must name at least one network size".into());
        }
        if let Some(&bad) = self.sizes.iter().find(|&&n| !(2..=NODES_MAX).contains(&n)) {
            return invalid(format!("network size {bad} is outside 2..={NODES_MAX}"));
        }
        if self.duration_secs == 0 {
            return invalid("`duration_secs` must be positive".into());
        }
        let n = &self.network;
        if ![n.spread_ms, n.access_min_ms, n.access_extra_mean_ms]
            .iter()
            .all(|ms| ms.is_finite() && *ms >= 0.0)
        {
            return invalid("network delays must be non-negative numbers of milliseconds".into());
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return invalid(format!("loss {} is not a probability", self.network.loss));
        }
        let a = &self.adversaries;
        let bad_fractions = a.silent + a.drop_queries + a.wrong_nodes;
        if [a.silent, a.drop_queries, a.wrong_nodes]
            .iter()
            .any(|f| !(0.0..=1.0).contains(f))
            || bad_fractions > 0.9
        {
            return invalid("adversary fractions must be in 0..=1 and sum to at most 0.9".into());
        }
        if let Some(target) = &a.sybil_target {
            if target.len() != 40 || !target.bytes().all(|b| b.is_ascii_hexdigit()) {
                return invalid(format!("sybil_target {target:?} is not 40 hex digits"));
            }
        }
        if !(self.lookups.per_sec.is_finite() && self.lookups.per_sec >= 0.0) {
            return invalid("lookups.per_sec must be a non-negative number".into());
        }
        if self.items.check_every_secs == 0 || self.items.republish_secs == Some(0) {
            return invalid("item check and republish intervals must be positive".into());
        }
        if self.dht.k == 0 || self.dht.alpha == 0 {
            return invalid("dht.k and dht.alpha must be positive".into());
        }
        for lifetime in [&self.churn.session, &self.churn.absence]
            .into_iter()
            .chain(&self.churn.sessions)
        {
            lifetime.validate().map_err(SimError::Invalid)?;
        }
        Ok(())
    }

    /// The session distributions to run: the sweep, or the one `session`.
    pub fn session_sweep(&self) -> Vec<Lifetime> {
        if self.churn.sessions.is_empty() {
            vec![self.churn.session]
        } else {
            self.churn.sessions.clone()
        }
    }
}

impl Adversaries {
    /// Parses the command-line form: comma-separated `silent=F`, `drop_queries=F`,
    /// `wrong_nodes=F`, `sybils=N` and `sybil_target=HEX`, or `none`.
    pub fn parse_flag(text: &str) -> Result<Adversaries, String> {
        let mut adversaries = Adversaries::default();
        if text == "none" {
            return Ok(adversaries);
        }
        for part in text.split(',').map(str::trim) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not KEY=VALUE (e.g. silent=0.1,sybils=32)"))?;
            let fraction = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("{key}: {value:?} is not a fraction like 0.05"))
            };
            match key {
                "silent" => adversaries.silent = fraction()?,
                "drop_queries" => adversaries.drop_queries = fraction()?,
                "wrong_nodes" => adversaries.wrong_nodes = fraction()?,
                "sybils" => {
                    adversaries.sybils = value
                        .parse()
                        .map_err(|_| format!("sybils: {value:?} is not a count"))?;
                }
                "sybil_target" => adversaries.sybil_target = Some(value.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown adversary {key:?}: use silent, drop_queries, wrong_nodes, \
                         sybils or sybil_target"
                    ))
                }
            }
        }
        Ok(adversaries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_name_only_what_they_change_and_flags_win() {
        let scenario = Scenario::parse(
            r#"
            name = "churny"
            sizes = [1000, 4000]
            [churn]
            session = { kind = "weibull", shape = 0.5, scale_secs = 1200.0 }
            [items]
            count = 5
            republish_secs = 600
            "#,
        )
        .unwrap();
        assert_eq!(scenario.sizes, [1000, 4000]);
        assert_eq!(scenario.items.republish_secs, Some(600));
        assert_eq!(scenario.dht, DhtSettings::default());
        let scenario = scenario
            .with_overrides(&Overrides {
                nodes: Some(50),
                seed: Some(9),
                ..Overrides::default()
            })
            .unwrap();
        assert_eq!((scenario.sizes.as_slice(), scenario.seed), (&[50][..], 9));
    }

    #[test]
    fn adversary_flags_parse_and_typos_do_not() {
        let parsed = Adversaries::parse_flag("silent=0.1, wrong_nodes=0.05,sybils=32").unwrap();
        assert_eq!(
            parsed,
            Adversaries {
                silent: 0.1,
                wrong_nodes: 0.05,
                sybils: 32,
                ..Adversaries::default()
            }
        );
        assert_eq!(Adversaries::parse_flag("none"), Ok(Adversaries::default()));
        for bad in ["silent", "silnet=0.1", "sybils=many", "silent=lots"] {
            assert!(Adversaries::parse_flag(bad).is_err(), "{bad}");
        }
        // Out-of-range values parse but fail validation, like the same values in a file.
        let flag = Adversaries::parse_flag("silent=0.95").unwrap();
        let overrides = Overrides {
            adversaries: Some(flag),
            republish_secs: Some(None),
            ..Overrides::default()
        };
        assert!(Scenario::default().with_overrides(&overrides).is_err());
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "nodez = 5",
            "sizes = []",
            "sizes = [1]",
            "[network]\nloss = 1.5",
            "[adversaries]\nsilent = 0.5\nwrong_nodes = 0.5",
            "[adversaries]\nsybil_target = \"abc\"",
            "[churn]\nsession = { kind = \"exponential\", mean_secs = -1.0 }",
        ] {
            assert!(Scenario::parse(bad).is_err(), "{bad}");
        }
    }
}
