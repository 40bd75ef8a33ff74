//! The harness: the implementation and the reference model, step by step, with the checks.

use super::*;

struct Harness {
    real: Vec<AddressSpace>,
    m: Model,
}

/// What the begin phase of an unmap-like op should produce.
struct Expect {
    range: Option<(u64, u64, InvalidateEvent)>,
}

impl Harness {
    fn new() -> Harness {
        let pool = SharedFramePool::new(POOL_BASE, FRAMES * PS).unwrap();
        Harness {
            real: vec![
                AddressSpace::new(owner(0), pool.clone()),
                AddressSpace::new(owner(1), pool),
            ],
            m: Model {
                sp: [MSpace::default(), MSpace::default()],
                frames: BTreeMap::new(),
                ever: BTreeSet::new(),
                reused: 0,
                allocs: 0,
                next_vma: 1,
            },
        }
    }

    fn new_vma(&mut self, who: usize, start: u64, pages: u64) -> u64 {
        let id = self.m.next_vma;
        self.m.next_vma += 1;
        for i in 0..pages {
            self.m.sp[who].pages.insert(start + i * PS, MPage { vma: id, frame: None });
        }
        id
    }

    /// Learn the frames the implementation put behind non-present model pages of a range.
    fn learn_range(&mut self, who: usize, start: u64, end: u64) -> u64 {
        let mut learned = 0;
        let mut va = start;
        while va < end {
            if let Some(p) = self.m.sp[who].pages.get(&va) {
                if p.frame.is_none() {
                    if let Some(pfn) = self.real[who].translate(Va(va)) {
                        self.m.learn(who, va, pfn);
                        learned += 1;
                    }
                }
            }
            va += PS;
        }
        learned
    }

    fn do_mmap(&mut self, who: usize, pages: u64, pol: u8) {
        let free = self.m.free();
        let r = self.real[who].mmap(pages * PS, policy(pol));
        if free < pages {
            assert_eq!(r, Err(MmapError::NoMemory));
            return;
        }
        let va = r.expect("mmap").0;
        assert!(va >= DEFAULT_MMAP_BASE && va + pages * PS <= TASK_SIZE);
        assert!(self.m.range_free(who, va, va + pages * PS), "mmap over a mapping");
        self.new_vma(who, va, pages);
        assert_eq!(self.learn_range(who, va, va + pages * PS), pages);
    }

    fn do_mmap_at_freed(&mut self, who: usize, idx: usize, pol: u8) {
        let freed = &self.m.sp[who].freed;
        if freed.is_empty() {
            return;
        }
        let (va, len) = freed[idx % freed.len()];
        let pages = len / PS;
        let r = self.real[who].mmap_fixed(Va(va), len, policy(pol));
        if !self.m.range_free(who, va, va + len) {
            assert_eq!(r, Err(MmapError::Overlaps(Va(va))));
        } else if self.m.free() < pages {
            assert_eq!(r, Err(MmapError::NoMemory));
        } else {
            assert_eq!(r, Ok(Va(va)));
            self.new_vma(who, va, pages);
            assert_eq!(self.learn_range(who, va, va + len), pages);
        }
    }

    /// Check a token against the model and remember the sequences seen before the op.
    fn check_begin(
        &mut self,
        who: usize,
        token: &PendingUnmap,
        exp: &Expect,
    ) -> BTreeMap<NotifierId, u64> {
        let invs = token.invalidations();
        let expected = match exp.range {
            Some((s, e, _)) => self.m.overlapping(who, s, e),
            None => BTreeSet::new(),
        };
        let got: Vec<NotifierId> = invs.iter().map(|i| i.notifier).collect();
        let got_set: BTreeSet<NotifierId> = got.iter().copied().collect();
        assert_eq!(got.len(), got_set.len(), "duplicate invalidation");
        assert_eq!(got_set, expected, "wrong notifiers invalidated");
        let mut before = BTreeMap::new();
        for (&id, n) in &self.m.sp[who].notifiers {
            before.insert(id, n.seq);
        }
        for inv in invs {
            let (s, e, ev) = exp.range.expect("invalidations imply a range");
            assert_eq!((inv.start, inv.end, inv.event), (Va(s), Va(e), ev));
            assert!(inv.seq > before[&inv.notifier], "sequence not bumped");
            assert!(self.real[who].read_retry(inv.notifier, before[&inv.notifier]));
        }
        before
    }

