//! Address and identifier newtypes, so that a virtual address, a frame number and an IOVA can
//! never be mixed up (style guide §7.2).

use std::fmt;

use vm_memory::GuestAddress;

/// Bytes in a page: the pin, DMA-map and notifier granularity.
///
/// `mmu` does not depend on `hfi-abi`, so it carries its own copy; both are 4 KiB (x86-64).
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Pages in 2 MiB: the largest physically contiguous run the allocator is asked to produce and
/// the largest pageset hfi1's `find_phys_blocks` emits (facts §6.2 step 4).
pub const PAGES_PER_2M: u64 = 512;

/// Round `len` up to whole pages, in bytes. `None` on overflow.
pub const fn page_align_up(len: u64) -> Option<u64> {
    match len.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// Number of pages spanned by `[start, start + len)` (a partial page at either end counts as a
/// whole page, like hfi1's `num_user_pages`). `None` on overflow.
pub const fn pages_spanned(start: u64, len: u64) -> Option<u64> {
    if len == 0 {
        return Some(0);
    }
    let first = start >> PAGE_SHIFT;
    let Some(last_byte) = start.checked_add(len - 1) else {
        return None;
    };
    let last = last_byte >> PAGE_SHIFT;
    Some(last - first + 1)
}

/// A user virtual address in one simulated process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Va(pub u64);

impl Va {
    /// The raw address.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// True when the address is a multiple of [`PAGE_SIZE`].
    pub const fn is_page_aligned(self) -> bool {
        self.0 & (PAGE_SIZE - 1) == 0
    }
    /// The start of the page containing this address (rounded down).
    pub const fn page(self) -> Va {
        Va(self.0 & !(PAGE_SIZE - 1))
    }
    /// Virtual page number (`va >> 12`).
    pub const fn vpn(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
    /// Byte offset inside the page.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// `self + bytes`, `None` on overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<Va> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Va(v)),
            None => None,
        }
    }
    /// The address `n` pages after this one, `None` on overflow.
    pub const fn add_pages(self, n: u64) -> Option<Va> {
        match n.checked_mul(PAGE_SIZE) {
            Some(bytes) => self.checked_add(bytes),
            None => None,
        }
    }
}

impl fmt::Display for Va {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "va:{:#x}", self.0)
    }
}

/// A physical frame number; the physical address is `pfn << 12`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame containing physical address `pa`.
    pub const fn from_addr(pa: u64) -> Pfn {
        Pfn(pa >> PAGE_SHIFT)
    }
    /// The raw frame number.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// Physical address of the first byte of the frame (`pfn << 12`). Frame numbers handed out
    /// by [`crate::FramePool`] come from a `u64` address range, so this never loses bits for them.
    pub const fn addr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }
    /// The frame's address as a vm-memory [`GuestAddress`] (the simulated physical memory is
    /// guest memory of the model).
    pub const fn guest_addr(self) -> GuestAddress {
        GuestAddress(self.addr())
    }
    /// The frame `n` frames after this one, `None` on overflow.
    pub const fn add(self, n: u64) -> Option<Pfn> {
        match self.0.checked_add(n) {
            Some(v) => Some(Pfn(v)),
            None => None,
        }
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn:{:#x}", self.0)
    }
}

/// A device-visible (bus) address returned by a DMA map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iova(pub u64);

impl Iova {
    /// The raw address.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// The address as a vm-memory [`GuestAddress`].
    pub const fn guest_addr(self) -> GuestAddress {
        GuestAddress(self.0)
    }
}

impl fmt::Display for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iova:{:#x}", self.0)
    }
}

/// Identifies one interval notifier of one address space. Ids are never reused, so a stale id
/// (for example in an [`crate::Invalidation`] delivered after the notifier was removed) can never
/// name a newer notifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NotifierId(pub u64);

impl fmt::Display for NotifierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "notifier#{}", self.0)
    }
}

/// Which simulated process (address space) a frame belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerId(pub u32);

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "owner#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn va_helpers() {
        let va = Va(0x1234_5678);
        assert!(!va.is_page_aligned());
        assert_eq!(va.page(), Va(0x1234_5000));
        assert_eq!(va.vpn(), 0x12345);
        assert_eq!(va.page_offset(), 0x678);
        assert_eq!(Va(0x1000).add_pages(3), Some(Va(0x4000)));
        assert_eq!(Va(u64::MAX).checked_add(1), None);
        assert_eq!(Va(0).add_pages(u64::MAX), None);
        assert_eq!(va.to_string(), "va:0x12345678");
    }

    #[test]
    fn pfn_helpers() {
        let p = Pfn(0x100);
        assert_eq!(p.addr(), 0x10_0000);
        assert_eq!(Pfn::from_addr(0x10_0fff), p);
        assert_eq!(p.guest_addr(), GuestAddress(0x10_0000));
        assert_eq!(p.add(2), Some(Pfn(0x102)));
        assert_eq!(Pfn(u64::MAX).add(1), None);
        assert_eq!(p.to_string(), "pfn:0x100");
        assert_eq!(Iova(0x2000).to_string(), "iova:0x2000");
        assert_eq!(NotifierId(7).to_string(), "notifier#7");
        assert_eq!(OwnerId(3).to_string(), "owner#3");
    }

    #[test]
    fn page_math() {
        assert_eq!(page_align_up(0), Some(0));
        assert_eq!(page_align_up(1), Some(4096));
        assert_eq!(page_align_up(4096), Some(4096));
        assert_eq!(page_align_up(u64::MAX), None);
        // 2 bytes straddling a page boundary span two pages.
        assert_eq!(pages_spanned(0xfff, 2), Some(2));
        assert_eq!(pages_spanned(0x1000, 0x1000), Some(1));
        assert_eq!(pages_spanned(0x1000, 0), Some(0));
        assert_eq!(pages_spanned(u64::MAX, 2), None);
    }
}
