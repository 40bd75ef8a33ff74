//! [`TidContext::check_invariants`]: the cross-checks between the context, the RcvArray as
//! written and the process memory, for tests and the oracle.

use std::collections::{BTreeMap, BTreeSet};

use hfi_abi::BufSize;
use mmu::{AddressSpace, FrameState, InvariantViolation};

use super::TidContext;
use crate::put_tid::RecordingWriter;

fn fail(msg: String) -> Result<(), InvariantViolation> {
    Err(InvariantViolation(msg))
}

impl TidContext {
    /// Check this context against the RcvArray contents `hw` and the process memory `mm`,
    /// between calls (no setup in flight). Assumes this context is the only one pinning,
    /// DMA-mapping and watching in `mm`'s frame pool and address space.
    ///
    /// - the group allocator's used entries are exactly the nodes' entries;
    /// - every valid entry of the expected range belongs to an unreleased node and holds its
    ///   DMA address and size, and every unreleased node's entry is so programmed;
    /// - every frame's pin count equals the number of unreleased nodes (plus leaks) holding it,
    ///   and no such frame is free;
    /// - live DMA maps = unreleased nodes; registered notifiers = nodes with a notifier; no
    ///   cover notifier left;
    /// - without bug switches: `pinned_vm` = Σ unreleased pages + leaks = Σ `tid_n_pinned`, and
    ///   each fd's `tid_used` = its nodes;
    /// - `mm`'s own invariants.
    pub fn check_invariants(
        &self,
        hw: &RecordingWriter,
        mm: &AddressSpace,
    ) -> Result<(), InvariantViolation> {
        mm.check_invariants()?;
        let base = self.expected_base;
        let end = base.saturating_add(self.expected_count);
        let used: BTreeSet<u32> = self.groups.iter_used_entries().collect();
        let held: BTreeSet<u32> = self.nodes.values().map(|n| n.rcventry).collect();
        if used != held {
            return fail(format!("group slots in use {used:?} != node entries {held:?}"));
        }
        let mut pins: BTreeMap<u64, u64> = BTreeMap::new();
        let mut live_pages = 0u64;
        let mut programmed = 0u64;
        for (rel, n) in &self.nodes {
            if n.rcventry != base + rel {
                return fail(format!("node at rel {rel} says entry {}", n.rcventry));
            }
            if n.notifier.is_some() != self.beh.caching {
                return fail(format!(
                    "node {} notifier {:?} with caching {}",
                    n.rcventry, n.notifier, self.beh.caching
                ));
            }
            if n.released {
                continue;
            }
            programmed += 1;
            live_pages += u64::from(n.npages);
            let Some(e) = hw.entry(n.rcventry) else {
                return fail(format!("node {} programmed but its entry is invalid", n.rcventry));
            };
            if e.dma_addr() != n.dma.raw()
                || Some(e.buf_size()) != BufSize::from_pages(u64::from(n.npages))
            {
                return fail(format!(
                    "entry {} = {:#x} does not match node {:?}",
                    n.rcventry,
                    e.raw(),
                    n
                ));
            }
            for p in &n.pfns {
                *pins.entry(p.0).or_default() += 1;
            }
        }
        for p in &self.leaked {
            *pins.entry(p.0).or_default() += 1;
        }
        for (&idx, &raw) in hw.entries.range(base..end) {
            let e = hfi_abi::RcvArrayEntry(raw);
            if !e.is_valid() {
                continue;
            }
            let ok = self.nodes.get(&(idx - base)).is_some_and(|n| !n.released);
            if !ok {
                return fail(format!("entry {idx} valid ({raw:#x}) with no programmed node"));
            }
        }
        for (&pfn, &want) in &pins {
            let pfn = mmu::Pfn(pfn);
            let have = u64::from(mm.pin_count(pfn));
            if have != want {
                return fail(format!("{pfn} pinned {have} times, nodes hold {want}"));
            }
            if matches!(mm.frame_state(pfn), Some(FrameState::Free) | None) {
                return fail(format!("{pfn} held by a TID is free"));
            }
        }
        let held_pins: u64 = pins.values().sum();
        if mm.total_pins() != held_pins {
            return fail(format!("{} pins in the pool, TIDs hold {held_pins}", mm.total_pins()));
        }
        if mm.dma_maps_live() != programmed {
            return fail(format!(
                "{} DMA maps live, {programmed} TIDs programmed",
                mm.dma_maps_live()
            ));
        }
        let watched = self.nodes.values().filter(|n| n.notifier.is_some()).count();
        if mm.notifier_count() != watched || self.notifiers.len() != watched {
            return fail(format!(
                "{} notifiers in mm, {} known, {watched} TIDs watched",
                mm.notifier_count(),
                self.notifiers.len()
            ));
        }
        if self.cfg.bugs.any() {
            return Ok(());
        }
        let leaked = self.leaked.len() as u64;
        let n_pinned: u64 = self.fds.iter().map(|f| f.tid_n_pinned).sum();
        if mm.pinned_vm() != (live_pages + leaked) as i64 || n_pinned != live_pages {
            return fail(format!(
                "pinned_vm {} / Σ tid_n_pinned {n_pinned} / pages held {live_pages}",
                mm.pinned_vm()
            ));
        }
        for (i, f) in self.fds.iter().enumerate() {
            let mine = self.nodes.values().filter(|n| n.fd == i as u32).count() as u64;
            if u64::from(f.tid_used) != mine {
                return fail(format!("fd {i}: tid_used {} but {mine} TIDs", f.tid_used));
            }
            if u64::from(f.tid_used) > u64::from(f.tid_limit) {
                return fail(format!("fd {i}: tid_used {} over limit {}", f.tid_used, f.tid_limit));
            }
        }
        Ok(())
    }
}