    /// Deliver with the callback action, commit, and check sequences afterwards. Returns the
    /// commit result.
    fn deliver(
        &mut self,
        who: usize,
        token: PendingUnmap,
        before: BTreeMap<NotifierId, u64>,
        cb: Cb,
    ) -> Result<Va, UnmapError> {
        let invalidated: BTreeSet<NotifierId> =
            token.invalidations().iter().map(|i| i.notifier).collect();
        let mut late: Vec<(NotifierId, u64)> = Vec::new();
        let mut done = false;
        let m = &mut self.m;
        let real = &mut self.real[who];
        let r = real.complete_with(token, |sp: &mut AddressSpace, inv: &Invalidation| {
            if done {
                return;
            }
            done = true;
            match cb {
                Cb::Nothing => {}
                Cb::UnpinOne(i) => {
                    if !m.sp[who].pins.is_empty() {
                        let n = m.sp[who].pins.len();
                        let rec = m.sp[who].pins.remove(i % n);
                        sp.unpin_pages(&rec, false);
                        for p in rec {
                            m.unpin(p);
                        }
                    }
                }
                Cb::RemoveNotifier => {
                    sp.notifier_remove(inv.notifier);
                    m.sp[who].notifiers.remove(&inv.notifier);
                }
                Cb::PinAtStart(k) => {
                    // No faults while the unmap is pending: only present pages can be pinned.
                    let mut want = Vec::new();
                    let mut stop_err = PinError::Fault(inv.start);
                    for i in 0..k {
                        let va = inv.start.0 + i * PS;
                        match m.sp[who].pages.get(&va) {
                            None => {
                                stop_err = PinError::Fault(Va(va));
                                break;
                            }
                            Some(MPage { frame: None, .. }) => {
                                stop_err = PinError::Busy;
                                break;
                            }
                            Some(MPage { frame: Some(f), .. }) => want.push(*f),
                        }
                    }
                    let r = sp.pin_pages(inv.start, k as usize);
                    if want.is_empty() {
                        assert_eq!(r, Err(stop_err));
                    } else {
                        assert_eq!(r.as_ref(), Ok(&want));
                        for &p in &want {
                            m.pin(p);
                        }
                        m.sp[who].pins.push(want);
                    }
                }
                Cb::InsertLate => {
                    let id = sp.notifier_insert(inv.start, PS).expect("insert");
                    let seq = sp.read_begin(id);
                    assert!(sp.read_retry(id, seq), "late notifier must see the pending op");
                    late.push((id, seq));
                    m.sp[who]
                        .notifiers
                        .insert(id, MNotifier { start: inv.start.0, end: inv.start.0 + PS, seq });
                }
            }
        });
        let sp = &self.real[who];
        for (id, n) in self.m.sp[who].notifiers.iter_mut() {
            let now = sp.read_begin(*id);
            if let Some(&(_, seq)) = late.iter().find(|(l, _)| l == id) {
                assert!(sp.read_retry(*id, seq), "late notifier missed the invalidation");
            } else if invalidated.contains(id) {
                assert!(sp.read_retry(*id, before[id]), "read_retry missed it");
                assert!(now > before[id]);
            } else {
                assert_eq!(now, before[id], "uninvolved notifier's sequence changed");
                assert!(!sp.read_retry(*id, now));
            }
            n.seq = now;
        }
        r
    }

    fn do_munmap(&mut self, who: usize, region: usize, off: u64, pages: u64, cb: Cb) {
        let Some((s, _)) = self.m.region(who, region) else {
            return;
        };
        let (va, len) = (s + off * PS, pages * PS);
        let span = self.m.span(who, va, va + len);
        let token = self.real[who].begin_munmap(Va(va), len).expect("munmap begin");
        let exp = Expect { range: span.map(|(a, b)| (a, b, InvalidateEvent::Unmap)) };
        let before = self.check_begin(who, &token, &exp);
        let r = self.deliver(who, token, before, cb);
        assert_eq!(r, Ok(Va(va)));
        if span.is_some() {
            self.m.sp[who].freed.push((va, len));
        }
        self.m.unmap_range(who, va, va + len);
    }

