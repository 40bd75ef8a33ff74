//! Driver-less context setup for benches and perf workloads (and the tests): bring a context up
//! with the hfi1 enable sequence, program RcvArray entries, set the KDETH QP. Every access goes
//! through MMIO and guest memory; nothing pokes model state.

use std::sync::Arc;

use hfi_abi::{bar0, rxe, BufSize, RcvArrayEntry};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryMmap};

use crate::device::HfiDevice;

/// Host memory of `size` bytes at guest address 0.
pub fn guest_memory(size: usize) -> Arc<GuestMemoryMmap> {
    match GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), size)]) {
        Ok(m) => Arc::new(m),
        Err(_) => Arc::new(GuestMemoryMmap::default()),
    }
}

/// Everything needed to bring up one receive context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxtSetup {
    /// Context number.
    pub ctxt: u32,
    /// RHQ DMA address (64-byte aligned).
    pub rhq_addr: u64,
    /// RHQ entries (multiple of 32).
    pub rhq_entries: u32,
    /// RHQ entry size in DWs (2, 16 or 32).
    pub ent_dws: u32,
    /// RcvHdrSize in DWs: header copied, and the header/payload split.
    pub hdr_dws: u32,
    /// Tail write-back address (0 = no DMA_RTAIL).
    pub tail_addr: u64,
    /// First eager RcvArray entry (multiple of 8).
    pub egr_base: u32,
    /// Eager buffers (multiple of 8).
    pub egr_count: u32,
    /// Eager buffer size in bytes.
    pub egr_buf_size: u64,
    /// DMA address of eager buffer 0; buffer i is at `egr_addr + i * egr_buf_size`.
    pub egr_addr: u64,
    /// One packet per eager buffer.
    pub one_packet: bool,
    /// First expected entry (multiple of 8).
    pub tid_base: u32,
    /// Expected entries (multiple of 8).
    pub tid_count: u32,
    /// TidFlowEnable.
    pub flow_enable: bool,
    /// IntrAvail.
    pub intr_avail: bool,
    /// RcvHdrHead.Counter written after enable.
    pub intr_count: u32,
    /// RcvAvailTimeOut.
    pub timeout_reload: u32,
}

impl CtxtSetup {
    /// A small default layout in low memory for context `ctxt`: 64-entry RHQ of 32 DW at
    /// 1 MiB, 16 eager buffers of 16 KiB after it, 64 expected entries.
    pub fn small(ctxt: u32) -> Self {
        let region = 0x10_0000 + u64::from(ctxt) * 0x10_0000;
        Self {
            ctxt,
            rhq_addr: region,
            rhq_entries: 64,
            ent_dws: 32,
            hdr_dws: 14,
            tail_addr: region + 0x2000,
            egr_base: ctxt * 128,
            egr_count: 16,
            egr_buf_size: 16 * 1024,
            egr_addr: region + 0x4_0000,
            one_packet: false,
            tid_base: ctxt * 128 + 16,
            tid_count: 64,
            flow_enable: false,
            intr_avail: false,
            intr_count: 1,
            timeout_reload: 0,
        }
    }

    /// Kernel CSR offset.
    pub fn k(&self, reg: u64) -> u64 {
        bar0::RXE_PER_CONTEXT_KERNEL.base
            + u64::from(self.ctxt) * bar0::RXE_PER_CONTEXT_KERNEL.stride
            + reg
    }

    /// User CSR offset.
    pub fn u(&self, reg: u64) -> u64 {
        bar0::RXE_PER_CONTEXT_USER.base
            + u64::from(self.ctxt) * bar0::RXE_PER_CONTEXT_USER.stride
            + reg
    }
}

/// RcvArray offset of an absolute entry.
pub fn rcv_array_offset(entry: u32) -> u64 {
    bar0::RCV_ARRAY.base + u64::from(entry) * 8
}

/// Writes the KDETH QP prefix (init_kdeth_qp) so KDETH packets are recognised.
pub fn init_kdeth_qp<M: GuestAddressSpace>(dev: &mut HfiDevice<M>) {
    dev.write64(rxe::RCV_BTH_QP, rxe::RCV_BTH_QP_KDETH_QP.encode(rxe::DEFAULT_KDETH_QP));
}

