//! Runs a scenario: builds the network, plays churn and the workload, measures against the
//! simulator's global view (the true K closest live nodes to every lookup's target).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dht::{Command, Config, Dht, Item, NodeId, NodeInfo, QueryId};
use sansio::{Rng, RngExt, Timestamp};

use crate::churn::Lifetime;
use crate::engine::{Engine, NodeHandle, Step};
use crate::network::{exponential, Network};
use crate::node::{Behaviour, Finished, SimNode};
use crate::report::{ItemCheck, MinuteStats, Report, RunReport};
use crate::scenario::Scenario;
use crate::SimError;

/// The bootstrap node every joining node contacts; it never leaves.
const BOOTSTRAP: NodeHandle = NodeHandle(0);

/// Time left for a round of gets to finish before the run ends.
const GET_MARGIN: Duration = Duration::from_secs(60);

/// Something the runner scheduled for itself.
#[derive(Debug)]
enum Action {
    Join(NodeHandle),
    Leave(NodeHandle),
    Lookup,
    PutItems,
    CheckItems,
    Republish,
}

/// What an outstanding command was for.
enum Pending {
    Lookup { target: NodeId, started: Timestamp },
    Put,
    Get { round: usize },
}

/// Where a scenario's runs stand, for progress bars.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// The run under way, from 0.
    pub run: usize,
    /// Runs in the scenario (sizes times session distributions).
    pub runs: usize,
    /// Nodes in the run under way.
    pub nodes: u32,
    /// Simulated time done in this run, warm-up included.
    pub simulated: Duration,
    /// Simulated time this run will take.
    pub total: Duration,
}

/// Runs every size of `scenario`, each with every session distribution of its sweep, on
/// `threads` threads (0: one per core); `progress` is called about once per simulated second.
///
/// The report is the same for any number of threads.
pub fn run(
    scenario: &Scenario,
    threads: usize,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Report, SimError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sim-{i}"))
        .build()
        .map_err(|e| SimError::Threads(e.to_string()))?;
    Ok(pool.install(|| run_here(scenario, progress)))
}

/// [`run`] on the current rayon pool.
fn run_here(scenario: &Scenario, progress: &mut (dyn FnMut(Progress) + Send)) -> Report {
    let mut rng = Rng::from_seed(scenario.seed);
    let sessions = scenario.session_sweep();
    let plan: Vec<(u32, Lifetime)> = scenario
        .sizes
        .iter()
        .flat_map(|&nodes| sessions.iter().map(move |&session| (nodes, session)))
        .collect();
    let runs = plan
        .iter()
        .enumerate()
        .map(|(index, &(nodes, session))| {
            let mut report = |simulated, total| {
                progress(Progress {
                    run: index,
                    runs: plan.len(),
                    nodes,
                    simulated,
                    total,
                })
            };
            Run::new(scenario, nodes, session, rng.child()).execute(&mut report)
        })
        .collect();
    Report {
        scenario: scenario.clone(),
        runs,
    }
}

struct Run<'a> {
    scenario: &'a Scenario,
    nodes: u32,
    session: Lifetime,
    rng: Rng,
    engine: Engine<SimNode, Action>,
    ids: Vec<NodeId>,
    behaviours: Vec<Behaviour>,
    /// Live nodes that answer lookups, by id: the ground truth for lookup success.
    responsive: BTreeMap<NodeId, NodeHandle>,
    /// Live honest nodes, for picking who issues workload commands (swap-remove with `slot_of`).
    honest_live: Vec<NodeHandle>,
    slot_of: Vec<u32>,
    flock: Arc<[NodeInfo]>,
    items: Vec<Item>,
    pending: BTreeMap<(NodeHandle, QueryId), Pending>,
    start: Timestamp,
    end: Timestamp,
    report: RunReport,
    overlap_sum: f64,
    hop_sum: u64,
    latencies_ms: Vec<f64>,
}

