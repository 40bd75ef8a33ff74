//! The driver's receive loop in its other modes: DMA'd RHQ tail instead of RHF sequence
//! numbers, no TID flows (a header for every expected packet), one packet per eager buffer,
//! small RHQ (wrap-around of the RHF sequence and the queue), eager and rendezvous mixed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::sync::Arc;

use driver::hw::CtxtConfig;
use mmu::Contiguity;
use scenarios::world::node::{Node, NodeConfig};

fn run(ctxt: CtxtConfig) {
    let mut n = Node::new(&NodeConfig { ctxt, ..Default::default() }).unwrap();
    let va = n.alloc(1 << 20, Contiguity::Scattered).unwrap();
    // Eager (below 64000 B) and rendezvous sizes, into the same buffer.
    for (id, len) in
        [(1u32, 100usize), (2, 40_000), (3, 1 << 20), (4, 64_000), (5, 4), (6, 300_000)]
    {
        let data: Arc<[u8]> =
            Arc::from((0..len).map(|i| (i * 7 + id as usize) as u8).collect::<Vec<_>>());
        n.post(id, va, data.clone());
        let done = n.run(10_000_000).unwrap();
        assert!(done.iter().any(|c| c.msg_id == id && c.ok), "msg {id}: {done:?}");
        assert_eq!(n.proc.read(va, len).unwrap(), &data[..], "msg {id}");
    }
    n.close().unwrap();
    assert!(n.teardown_report().is_clean());
}

#[test]
fn dma_rtail_mode() {
    run(CtxtConfig { dma_rtail: true, ..Default::default() });
}

#[test]
fn no_tid_flows_every_header_delivered() {
    run(CtxtConfig { tid_flows: false, rhq_entries: 256, ..Default::default() });
}

#[test]
fn one_packet_per_eager_buffer_and_small_rhq() {
    run(CtxtConfig {
        one_packet_per_egr: true,
        egr_buf_size: 16 << 10,
        rhq_entries: 64,
        ..Default::default()
    });
}

fn interrupt_run(lose: u32) -> u64 {
    let ctxt = CtxtConfig { intr: true, intr_count: 1, intr_timeout: 10, ..Default::default() };
    let mut n = Node::new(&NodeConfig { ctxt, ..Default::default() }).unwrap();
    let va = n.alloc(1 << 20, Contiguity::Contiguous).unwrap();
    n.world().lose_interrupts = lose;
    let t0 = n.now_ps();
    n.request(1, va, 1 << 20, 3).unwrap();
    let done = n.run(100_000_000).unwrap();
    assert!(done.iter().any(|c| c.msg_id == 1 && c.ok), "{done:?}");
    assert_eq!(n.proc.read(va, 1 << 20).unwrap(), hfi_abi::psm::pattern(3, 1, 1 << 20));
    assert_eq!(n.world().lost_interrupts, u64::from(lose));
    n.close().unwrap();
    assert!(n.teardown_report().is_clean());
    n.now_ps() - t0
}

#[test]
fn interrupt_driven_receive_survives_lost_interrupts() {
    let clean = interrupt_run(0);
    let lossy = interrupt_run(2);
    // Each lost interrupt costs up to one 100 µs recovery poll, never data.
    assert!(lossy > clean + 50_000_000, "clean {clean} ps, lossy {lossy} ps");
}
