//! The discrete-event loop: virtual time, many sans-IO cores, run in parallel windows.
//!
//! Pending work sits in one binary heap (datagram deliveries and wake-ups) and the caller's
//! actions in another. Each node owns at most one live wake-up: the engine remembers the
//! deadline the core last asked for and pushes a heap entry only when it changes; entries that
//! no longer match the remembered deadline are stale and skipped. Packets are real encoded
//! bytes, delayed and dropped by the [`Network`] model.
//!
//! The loop is conservative and windowed. No datagram arrives sooner than the network's
//! minimum one-way delay (the *lookahead*) after it was sent, so everything that happens in
//! `[t, t + lookahead)` depends only on what was already in the heap at `t`: every node with
//! work in that window can run on its own, on any thread, through its deliveries and its own
//! wake-ups. Windows also end at the caller's next action, which is a barrier. Afterwards one
//! thread merges what the nodes sent, in node order: losses are drawn and heap sequence numbers
//! assigned in an order that does not depend on the number of threads, so neither does the run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use rayon::prelude::*;
use sansio::{Rng, RngExt, Timestamp};

use crate::network::Network;

/// The port every simulated node listens on.
pub const NODE_PORT: u16 = 6881;

/// Most nodes one engine can address (the 10.0.0.0/8 range, minus network and broadcast).
pub const NODES_MAX: u32 = (1 << 24) - 2;

/// Fewest nodes with work in a window worth handing to other threads.
const PARALLEL_MIN: usize = 8;

/// A sans-IO core as the engine sees it: timed inputs in, datagrams and events out.
///
/// Cores run on the engine's worker threads, hence `Send`.
pub trait Core: Send {
    /// What the core reports to its user (lookup results and the like).
    type Event: Send;
    /// A datagram from `from` arrived at `now`.
    fn handle_input(&mut self, now: Timestamp, from: SocketAddr, bytes: &[u8]);
    /// The deadline from [`Core::poll_timeout`] passed.
    fn handle_timeout(&mut self, now: Timestamp);
    /// The next datagram to send and its destination.
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
    /// The next event for the user.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When the core next wants [`Core::handle_timeout`], if ever.
    fn poll_timeout(&self) -> Option<Timestamp>;
}

/// A compact handle to a simulated node: an index into the engine's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeHandle(pub u32);

impl NodeHandle {
    /// The node's synthetic address: `10.a.b.c:6881` where `a.b.c` is the handle plus one.
    pub fn addr(self) -> SocketAddr {
        let n = self.0 + 1;
        let ip = Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        SocketAddr::new(IpAddr::V4(ip), NODE_PORT)
    }

    /// The node behind a synthetic address, `None` for any other address.
    pub fn from_addr(addr: SocketAddr) -> Option<NodeHandle> {
        let IpAddr::V4(ip) = addr.ip() else {
            return None;
        };
        let [a, b, c, d] = ip.octets();
        if a != 10 || addr.port() != NODE_PORT {
            return None;
        }
        let n = u32::from_be_bytes([0, b, c, d]);
        n.checked_sub(1).map(NodeHandle)
    }
}

/// What the loop returns to its caller.
#[derive(Debug)]
pub enum Step<E, A> {
    /// A core reported an event.
    Event(Timestamp, NodeHandle, E),
    /// An action the caller scheduled with [`Engine::schedule`] is due.
    Action(Timestamp, A),
    /// Nothing is left before the deadline given to [`Engine::run_until`].
    Idle,
}

/// Counters of the engine's work, for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Heap entries processed (deliveries, wake-ups and actions), stale ones excluded.
    pub events: u64,
    /// Datagrams the cores sent.
    pub packets_sent: u64,
    /// Bytes in those datagrams.
    pub bytes_sent: u64,
    /// Datagrams lost on the link.
    pub packets_lost: u64,
    /// Datagrams that arrived at an address with no live node.
    pub packets_undeliverable: u64,
}

