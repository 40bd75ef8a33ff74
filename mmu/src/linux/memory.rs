//! [`LinuxMemory`]: `PinDma` on this process's own pages (see the module table in `linux`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::notifiers::IntervalNotifiers;
use super::pagemap::Pagemap;
use super::sys;
use super::uffd::{UffdEvent, UffdMonitor, Userfaultfd};
use super::IommuMap;
use crate::error::{DmaMapError, NotifierError, PinError};
use crate::ops::PinDma;
use crate::space::{InvalidateEvent, Invalidation};
use crate::types::{Iova, NotifierId, Pfn, Va, PAGE_SIZE};

/// IOVA of frame `pfn` in the identity window: `IOVA_BASE + pfn * 4 KiB`, so physically
/// contiguous runs stay contiguous for the device (as hfi1 sees them without an IOMMU).
pub const IOVA_BASE: u64 = 1 << 40;
/// Where aliases go when a run overlaps a live map of a different length.
const ALIAS_BASE: u64 = 1 << 44;

#[derive(Clone, Copy, Debug)]
struct Pinned {
    count: u32,
    va: u64,
}

#[derive(Clone, Copy, Debug)]
struct Mapped {
    npages: usize,
    refs: u32,
}

/// Counters of the real backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinuxMemoryStats {
    /// Pages pinned (mlock + frame lookup).
    pub pages_pinned: u64,
    /// Pages unpinned.
    pub pages_unpinned: u64,
    /// IOMMU maps made.
    pub iommu_maps: u64,
    /// IOMMU unmaps made.
    pub iommu_unmaps: u64,
    /// Maps that reused a live mapping of the same run.
    pub map_reuses: u64,
    /// Maps placed at an alias IOVA.
    pub alias_maps: u64,
    /// IOMMU map or unmap failures.
    pub iommu_errors: u64,
    /// Unpins of frames this backend did not pin.
    pub unbalanced_unpins: u64,
    /// userfaultfd events turned into invalidations.
    pub uffd_events: u64,
    /// Invalidations delivered.
    pub invalidations: u64,
}

/// This process's memory as the driver pins and maps it.
#[derive(Debug)]
pub struct LinuxMemory<M: IommuMap> {
    iommu: M,
    pagemap: Pagemap,
    uffd: Arc<Userfaultfd>,
    monitor: UffdMonitor,
    pins: BTreeMap<Pfn, Pinned>,
    maps: BTreeMap<u64, Mapped>,
    alias_next: u64,
    notifiers: IntervalNotifiers,
    pinned_vm: i64,
    /// `RLIMIT_MEMLOCK` override (`None`: the process's real limit).
    pub memlock_override: Option<Option<u64>>,
    /// Counters.
    pub stats: LinuxMemoryStats,
}

impl<M: IommuMap> LinuxMemory<M> {
    /// Opens the pagemap and a userfaultfd with its monitor thread.
    pub fn new(iommu: M) -> std::io::Result<Self> {
        let uffd = Arc::new(Userfaultfd::new()?);
        let monitor = UffdMonitor::spawn(uffd.clone())?;
        Ok(Self {
            iommu,
            pagemap: Pagemap::open()?,
            uffd,
            monitor,
            pins: BTreeMap::new(),
            maps: BTreeMap::new(),
            alias_next: ALIAS_BASE,
            notifiers: IntervalNotifiers::default(),
            pinned_vm: 0,
            memlock_override: None,
            stats: LinuxMemoryStats::default(),
        })
    }

    /// The IOMMU.
    pub fn iommu(&self) -> &M {
        &self.iommu
    }

    /// Frames pinned now (distinct).
    pub fn pinned_frames(&self) -> usize {
        self.pins.len()
    }

    /// Total pin count.
    pub fn total_pins(&self) -> u64 {
        self.pins.values().map(|p| u64::from(p.count)).sum()
    }

    /// Live IOMMU maps.
    pub fn live_maps(&self) -> usize {
        self.maps.len()
    }

    /// Live notifiers.
    pub fn live_notifiers(&self) -> usize {
        self.notifiers.len()
    }

