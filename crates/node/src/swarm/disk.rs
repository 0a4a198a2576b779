//! Disk work off the async threads: opening with resume or recheck, verifying pieces in memory
//! and writing only verified ones (a hashing thread and a writer thread per torrent), reading
//! blocks for peers in the order asked (one reader thread per torrent, a batch of requests at a
//! time).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ::swarm::BlockDigest;
use metainfo::Torrent;
use sha1::Digest;
use storage::{Layout, PieceBuffer, ResumeData, Storage};
use tokio::sync::mpsc;
use wire::{BlockRequest, BLOCK_LEN};

use super::{block_pool, Error};

/// Completed disk work, reported to the torrent task.
#[derive(Debug)]
pub enum DiskDone {
    /// Blocks read for peers, by peer key (`None`: the read failed).
    BlocksRead(Vec<(u64, BlockRequest, Option<Vec<u8>>)>),
    /// A piece hash-checked (and written if valid), with its block digests when they were
    /// asked for or it failed.
    PieceChecked {
        /// The piece.
        index: u32,
        /// Whether it matched its hash.
        valid: bool,
        /// SHA-1 of each block, for attributing bad data.
        block_digests: Option<Vec<BlockDigest>>,
        /// The piece's buffer, for reuse.
        buffer: PieceBuffer,
    },
    /// A write failed: the download cannot go on.
    Failed(String),
}

