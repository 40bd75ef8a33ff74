//! The real backend: [`PinDma`](crate::PinDma) for a Linux process, on its own memory.
//!
//! | `PinDma` step | Linux mechanism |
//! |---|---|
//! | pin | `mlock(2)` (populates the pages for writing), then `/proc/self/pagemap` for the frames |
//! | DMA map | an [`IommuMap`] (VFIO `VFIO_IOMMU_MAP_DMA` in a guest), which pins for real |
//! | notifier | `userfaultfd(2)` with `EVENT_UNMAP`/`EVENT_REMOVE`/`EVENT_REMAP` on the range |
//! | `pinned_vm`, `RLIMIT_MEMLOCK`, `CAP_IPC_LOCK` | own counter, `getrlimit(2)`, `/proc/self/status` |
//!
//! Differences from the kernel's MMU notifiers, all documented in `docs/mmu.md`: userfaultfd
//! reports an unmap *after* the page tables changed (an MMU notifier runs before), so the
//! pages stay alive only because the IOMMU map still pins them; and the events reach the
//! driver when it drains them ([`LinuxMemory::take_invalidations`]), not inside `munmap`.
//!
//! All unsafe code of the crate is in [`sys`].

mod memory;
mod notifiers;
mod pagemap;
pub mod sys;
mod uffd;

pub use memory::{LinuxMemory, LinuxMemoryStats};
pub use notifiers::IntervalNotifiers;
pub use pagemap::Pagemap;
pub use sys::AnonBuffer;
pub use uffd::{UffdEvent, UffdMonitor, Userfaultfd};

use crate::types::Iova;

/// The IOMMU as the real backend maps through it: a VFIO container in a guest, a recorder in
/// tests. Implementations may be shared (`&self`): VFIO map ioctls are.
pub trait IommuMap {
    /// Maps `[va, va + len)` of this process at `iova` for device reads and writes.
    fn map(&self, va: u64, len: u64, iova: Iova) -> std::io::Result<()>;
    /// Unmaps exactly a range [`IommuMap::map`] created.
    fn unmap(&self, iova: Iova, len: u64) -> std::io::Result<()>;
}

impl<T: IommuMap + ?Sized> IommuMap for std::sync::Arc<T> {
    fn map(&self, va: u64, len: u64, iova: Iova) -> std::io::Result<()> {
        (**self).map(va, len, iova)
    }
    fn unmap(&self, iova: Iova, len: u64) -> std::io::Result<()> {
        (**self).unmap(iova, len)
    }
}