    /// Shrink-like tail cut of `[s, e)` to `keep` bytes, via `begin` (shrink or mremap).
    fn tail_cut(&mut self, who: usize, s: u64, e: u64, keep: u64, token: PendingUnmap, cb: Cb) {
        let exp = Expect { range: (keep < e - s).then_some((s + keep, e, InvalidateEvent::Unmap)) };
        let before = self.check_begin(who, &token, &exp);
        let r = self.deliver(who, token, before, cb);
        assert_eq!(r, Ok(Va(s)));
        self.m.unmap_range(who, s + keep, e);
    }

    fn do_shrink(&mut self, who: usize, region: usize, keep: u64, cb: Cb) {
        let Some((s, e)) = self.m.region(who, region) else {
            return;
        };
        let r = self.real[who].begin_shrink(Va(s), e - s, keep * PS);
        if keep * PS > e - s {
            assert_eq!(r.unwrap_err(), UnmapError::InvalidLength(keep * PS));
            return;
        }
        self.tail_cut(who, s, e, keep * PS, r.expect("shrink begin"), cb);
    }

    fn do_mremap(&mut self, who: usize, region: usize, pages: u64, may_move: bool, cb: Cb) {
        let Some((s, e)) = self.m.region(who, region) else {
            return;
        };
        let (old_len, new_len) = (e - s, pages * PS);
        let r = self.real[who].begin_mremap(Va(s), old_len, new_len, may_move);
        if new_len <= old_len {
            self.tail_cut(who, s, e, new_len, r.expect("mremap begin"), cb);
            return;
        }
        let extra = (new_len - old_len) / PS;
        let in_place = s + new_len <= TASK_SIZE && self.m.range_free(who, e, s + new_len);
        if !in_place && !may_move {
            assert_eq!(r.unwrap_err(), UnmapError::NoSpace(Va(s)));
            return;
        }
        let token = r.expect("mremap begin");
        let exp = Expect { range: (!in_place).then_some((s, e, InvalidateEvent::Unmap)) };
        let before = self.check_begin(who, &token, &exp);
        let r = self.deliver(who, token, before, cb);
        // Callbacks may have freed orphans: judge memory at commit time.
        if self.m.free() < extra {
            assert_eq!(r, Err(UnmapError::NoMemory));
            return;
        }
        let new = r.expect("mremap commit").0;
        if in_place {
            assert_eq!(new, s);
            // The grown VMA is one mapping, distinct from any split-off sibling that now
            // touches its end (the model's ids survive splits): give it a fresh id. No VMA
            // merging is modelled on either side.
            let id = self.m.next_vma;
            self.m.next_vma += 1;
            for p in self.m.sp[who].pages.range_mut(s..e) {
                p.1.vma = id;
            }
            for i in 0..extra {
                self.m.sp[who].pages.insert(e + i * PS, MPage { vma: id, frame: None });
            }
            assert_eq!(self.learn_range(who, e, s + new_len), extra);
            return;
        }
        assert!(self.m.range_free(who, new, new + new_len), "moved over a mapping");
        let moved: Vec<(u64, MPage)> =
            self.m.sp[who].pages.range(s..e).map(|(&v, &p)| (v, p)).collect();
        let new_id = self.m.next_vma;
        self.m.next_vma += 1;
        for (va, p) in moved {
            self.m.sp[who].pages.remove(&va);
            let nva = va - s + new;
            self.m.sp[who].pages.insert(nva, MPage { vma: new_id, frame: p.frame });
            if let Some(f) = p.frame {
                self.m.frames.get_mut(&f).expect("moved frame").va = Some(nva);
            }
        }
        for i in 0..extra {
            self.m.sp[who].pages.insert(new + old_len + i * PS, MPage { vma: new_id, frame: None });
        }
        assert_eq!(self.learn_range(who, new + old_len, new + new_len), extra);
        self.m.sp[who].freed.push((s, old_len));
    }