    /// Drains the events the monitor has read so far and turns them into invalidations of the
    /// notifiers they overlap (to deliver to the driver's callback). With `wait_ms` > 0, waits
    /// up to that long for the first event.
    pub fn take_invalidations(&mut self, wait_ms: u64) -> Vec<Invalidation> {
        let mut evs = Vec::new();
        if wait_ms > 0 {
            if let Ok(e) =
                self.monitor.events.recv_timeout(std::time::Duration::from_millis(wait_ms))
            {
                evs.push(e);
            }
        }
        evs.extend(self.monitor.events.try_iter());
        let mut out = Vec::new();
        // A moving mremap reports REMAP and then UNMAP of the same old range: one
        // invalidation, as an MMU notifier would give.
        let mut last = None;
        for e in evs {
            self.stats.uffd_events += 1;
            let (start, end, ev) = match e {
                UffdEvent::Unmap { start, end } => (start, end, InvalidateEvent::Unmap),
                UffdEvent::Remove { start, end } => (start, end, InvalidateEvent::Clear),
                UffdEvent::Remap { from, len, .. } => {
                    (from, from.saturating_add(len), InvalidateEvent::Unmap)
                }
                UffdEvent::PageFault { .. } | UffdEvent::Other(_) => continue,
            };
            if last.replace((start, end, ev)) == Some((start, end, ev)) {
                continue;
            }
            out.extend(self.notifiers.invalidate(start, end, ev));
        }
        self.stats.invalidations += out.len() as u64;
        out
    }

    fn iova_for(&mut self, pfn: Pfn, npages: usize) -> (u64, bool) {
        let ident = IOVA_BASE + pfn.0 * PAGE_SIZE;
        let end = ident + npages as u64 * PAGE_SIZE;
        if let Some(m) = self.maps.get(&ident) {
            if m.npages == npages {
                return (ident, true);
            }
        }
        let overlaps = self
            .maps
            .range(..end)
            .next_back()
            .is_some_and(|(&s, m)| s + m.npages as u64 * PAGE_SIZE > ident);
        if overlaps {
            let a = self.alias_next;
            self.alias_next += npages as u64 * PAGE_SIZE;
            self.stats.alias_maps += 1;
            (a, false)
        } else {
            (ident, false)
        }
    }
}

impl<M: IommuMap> PinDma for LinuxMemory<M> {
    fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
        let mut out = Vec::with_capacity(npages);
        for i in 0..npages as u64 {
            let page = va.0 + i * PAGE_SIZE;
            if sys::mlock(page, PAGE_SIZE).is_err() {
                break;
            }
            let Ok(f) = self.pagemap.frames(Va(page), 1) else { break };
            let Some(Some(pfn)) = f.first().copied() else {
                let _ = sys::munlock(page, PAGE_SIZE);
                break;
            };
            let p = self.pins.entry(pfn).or_insert(Pinned { count: 0, va: page });
            p.count += 1;
            p.va = page;
            out.push(pfn);
        }
        self.stats.pages_pinned += out.len() as u64;
        if out.is_empty() && npages > 0 {
            return Err(PinError::Fault(va));
        }
        Ok(out)
    }

    fn unpin_pages(&mut self, pfns: &[Pfn], _dirty: bool) {
        for pfn in pfns {
            match self.pins.get_mut(pfn) {
                Some(p) if p.count > 1 => p.count -= 1,
                Some(p) => {
                    let va = p.va;
                    self.pins.remove(pfn);
                    // The range may be gone already (munmap drops the lock with it).
                    let _ = sys::munlock(va, PAGE_SIZE);
                }
                None => self.stats.unbalanced_unpins += 1,
            }
            self.stats.pages_unpinned += 1;
        }
    }

    fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        if npages == 0 {
            return Err(DmaMapError::InvalidLength(0));
        }
        let va0 = self.pins.get(&pfn).ok_or(DmaMapError::NotPinned(pfn))?.va;
        for i in 1..npages as u64 {
            let p = Pfn(pfn.0 + i);
            match self.pins.get(&p) {
                Some(x) if x.va == va0 + i * PAGE_SIZE => {}
                _ => return Err(DmaMapError::NotPinned(p)),
            }
        }
        let (iova, live) = self.iova_for(pfn, npages);
        if live {
            if let Some(m) = self.maps.get_mut(&iova) {
                m.refs += 1;
            }
            self.stats.map_reuses += 1;
            return Ok(Iova(iova));
        }
        if self.iommu.map(va0, npages as u64 * PAGE_SIZE, Iova(iova)).is_err() {
            self.stats.iommu_errors += 1;
            return Err(DmaMapError::MappingFailed);
        }
        self.stats.iommu_maps += 1;
        self.maps.insert(iova, Mapped { npages, refs: 1 });
        Ok(Iova(iova))
    }

    fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        match self.maps.get_mut(&iova.0) {
            Some(m) if m.npages == npages && m.refs > 1 => m.refs -= 1,
            Some(m) if m.npages == npages => {
                self.maps.remove(&iova.0);
                if self.iommu.unmap(iova, npages as u64 * PAGE_SIZE).is_err() {
                    self.stats.iommu_errors += 1;
                } else {
                    self.stats.iommu_unmaps += 1;
                }
            }
            _ => self.stats.iommu_errors += 1,
        }
    }

    fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        let bad = NotifierError::InvalidRange { start, len };
        let id = self.notifiers.insert(start, len).ok_or(bad)?;
        let s = start.0 & !(PAGE_SIZE - 1);
        let e = (start.0 + len).next_multiple_of(PAGE_SIZE);
        if self.uffd.register(s, e - s).is_err() {
            self.notifiers.remove(id);
            return Err(bad);
        }
        Ok(id)
    }

    fn notifier_remove(&mut self, id: NotifierId) {
        if let Some((start, len)) = self.notifiers.remove(id) {
            let s = start.0 & !(PAGE_SIZE - 1);
            let e = (start.0 + len).next_multiple_of(PAGE_SIZE);
            // Keep the registration where other notifiers still watch; a registration left
            // behind only yields events nobody is subscribed to.
            if !self.notifiers.overlaps(s, e) {
                let _ = self.uffd.unregister(s, e - s);
            }
        }
    }

    fn read_begin(&self, id: NotifierId) -> u64 {
        self.notifiers.read_begin(id)
    }

    fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.notifiers.read_retry(id, seq)
    }

    fn pinned_vm(&self) -> i64 {
        self.pinned_vm
    }

    fn account_pinned(&mut self, delta: i64) {
        self.pinned_vm += delta;
    }

    fn rlimit_memlock(&self) -> Option<u64> {
        self.memlock_override.unwrap_or_else(sys::rlimit_memlock)
    }

    fn cap_ipc_lock(&self) -> bool {
        cap_ipc_lock()
    }
}

