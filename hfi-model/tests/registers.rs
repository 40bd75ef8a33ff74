//! Register behaviour through MMIO: identity, reset values, masks, halves, interrupts, and the
//! policy for unknown, misaligned, out-of-range and read-only accesses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use hfi_abi::{bar0, cce, rxe};
use hfi_model::test_utils::CtxtSetup;
use hfi_model::HfiDevice;

type Dev = HfiDevice<std::sync::Arc<vm_memory::GuestMemoryMmap>>;

fn dev() -> Dev {
    hfi_model::test_utils::functional_device(8, 4096, 8 << 20).unwrap()
}

#[test]
fn identity_registers() {
    let mut d = dev();
    assert_eq!(d.read64(rxe::RCV_CONTEXTS), 8);
    assert_eq!(d.read64(rxe::RCV_ARRAY_CNT), 4096);
    let r2 = d.read64(cce::CCE_REVISION2);
    assert_eq!(cce::CCE_REVISION2_IMPL_CODE.get(r2), cce::icode::FUNCTIONAL_SIMULATOR);
    let r = d.read64(cce::CCE_REVISION);
    assert_ne!(r, u64::MAX);
    assert_eq!(cce::CCE_REVISION_CHIP_REV_MINOR.get(r) & 0xF0, 0x10, "B-step");
    // Read-only: a write is counted and changes nothing.
    d.write64(rxe::RCV_CONTEXTS, 99);
    assert_eq!(d.read64(rxe::RCV_CONTEXTS), 8);
    assert_eq!(d.counters().mmio_read_only_write_count, 1);
}

#[test]
fn masks_and_halves() {
    let mut d = dev();
    // RcvBthQp: only KdethQp (23:16) is writable.
    d.write64(rxe::RCV_BTH_QP, u64::MAX);
    assert_eq!(d.read64(rxe::RCV_BTH_QP), 0xFF_0000);
    assert_eq!(d.counters().mmio_read_only_write_count, 1);
    // A 64-bit register written as two 32-bit halves.
    let s = CtxtSetup::small(2);
    d.write32(s.k(rxe::RCV_HDR_ADDR), 0x1234_5640);
    d.write32(s.k(rxe::RCV_HDR_ADDR) + 4, 0x0000_00AB);
    assert_eq!(d.read64(s.k(rxe::RCV_HDR_ADDR)), 0xAB_1234_5640);
    assert_eq!(d.read32(s.k(rxe::RCV_HDR_ADDR) + 4), 0xAB);
    // Low 6 bits of RcvHdrAddr are not writable.
    d.write64(s.k(rxe::RCV_HDR_ADDR), 0x1000_0007);
    assert_eq!(d.read64(s.k(rxe::RCV_HDR_ADDR)), 0x1000_0000);
    // MSI-X upper reset value has the vector mask bit.
    assert_eq!(d.read64(cce::CCE_MSIX_TABLE.base + 8), 1 << 32);
}

#[test]
fn bad_accesses_are_counted_and_ignored() {
    let mut d = dev();
    let mut b3 = [0xAAu8; 3];
    d.mmio_read(rxe::RCV_CONTEXTS, &mut b3);
    assert_eq!(b3, [0, 0, 0]);
    d.mmio_write(rxe::RCV_BTH_QP + 2, &[1, 2, 3, 4]);
    d.mmio_write(bar0::BAR0_SIZE - 4, &[0; 8]);
    d.mmio_write(u64::MAX - 3, &[0; 4]);
    assert_eq!(d.read64(0x0123_4560), 0);
    d.write64(0x0123_4560, 5);
    let c = d.counters();
    assert_eq!(c.mmio_bad_size_count, 1);
    assert_eq!(c.mmio_misaligned_count, 1);
    assert_eq!(c.mmio_out_of_range_count, 2);
    assert_eq!(c.mmio_unknown_read_count, 1);
    assert_eq!(c.mmio_unknown_write_count, 1);
    // A context beyond RCV_CONTEXTS is not a receive context: its CSRs are generic storage
    // (they read back, nothing else happens).
    let s = CtxtSetup::small(8);
    d.write64(s.k(rxe::RCV_HDR_ADDR), 0x1003);
    assert_eq!(d.read64(s.k(rxe::RCV_HDR_ADDR)), 0x1003, "no RcvHdrAddr mask applies");
    assert_eq!(d.counters().mmio_unknown_write_count, 1);
    assert_eq!(d.counters().mmio_generic_write_count, 1);
    assert!(d.context(8).is_none());
}

