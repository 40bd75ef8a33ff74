//! The RcvArray write log of the differential check: stored writes (8-byte and split halves),
//! ignored ones left out, resets marked, kept across resets, off by default.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use hfi_abi::RcvArrayEntry;
use hfi_model::test_utils::rcv_array_offset;
use hfi_model::HfiDevice;

fn dev() -> HfiDevice<std::sync::Arc<vm_memory::GuestMemoryMmap>> {
    hfi_model::test_utils::functional_device(8, 16384, 1 << 20).unwrap()
}

#[test]
fn log_records_stores_and_resets() {
    let mut d = dev();
    let e = RcvArrayEntry::new(0x1234_5000, hfi_abi::BufSize::from_pages(2).unwrap()).raw();
    d.write64(rcv_array_offset(5), e);
    assert!(d.rcv_array_log().is_empty(), "off by default");
    d.record_rcv_array(true);
    d.write64(rcv_array_offset(6), e);
    // A split store: low half, then high half.
    d.write32(rcv_array_offset(7), e as u32);
    d.write32(rcv_array_offset(7) + 4, (e >> 32) as u32);
    // Without write enable (bit 63 clear): ignored by the hardware, not logged.
    d.write64(rcv_array_offset(8), e & !(1 << 63));
    d.reset();
    d.write64(rcv_array_offset(6), 0x8000_0000_0000_0000);
    assert_eq!(d.rcv_array_log(), &[(6, e), (7, e), (u32::MAX, 0), (6, 0x8000_0000_0000_0000)],);
    d.record_rcv_array(false);
    assert!(d.rcv_array_log().is_empty());
}