    fn do_madvise(&mut self, who: usize, region: usize, off: u64, pages: u64, cb: Cb) {
        let Some((s, _)) = self.m.region(who, region) else {
            return;
        };
        let (va, len) = (s + off * PS, pages * PS);
        let r = self.real[who].begin_madvise_dontneed(Va(va), len);
        let all_mapped = (0..pages).all(|i| self.m.mapped(who, va + i * PS));
        if !all_mapped {
            assert_eq!(r.unwrap_err(), UnmapError::NotMapped(Va(va)));
            return;
        }
        let token = r.expect("madvise begin");
        let exp = Expect { range: Some((va, va + len, InvalidateEvent::Clear)) };
        let before = self.check_begin(who, &token, &exp);
        let r = self.deliver(who, token, before, cb);
        assert_eq!(r, Ok(Va(va)));
        for i in 0..pages {
            let p = self.m.sp[who].pages.get_mut(&(va + i * PS)).expect("mapped");
            if let Some(f) = p.frame.take() {
                self.m.drop_frame(f);
            }
        }
    }

    fn do_touch(&mut self, who: usize, region: usize) {
        let Some((s, e)) = self.m.region(who, region) else {
            return;
        };
        let missing =
            self.m.sp[who].pages.range(s..e).filter(|(_, p)| p.frame.is_none()).count() as u64;
        let free = self.m.free();
        let r = self.real[who].touch(Va(s), e - s);
        let learned = self.learn_range(who, s, e);
        if missing > free {
            assert_eq!(r, Err(MmapError::NoMemory));
            assert_eq!(learned, free);
        } else {
            assert_eq!(r, Ok(missing));
            assert_eq!(learned, missing);
        }
    }

    fn do_pin(&mut self, who: usize, region: usize, off: u64, pages: u64) {
        let Some((s, _)) = self.m.region(who, region) else {
            return;
        };
        let va = s + off * PS;
        // Predict the count: walk pages; fault runs take min(run, free) frames.
        let mut free = self.m.free();
        let mut present: BTreeSet<u64> = BTreeSet::new();
        let mut count = 0u64;
        let mut err = PinError::Fault(Va(va));
        while count < pages {
            let page = va + count * PS;
            let Some(p) = self.m.sp[who].pages.get(&page) else {
                err = PinError::Fault(Va(page));
                break;
            };
            if p.frame.is_none() && !present.contains(&page) {
                let mut run = 0;
                while count + run < pages {
                    let q = page + run * PS;
                    match self.m.sp[who].pages.get(&q) {
                        Some(qp) if qp.vma == p.vma && qp.frame.is_none() => run += 1,
                        _ => break,
                    }
                }
                let n = run.min(free);
                if n == 0 {
                    err = PinError::NoMemory;
                    break;
                }
                free -= n;
                for i in 0..n {
                    present.insert(page + i * PS);
                }
            }
            count += 1;
        }
        let r = self.real[who].pin_pages(Va(va), pages as usize);
        let end = va + pages * PS;
        self.learn_range(who, va, end);
        if count == 0 {
            assert_eq!(r, Err(err));
            return;
        }
        let got = r.expect("pin");
        assert_eq!(got.len() as u64, count);
        for (i, &pfn) in got.iter().enumerate() {
            let page = va + i as u64 * PS;
            assert_eq!(self.m.sp[who].pages[&page].frame, Some(pfn));
            self.m.pin(pfn);
        }
        self.m.sp[who].pins.push(got);
    }

    fn do_unpin(&mut self, who: usize, idx: usize, dirty: bool) {
        let pins = &mut self.m.sp[who].pins;
        if pins.is_empty() {
            return;
        }
        let n = pins.len();
        let rec = pins.remove(idx % n);
        self.real[who].unpin_pages(&rec, dirty);
        for p in rec {
            self.m.unpin(p);
        }
    }

    fn do_notifier_insert(&mut self, who: usize, region: usize, off: i64, pages: u64) {
        let Some((s, _)) = self.m.region(who, region) else {
            return;
        };
        let start = (s as i64 + off * PS as i64) as u64;
        let id = self.real[who].notifier_insert(Va(start), pages * PS).expect("insert");
        assert_eq!(self.real[who].read_begin(id), 0);
        assert!(!self.real[who].read_retry(id, 0));
        let prev = self.m.sp[who]
            .notifiers
            .insert(id, MNotifier { start, end: start + pages * PS, seq: 0 });
        assert!(prev.is_none(), "notifier id reused");
    }