#[test]
fn generic_csrs_read_back_in_both_access_sizes() {
    let mut d = dev();
    // An unmodelled TXE CSR (SEND_CM_GLOBAL_CREDIT), written as one 8-byte store...
    let off = bar0::TXE + 0x508;
    assert_eq!(d.read64(off), 0, "reset value 0");
    d.write64(off, 0x0000_0940_0003_0000);
    assert_eq!(d.read64(off), 0x0000_0940_0003_0000);
    // ... and as two 4-byte stores (a guest's 64-bit pwrite through vfio-pci), high half first.
    d.write32(off + 4, 0xDEAD_BEEF);
    assert_eq!(d.read64(off), 0xDEAD_BEEF_0003_0000);
    d.write32(off, 0x1234_5678);
    assert_eq!(d.read64(off), 0xDEAD_BEEF_1234_5678);
    assert_eq!((d.read32(off), d.read32(off + 4)), (0x1234_5678, 0xDEAD_BEEF));
    // A per-context user CSR that is not modelled (the page beyond the flow table).
    let u = bar0::RXE_PER_CONTEXT_USER.offset(2).unwrap() + 0xF00;
    d.write64(u, 3);
    assert_eq!(d.read64(u), 3);
    // The census counts each offset once, whatever the access size.
    let c = d.counters();
    assert_eq!(c.csr_generic_distinct_count, 2);
    assert_eq!(c.csr_written_distinct_count, 2);
    assert_eq!(c.mmio_unknown_read_count + c.mmio_unknown_write_count, 0);
    // A reset puts them back to 0.
    d.reset();
    assert_eq!(d.read64(off), 0);
    assert_eq!(d.read64(u), 0);
    assert_eq!(d.generic_csrs_stored(), 0);
}

#[test]
fn rcv_array_write_enable_rule() {
    use hfi_abi::{BufSize, RcvArrayEntry};
    use hfi_model::test_utils::rcv_array_offset;
    let mut d = dev();
    let e = RcvArrayEntry::new(0x40_0000, BufSize::SIZE_4K);
    d.write64(rcv_array_offset(100), e.raw());
    // WC fill (bit 63 clear) leaves the entry unchanged.
    d.write64(rcv_array_offset(100), 0);
    assert_eq!(d.read64(rcv_array_offset(100)), e.raw());
    assert_eq!(d.counters().rcvarray_write_disabled_count, 1);
    // Two halves commit together.
    let f = RcvArrayEntry::new(0x80_0000, BufSize::from_bytes(8192).unwrap());
    d.write32(rcv_array_offset(101), f.raw() as u32);
    assert_eq!(d.read64(rcv_array_offset(101)), 0);
    d.write32(rcv_array_offset(101) + 4, (f.raw() >> 32) as u32);
    assert_eq!(d.read64(rcv_array_offset(101)), f.raw());
    // Past RCV_ARRAY_CNT is not RcvArray.
    d.write64(rcv_array_offset(4096), e.raw());
    assert_eq!(d.counters().mmio_unknown_write_count, 1);
}

#[test]
fn interrupt_force_clear_mask_map() {
    let mut d = dev();
    let src = cce::IS_RCVAVAIL_START + 3;
    let (reg, bit) = cce::int_source_bit(src);
    let map_reg = cce::CCE_INT_MAP.offset(src / 8).unwrap();
    d.write64(map_reg, 7 << ((src % 8) * 8));
    d.write64(cce::CCE_INT_FORCE.offset(reg).unwrap(), bit);
    assert_eq!(d.read64(cce::CCE_INT_STATUS.offset(reg).unwrap()), bit);
    assert!(d.take_interrupts().is_empty(), "masked");
    d.write64(cce::CCE_INT_MASK.offset(reg).unwrap(), bit);
    assert_eq!(d.take_interrupts(), vec![7]);
    d.write64(cce::CCE_INT_CLEAR.offset(reg).unwrap(), bit);
    assert_eq!(d.read64(cce::CCE_INT_STATUS.offset(reg).unwrap()), 0);
    // Force/clear read back as 0 (action registers).
    assert_eq!(d.read64(cce::CCE_INT_FORCE.offset(reg).unwrap()), 0);
    // A half write to an action register acts on that half only.
    d.write32(cce::CCE_INT_FORCE.offset(reg).unwrap() + 4, 1);
    assert_eq!(d.read64(cce::CCE_INT_STATUS.offset(reg).unwrap()), 1 << 32);
}

#[test]
fn rcv_ctrl_rbuf_init_self_clears() {
    let mut d = dev();
    d.write64(rxe::RCV_CTRL, rxe::RCV_CTRL_RX_RBUF_INIT.encode(1) | 1);
    assert_eq!(d.read64(rxe::RCV_CTRL), 1);
    assert_eq!(rxe::RCV_STATUS_RX_RBUF_INIT_DONE.get(d.read64(rxe::RCV_STATUS)), 1);
}

#[test]
fn enable_with_bad_rhq_is_refused() {
    let mut d = dev();
    let s = CtxtSetup::small(1);
    d.write64(s.k(rxe::RCV_CTXT_CTRL), 1);
    assert_eq!(d.read64(s.k(rxe::RCV_CTXT_CTRL)) & 1, 0);
    assert_eq!(d.counters().ctxt_bad_config_count, 1);
    assert!(!d.context(1).unwrap().enabled);
}

#[test]
fn reset_restores_reset_values() {
    let mut d = dev();
    d.write64(rxe::RCV_BTH_QP, 0x80_0000);
    let s = CtxtSetup::small(1);
    hfi_model::test_utils::enable_context(&mut d, &s);
    assert!(d.context(1).unwrap().enabled);
    d.reset();
    assert_eq!(d.read64(rxe::RCV_BTH_QP), 0);
    assert!(!d.context(1).unwrap().enabled);
    assert_eq!(d.read64(cce::CCE_MSIX_TABLE.base + 8), 1 << 32);
    assert_eq!(d.counters().reset_count, 1);
}