enum Job {
    Deliver {
        to: NodeHandle,
        from: NodeHandle,
        /// Kept as the core's `Vec`: boxing would reallocate every datagram to shrink it.
        bytes: Vec<u8>,
    },
    Wake(NodeHandle),
}

/// Something due at `time`; `seq` orders what is due at the same time by when it was queued.
struct Entry<J> {
    time: Timestamp,
    seq: u64,
    job: J,
}

impl<J> PartialEq for Entry<J> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<J> Eq for Entry<J> {}
impl<J> PartialOrd for Entry<J> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<J> Ord for Entry<J> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// A datagram delivery taken out of the heap for the window being run.
struct Delivery {
    to: NodeHandle,
    time: Timestamp,
    seq: u64,
    from: NodeHandle,
    bytes: Vec<u8>,
}

/// What one node did: datagrams and events stamped with the time they were emitted.
struct Outcome<E> {
    node: NodeHandle,
    transmits: Vec<(Timestamp, SocketAddr, Vec<u8>)>,
    events: Vec<(Timestamp, E)>,
    /// Deliveries and wake-ups handled.
    handled: u64,
    /// The wake-up the core wants next (`NEVER` for none).
    deadline: Timestamp,
}

impl<E> Outcome<E> {
    fn new(node: NodeHandle) -> Self {
        Outcome {
            node,
            transmits: Vec::new(),
            events: Vec::new(),
            handled: 0,
            deadline: Timestamp::NEVER,
        }
    }

    /// Collects what `core` emitted at `now` and the wake-up it now wants.
    fn collect<C: Core<Event = E>>(&mut self, core: &mut C, now: Timestamp) {
        while let Some((dest, bytes)) = core.poll_transmit() {
            self.transmits.push((now, dest, bytes));
        }
        while let Some(event) = core.poll_event() {
            self.events.push((now, event));
        }
        // A core asking for a past deadline is woken at once, but never twice at one instant.
        self.deadline = core
            .poll_timeout()
            .map_or(Timestamp::NEVER, |t| t.max(now + Duration::from_micros(1)));
    }
}

/// One node's share of a window: its deliveries (in time order) and its wake-ups before `end`.
struct Work<'a, C: Core> {
    core: &'a mut C,
    deliveries: &'a [Delivery],
    outcome: Outcome<C::Event>,
}

impl<C: Core> Work<'_, C> {
    fn run(mut self, end: Timestamp) -> Outcome<C::Event> {
        let mut next = self.deliveries.iter().peekable();
        loop {
            let arrival = next.peek().map_or(Timestamp::NEVER, |d| d.time);
            let wake = self.outcome.deadline;
            let now = if wake < end && wake <= arrival {
                self.core.handle_timeout(wake);
                wake
            } else if let Some(delivery) = next.next_if(|d| d.time < end) {
                self.core
                    .handle_input(delivery.time, delivery.from.addr(), &delivery.bytes);
                delivery.time
            } else {
                return self.outcome;
            };
            self.outcome.handled += 1;
            self.outcome.collect(self.core, now);
        }
    }
}

/// The simulator's loop over cores of type `C`, with caller actions of type `A`.
pub struct Engine<C: Core, A> {
    now: Timestamp,
    seq: u64,
    heap: BinaryHeap<Reverse<Entry<Job>>>,
    actions: BinaryHeap<Reverse<Entry<A>>>,
    cores: Vec<Option<C>>,
    deadlines: Vec<Timestamp>,
    network: Network,
    /// No datagram arrives sooner than this after it was sent: the length of a window.
    lookahead: Duration,
    rng: Rng,
    events: VecDeque<(Timestamp, NodeHandle, C::Event)>,
    stats: EngineStats,
}

