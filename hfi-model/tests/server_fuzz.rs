//! Random 4/8-byte (and malformed) accesses over the whole BAR0 and configuration space of the
//! served device never panic; identity, capability list and constants survive anything (an
//! FLR written by chance included). ≥ 100 000 operations per run.

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use hfi_abi::{asic, bar0, cce, dc, pcicfg, rxe, txe};
use hfi_model::server::{ServedConfig, ServedDevice};
use hfi_model::{DeviceConfig, PeerConfig, TimingParams};
use proptest::prelude::*;

const CASES: u32 = 128;
const OPS: usize = 800;

/// Offsets worth hitting more often than uniform random ones.
const HOT: &[u64] = &[
    cce::CCE_INT_MASK.base,
    cce::CCE_INT_FORCE.base,
    cce::CCE_INT_CLEAR.base,
    cce::CCE_INT_MAP.base,
    cce::CCE_DC_CTRL,
    asic::ASIC_CFG_SBUS_REQUEST,
    asic::ASIC_CFG_SBUS_EXECUTE,
    asic::ASIC_STS_SBUS_RESULT,
    asic::ASIC_CFG_MUTEX,
    dc::DC_DC8051_CFG_HOST_CMD_0,
    dc::DC_DC8051_CFG_RAM_ACCESS_CTRL,
    txe::SEND_CTRL,
    txe::SEND_PIO_INIT_CTXT,
    rxe::RCV_CTRL,
    bar0::RXE_PER_CONTEXT_KERNEL.base,
    bar0::RXE_PER_CONTEXT_USER.base + 8,
    bar0::RCV_ARRAY.base,
    bar0::TXE_PIO_SEND + bar0::PIO_SOP_DISTANCE,
];

#[derive(Clone, Debug)]
enum Op {
    Bar { write: bool, off: u64, len: usize, value: u64 },
    Cfg { write: bool, off: u64, len: usize, value: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![8 => prop_oneof![Just(4usize), Just(8usize)], 1 => 0usize..=9];
    let bar_off = prop_oneof![
        3 => (0..HOT.len(), 0u64..0x40).prop_map(|(i, d)| HOT[i] + d),
        3 => (0u64..bar0::BAR0_SIZE / 8).prop_map(|q| q * 8),
        1 => any::<u64>(),
    ];
    let cfg_off = prop_oneof![
        3 => 0x70u64..0xC0,
        2 => 0u64..pcicfg::CONFIG_SPACE_SIZE as u64 + 16,
        1 => any::<u64>(),
    ];
    prop_oneof![
        6 => (any::<bool>(), bar_off, len.clone(), any::<u64>())
            .prop_map(|(write, off, len, value)| Op::Bar { write, off, len, value }),
        2 => (any::<bool>(), cfg_off, len, any::<u64>())
            .prop_map(|(write, off, len, value)| Op::Cfg { write, off, len, value }),
    ]
}

fn served() -> ServedDevice {
    let device = DeviceConfig {
        num_contexts: 4,
        rcv_array_cnt: 512,
        timing: TimingParams::functional(),
        ..Default::default()
    };
    let mut cfg = ServedConfig::new(device, PeerConfig::default(), 64000);
    cfg.device_id = 0x24f1;
    ServedDevice::new(cfg).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn random_bar0_and_config_accesses_never_panic(ops in prop::collection::vec(op(), OPS)) {
        let mut d = served();
        for op in ops {
            match op {
                Op::Bar { write, off, len, value } => {
                    if write {
                        let b = value.to_le_bytes();
                        d.bar_write(off, &b[..len.min(8)]);
                    } else {
                        let mut b = vec![0u8; len];
                        d.bar_read(off, &mut b);
                    }
                }
                Op::Cfg { write, off, len, value } => {
                    if write {
                        let b = value.to_le_bytes();
                        let e = d.cfg_write(off, &b[..len.min(8)]);
                        let end = off.checked_add(len.min(8) as u64);
                        prop_assert_eq!(e == 0, end.is_some_and(|e| e <= 4096));
                    } else {
                        let mut b = vec![0u8; len];
                        d.config.read(off, &mut b);
                    }
                }
            }
        }
        prop_assert_eq!(d.config.read32(0), 0x24f1_8086);
        prop_assert_eq!(d.config.read32(pcicfg::CAP_PTR) & 0xff, 0x70);
        prop_assert_eq!(d.config.read32(0x70) & 0xffff, 0xB010);
        prop_assert_eq!(d.config.read32(0xB0) & 0x07ff_ffff, 0x00FF_0011);
        let mut b = [0u8; 8];
        d.bar_read(txe::SEND_CONTEXTS, &mut b);
        prop_assert_eq!(u64::from_le_bytes(b), 160);
        d.bar_read(rxe::RCV_ARRAY_CNT, &mut b);
        prop_assert_eq!(u64::from_le_bytes(b), 512);
        prop_assert!(d.dev.generic_csrs_stored() <= hfi_model::csr_file::GENERIC_CAPACITY);
    }
}