    fn do_notifier_remove(&mut self, who: usize, idx: usize) {
        let ids: Vec<NotifierId> = self.m.sp[who].notifiers.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let id = ids[idx % ids.len()];
        self.real[who].notifier_remove(id);
        self.m.sp[who].notifiers.remove(&id);
        assert!(self.real[who].read_retry(id, 0));
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Mmap { who, pages, policy } => self.do_mmap(who, pages, policy),
            Op::MmapAtFreed { who, idx, policy } => self.do_mmap_at_freed(who, idx, policy),
            Op::Munmap { who, region, off, pages, cb } => {
                self.do_munmap(who, region, off, pages, cb)
            }
            Op::Shrink { who, region, keep, cb } => self.do_shrink(who, region, keep, cb),
            Op::Mremap { who, region, pages, may_move, cb } => {
                self.do_mremap(who, region, pages, may_move, cb)
            }
            Op::Madvise { who, region, off, pages, cb } => {
                self.do_madvise(who, region, off, pages, cb)
            }
            Op::Touch { who, region } => self.do_touch(who, region),
            Op::Pin { who, region, off, pages } => self.do_pin(who, region, off, pages),
            Op::Unpin { who, idx, dirty } => self.do_unpin(who, idx, dirty),
            Op::NotifierInsert { who, region, off, pages } => {
                self.do_notifier_insert(who, region, off, pages)
            }
            Op::NotifierRemove { who, idx } => self.do_notifier_remove(who, idx),
        }
    }

    fn check(&self) {
        for who in 0..2 {
            let real = &self.real[who];
            real.check_invariants().expect("implementation invariants");
            assert!(!real.has_pending());
            let vmas: Vec<(u64, u64)> =
                real.vmas().into_iter().map(|(v, l)| (v.0, v.0 + l)).collect();
            assert_eq!(vmas, self.m.vmas(who), "VMA list differs");
            let present = self.m.sp[who].pages.values().filter(|p| p.frame.is_some()).count();
            assert_eq!(real.mapped_pages(), present as u64);
            for (&va, p) in &self.m.sp[who].pages {
                assert_eq!(real.translate(Va(va)), p.frame, "pte at {va:#x}");
            }
            assert_eq!(real.notifier_count(), self.m.sp[who].notifiers.len());
            for (&id, n) in &self.m.sp[who].notifiers {
                assert_eq!(real.notifier_range(id), Some((Va(n.start), Va(n.end))));
            }
        }
        let real = &self.real[0];
        let mut pins = 0u64;
        for i in 0..FRAMES {
            let pfn = Pfn(POOL_BASE / PS + i);
            let (state, pc) = match self.m.frames.get(&pfn) {
                None => (FrameState::Free, 0),
                Some(f) => {
                    let st = match f.va {
                        Some(va) => FrameState::Mapped { owner: f.owner, va: Va(va) },
                        None => FrameState::Orphan { owner: f.owner },
                    };
                    (st, f.pins)
                }
            };
            assert_eq!(real.frame_state(pfn), Some(state), "state of {pfn}");
            assert_eq!(real.pin_count(pfn), pc, "pins of {pfn}");
            pins += u64::from(pc);
        }
        assert_eq!(real.total_pins(), pins);
        let (free, reused) = real.pool().with(|p| (p.free_frames(), p.stats().frames_reused));
        assert_eq!(free, self.m.free());
        assert_eq!(reused, self.m.reused, "reuse counter");
        assert_eq!(self.real[0].stats().bad_unpin_count + self.real[1].stats().bad_unpin_count, 0);
    }

    /// Unpin everything, unmap everything: every frame must come back.
    fn teardown(mut self) {
        for who in 0..2 {
            while !self.m.sp[who].pins.is_empty() {
                self.do_unpin(who, 0, true);
            }
            self.real[who]
                .munmap_with(Va(0x1_0000), TASK_SIZE - 0x1_0000, |_, _| {})
                .expect("unmap all");
            self.m.unmap_range(who, 0, TASK_SIZE);
        }
        self.check();
        assert_eq!(self.real[0].total_pins(), 0);
        assert_eq!(self.real[0].pool().with(|p| p.free_frames()), FRAMES);
        if self.m.allocs > FRAMES {
            assert!(self.m.reused > 0, "pigeonhole: frames must have been reused");
        }
    }
}

#[path = "harness/props.rs"]
mod props;
