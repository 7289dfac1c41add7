//! The shared region of the shared-memory transport: one `MAP_SHARED` memfd mapping, created
//! before any fork (like the scoreboard), holding the queue (a bitmap of queued slots, a futex
//! word), one claim word per executor, and the request slots (control words + two byte rings).
//!
//! Every word is an atomic; the rings' bytes are copied in and out with `ptr::copy` by the one
//! side that owns that end. The whole mapping is writable by executors (PHP code runs there):
//! this file only hands out bounds-checked accessors; the callers validate every value they
//! read from the other side ([`super::client`] and [`super::serve`] check ring positions and states).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bytes of a slot's request ring (client → executor: the encoded head, then the body).
pub const REQ_CAP: usize = 16 * 1024;
/// Bytes of a slot's response ring (executor → client: response frames).
pub const RESP_CAP: usize = 32 * 1024;
/// Most slots per client process (memory: about 48 KiB each, touched when used).
pub const MAX_SLOTS_PER_CLIENT: usize = 256;

const MAGIC: u64 = 0x6665_7068_7073_686d; // "fephpshm"
const CTL_BYTES: usize = 64;

/// Slot states (the `state` word).
pub mod state {
    /// Owned by its client, unused.
    pub const FREE: u32 = 0;
    /// Published by the client; any executor may claim it.
    pub const QUEUED: u32 = 1;
    /// The executor is done with it (the client may reuse it).
    pub const RELEASED: u32 = 2;
    /// Its executor died (the supervisor's mark): 502.
    pub const DEAD_CRASH: u32 = 3;
    /// Its executor was killed after the request terminate timeout (the supervisor's mark): 504.
    pub const DEAD_TIMEOUT: u32 = 4;
    /// `TAKEN + executor index`: claimed by that executor.
    pub const TAKEN: u32 = 0x1000;
}

/// Control words of one slot (one cache line).
#[repr(C)]
pub struct SlotCtl {
    /// [`state`].
    pub state: AtomicU32,
    /// The client index (its doorbell), written by the client before publishing.
    pub client: AtomicU32,
    /// Bumped by the executor (or the supervisor) after each change the client may wait for.
    pub notify: AtomicU32,
    /// 1 while the client waits for `notify` (the executor then rings the client's doorbell).
    pub client_waiting: AtomicU32,
    /// 1 once the client abandoned the request (the executor stops writing).
    pub cancel: AtomicU32,
    /// Futex word bumped by the client after each change the executor may wait for.
    pub exec_futex: AtomicU32,
    /// 1 while the executor sleeps on `exec_futex`.
    pub exec_waiting: AtomicU32,
    /// Request ring: bytes written (client) and read (executor), wrapping counters.
    pub req_w: AtomicU32,
    /// See `req_w`.
    pub req_r: AtomicU32,
    /// Response ring: bytes written (executor) and read (client), wrapping counters.
    pub resp_w: AtomicU32,
    /// See `resp_w`.
    pub resp_r: AtomicU32,
    _pad: [u32; 5],
}

const _: () = assert!(std::mem::size_of::<SlotCtl>() == CTL_BYTES);

/// Sizes of a region, derived from the pool's options the same way in every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Client processes (nginx workers), each with its own doorbell and slots.
    pub clients: usize,
    /// Slots per client.
    pub per_client: usize,
    /// Executors (claim words).
    pub executors: usize,
}

impl Layout {
    /// The layout for `clients` client processes, `executors` executors and a shared queue of
    /// `queue_size`: each client gets enough slots for its share of the queue plus one per
    /// executor, at most [`MAX_SLOTS_PER_CLIENT`].
    pub fn new(clients: usize, executors: usize, queue_size: usize) -> Layout {
        let clients = clients.clamp(1, 4096);
        let per_client = (queue_size.div_ceil(clients) + executors).clamp(1, MAX_SLOTS_PER_CLIENT);
        Layout { clients, per_client, executors: executors.max(1) }
    }

    /// Total slots.
    pub fn slots(&self) -> usize {
        self.clients * self.per_client
    }

    fn bitmap_words(&self) -> usize {
        self.slots().div_ceil(64)
    }