impl<C: Core, A> Engine<C, A> {
    /// An engine with no nodes yet; `rng` decides packet losses.
    ///
    /// Windows run on the threads of the current rayon pool (see `rayon::ThreadPool::install`);
    /// the result is the same for any number of threads.
    pub fn new(network: Network, rng: Rng) -> Self {
        Engine {
            now: Timestamp::ZERO,
            seq: 0,
            heap: BinaryHeap::new(),
            actions: BinaryHeap::new(),
            cores: Vec::new(),
            deadlines: Vec::new(),
            lookahead: network.min_one_way_delay(),
            network,
            rng,
            events: VecDeque::new(),
            stats: EngineStats::default(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The engine's counters so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The network model.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Number of node slots (live or not); handles run from 0 to this minus one.
    pub fn slots(&self) -> u32 {
        self.cores.len() as u32
    }

    /// Reserves a slot for a node that starts offline, placing it in the network model.
    pub fn add_slot(&mut self) -> NodeHandle {
        let handle = NodeHandle(self.cores.len() as u32);
        assert!(handle.0 < NODES_MAX, "at most {NODES_MAX} nodes");
        self.cores.push(None);
        self.deadlines.push(Timestamp::NEVER);
        self.network.place(&mut self.rng);
        handle
    }

    /// Whether the node has a live core.
    pub fn is_live(&self, node: NodeHandle) -> bool {
        self.cores
            .get(node.0 as usize)
            .is_some_and(|core| core.is_some())
    }

    /// Brings `core` online at `node` (replacing any core there) and lets it act.
    pub fn start(&mut self, node: NodeHandle, core: C) {
        self.cores[node.0 as usize] = Some(core);
        self.deadlines[node.0 as usize] = Timestamp::NEVER;
        self.flush(node);
    }

    /// Drops the node's core abruptly: no goodbye, packets to it are lost from now on.
    pub fn stop(&mut self, node: NodeHandle) -> Option<C> {
        self.deadlines[node.0 as usize] = Timestamp::NEVER;
        self.cores[node.0 as usize].take()
    }

    /// Runs `f` on the node's live core (to issue a command), then collects what it emitted.
    pub fn with_core<R>(
        &mut self,
        node: NodeHandle,
        f: impl FnOnce(&mut C, Timestamp) -> R,
    ) -> Option<R> {
        let now = self.now;
        let result = f(self.cores[node.0 as usize].as_mut()?, now);
        self.flush(node);
        Some(result)
    }

    /// The node's live core, for inspection.
    pub fn core(&self, node: NodeHandle) -> Option<&C> {
        self.cores.get(node.0 as usize)?.as_ref()
    }

    /// Schedules `action` to be returned by [`Engine::run_until`] at `time` (not before now).
    ///
    /// Actions are barriers: everything due before one has happened when it is returned.
    pub fn schedule(&mut self, time: Timestamp, action: A) {
        self.seq += 1;
        self.actions.push(Reverse(Entry {
            time: time.max(self.now),
            seq: self.seq,
            job: action,
        }));
    }

    /// Processes events in time order until one needs the caller or `deadline` is reached.
    pub fn run_until(&mut self, deadline: Timestamp) -> Step<C::Event, A> {
        loop {
            if let Some((time, node, event)) = self.events.pop_front() {
                return Step::Event(time, node, event);
            }
            let next_job = self
                .heap
                .peek()
                .map_or(Timestamp::NEVER, |Reverse(entry)| entry.time);
            let next_action = self
                .actions
                .peek()
                .map_or(Timestamp::NEVER, |Reverse(entry)| entry.time);
            if next_action <= deadline && next_action <= next_job {
                let Some(Reverse(entry)) = self.actions.pop() else {
                    continue;
                };
                self.now = entry.time;
                self.stats.events += 1;
                return Step::Action(entry.time, entry.job);
            }
            if next_job > deadline {
                self.now = self.now.max(deadline);
                return Step::Idle;
            }
            let end = (next_job + self.lookahead)
                .min(next_action)
                .min(deadline + Duration::from_micros(1));
            self.run_window(end);
        }
    }

    /// Runs every node's deliveries and wake-ups due before `end`, then merges their output.
    fn run_window(&mut self, end: Timestamp) {
        let mut deliveries = Vec::new();
        let mut woken = Vec::new();
        while let Some(Reverse(entry)) = self.heap.peek() {
            if entry.time >= end {
                break;
            }
            let Some(Reverse(entry)) = self.heap.pop() else {
                break;
            };
            self.now = self.now.max(entry.time);
            match entry.job {
                Job::Wake(node) => {
                    if self.deadlines[node.0 as usize] == entry.time {
                        woken.push(node);
                    }
                }
                Job::Deliver { to, from, bytes } => deliveries.push(Delivery {
                    to,
                    time: entry.time,
                    seq: entry.seq,
                    from,
                    bytes,
                }),
            }
        }
        deliveries.sort_unstable_by_key(|d| (d.to, d.time, d.seq));
        let mut groups: Vec<(NodeHandle, Range<usize>)> = Vec::new();
        for (i, delivery) in deliveries.iter().enumerate() {
            match groups.last_mut() {
                Some((node, range)) if *node == delivery.to => range.end = i + 1,
                _ => groups.push((delivery.to, i..i + 1)),
            }
        }
        groups.extend(woken.into_iter().map(|node| (node, 0..0)));
        groups.sort_by_key(|(node, _)| *node);
        groups.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same && earlier.1.is_empty() {
                earlier.1 = later.1.clone();
            }
            same
        });
        let mut work = Vec::with_capacity(groups.len());
        let cores = pick_mut(&mut self.cores, groups.iter().map(|(node, _)| node.0));
        for ((node, range), core) in groups.into_iter().zip(cores) {
            let Some(core) = core.as_mut() else {
                self.stats.packets_undeliverable += range.len() as u64;
                continue;
            };
            let mut outcome = Outcome::new(node);
            outcome.deadline = self.deadlines[node.0 as usize];
            work.push(Work {
                core,
                deliveries: &deliveries[range],
                outcome,
            });
        }
        let outcomes: Vec<Outcome<C::Event>> =
            if work.len() >= PARALLEL_MIN && rayon::current_num_threads() > 1 {
                work.into_par_iter().map(|work| work.run(end)).collect()
            } else {
                work.into_iter().map(|work| work.run(end)).collect()
            };
        debug_assert!(
            self.events.is_empty(),
            "events are returned before a window"
        );
        for outcome in outcomes {
            self.merge(outcome);
        }
        // Events in time order; at one instant, in node order (the merge order).
        self.events
            .make_contiguous()
            .sort_by_key(|(time, _, _)| *time);
    }

    /// Collects the node's datagrams and events after the caller acted on its core.
    fn flush(&mut self, node: NodeHandle) {
        let Some(core) = self.cores[node.0 as usize].as_mut() else {
            return;
        };
        let mut outcome = Outcome::new(node);
        outcome.collect(core, self.now);
        self.merge(outcome);
    }

    /// Applies what one node did: queues its datagrams and events, re-arms its wake-up.
    fn merge(&mut self, outcome: Outcome<C::Event>) {
        let node = outcome.node;
        self.stats.events += outcome.handled;
        self.events.extend(
            outcome
                .events
                .into_iter()
                .map(|(time, event)| (time, node, event)),
        );
        let deadline = outcome.deadline;
        if deadline != self.deadlines[node.0 as usize] {
            self.deadlines[node.0 as usize] = deadline;
            if deadline != Timestamp::NEVER {
                self.push(deadline, Job::Wake(node));
            }
        }
        for (sent, dest, bytes) in outcome.transmits {
            self.send(node, sent, dest, bytes);
        }
    }

    fn send(&mut self, from: NodeHandle, sent: Timestamp, dest: SocketAddr, bytes: Vec<u8>) {
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        let Some(to) = NodeHandle::from_addr(dest).filter(|to| to.0 < self.slots()) else {
            self.stats.packets_undeliverable += 1;
            return;
        };
        if self.rng.gen::<f32>() < self.network.link_loss(from, to) {
            self.stats.packets_lost += 1;
            return;
        }
        let arrival = sent + self.network.one_way_delay(from, to);
        self.push(arrival, Job::Deliver { to, from, bytes });
    }

    fn push(&mut self, time: Timestamp, job: Job) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            time,
            seq: self.seq,
            job,
        }));
    }
}

