//! Fault injection at named points, under every policy: memory operations on a registered
//! buffer (after pin, before the first packet, after N packets), packet faults on the link,
//! lost RcvArray writes. The oracle must find no violation (except the documented v2023 race
//! of packets already past their TID lookup), faulted messages must end (not hang), and
//! teardown must leave nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use driver::Policy;
use mmu::Contiguity;
use scenarios::world::link_faults::{Corruption, PacketFault, PacketFaultKind};
use scenarios::world::node::{Node, NodeConfig};
use scenarios::world::process::MemOp;

const LEN: u64 = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Point {
    AfterPin,
    BeforeFirstPacket,
    AfterPackets(usize),
}

fn violations(n: &Node) -> Vec<String> {
    n.verdicts
        .as_ref()
        .map(|v| {
            v.borrow().iter().filter(|v| v.kind.is_violation()).map(|v| v.detail.clone()).collect()
        })
        .unwrap_or_default()
}

fn mem_fault(policy: Policy, op: MemOp, point: Point) {
    let mut n = Node::new(&NodeConfig { policy, mem_mib: 384, ..Default::default() }).unwrap();
    let va = n.alloc(LEN, Contiguity::Random { seed: 3 }).unwrap();
    // Message 0 warms the cache; message 1 is hit by the fault. The after-pin point needs a
    // TID_UPDATE, so message 1 goes to a fresh buffer there (a cached range is not pinned again).
    n.request(0, va, LEN as u32, 1).unwrap();
    assert!(n.run(10_000_000).unwrap().iter().all(|c| c.ok));
    let va = if matches!(point, Point::AfterPin) {
        n.alloc(LEN, Contiguity::Random { seed: 4 }).unwrap()
    } else {
        va
    };
    n.request(1, va, LEN as u32, 1).unwrap();
    match point {
        Point::AfterPin => {
            n.proc.after_pin = Some((va, LEN, op));
        }
        Point::BeforeFirstPacket => {
            n.run_until_granted(1, 10_000_000).unwrap();
            n.mem_op(va, LEN, op).unwrap();
        }
        Point::AfterPackets(k) => {
            n.run_until_packets(1, k, 10_000_000).unwrap();
            n.mem_op(va, LEN, op).unwrap();
        }
    }
    let done = n.run(20_000_000).unwrap();
    assert!(n.proc.after_pin.is_none(), "{policy:?} {op:?}: the after-pin fault never fired");
    assert_eq!(n.rx.pending(), 0, "{policy:?} {op:?} {point:?}: message did not end: {done:?}");
    let v = violations(&n);
    let race_ok = policy == Policy::V2023 && !matches!(op, MemOp::Madvise);
    assert!(v.is_empty() || race_ok, "{policy:?} {op:?} {point:?}: {v:?}");
    n.close().unwrap();
    let r = n.teardown_report();
    assert!(r.is_clean(), "{policy:?} {op:?} {point:?}: {r:?}");
}

#[test]
fn memory_faults_at_every_point_and_policy() {
    for policy in Policy::ALL {
        for op in [MemOp::Munmap, MemOp::Shrink, MemOp::Mremap, MemOp::Madvise] {
            for point in [Point::AfterPin, Point::BeforeFirstPacket, Point::AfterPackets(5)] {
                mem_fault(policy, op, point);
            }
        }
    }
}

#[test]
fn packet_faults_end_the_message_cleanly() {
    let kinds = [
        PacketFaultKind::Drop,
        PacketFaultKind::Duplicate,
        PacketFaultKind::Reorder,
        PacketFaultKind::Corrupt(Corruption::BadTid),
        PacketFaultKind::Corrupt(Corruption::TidCtrl0),
        PacketFaultKind::Corrupt(Corruption::TidCtrl3),
        PacketFaultKind::Corrupt(Corruption::OffsetPastEnd),
    ];
    for policy in Policy::ALL {
        for kind in kinds {
            let mut n =
                Node::new(&NodeConfig { policy, mem_mib: 384, ..Default::default() }).unwrap();
            let va = n.alloc(LEN, Contiguity::Contiguous).unwrap();
            n.world().link_faults.push(PacketFault::new(0, 3, 1, kind));
            n.request(0, va, LEN as u32, 9).unwrap();
            let done = n.run(20_000_000).unwrap();
            assert_eq!(n.rx.pending(), 0, "{policy:?} {kind:?}");
            let c = done.iter().find(|c| c.msg_id == 0).unwrap();
            assert!(!c.ok, "{policy:?} {kind:?}: a faulted transfer must not report success");
            assert!(violations(&n).is_empty(), "{policy:?} {kind:?}: {:?}", violations(&n));
            // The endpoint still works afterwards.
            n.request(1, va, LEN as u32, 9).unwrap();
            let done = n.run(20_000_000).unwrap();
            assert!(done.iter().any(|c| c.msg_id == 1 && c.ok), "{policy:?} {kind:?}: {done:?}");
            assert_eq!(
                n.proc.read(va, LEN as usize).unwrap(),
                hfi_abi::psm::pattern(9, 1, LEN as usize)
            );
            n.close().unwrap();
            assert!(n.teardown_report().is_clean());
        }
    }
}

#[test]
fn lost_rcvarray_write_gives_tid_errors_not_corruption() {
    for policy in Policy::ALL {
        let mut n = Node::new(&NodeConfig { policy, mem_mib: 384, ..Default::default() }).unwrap();
        let va = n.alloc(LEN, Contiguity::Contiguous).unwrap();
        n.hfi.transport().lose_rcvarray_writes = 1;
        n.request(0, va, LEN as u32, 2).unwrap();
        let done = n.run(20_000_000).unwrap();
        let c = done.iter().find(|c| c.msg_id == 0).unwrap();
        assert!(!c.ok, "{policy:?}");
        assert!(n.rx.stats.tid_errors > 0, "{policy:?}");
        assert!(violations(&n).is_empty(), "{policy:?}");
        n.close().unwrap();
        assert!(n.teardown_report().is_clean(), "{policy:?}");
    }
}
