//! One torrent's brain, sans-IO: piece picker, choker, request pipeline, peer bookkeeping.