/// Mutable references to the elements at `indices` (ascending, distinct, in range) of `slice`.
fn pick_mut<T>(mut slice: &mut [T], indices: impl Iterator<Item = u32>) -> Vec<&mut T> {
    let mut picked = Vec::new();
    let mut offset = 0;
    for index in indices {
        let rest = std::mem::take(&mut slice);
        let (element, rest) = rest[index as usize - offset..]
            .split_first_mut()
            .expect("indices ascend and stay in range");
        picked.push(element);
        slice = rest;
        offset = index as usize + 1;
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkConfig;

    /// A toy core: pings one peer every `period`, answers pings, reports round-trip times.
    struct PingPong {
        peer: Option<SocketAddr>,
        period: Duration,
        next_ping: Timestamp,
        sent_at: Timestamp,
        out: VecDeque<(SocketAddr, Vec<u8>)>,
        rtts: VecDeque<Duration>,
        timeouts: u32,
    }

    impl PingPong {
        fn new(now: Timestamp, peer: Option<SocketAddr>) -> PingPong {
            PingPong {
                peer,
                period: Duration::from_secs(1),
                next_ping: now,
                sent_at: now,
                out: VecDeque::new(),
                rtts: VecDeque::new(),
                timeouts: 0,
            }
        }
    }

    impl Core for PingPong {
        type Event = Duration;
        fn handle_input(&mut self, now: Timestamp, from: SocketAddr, bytes: &[u8]) {
            match bytes {
                b"ping" => self.out.push_back((from, b"pong".to_vec())),
                b"pong" => self.rtts.push_back(now.saturating_since(self.sent_at)),
                _ => {}
            }
        }
        fn handle_timeout(&mut self, now: Timestamp) {
            self.timeouts += 1;
            if now >= self.next_ping {
                if let Some(peer) = self.peer {
                    self.out.push_back((peer, b"ping".to_vec()));
                }
                self.sent_at = now;
                self.next_ping = now + self.period;
            }
        }
        fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
            self.out.pop_front()
        }
        fn poll_event(&mut self) -> Option<Duration> {
            self.rtts.pop_front()
        }
        fn poll_timeout(&self) -> Option<Timestamp> {
            self.peer.map(|_| self.next_ping)
        }
    }

    fn pair(seed: u64, loss: f32) -> Engine<PingPong, &'static str> {
        let network = Network::new(NetworkConfig {
            loss,
            ..NetworkConfig::default()
        });
        let mut engine = Engine::new(network, Rng::from_seed(seed));
        let (a, b) = (engine.add_slot(), engine.add_slot());
        engine.start(b, PingPong::new(Timestamp::ZERO, None));
        engine.start(a, PingPong::new(Timestamp::ZERO, Some(b.addr())));
        engine
    }

    fn drain(
        engine: &mut Engine<PingPong, &'static str>,
        until: Timestamp,
    ) -> Vec<(NodeHandle, Duration)> {
        let mut seen = Vec::new();
        for _ in 0..1_000_000 {
            match engine.run_until(until) {
                Step::Event(_, node, rtt) => seen.push((node, rtt)),
                Step::Action(..) => {}
                Step::Idle => return seen,
            }
        }
        panic!("engine did not go idle");
    }

    #[test]
    fn addresses_round_trip_and_stay_distinct() {
        for n in [0, 1, 255, 256, 65_535, 65_536, NODES_MAX - 1] {
            let addr = NodeHandle(n).addr();
            assert_eq!(NodeHandle::from_addr(addr), Some(NodeHandle(n)), "{addr}");
        }
        assert_ne!(NodeHandle(1).addr().ip(), NodeHandle(256).addr().ip());
        assert_eq!(
            NodeHandle::from_addr("127.0.0.1:6881".parse().unwrap()),
            None
        );
        assert_eq!(NodeHandle::from_addr("10.0.0.1:80".parse().unwrap()), None);
    }

    #[test]
    fn packets_take_the_modelled_round_trip_time() {
        let mut engine = pair(1, 0.0);
        let expected = engine.network().rtt(NodeHandle(0), NodeHandle(1));
        let seen = drain(&mut engine, Timestamp::from_millis(10_500));
        // Pings at 0 s .. 10 s; each answered after exactly one modelled round trip.
        assert_eq!(seen.len(), 11);
        // Microsecond rounding of each one-way delay may differ by one per direction.
        assert!(seen.iter().all(|&(node, rtt)| node == NodeHandle(0)
            && rtt.abs_diff(expected) <= Duration::from_micros(2)));
        assert_eq!(engine.core(NodeHandle(0)).unwrap().timeouts, 11);
        assert_eq!(engine.stats().packets_sent, 22);
    }

    #[test]
    fn stopped_nodes_lose_packets_and_restarted_ones_answer() {
        let mut engine = pair(2, 0.0);
        engine.schedule(Timestamp::from_millis(2_500), "stop");
        engine.schedule(Timestamp::from_millis(5_500), "start");
        let mut answers = 0;
        for _ in 0..10_000 {
            match engine.run_until(Timestamp::from_millis(8_500)) {
                Step::Event(..) => answers += 1,
                Step::Action(_, "stop") => assert!(engine.stop(NodeHandle(1)).is_some()),
                Step::Action(now, _) => engine.start(NodeHandle(1), PingPong::new(now, None)),
                Step::Idle => break,
            }
        }
        // Pings at 0,1,2 and 6,7,8 s are answered; 3,4,5 s are lost.
        assert_eq!(answers, 6);
        assert_eq!(engine.stats().packets_undeliverable, 3);
        assert_eq!(engine.now(), Timestamp::from_millis(8_500));
    }

    #[test]
    fn windows_give_the_same_run_on_any_number_of_threads() {
        // A ring of nodes that all ping at the same instants: every window has hundreds of
        // nodes with work, so the parallel path runs.
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let network = Network::new(NetworkConfig {
                    loss: 0.2,
                    ..NetworkConfig::default()
                });
                let mut engine: Engine<PingPong, &str> = Engine::new(network, Rng::from_seed(4));
                let nodes: Vec<NodeHandle> = (0..300).map(|_| engine.add_slot()).collect();
                for (i, node) in nodes.iter().enumerate() {
                    let peer = nodes[(i + 1) % nodes.len()];
                    engine.start(*node, PingPong::new(Timestamp::ZERO, Some(peer.addr())));
                }
                (
                    drain(&mut engine, Timestamp::from_millis(20_000)),
                    engine.stats(),
                )
            })
        };
        let (seen, stats) = run(1);
        assert!(seen.len() > 1500 && stats.packets_lost > 1000, "{stats:?}");
        assert_eq!(run(3), (seen, stats));
    }

    #[test]
    fn same_seed_same_run() {
        let run = |seed| {
            let mut engine = pair(seed, 0.3);
            (
                drain(&mut engine, Timestamp::from_millis(100_000)),
                engine.stats(),
            )
        };
        let (first, stats) = run(9);
        assert_eq!(run(9), (first.clone(), stats));
        assert!(stats.packets_lost > 0 && !first.is_empty());
        assert_ne!(run(10).1, stats);
    }
}
