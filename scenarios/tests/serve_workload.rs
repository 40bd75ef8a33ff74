//! The demo-like workload over the socket (`hfi-sim serve` + the driver's vfio-user
//! transport): buffer reuse with every payload checked, a munmap in flight, and the same cache
//! statistics as in process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod serve_common;

use driver::transport::Transport;
use driver::Policy;
use mmu::Contiguity;
use scenarios::world::node::{Node, NodeConfig};
use serve_common::Server;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    ok_msgs: u32,
    failed: Vec<String>,
    hits: u64,
    misses: u64,
    tid_update_calls: u64,
    free_in_flight_ok: bool,
}

fn workload<T: Transport>(node: &mut Node<T>, seed: u32, budget_ns: u64) -> Outcome {
    let len = 1u64 << 20;
    let bufs: Vec<_> =
        (0..2).map(|i| node.alloc(len, Contiguity::Random { seed: 40 + i }).unwrap()).collect();
    let mut out = Outcome {
        ok_msgs: 0,
        failed: vec![],
        hits: 0,
        misses: 0,
        tid_update_calls: 0,
        free_in_flight_ok: false,
    };
    let mut id = 0u32;
    for _round in 0..4 {
        let mut sent = vec![];
        for &va in &bufs {
            node.request(id, va, len as u32, seed).unwrap();
            sent.push((id, va));
            id += 1;
        }
        let done = node.run(budget_ns).unwrap();
        for (m, va) in sent {
            match done.iter().find(|c| c.msg_id == m) {
                Some(c) if c.ok => {
                    let want = hfi_abi::psm::pattern(seed, m, len as usize);
                    assert_eq!(node.proc.read(va, len as usize).unwrap(), want, "msg {m}");
                    out.ok_msgs += 1;
                }
                Some(c) => out.failed.push(format!("{m}: {}", c.reason)),
                None => out.failed.push(format!("{m}: not done")),
            }
        }
    }
    // A 2 MiB receive whose buffer is freed after two windows.
    let big = 2u64 << 20;
    let va = node.alloc(big, Contiguity::Contiguous).unwrap();
    node.request(99, va, big as u32, seed).unwrap();
    let mut done = vec![];
    while node.rx.stats.windows < 2 && node.rx.pending() > 0 {
        done.extend(node.progress().unwrap());
    }
    node.munmap(va, big).unwrap();
    done.extend(node.run(budget_ns).unwrap());
    out.free_in_flight_ok = done.iter().any(|c| c.msg_id == 99);
    let s = node.rx.cache.stats();
    (out.hits, out.misses, out.tid_update_calls) = (s.hits, s.misses, s.tid_update_calls);
    node.close().unwrap();
    let report = node.teardown_report();
    assert!(report.is_clean(), "teardown: {report:?}");
    out
}

#[test]
fn demo_workload_over_socket_matches_in_process() {
    let server = Server::start();
    for policy in [Policy::Seed, Policy::NoCache] {
        let cfg = NodeConfig { policy, ..Default::default() };
        let mut local = Node::new(&cfg).unwrap();
        let want = workload(&mut local, 7, 10_000_000);
        let mut remote = scenarios::world::serve::connect_node(&server.socket, &cfg).unwrap();
        assert!(remote.dma.is_none());
        let got = workload(&mut remote, 7, 30_000_000_000);
        remote.hfi.transport().shutdown();
        drop(remote);
        assert_eq!(got.ok_msgs, 8, "{policy:?}: {:?}", got.failed);
        assert_eq!(got, want, "{policy:?}: socket vs in process");
    }
    let stats = server.stop();
    let s = &stats["server"];
    assert_eq!(s["connection_count"], 2);
    assert_eq!(s["error_reply_count"], 0, "{stats}");
    assert!(s["mmio_write_count"].as_u64().unwrap() > 1000);
    assert_eq!(s["dma_map_count"], 2);
}
