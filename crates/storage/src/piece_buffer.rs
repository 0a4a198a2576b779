//! A byte buffer whose start is aligned for direct (uncached) writes.

/// Alignment of memory, file offsets and lengths that direct writes need (a page: what every
/// common Linux filesystem and block device accepts).
pub const DIRECT_IO_ALIGN: usize = 4096;

/// Bytes of a piece assembled in memory, starting at a [`DIRECT_IO_ALIGN`] boundary so that
/// [`crate::Storage::write_at`] can write them around the page cache. Safe code only: the
/// allocation has room to spare and the slice starts at its first aligned byte.
#[derive(Debug, Default)]
pub struct PieceBuffer {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl PieceBuffer {
    /// A zeroed buffer of `len` bytes.
    pub fn zeroed(len: usize) -> PieceBuffer {
        let mut buffer = PieceBuffer::default();
        buffer.set_len(len);
        buffer
    }

    /// Makes the buffer `len` bytes long. Bytes it already held keep their (stale) values, new
    /// room is zeroed; the caller overwrites what it uses. Reallocates only to grow.
    pub fn set_len(&mut self, len: usize) {
        if self.start + len > self.bytes.len() {
            self.bytes = vec![0; len + DIRECT_IO_ALIGN - 1];
            let offset = self.bytes.as_ptr().align_offset(DIRECT_IO_ALIGN);
            // align_offset may decline to answer; then the buffer is merely unaligned, and
            // writes of it take the cached path.
            self.start = if offset < DIRECT_IO_ALIGN { offset } else { 0 };
            if self.start + len > self.bytes.len() {
                self.bytes.resize(self.start + len, 0);
            }
        }
        self.len = len;
    }
}

impl std::ops::Deref for PieceBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for PieceBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_aligned_and_keeps_its_allocation_when_shrunk_and_regrown() {
        let mut buffer = PieceBuffer::zeroed(1 << 20);
        assert_eq!(buffer.len(), 1 << 20);
        assert_eq!(buffer.as_ptr() as usize % DIRECT_IO_ALIGN, 0);
        assert!(buffer.iter().all(|&b| b == 0));
        buffer[5] = 7;
        let at = buffer.as_ptr();
        buffer.set_len(100);
        assert_eq!(buffer.len(), 100);
        buffer.set_len(1 << 20);
        assert_eq!(buffer.as_ptr(), at);
        assert_eq!(buffer[5], 7);
        buffer.set_len(2 << 20);
        assert_eq!(buffer.len(), 2 << 20);
        assert_eq!(buffer.as_ptr() as usize % DIRECT_IO_ALIGN, 0);
        assert!(PieceBuffer::default().is_empty());
    }
}