    fn bitmap_off(&self) -> usize {
        192
    }

    fn claims_off(&self) -> usize {
        self.bitmap_off() + self.bitmap_words() * 8
    }

    fn ctl_off(&self) -> usize {
        (self.claims_off() + self.executors * 4).next_multiple_of(CTL_BYTES)
    }

    fn data_off(&self) -> usize {
        (self.ctl_off() + self.slots() * CTL_BYTES).next_multiple_of(4096)
    }

    /// Bytes of the whole region.
    pub fn size(&self) -> usize {
        self.data_off() + self.slots() * (REQ_CAP + RESP_CAP)
    }
}

/// The mapped region. Cheap to share behind an `Arc`.
pub struct Region {
    base: NonNull<u8>,
    layout: Layout,
    fd: OwnedFd,
}

// SAFETY: the mapping is shared memory accessed through atomics and bounds-checked copies.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("layout", &self.layout).finish()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference outlives the region.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.layout.size()) };
    }
}

impl Region {
    /// A zeroed region for `layout` (a memfd, shared with every process forked later and, by
    /// its descriptor, with an exec'd one).
    pub fn new(layout: Layout) -> std::io::Result<Region> {
        let fd = crate::executor::sys::memfd("fephp-shm-transport", layout.size())?;
        let region = Self::map(fd, layout)?;
        region.header_u64(0).store(MAGIC, Ordering::Relaxed);
        Ok(region)
    }

    /// Maps the region of another process's [`Region::new`] (its memfd); refused unless the
    /// size and the magic match `layout`.
    pub fn from_fd(fd: OwnedFd, layout: Layout) -> std::io::Result<Region> {
        if crate::executor::sys::file_size(fd.as_raw_fd())? != layout.size() as u64 {
            return Err(std::io::Error::other("shared-memory region size does not match the pool's options"));
        }
        let region = Self::map(fd, layout)?;
        if region.header_u64(0).load(Ordering::Relaxed) != MAGIC {
            return Err(std::io::Error::other("shared-memory region has a bad magic"));
        }
        Ok(region)
    }

    fn map(fd: OwnedFd, layout: Layout) -> std::io::Result<Region> {
        // SAFETY: shared mapping of our memfd of exactly that size; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        Ok(Region { base, layout, fd })
    }

    /// The memfd (to hand to an exec'd supervisor).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The region's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn header_u64(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= 192 && off.is_multiple_of(8));
        // SAFETY: inside the header, 8-aligned (the mapping is page-aligned).
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU64>() }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= self.layout.size() && off.is_multiple_of(4));
        // SAFETY: bounds and alignment checked above; atomics over shared memory.
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// The queue's futex word, bumped by clients after publishing a slot.
    pub fn queue_futex(&self) -> &AtomicU32 {
        self.u32_at(64)
    }

    /// Where the next claim pass starts (one past the last claimed slot; a hint shared by all
    /// executors, so the queue is served round robin over the slots, close to FIFO).
    pub fn cursor(&self) -> &AtomicU32 {
        self.u32_at(160)
    }

    /// Executors sleeping on [`Region::queue_futex`].
    pub fn sleepers(&self) -> &AtomicU32 {
        self.u32_at(128)
    }

    /// Word `i` of the queued-slots bitmap.
    pub fn bitmap_word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.layout.bitmap_words());
        // SAFETY: inside the bitmap, 8-aligned (192 + 8 i).
        unsafe { &*self.base.as_ptr().add(self.layout.bitmap_off() + i * 8).cast::<AtomicU64>() }
    }

    /// Words of the bitmap.
    pub fn bitmap_words(&self) -> usize {
        self.layout.bitmap_words()
    }

    /// Executor `i`'s claim word: slot + 1 while it is claiming that slot, else 0.
    pub fn claim_word(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.layout.executors);
        self.u32_at(self.layout.claims_off() + i * 4)
    }

    /// Slot `i`'s control words.
    pub fn ctl(&self, i: usize) -> &SlotCtl {
        assert!(i < self.layout.slots());
        // SAFETY: inside the control array, 64-aligned; SlotCtl is only atomics.
        unsafe { &*self.base.as_ptr().add(self.layout.ctl_off() + i * CTL_BYTES).cast::<SlotCtl>() }
    }

    /// Slot `i`'s request ring bytes.
    pub fn req_ring(&self, i: usize) -> RingMem {
        assert!(i < self.layout.slots());
        // SAFETY: inside the data area (checked above).
        RingMem { base: unsafe { self.base.as_ptr().add(self.layout.data_off() + i * (REQ_CAP + RESP_CAP)) }, cap: REQ_CAP }
    }

    /// Slot `i`'s response ring bytes.
    pub fn resp_ring(&self, i: usize) -> RingMem {
        assert!(i < self.layout.slots());
        // SAFETY: as above.
        RingMem {
            base: unsafe { self.base.as_ptr().add(self.layout.data_off() + i * (REQ_CAP + RESP_CAP) + REQ_CAP) },
            cap: RESP_CAP,
        }
    }

    /// Marks slot `i` queued in the bitmap.
    pub fn set_queued_bit(&self, i: usize) {
        self.bitmap_word(i / 64).fetch_or(1 << (i % 64), Ordering::SeqCst);
    }

    /// Takes slot `i`'s queued bit; true when it was set (this caller owns the claim attempt).
    pub fn take_queued_bit(&self, i: usize) -> bool {
        let bit = 1u64 << (i % 64);
        self.bitmap_word(i / 64).fetch_and(!bit, Ordering::SeqCst) & bit != 0
    }

    /// True when slot `i`'s queued bit is set.
    pub fn queued_bit(&self, i: usize) -> bool {
        self.bitmap_word(i / 64).load(Ordering::SeqCst) & (1 << (i % 64)) != 0
    }
}

