//! Test helpers (feature `test-utils`): functional devices and reading RHQ entries and host
//! memory back. The driver-less setup helpers live in [`crate::setup`] and are re-exported
//! here for the tests. Every access goes through MMIO and guest memory, nothing pokes model
//! state.

use std::sync::Arc;

use hfi_abi::Rhf;
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryMmap};

use crate::device::HfiDevice;
pub use crate::setup::{
    enable_context, guest_memory, init_kdeth_qp, program_tid, rcv_array_offset, CtxtSetup,
};

/// The configuration the chip-level tests use: `num_contexts` contexts, `rcv_array_cnt`
/// RcvArray entries, functional (zero-latency) timing.
pub fn functional_config(num_contexts: u32, rcv_array_cnt: u32) -> crate::DeviceConfig {
    crate::DeviceConfig {
        num_contexts,
        rcv_array_cnt,
        timing: crate::TimingParams::functional(),
        ..Default::default()
    }
}

/// A device with [`functional_config`] over `mem_bytes` of host memory.
pub fn functional_device(
    num_contexts: u32,
    rcv_array_cnt: u32,
    mem_bytes: usize,
) -> Result<HfiDevice<Arc<GuestMemoryMmap>>, crate::DeviceError> {
    HfiDevice::new(functional_config(num_contexts, rcv_array_cnt), guest_memory(mem_bytes))
}

/// Reads RHQ entry `index`: `(header bytes of hdr_dws DWs, RHF)`.
pub fn read_rhq_entry<M: GuestAddressSpace>(
    dev: &HfiDevice<M>,
    s: &CtxtSetup,
    index: u32,
) -> (Vec<u8>, Rhf) {
    let ent = u64::from(s.ent_dws) * 4;
    let at = s.rhq_addr + u64::from(index % s.rhq_entries) * ent;
    let mut entry = vec![0u8; ent as usize];
    let _ = dev.memory().memory().read_slice(&mut entry, GuestAddress(at));
    let mut rhf = [0u8; 8];
    if let Some(src) = entry.get(entry.len().saturating_sub(8)..) {
        rhf.copy_from_slice(src);
    }
    entry.truncate((s.hdr_dws as usize * 4).min(entry.len().saturating_sub(8)));
    (entry, Rhf::from_le_bytes(rhf))
}

/// Reads `len` bytes of host memory.
pub fn read_mem<M: GuestAddressSpace>(dev: &HfiDevice<M>, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let _ = dev.memory().memory().read_slice(&mut v, GuestAddress(addr));
    v
}