impl<'a> Run<'a> {
    fn new(scenario: &'a Scenario, nodes: u32, session: Lifetime, mut rng: Rng) -> Run<'a> {
        let network = Network::new(scenario.network.clone());
        let mut engine = Engine::new(network, rng.child());
        let items: Vec<Item> = (0..scenario.items.count)
            .map(|i| {
                let text = format!("spore sim item {i} of run seeded {}", scenario.seed);
                let mut value = Vec::new();
                bencode::encode_bytes(text.as_bytes(), &mut value);
                Item::Immutable(value)
            })
            .collect();
        let adversaries = &scenario.adversaries;
        let mut ids = Vec::new();
        let mut behaviours = Vec::new();
        for n in 0..nodes {
            engine.add_slot();
            ids.push(NodeId::random(&mut rng));
            let draw: f64 = rng.gen();
            let behaviour = if n == BOOTSTRAP.0 {
                Behaviour::Honest
            } else if draw < adversaries.silent {
                Behaviour::Silent
            } else if draw < adversaries.silent + adversaries.drop_queries {
                Behaviour::DropQueries
            } else if draw < adversaries.silent + adversaries.drop_queries + adversaries.wrong_nodes
            {
                Behaviour::WrongNodes
            } else {
                Behaviour::Honest
            };
            behaviours.push(behaviour);
        }
        let sybil_target = adversaries
            .sybil_target
            .as_deref()
            .and_then(NodeId::from_hex)
            .or_else(|| items.first().map(Item::target))
            .unwrap_or_else(|| NodeId::random(&mut rng));
        let mut flock = Vec::new();
        for _ in 0..adversaries.sybils {
            let handle = engine.add_slot();
            // Share the first 12 bytes with the target: closer than any honest node can be.
            let mut id = NodeId::random(&mut rng);
            id.0[..12].copy_from_slice(&sybil_target.0[..12]);
            ids.push(id);
            behaviours.push(Behaviour::Sybil);
            flock.push(NodeInfo {
                id,
                addr: handle.addr(),
            });
        }
        let slots = engine.slots() as usize;
        Run {
            scenario,
            nodes,
            session,
            rng,
            engine,
            ids,
            behaviours,
            responsive: BTreeMap::new(),
            honest_live: Vec::new(),
            slot_of: vec![u32::MAX; slots],
            flock: flock.into(),
            items,
            pending: BTreeMap::new(),
            start: Timestamp::ZERO + Duration::from_secs(scenario.warmup_secs),
            end: Timestamp::ZERO
                + Duration::from_secs(scenario.warmup_secs + scenario.duration_secs),
            report: RunReport {
                nodes,
                duration_secs: scenario.duration_secs,
                session,
                session_mean_secs: Some(session.mean_secs()).filter(|secs| secs.is_finite()),
                session_median_secs: Some(session.median_secs()).filter(|secs| secs.is_finite()),
                ..RunReport::default()
            },
            overlap_sum: 0.0,
            hop_sum: 0,
            latencies_ms: Vec::new(),
        }
    }

    fn execute(mut self, progress: &mut dyn FnMut(Duration, Duration)) -> RunReport {
        let warmup = Duration::from_secs(self.scenario.warmup_secs);
        self.join(BOOTSTRAP);
        for n in 1..self.engine.slots() {
            let at = warmup.mul_f64(self.rng.gen::<f64>() * 0.9);
            self.engine
                .schedule(Timestamp::ZERO + at, Action::Join(NodeHandle(n)));
        }
        if self.scenario.lookups.per_sec > 0.0 {
            self.engine.schedule(self.start, Action::Lookup);
        }
        if !self.items.is_empty() {
            self.engine.schedule(self.start, Action::PutItems);
            let check = Duration::from_secs(self.scenario.items.check_every_secs);
            self.engine.schedule(self.start + check, Action::CheckItems);
            if let Some(secs) = self.scenario.items.republish_secs {
                let at = self.start + Duration::from_secs(secs);
                self.engine.schedule(at, Action::Republish);
            }
        }
        let end = self.end;
        let total = end.saturating_since(Timestamp::ZERO);
        let mut next_tick = Timestamp::ZERO;
        loop {
            match self.engine.run_until(next_tick) {
                Step::Event(now, node, finished) => self.finished(now, node, finished),
                Step::Action(now, action) => self.act(now, action),
                Step::Idle if next_tick >= end => break,
                Step::Idle => {
                    progress(next_tick.saturating_since(Timestamp::ZERO), total);
                    next_tick = (next_tick + Duration::from_secs(1)).min(end);
                }
            }
        }
        progress(total, total);
        self.report.live_nodes_end = self.engine_live_count();
        self.report.engine = self.engine.stats();
        self.report.items.count = self.items.len() as u32;
        let mut latencies = std::mem::take(&mut self.latencies_ms);
        self.report
            .lookups
            .finish(self.overlap_sum, self.hop_sum, &mut latencies);
        self.report
    }

    fn engine_live_count(&self) -> u32 {
        (0..self.nodes)
            .filter(|&n| self.engine.is_live(NodeHandle(n)))
            .count() as u32
    }

    fn act(&mut self, now: Timestamp, action: Action) {
        match action {
            Action::Join(node) => self.join(node),
            Action::Leave(node) => self.leave(now, node),
            Action::Lookup => {
                let target = NodeId::random(&mut self.rng);
                if let Some(node) = self.pick_honest() {
                    self.command(
                        node,
                        Command::FindNode(target),
                        true,
                        Pending::Lookup {
                            target,
                            started: now,
                        },
                    );
                    self.report.lookups.issued += 1;
                }
                let gap = exponential(&mut self.rng, 1.0 / self.scenario.lookups.per_sec as f32);
                self.engine
                    .schedule(now + Duration::from_secs_f32(gap), Action::Lookup);
            }
            Action::PutItems | Action::Republish => {
                for item in self.items.clone() {
                    if let Some(node) = self.pick_honest() {
                        self.command(node, Command::Put { item, cas: None }, false, Pending::Put);
                    }
                }
                if let (Action::Republish, Some(secs)) =
                    (action, self.scenario.items.republish_secs)
                {
                    self.engine
                        .schedule(now + Duration::from_secs(secs), Action::Republish);
                }
            }
            Action::CheckItems => {
                let round = self.report.items.checks.len();
                self.report.items.checks.push(ItemCheck {
                    at_secs: now.saturating_since(self.start).as_secs(),
                    ..ItemCheck::default()
                });
                for target in self.items.iter().map(Item::target).collect::<Vec<_>>() {
                    if let Some(node) = self.pick_honest() {
                        self.command(
                            node,
                            Command::GetImmutable(target),
                            false,
                            Pending::Get { round },
                        );
                    }
                }
                let next = now + Duration::from_secs(self.scenario.items.check_every_secs);
                // A get takes seconds: a round too close to the end would look like a loss.
                if next + GET_MARGIN <= self.end {
                    self.engine.schedule(next, Action::CheckItems);
                }
            }
        }
    }

    fn command(&mut self, node: NodeHandle, command: Command, count_hops: bool, pending: Pending) {
        if let Some(query) = self
            .engine
            .with_core(node, |core, now| core.command(now, command, count_hops))
        {
            self.pending.insert((node, query), pending);
        }
    }

    fn finished(&mut self, now: Timestamp, node: NodeHandle, finished: Finished) {
        let Some(pending) = self.pending.remove(&(node, finished.query)) else {
            return;
        };
        match pending {
            Pending::Lookup { target, started } => {
                let k = self.scenario.dht.k;
                let truth = self.true_closest(&target, self.ids[node.0 as usize], k);
                let found = &finished.closest[..finished.closest.len().min(k)];
                let hits = found.iter().filter(|id| truth.contains(id)).count();
                let lookups = &mut self.report.lookups;
                lookups.completed += 1;
                let success = hits == truth.len() && found.len() == truth.len();
                lookups.succeeded += u64::from(success);
                self.overlap_sum += hits as f64 / truth.len().max(1) as f64;
                self.hop_sum += u64::from(finished.hops);
                let hops = finished.hops as usize;
                if lookups.hops.len() <= hops {
                    lookups.hops.resize(hops + 1, 0);
                }
                lookups.hops[hops] += 1;
                self.latencies_ms
                    .push(now.saturating_since(started).as_secs_f64() * 1000.0);
                let minute = (now.saturating_since(self.start).as_secs() / 60) as usize;
                if lookups.per_minute.len() <= minute {
                    lookups
                        .per_minute
                        .resize(minute + 1, MinuteStats::default());
                }
                lookups.per_minute[minute].completed += 1;
                lookups.per_minute[minute].succeeded += u64::from(success);
            }
            Pending::Put => {
                self.report.items.initial_stores += finished.stored as u64;
            }
            Pending::Get { round } => {
                let check = &mut self.report.items.checks[round];
                check.completed += 1;
                check.found += u32::from(finished.item_found);
            }
        }
    }

    /// The `k` live responsive nodes closest to `target`, `issuer` excluded.
    ///
    /// Nodes sharing a longer prefix with the target are closer than all others, so the answer
    /// lies in the smallest prefix range holding enough nodes: found in O(160 (log n + k)).
    fn true_closest(&self, target: &NodeId, issuer: NodeId, k: usize) -> Vec<NodeId> {
        let others = |range: (NodeId, NodeId)| {
            self.responsive
                .range(range.0..=range.1)
                .map(|(id, _)| *id)
                .filter(move |id| *id != issuer)
        };
        for prefix_bits in (0..=160usize).rev() {
            let range = prefix_range(target, prefix_bits);
            if prefix_bits == 0 || others(range).take(k).count() >= k {
                let mut closest: Vec<NodeId> = others(range).collect();
                closest.sort_by_key(|id| id.distance(target));
                closest.truncate(k);
                return closest;
            }
        }
        Vec::new()
    }

    fn pick_honest(&mut self) -> Option<NodeHandle> {
        if self.honest_live.is_empty() {
            return None;
        }
        let index = self.rng.gen_range(0..self.honest_live.len());
        Some(self.honest_live[index])
    }

    fn join(&mut self, node: NodeHandle) {
        let index = node.0 as usize;
        let config = Config {
            node_id: Some(self.ids[index]),
            k: self.scenario.dht.k,
            alpha: self.scenario.dht.alpha,
            ..Config::default()
        };
        let now = self.engine.now();
        let dht = Dht::new(config, now, self.rng.child());
        let behaviour = self.behaviours[index];
        self.engine
            .start(node, SimNode::new(dht, behaviour, self.flock.clone()));
        if node != BOOTSTRAP {
            self.engine.with_core(node, |core, now| {
                core.command(now, Command::Bootstrap(vec![BOOTSTRAP.addr()]), false)
            });
        }
        if matches!(
            behaviour,
            Behaviour::Honest | Behaviour::WrongNodes | Behaviour::Sybil
        ) {
            self.responsive.insert(self.ids[index], node);
        }
        if behaviour == Behaviour::Honest {
            self.slot_of[index] = self.honest_live.len() as u32;
            self.honest_live.push(node);
        }
        if node != BOOTSTRAP && behaviour != Behaviour::Sybil {
            if let Some(session) = self.session.sample(&mut self.rng) {
                self.engine.schedule(now + session, Action::Leave(node));
            }
        }
    }

    fn leave(&mut self, now: Timestamp, node: NodeHandle) {
        let index = node.0 as usize;
        self.engine.stop(node);
        if now >= self.start {
            self.report.departures += 1;
        }
        self.responsive.remove(&self.ids[index]);
        if !self.scenario.churn.keep_id {
            self.ids[index] = NodeId::random(&mut self.rng);
        }
        let slot = std::mem::replace(&mut self.slot_of[index], u32::MAX);
        if slot != u32::MAX {
            self.honest_live.swap_remove(slot as usize);
            if let Some(moved) = self.honest_live.get(slot as usize) {
                self.slot_of[moved.0 as usize] = slot;
            }
        }
        let abandoned: Vec<_> = self
            .pending
            .range((node, QueryId(0))..=(node, QueryId(u64::MAX)))
            .map(|(key, _)| *key)
            .collect();
        for key in abandoned {
            self.pending.remove(&key);
        }
        if let Some(absence) = self.scenario.churn.absence.sample(&mut self.rng) {
            self.engine.schedule(now + absence, Action::Join(node));
        }
    }
}

/// The smallest and largest ids sharing the first `bits` bits with `target`.
fn prefix_range(target: &NodeId, bits: usize) -> (NodeId, NodeId) {
    let (mut low, mut high) = (*target, *target);
    for bit in bits..160 {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        low.0[byte] &= !mask;
        high.0[byte] |= mask;
    }
    (low, high)
}
