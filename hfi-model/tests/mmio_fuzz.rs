//! Random MMIO sequences never panic and never change bits a register does not let software
//! write. ≥ 100 000 operations per run (proptest cases × ops per case).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use hfi_abi::bar0;
use hfi_model::regs::{Access, BlockDecoder, RegSpec, GLOBAL_REGS, KERNEL_REGS, USER_REGS};
use hfi_model::test_utils::guest_memory;
use hfi_model::{DeviceConfig, HfiDevice, TimingParams};
use proptest::prelude::*;

const CTXTS: u64 = 4;
const CASES: u32 = 128;
const OPS: usize = 800;

/// Interesting offsets: every register of every block, RcvArray, PIO, unknown space.
fn offsets() -> Vec<(u64, Option<RegSpec>)> {
    let mut v = Vec::new();
    let g = BlockDecoder::new(GLOBAL_REGS, None).unwrap();
    for (off, s) in g.iter() {
        v.push((off, Some(GLOBAL_REGS[usize::from(s.spec)])));
    }
    for c in 0..CTXTS + 1 {
        let k = BlockDecoder::new(KERNEL_REGS, None).unwrap();
        for (off, s) in k.iter() {
            v.push((
                bar0::RXE_PER_CONTEXT_KERNEL.offset(c).unwrap() + off,
                (c < CTXTS).then(|| KERNEL_REGS[usize::from(s.spec)]),
            ));
        }
        let u = BlockDecoder::new(USER_REGS, None).unwrap();
        for (off, s) in u.iter() {
            v.push((
                bar0::RXE_PER_CONTEXT_USER.offset(c).unwrap() + off,
                (c < CTXTS).then(|| USER_REGS[usize::from(s.spec)]),
            ));
        }
    }
    for i in [0u64, 1, 7, 8, 511] {
        v.push((bar0::RCV_ARRAY.base + i * 8, None));
    }
    v.push((bar0::TXE_PIO_SEND, None));
    v.push((0x0777_0000 & (bar0::BAR0_SIZE - 1), None));
    v
}

#[derive(Clone, Debug)]
enum Op {
    Write { idx: usize, delta: u64, len: usize, value: u64 },
    Read { idx: usize, delta: u64, len: usize },
    Raw { off: u64, len: usize, value: u64 },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    let len = prop_oneof![Just(4usize), Just(8usize), 1usize..=9];
    prop_oneof![
        4 => (0..n, prop_oneof![Just(0u64), Just(4u64), 0u64..8], len.clone(), any::<u64>())
            .prop_map(|(idx, delta, len, value)| Op::Write { idx, delta, len, value }),
        2 => (0..n, prop_oneof![Just(0u64), Just(4u64), 0u64..8], len.clone())
            .prop_map(|(idx, delta, len)| Op::Read { idx, delta, len }),
        1 => (any::<u64>(), len, any::<u64>()).prop_map(|(off, len, value)| Op::Raw { off, len, value }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn random_mmio_never_panics_nor_changes_read_only_bits(ops in prop::collection::vec(op(offsets().len()), OPS)) {
        let cfg = DeviceConfig { num_contexts: CTXTS as u32, rcv_array_cnt: 512, timing: TimingParams::functional(), ..Default::default() };
        let mut d = HfiDevice::new(cfg, guest_memory(1 << 20)).unwrap();
        let table = offsets();
        for op in ops {
            match op {
                Op::Write { idx, delta, len, value } => {
                    let (base, spec) = table[idx];
                    let before = d.read64(base);
                    let bytes = value.to_le_bytes();
                    d.mmio_write(base + delta, &bytes[..len.min(8)]);
                    let after = d.read64(base);
                    if let Some(spec) = spec {
                        match spec.access {
                            Access::Rw => prop_assert_eq!((after ^ before) & !spec.writable, 0, "{}", spec.name),
                            Access::Ro if spec.name != "RCV_HDR_TAIL" && spec.name != "CCE_INT_STATUS" =>
                                prop_assert_eq!(after, before, "{}", spec.name),
                            _ => {}
                        }
                    }
                }
                Op::Read { idx, delta, len } => {
                    let mut buf = vec![0u8; len];
                    d.mmio_read(table[idx].0 + delta, &mut buf);
                }
                Op::Raw { off, len, value } => {
                    let bytes = value.to_le_bytes();
                    d.mmio_write(off, &bytes[..len.min(8)]);
                    let mut buf = vec![0u8; len];
                    d.mmio_read(off, &mut buf);
                }
            }
        }
        // Identity registers survive anything.
        prop_assert_eq!(d.read64(hfi_abi::rxe::RCV_CONTEXTS), CTXTS);
        prop_assert_eq!(d.read64(hfi_abi::rxe::RCV_ARRAY_CNT), 512);
    }
}