/// Opens the storage and finds the verified pieces: trusted resume data if the files are
/// unchanged since it was saved, nothing if no file existed, else a full recheck, counting the
/// pieces it has hashed in `pieces_checked`.
pub async fn open(
    torrent: Arc<Torrent>,
    root: &Path,
    resume_file: Option<&Path>,
    existing_only: bool,
    pieces_checked: Arc<AtomicU32>,
) -> Result<(Arc<Storage>, Vec<bool>), Error> {
    let root = root.to_path_buf();
    let resume_file = resume_file.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || {
        let layout = Layout::from_info(&torrent.info)?;
        let existed = layout
            .files()
            .iter()
            .any(|f| !f.pad && root.join(&f.path).exists());
        let storage = if existing_only {
            Storage::open_existing(&root, layout)?
        } else {
            Storage::open(&root, layout)?
        };
        let resume = match &resume_file {
            Some(path) => ResumeData::load(path).ok().flatten(),
            None => None,
        };
        let verified = match resume {
            Some(resume) if resume.matches(&storage) => resume.verified,
            _ if !existed => vec![false; storage.layout().piece_count() as usize],
            _ => storage.recheck(|i, data| {
                pieces_checked.fetch_add(1, Ordering::Relaxed);
                torrent.verify_piece(i, data)
            })?,
        };
        Ok((Arc::new(storage), verified))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Saves resume data after flushing the files.
pub async fn save_resume(
    storage: Arc<Storage>,
    verified: Vec<bool>,
    path: &Path,
) -> Result<(), Error> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        storage.sync()?;
        ResumeData::capture(&storage, verified).save(&path)?;
        Ok(())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Piece buffers kept for reuse once their piece is written (more are freed)...
const SPARE_BUFFERS_MAX: usize = 4;
/// ...and bytes they may hold together (a torrent of huge pieces keeps fewer, or none).
const SPARE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Batches of block reads queued for the reader thread before the torrent task waits.
const READ_BATCHES_QUEUED_MAX: usize = 64;

/// Block reads asked for by peers (by peer key), served in order.
type ReadBatch = Vec<(u64, BlockRequest)>;

/// A complete piece for the hashing thread: hash it, have it written if valid, hand the buffer
/// back.
struct PieceJob {
    index: u32,
    data: PieceBuffer,
    digests_if_valid: bool,
}

/// Blocks of pieces being downloaded, assembled in memory until the piece is checked, and the
/// torrent's disk threads. One hashing thread at SHA-NI speed keeps up with the network; one
/// writer behind it (concurrent writes to one file only contend for its inode lock) writes each
/// valid piece while the next is hashed. One reader: blocks go out in the order they were asked
/// for (what a streaming peer relies on).
pub struct Disk {
    torrent: Arc<Torrent>,
    pieces: BTreeMap<u32, PieceBuffer>,
    /// Buffers of written pieces, ready for new ones (no fresh zeroed pages per piece).
    spare: Vec<PieceBuffer>,
    hasher: mpsc::Sender<PieceJob>,
    reader: mpsc::Sender<ReadBatch>,
}

impl Disk {
    /// Disk work for `torrent` on `storage`, reporting to `done`; `pieces_in_progress_max` is
    /// the swarm core's cap on unverified pieces (the writer's queue never holds more).
    pub fn new(
        torrent: Arc<Torrent>,
        storage: Arc<Storage>,
        done: mpsc::Sender<DiskDone>,
        pieces_in_progress_max: usize,
    ) -> Disk {
        // Both queues hold at most the core's unverified pieces: they never fill.
        let (hasher, jobs) = mpsc::channel(pieces_in_progress_max.max(1));
        let (writer, checked) = mpsc::channel(pieces_in_progress_max.max(1));
        let (reader, reads) = mpsc::channel(READ_BATCHES_QUEUED_MAX);
        tokio::task::spawn_blocking({
            let (storage, done) = (storage.clone(), done.clone());
            move || read_blocks_in_order(&storage, reads, &done)
        });
        tokio::task::spawn_blocking({
            let torrent = torrent.clone();
            move || hash_pieces(&torrent, jobs, &writer)
        });
        tokio::task::spawn_blocking({
            let torrent = torrent.clone();
            move || write_pieces(&torrent, &storage, checked, &done)
        });
        Disk {
            torrent,
            pieces: BTreeMap::new(),
            spare: Vec::new(),
            hasher,
            reader,
        }
    }

    /// Keeps a received block until its piece is complete.
    pub fn write_block(&mut self, block: BlockRequest, data: &[u8]) {
        let Some(size) = self.torrent.info.piece_size(block.index) else {
            return;
        };
        let spare = &mut self.spare;
        let piece = self.pieces.entry(block.index).or_insert_with(|| {
            let mut buffer = spare.pop().unwrap_or_default();
            // Every block is written before the piece is checked, so stale bytes never count.
            buffer.set_len(size as usize);
            buffer
        });
        let start = block.begin as usize;
        if let Some(slot) = piece.get_mut(start..start + data.len()) {
            slot.copy_from_slice(data);
        }
    }

    /// Queues a complete piece for the disk threads, which hash it and write it if valid.
    /// Block digests are computed when the piece fails or `digests_if_valid` asks for them.
    pub fn verify_piece(&mut self, index: u32, digests_if_valid: bool) {
        let job = PieceJob {
            index,
            data: self.pieces.remove(&index).unwrap_or_default(),
            digests_if_valid,
        };
        // The queue never fills in practice: the core caps unverified pieces at its length.
        send_or_queue(&self.hasher, job);
    }

    /// Takes back the buffer of a checked piece for reuse.
    pub fn recycle(&mut self, buffer: PieceBuffer) {
        let spare_bytes: usize = self.spare.iter().map(|b| b.len()).sum();
        if self.spare.len() < SPARE_BUFFERS_MAX && spare_bytes + buffer.len() <= SPARE_BYTES_MAX {
            self.spare.push(buffer);
        }
    }

    /// Reads blocks peers asked for, on the reader thread.
    pub fn read_blocks(&self, requests: ReadBatch) {
        if !requests.is_empty() {
            send_or_queue(&self.reader, requests);
        }
    }
}

/// Hands `job` to a disk thread; if its queue is full, a task waits for room (the queues are
/// bounded by what the core has outstanding, so such tasks are few and short-lived).
fn send_or_queue<T: Send + 'static>(queue: &mpsc::Sender<T>, job: T) {
    if let Err(mpsc::error::TrySendError::Full(job)) = queue.try_send(job) {
        let queue = queue.clone();
        tokio::spawn(async move { queue.send(job).await });
    }
}

/// The reader thread: serves batches of block reads in order until the torrent task ends.
fn read_blocks_in_order(
    storage: &Storage,
    mut batches: mpsc::Receiver<ReadBatch>,
    done: &mpsc::Sender<DiskDone>,
) {
    while let Some(batch) = batches.blocking_recv() {
        let blocks = batch
            .into_iter()
            .map(|(peer, block)| {
                let mut data = block_pool::take(block.length as usize);
                let read = storage.read_block_into(block.index, block.begin, &mut data);
                (peer, block, read.is_ok().then_some(data))
            })
            .collect();
        if done.blocking_send(DiskDone::BlocksRead(blocks)).is_err() {
            return;
        }
    }
}

/// A hashed piece for the writer thread.
struct CheckedPiece {
    job: PieceJob,
    valid: bool,
    block_digests: Option<Vec<BlockDigest>>,
}

/// The hashing thread: checks pieces in arrival order and passes them on to the writer until
/// the torrent task ends.
fn hash_pieces(
    torrent: &Torrent,
    mut jobs: mpsc::Receiver<PieceJob>,
    writer: &mpsc::Sender<CheckedPiece>,
) {
    while let Some(job) = jobs.blocking_recv() {
        let valid = torrent.verify_piece(job.index, &job.data);
        let block_digests = (!valid || job.digests_if_valid).then(|| {
            job.data
                .chunks(BLOCK_LEN as usize)
                .map(|block| sha1::Sha1::digest(block).into())
                .collect()
        });
        let checked = CheckedPiece {
            job,
            valid,
            block_digests,
        };
        if writer.blocking_send(checked).is_err() {
            return;
        }
    }
}

/// The writer thread: writes valid pieces and reports every checked one until the torrent
/// task ends.
fn write_pieces(
    torrent: &Torrent,
    storage: &Storage,
    mut checked: mpsc::Receiver<CheckedPiece>,
    done: &mpsc::Sender<DiskDone>,
) {
    while let Some(CheckedPiece {
        job,
        valid,
        block_digests,
    }) = checked.blocking_recv()
    {
        let written = if valid {
            let start = u64::from(job.index) * torrent.info.piece_length();
            storage.write_at(start, &job.data)
        } else {
            Ok(())
        };
        let report = match written {
            Ok(()) => DiskDone::PieceChecked {
                index: job.index,
                valid,
                block_digests,
                buffer: job.data,
            },
            Err(e) => DiskDone::Failed(e.to_string()),
        };
        if done.blocking_send(report).is_err() {
            return;
        }
    }
}
