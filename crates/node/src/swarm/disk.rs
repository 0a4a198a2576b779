//! Disk work on the blocking pool: opening with resume or recheck, verifying pieces in memory,
//! writing only verified pieces, reading blocks for peers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ::swarm::BlockDigest;
use metainfo::Torrent;
use sha1::Digest;
use storage::{Layout, ResumeData, Storage};
use tokio::sync::mpsc;
use wire::{BlockRequest, BLOCK_LEN};

use super::Error;

/// Completed disk work, reported to the torrent task.
#[derive(Debug)]
pub enum DiskDone {
    /// A block read for a peer (`None`: the read failed).
    BlockRead(u64, BlockRequest, Option<Vec<u8>>),
    /// A piece hash-checked (and written if valid), with its block digests when they were
    /// asked for or it failed.
    PieceChecked {
        /// The piece.
        index: u32,
        /// Whether it matched its hash.
        valid: bool,
        /// SHA-1 of each block, for attributing bad data.
        block_digests: Option<Vec<BlockDigest>>,
    },
    /// A write failed: the download cannot go on.
    Failed(String),
}

/// Opens the storage and finds the verified pieces: trusted resume data if the files are
/// unchanged since it was saved, nothing if no file existed, else a full recheck.
pub async fn open(
    torrent: Arc<Torrent>,
    root: &Path,
    resume_file: Option<&Path>,
    existing_only: bool,
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
            _ => storage.recheck(|i, data| torrent.verify_piece(i, data))?,
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

/// Blocks of pieces being downloaded, assembled in memory until the piece is checked.
pub struct Disk {
    torrent: Arc<Torrent>,
    storage: Arc<Storage>,
    pieces: BTreeMap<u32, Vec<u8>>,
    done: mpsc::Sender<DiskDone>,
}

impl Disk {
    /// Disk work for `torrent` on `storage`, reporting to `done`.
    pub fn new(torrent: Arc<Torrent>, storage: Arc<Storage>, done: mpsc::Sender<DiskDone>) -> Disk {
        Disk {
            torrent,
            storage,
            pieces: BTreeMap::new(),
            done,
        }
    }

    /// Keeps a received block until its piece is complete.
    pub fn write_block(&mut self, block: BlockRequest, data: &[u8]) {
        let Some(size) = self.torrent.info.piece_size(block.index) else {
            return;
        };
        let piece = self
            .pieces
            .entry(block.index)
            .or_insert_with(|| vec![0; size as usize]);
        let start = block.begin as usize;
        if let Some(slot) = piece.get_mut(start..start + data.len()) {
            slot.copy_from_slice(data);
        }
    }

    /// Hashes a complete piece off the async threads; writes it if valid. Block digests are
    /// computed when the piece fails or `digests_if_valid` asks for them.
    pub fn verify_piece(&mut self, index: u32, digests_if_valid: bool) {
        let data = self.pieces.remove(&index).unwrap_or_default();
        let (torrent, storage, done) = (
            self.torrent.clone(),
            self.storage.clone(),
            self.done.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let valid = torrent.verify_piece(index, &data);
            let block_digests = (!valid || digests_if_valid).then(|| {
                data.chunks(BLOCK_LEN as usize)
                    .map(|block| sha1::Sha1::digest(block).into())
                    .collect()
            });
            let checked = DiskDone::PieceChecked {
                index,
                valid,
                block_digests,
            };
            let report = if !valid {
                checked
            } else {
                let start = u64::from(index) * torrent.info.piece_length();
                match storage.write_at(start, &data) {
                    Ok(()) => checked,
                    Err(e) => DiskDone::Failed(e.to_string()),
                }
            };
            let _ = done.blocking_send(report);
        });
    }

    /// Reads a block a peer asked for.
    pub fn read_block(&self, peer: u64, block: BlockRequest) {
        let (storage, done) = (self.storage.clone(), self.done.clone());
        tokio::task::spawn_blocking(move || {
            let data = storage
                .read_block(block.index, block.begin, block.length)
                .ok();
            let _ = done.blocking_send(DiskDone::BlockRead(peer, block, data));
        });
    }
}
