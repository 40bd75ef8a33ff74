//! Workloads shared by the criterion benches and `hfi-sim perf`: a device with one context whose
//! expected TIDs cover a multi-MiB receive buffer and the packets of one message into it; and
//! TID-cache fixtures (a cache with many idle entries over a mock fd).

use std::sync::Arc;

use hfi_abi::{rxe, TidInfo};
use hfi_model::setup::{enable_context, guest_memory, init_kdeth_qp, program_tid, CtxtSetup};
use hfi_model::{
    DataMode, Dest, DeviceConfig, FlowPos, HfiDevice, Packet, Peer, PeerConfig, TimingParams,
};
use vm_memory::GuestMemoryMmap;

/// Device type of the benches.
pub type Dev = HfiDevice<Arc<GuestMemoryMmap>>;

/// Start of the receive buffer in guest memory.
pub const RECV_BUF: u64 = 0x100_0000;

/// A prepared expected-receive workload.
#[derive(Debug)]
pub struct ExpectedWorkload {
    /// The device, context 1 enabled, TIDs programmed, TID flow 0 with header suppression.
    pub dev: Dev,
    /// Context setup.
    pub setup: CtxtSetup,
    /// Packets of one message covering the whole receive buffer.
    pub packets: Vec<Packet>,
    /// The message.
    pub data: Arc<[u8]>,
    /// Receive buffer length.
    pub buf_len: usize,
    /// Payload bytes per packet.
    pub mtu: usize,
}

/// `buf_mib` MiB of receive buffer in 2 MiB TIDs, packets of `mtu` payload bytes.
pub fn expected_workload(
    buf_mib: usize,
    mtu: u32,
    mode: DataMode,
    timing: TimingParams,
) -> Result<ExpectedWorkload, String> {
    let buf_len = buf_mib << 20;
    let cfg = DeviceConfig {
        num_contexts: 4,
        rcv_array_cnt: 4096,
        data_mode: mode,
        timing,
        ..Default::default()
    };
    let mut dev = HfiDevice::new(cfg, guest_memory(RECV_BUF as usize + buf_len))
        .map_err(|e| e.to_string())?;
    init_kdeth_qp(&mut dev);
    let setup = CtxtSetup {
        rhq_entries: 2048,
        flow_enable: true,
        tid_base: 256,
        tid_count: 1024,
        ..CtxtSetup::small(1)
    };
    enable_context(&mut dev, &setup);
    let ntids = buf_len / (2 << 20);
    let mut tids = Vec::with_capacity(ntids);
    for i in 0..ntids {
        program_tid(
            &mut dev,
            setup.tid_base + i as u32,
            RECV_BUF + (i as u64) * (2 << 20),
            2 << 20,
        );
        tids.extend(TidInfo::for_entry(i as u32, 512));
    }
    let data: Arc<[u8]> = Arc::from((0..buf_len).map(|i| (i * 131 + 7) as u8).collect::<Vec<_>>());
    let mut peer =
        Peer::new(PeerConfig { mtu, ..Default::default() }).map_err(|e| e.to_string())?;
    let dest = Dest { ctxt: 1, subctxt: 0, msg_id: 1 };
    let packets = peer
        .expected_message(dest, FlowPos::default(), &tids, 0, &data)
        .map_err(|e| e.to_string())?;
    let mut w = ExpectedWorkload { dev, setup, packets, data, buf_len, mtu: mtu as usize };
    w.rearm();
    Ok(w)
}

impl ExpectedWorkload {
    /// Re-arms the TID flow and frees the RHQ so the same packets can be received again.
    pub fn rearm(&mut self) {
        let flow = rxe::TID_FLOW_VALID.encode(1) | rxe::TID_FLOW_HDR_SUPP_ENABLE.encode(1);
        if let Some(off) = rxe::RCV_TID_FLOW_TABLE.offset(0) {
            self.dev.write64(self.setup.u(off), flow);
        }
        let tail = self.dev.read64(self.setup.u(rxe::RCV_HDR_TAIL));
        self.dev.write64(self.setup.u(rxe::RCV_HDR_HEAD), tail);
    }

    /// Receives every packet through the link and the event queue, `window` packets in flight
    /// at a time (a PSM rendezvous window of 128 KiB is 16 packets of 8 KiB).
    pub fn receive_all(&mut self, window: usize) {
        for w in self.packets.chunks(window.max(1)) {
            for p in w {
                self.dev.link_send(p.clone());
            }
            self.dev.run_until_idle();
        }
        self.rearm();
    }
}

/// Page size of the cache fixtures.
pub const PAGE: u64 = 4096;
/// First address of the cache fixtures' buffers.
pub const BASE: u64 = 0x1_0000_0000;
/// Entries of the hit fixture.
pub const HIT_ENTRIES: u64 = 10_000;
/// Coprime with [`HIT_ENTRIES`]: visits every entry, far from LRU order.
pub const HIT_STRIDE: u64 = 7919;
/// Capacity of the miss fixture.
pub const MISS_CAPACITY: u32 = 64;
/// Distinct buffers the miss fixture rotates through.
pub const MISS_RING: u64 = 1024;
/// Buffer size of the miss fixture.
pub const MISS_BUF: u32 = 128 << 10;

/// A cache and a mock fd with `n` idle entries of `len` bytes at `BASE + i * stride`.
pub fn filled(
    tid_limit: u32,
    n: u64,
    stride: u64,
    len: u32,
) -> Result<(driver::user::model_fd::ModelFd, driver::user::TidCache), String> {
    use driver::uapi::HfiFd;
    let mut fd = driver::user::model_fd::ModelFd::new(tid_limit);
    let mut cache = driver::user::TidCache::new(fd.ctxt_info());
    for i in 0..n {
        let a = cache.acquire(&mut fd, BASE + i * stride, len).map_err(|e| e.to_string())?;
        cache.release(&mut fd, &a).map_err(|e| e.to_string())?;
    }
    Ok((fd, cache))
}