/// Brings a context up with the hfi1 enable sequence (facts §3.2): eager entries programmed,
/// RHQ zeroed, CSRs written, then RcvCtxtCtrl, then the timeout and RcvHdrHead.Counter.
pub fn enable_context<M: GuestAddressSpace>(dev: &mut HfiDevice<M>, s: &CtxtSetup) {
    let size = BufSize::from_bytes(s.egr_buf_size).unwrap_or(BufSize::SIZE_4K);
    for i in 0..s.egr_count {
        let e = RcvArrayEntry::new(s.egr_addr + u64::from(i) * s.egr_buf_size, size);
        dev.write64(rcv_array_offset(s.egr_base + i), e.raw());
    }
    let rhq_bytes = u64::from(s.rhq_entries) * u64::from(s.ent_dws) * 4;
    let zero = vec![0u8; rhq_bytes as usize];
    let _ = dev.memory().memory().write_slice(&zero, GuestAddress(s.rhq_addr));
    dev.write64(s.k(rxe::RCV_HDR_ADDR), s.rhq_addr);
    dev.write64(s.k(rxe::RCV_HDR_TAIL_ADDR), s.tail_addr);
    dev.write64(s.k(rxe::RCV_HDR_CNT), u64::from(s.rhq_entries >> rxe::HDRQ_SIZE_SHIFT));
    dev.write64(s.k(rxe::RCV_HDR_ENT_SIZE), rxe::hdr_ent_size_code(s.ent_dws).unwrap_or(4));
    dev.write64(s.k(rxe::RCV_HDR_SIZE), u64::from(s.hdr_dws));
    dev.write64(s.u(rxe::RCV_HDR_HEAD), 0);
    dev.write64(s.u(rxe::RCV_EGR_INDEX_HEAD), 0);
    dev.write64(
        s.k(rxe::RCV_EGR_CTRL),
        rxe::RCV_EGR_CTRL_EGR_BASE_INDEX.encode(u64::from(s.egr_base >> 3))
            | rxe::RCV_EGR_CTRL_EGR_CNT.encode(u64::from(s.egr_count >> 3)),
    );
    dev.write64(
        s.k(rxe::RCV_TID_CTRL),
        rxe::RCV_TID_CTRL_TID_BASE_INDEX.encode(u64::from(s.tid_base >> 3))
            | rxe::RCV_TID_CTRL_TID_PAIR_CNT.encode(u64::from(s.tid_count >> 3)),
    );
    let mut ctrl = rxe::RCV_CTXT_CTRL_ENABLE.encode(1);
    if s.one_packet {
        ctrl = rxe::RCV_CTXT_CTRL_ONE_PACKET_PER_EGR_BUFFER.set(ctrl, 1);
    } else {
        ctrl = rxe::RCV_CTXT_CTRL_EGR_BUF_SIZE.set(ctrl, u64::from(size.code()));
    }
    ctrl = rxe::RCV_CTXT_CTRL_TAIL_UPD.set(ctrl, u64::from(s.tail_addr != 0));
    ctrl = rxe::RCV_CTXT_CTRL_TID_FLOW_ENABLE.set(ctrl, u64::from(s.flow_enable));
    ctrl = rxe::RCV_CTXT_CTRL_INTR_AVAIL.set(ctrl, u64::from(s.intr_avail));
    dev.write64(s.k(rxe::RCV_CTXT_CTRL), ctrl);
    dev.write64(s.k(rxe::RCV_AVAIL_TIME_OUT), u64::from(s.timeout_reload));
    dev.write64(s.u(rxe::RCV_HDR_HEAD), rxe::RCV_HDR_HEAD_COUNTER.encode(u64::from(s.intr_count)));
}

/// Programs an expected entry (hfi1_put_tid, PT_EXPECTED).
pub fn program_tid<M: GuestAddressSpace>(dev: &mut HfiDevice<M>, entry: u32, dma: u64, bytes: u64) {
    let size = BufSize::from_bytes(bytes).unwrap_or(BufSize::INVALID);
    dev.write64(rcv_array_offset(entry), RcvArrayEntry::new(dma, size).raw());
}