/// The bytes of one ring (a power-of-two capacity) inside the region.
#[derive(Clone, Copy)]
pub struct RingMem {
    base: *mut u8,
    cap: usize,
}

impl RingMem {
    /// Capacity in bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Copies `data` in at wrapping position `pos` (`data.len() <= cap`; the caller checked the
    /// space).
    pub fn write(&self, pos: u32, data: &[u8]) {
        assert!(data.len() <= self.cap);
        let at = pos as usize & (self.cap - 1);
        let first = data.len().min(self.cap - at);
        // SAFETY: both copies stay inside the ring's `cap` bytes; the other process never
        // writes this part (it is beyond what it may read), and bytes are plain data.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(at), first);
            std::ptr::copy_nonoverlapping(data.as_ptr().add(first), self.base, data.len() - first);
        }
    }

    /// Copies `out.len()` bytes out from wrapping position `pos` (`out.len() <= cap`; the caller
    /// validated the length against the positions).
    pub fn read(&self, pos: u32, out: &mut [u8]) {
        assert!(out.len() <= self.cap);
        let at = pos as usize & (self.cap - 1);
        let first = out.len().min(self.cap - at);
        // SAFETY: both copies stay inside the ring; a hostile writer can only change the bytes
        // (plain data, validated after the copy), never the bounds.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.base, out.as_mut_ptr().add(first), out.len() - first);
        }
    }
}

const _: () = assert!(REQ_CAP.is_power_of_two() && RESP_CAP.is_power_of_two());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits_and_rings_wrap() {
        let l = Layout::new(2, 5, 1024);
        assert_eq!(l.per_client, MAX_SLOTS_PER_CLIENT);
        let l = Layout::new(2, 3, 10);
        assert_eq!(l.per_client, 8);
        let r = Region::new(l).unwrap();
        assert!(r.ctl(l.slots() - 1).state.load(Ordering::Relaxed) == state::FREE);
        let ring = r.resp_ring(l.slots() - 1);
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let pos = (RESP_CAP - 10) as u32;
        ring.write(pos, &data);
        let mut back = vec![0u8; 1000];
        ring.read(pos, &mut back);
        assert_eq!(back, data);
        r.set_queued_bit(10);
        assert!(r.queued_bit(10));
        assert!(r.take_queued_bit(10));
        assert!(!r.take_queued_bit(10));
        let fd = crate::executor::sys::memfd("x", 4096).unwrap();
        assert!(Region::from_fd(fd, l).is_err());
    }
}