/// CAP_IPC_LOCK (bit 14) in this process's effective capabilities.
pub fn cap_ipc_lock() -> bool {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else { return false };
    s.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 14) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records maps and unmaps; refuses overlapping maps like VFIO type1 does.
    #[derive(Debug, Default)]
    struct Recorder {
        live: Mutex<BTreeMap<u64, u64>>,
        log: Mutex<Vec<(bool, u64, u64)>>,
    }

    impl IommuMap for Recorder {
        fn map(&self, _va: u64, len: u64, iova: Iova) -> std::io::Result<()> {
            let mut live = self.live.lock().unwrap();
            if live.iter().any(|(&s, &l)| s < iova.0 + len && iova.0 < s + l) {
                return Err(std::io::Error::from_raw_os_error(libc::EEXIST));
            }
            live.insert(iova.0, len);
            self.log.lock().unwrap().push((true, iova.0, len));
            Ok(())
        }
        fn unmap(&self, iova: Iova, len: u64) -> std::io::Result<()> {
            let mut live = self.live.lock().unwrap();
            if live.get(&iova.0) != Some(&len) {
                return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
            }
            live.remove(&iova.0);
            self.log.lock().unwrap().push((false, iova.0, len));
            Ok(())
        }
    }

    fn mem() -> LinuxMemory<Arc<Recorder>> {
        LinuxMemory::new(Arc::new(Recorder::default())).unwrap()
    }

    fn buffer(pages: u64) -> sys::AnonBuffer {
        let b = sys::AnonBuffer::new(pages * PAGE_SIZE).unwrap();
        for i in 0..pages {
            b.write(i * PAGE_SIZE, &[i as u8 + 1]).unwrap();
        }
        b
    }

    /// Frames are visible (root with CAP_SYS_ADMIN, as in the guest and on CI).
    fn frames_visible() -> bool {
        let b = buffer(1);
        Pagemap::open().unwrap().frames(Va(b.addr()), 1).unwrap()[0].is_some()
    }

    #[test]
    fn pin_map_unmap_unpin_balance() {
        if !frames_visible() {
            eprintln!("pagemap hides frames here (no CAP_SYS_ADMIN): nothing to check");
            return;
        }
        let mut m = mem();
        let buf = buffer(4);
        let a = buf.addr();
        let pfns = m.pin_pages(Va(a), 4).unwrap();
        assert_eq!(pfns.len(), 4);
        assert_eq!(m.total_pins(), 4);
        let iova = m.dma_map(pfns[0], 1).unwrap();
        assert_eq!(iova, Iova(IOVA_BASE + pfns[0].0 * PAGE_SIZE));
        // Same run again: reused, not mapped twice.
        assert_eq!(m.dma_map(pfns[0], 1).unwrap(), iova);
        assert_eq!(m.stats.map_reuses, 1);
        // A run that is not virtually contiguous with pfns[0] is refused.
        if pfns[1].0 != pfns[0].0 + 1 {
            assert_eq!(m.dma_map(pfns[0], 2), Err(DmaMapError::NotPinned(Pfn(pfns[0].0 + 1))));
        }
        m.dma_unmap(iova, 1);
        assert_eq!(m.live_maps(), 1);
        m.dma_unmap(iova, 1);
        assert_eq!(m.live_maps(), 0);
        m.dma_unmap(iova, 1);
        assert_eq!(m.stats.iommu_errors, 1);
        m.unpin_pages(&pfns, true);
        m.unpin_pages(&pfns[..1], true);
        assert_eq!(m.total_pins(), 0);
        assert_eq!(m.stats.unbalanced_unpins, 1);
        let log = m.iommu().log.lock().unwrap().clone();
        assert_eq!(log, vec![(true, iova.0, PAGE_SIZE), (false, iova.0, PAGE_SIZE)]);
        buf.unmap().unwrap();
    }

    #[test]
    fn unmapped_memory_fails_to_pin() {
        let mut m = mem();
        let b = buffer(2);
        let a = b.addr();
        b.unmap().unwrap();
        assert_eq!(m.pin_pages(Va(a), 2), Err(PinError::Fault(Va(a))));
        assert_eq!(m.total_pins(), 0);
    }

    #[test]
    fn munmap_madvise_mremap_invalidate() {
        let mut m = mem();
        let mut buf = buffer(8);
        let a = buf.addr();
        let n1 = m.notifier_insert(Va(a), 4 * PAGE_SIZE).unwrap();
        let n2 = m.notifier_insert(Va(a + 4 * PAGE_SIZE), 4 * PAGE_SIZE).unwrap();
        let s1 = m.read_begin(n1);
        let s2 = m.read_begin(n2);
        assert!(m.take_invalidations(0).is_empty());

        // madvise(DONTNEED) of the first page: CLEAR for n1 only; touching it again faults in
        // a zero page through the monitor.
        buf.dontneed(0, PAGE_SIZE).unwrap();
        let inv = m.take_invalidations(2000);
        assert_eq!(inv.len(), 1);
        assert_eq!((inv[0].notifier, inv[0].event), (n1, InvalidateEvent::Clear));
        let mut b = [9u8];
        buf.read(0, &mut b).unwrap();
        assert_eq!(b, [0]);
        assert!(m.read_retry(n1, s1));
        assert!(!m.read_retry(n2, s2));

        // munmap of the second half: UNMAP for n2.
        buf.unmap_tail(4 * PAGE_SIZE).unwrap();
        let inv = m.take_invalidations(2000);
        assert_eq!(inv.len(), 1);
        assert_eq!((inv[0].notifier, inv[0].event), (n2, InvalidateEvent::Unmap));
        assert_eq!((inv[0].start, inv[0].end), (Va(a + 4 * PAGE_SIZE), Va(a + 8 * PAGE_SIZE)));

        // mremap moving the first half away: UNMAP of the old range for n1.
        let s1 = m.read_begin(n1);
        buf.remap(16 * PAGE_SIZE).unwrap();
        let moved = buf.addr();
        let inv = m.take_invalidations(2000);
        if moved != a {
            assert_eq!(inv.len(), 1);
            assert_eq!((inv[0].notifier, inv[0].event), (n1, InvalidateEvent::Unmap));
            assert!(m.read_retry(n1, s1));
        }
        m.notifier_remove(n1);
        m.notifier_remove(n2);
        assert_eq!(m.live_notifiers(), 0);
        buf.unmap().unwrap();
        assert!(m.take_invalidations(100).is_empty());
    }
}
