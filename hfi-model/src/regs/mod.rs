//! The register table: one [`RegSpec`] per CSR (or CSR array) with its reset value, writable
//! mask, access kind, read hook and write side effect. Decoding, masking and side effects in
//! [`crate::device::mmio`] are driven entirely by these tables (the QEMU `mac_reg_access` / crosvm
//! `RegisterSpec` pattern); there is no hand-written offset range chain.
//!
//! Three blocks: global CSRs (absolute BAR0 offsets), kernel per-context CSRs and user
//! per-context CSRs (offsets inside the context's block). RcvArray and the PIO space are large
//! regions decoded separately.

pub mod chip;
pub mod csr_file;
pub mod decode;

pub use decode::{BlockDecoder, Decoders, Slot, TableError, Target};

use hfi_abi::{cce, rxe};

/// How software may access a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read/write storage (bits outside `writable` are read-only).
    Rw,
    /// Read-only.
    Ro,
    /// Write-1-to-clear action register; reads return the stored value (0).
    W1c,
    /// Write-only action register; reads return 0.
    Wo,
}

/// Where a read gets its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadHook {
    /// The stored value.
    Stored,
    /// CCE_REVISION from the device configuration.
    Revision,
    /// CCE_REVISION2 from the device configuration.
    Revision2,
    /// RCV_CONTEXTS from the device configuration.
    RcvContexts,
    /// RCV_ARRAY_CNT from the device configuration.
    RcvArrayCnt,
    /// RcvStatus from the receive state.
    RcvStatus,
    /// CceIntStatus[i] from the interrupt state.
    IntStatus,
    /// RcvCtxtStatus from the context.
    CtxtStatus,
    /// RcvHdrOvflCnt from the context.
    HdrOvflCnt,
    /// RcvHdrTail from the context.
    HdrTail,
    /// RcvEgrIndexTail from the context.
    EgrIndexTail,
    /// RcvEgrOffsetTail from the context.
    EgrOffsetTail,
    /// SEND_CONTEXTS from the device configuration.
    SendContexts,
    /// SEND_DMA_ENGINES from the device configuration.
    SdmaEngines,
    /// SEND_PIO_MEM_SIZE from the device configuration.
    PioMemSize,
    /// SEND_DMA_MEM_SIZE from the device configuration.
    SdmaMemSize,
    /// DC_DC8051_CFG_LOCAL_GUID from the device configuration.
    LocalGuid,
    /// ASIC_STS_SBUS_RESULT from the SBus state.
    SbusResult,
    /// ASIC_STS_SBUS_COUNTERS from the SBus state.
    SbusCounters,
    /// ASIC_QSFPn_IN from the pins (no module plugged).
    QsfpIn,
    /// DC_DC8051_CFG_HOST_CMD_1 from the 8051 stub.
    HostCmd1,
    /// DC_DC8051_CFG_RAM_ACCESS_STATUS from the RAM access control.
    RamAccessStatus,
    /// DC_DC8051_CFG_RAM_ACCESS_RD_DATA from the 8051 data RAM.
    RamRdData,
    /// DC_DC8051_STS_CUR_STATE from the 8051.
    CurState,
    /// DC_DC8051_ERR_FLG from the 8051.
    Dc8051ErrFlg,
    /// DC_DC8051_DBG_ERR_INFO_SET_BY_8051 from the 8051.
    Dc8051ErrInfo,
    /// DC_DC8051_STS_REMOTE_GUID: the neighbour (this port in LCB loopback).
    RemoteGuid,
    /// DC_DC8051_STS_REMOTE_PORT_NO: the neighbour's port.
    RemotePortNo,
    /// DC_LCB_STS_LINK_TRANSFER_ACTIVE from the LCB configuration.
    LcbTransferActive,
    /// SEND_DMA_STATUS\[engine\] from the engine state.
    SdmaStatus,
    /// SEND_DMA_ENG_ERR_STATUS\[engine\] from the engine state.
    SdmaEngErrStatus,
}

/// What a write does beyond storing the masked value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Nothing.
    None,
    /// RcvCtrl: RxRbufInit completes at once.
    RcvCtrl,
    /// RcvErrClear: clears RcvErrStatus bits.
    RcvErrClear,
    /// CceIntMask[i] changed: pending enabled sources are signalled.
    IntMask,
    /// CceIntClear[i]: clears status bits.
    IntClear,
    /// CceIntForce[i]: raises sources.
    IntForce,
    /// RcvCtxtCtrl: enable/disable a context.
    RcvCtxtCtrl,
    /// RcvAvailTimeOut: new reload value.
    RcvAvailTimeOut,
    /// RcvHdrHead: frees RHQ entries and restarts interrupt moderation.
    RcvHdrHead,
    /// RcvEgrIndexHead: frees eager buffers.
    RcvEgrIndexHead,
    /// SEND_CTRL: CmReset completes at once and self-clears.
    SendCtrl,
    /// SEND_PIO_INIT_CTXT: the PIO init engine completes at once.
    PioInitCtxt,
    /// ASIC_CFG_SBUS_REQUEST: executes at once in fast mode.
    SbusRequest,
    /// ASIC_CFG_SBUS_EXECUTE: Execute 0 → 1 runs the request, 1 → 0 clears Done.
    SbusExecute,
    /// ASIC_CFG_MUTEX: a non-zero write takes the mutex only if it is free.
    AsicMutex,
    /// DC_DC8051_CFG_HOST_CMD_0: ReqNew 0 → 1 runs an 8051 host command.
    HostCmd0,
    /// DC_DC8051_CFG_RAM_ACCESS_CTRL: loads the 8051 RAM access pointer.
    RamAccessCtrl,
    /// DC_DC8051_CFG_RAM_ACCESS_WR_DATA: writes the 8051 RAM while WriteEna is set.
    RamWrData,
    /// DC_DC8051_CFG_RST: holds or restarts the 8051.
    Dc8051Rst,
    /// DC_DC8051_ERR_CLR: clears DC_DC8051_ERR_FLG bits.
    Dc8051ErrClr,
    /// DC_DC8051_ERR_EN: enabling a set flag raises the DC 8051 interrupt.
    Dc8051ErrEn,
    /// DCC_CFG_PORT_CONFIG: the host's logical link state request.
    PortConfig,
    /// SEND_DMA_CTRL\[engine\]: halt, clean-up, enable.
    SdmaCtrl,
    /// SEND_DMA_ENG_ERR_MASK\[engine\]: enabling a set error raises the engine's source.
    SdmaEngErrMask,
    /// SEND_DMA_ENG_ERR_CLEAR\[engine\]: clears SEND_DMA_ENG_ERR_STATUS bits.
    SdmaEngErrClear,
}

/// One register or register array (elements `stride` bytes apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegSpec {
    /// Spec name (SCREAMING_SNAKE as in the hfi1 headers).
    pub name: &'static str,
    /// Offset of element 0 (absolute for global registers, in-block for per-context ones).
    pub offset: u64,
    /// Number of elements.
    pub count: u32,
    /// Distance between elements.
    pub stride: u64,
    /// Reset value of every element.
    pub reset: u64,
    /// Bits software may change.
    pub writable: u64,
    /// Access kind.
    pub access: Access,
    /// Source of read values.
    pub read: ReadHook,
    /// Write side effect.
    pub side: Side,
}

pub(crate) const fn reg(
    name: &'static str,
    offset: u64,
    access: Access,
    writable: u64,
    reset: u64,
) -> RegSpec {
    RegSpec {
        name,
        offset,
        count: 1,
        stride: 8,
        reset,
        writable,
        access,
        read: ReadHook::Stored,
        side: Side::None,
    }
}

pub(crate) const fn rw(name: &'static str, offset: u64, writable: u64) -> RegSpec {
    reg(name, offset, Access::Rw, writable, 0)
}

pub(crate) const fn ro(name: &'static str, offset: u64, hook: ReadHook) -> RegSpec {
    let mut r = reg(name, offset, Access::Ro, 0, 0);
    r.read = hook;
    r
}

pub(crate) const fn array(mut r: RegSpec, count: u32, stride: u64) -> RegSpec {
    r.count = count;
    r.stride = stride;
    r
}

pub(crate) const fn side(mut r: RegSpec, s: Side) -> RegSpec {
    r.side = s;
    r
}

/// MSI-X vector-control mask bit in CceMsixTableUpper (reset value has it set).
pub const MSIX_UPPER_MASK_BIT: u64 = 1 << 32;

/// Global CSRs (absolute BAR0 offsets).
pub static GLOBAL_REGS: &[RegSpec] = &[
    ro("CCE_REVISION", cce::CCE_REVISION, ReadHook::Revision),
    ro("CCE_REVISION2", cce::CCE_REVISION2, ReadHook::Revision2),
    rw("CCE_CTRL", cce::CCE_CTRL, u64::MAX),
    ro("CCE_STATUS", cce::CCE_STATUS, ReadHook::Stored),
    array(rw("CCE_SCRATCH", cce::CCE_SCRATCH.base, u64::MAX), cce::CCE_SCRATCH.count as u32, 8),
    reg("CCE_DC_CTRL", cce::CCE_DC_CTRL, Access::Rw, 1, cce::CCE_DC_CTRL_DC_RESET.smask()),
    array(ro("CCE_INT_STATUS", cce::CCE_INT_STATUS.base, ReadHook::IntStatus), 12, 8),
    array(side(rw("CCE_INT_MASK", cce::CCE_INT_MASK.base, u64::MAX), Side::IntMask), 12, 8),
    array(
        side(
            reg("CCE_INT_CLEAR", cce::CCE_INT_CLEAR.base, Access::W1c, u64::MAX, 0),
            Side::IntClear,
        ),
        12,
        8,
    ),
    array(
        side(
            reg("CCE_INT_FORCE", cce::CCE_INT_FORCE.base, Access::Wo, u64::MAX, 0),
            Side::IntForce,
        ),
        12,
        8,
    ),
    array(ro("CCE_INT_BLOCKED", cce::CCE_INT_BLOCKED.base, ReadHook::Stored), 12, 8),
    array(rw("CCE_INT_MAP", cce::CCE_INT_MAP.base, u64::MAX), 96, 8),
    array(rw("CCE_MSIX_TABLE_LOWER", cce::CCE_MSIX_TABLE.base, u64::MAX), 256, 16),
    array(
        reg(
            "CCE_MSIX_TABLE_UPPER",
            cce::CCE_MSIX_TABLE.base + 8,
            Access::Rw,
            0xFFFF_FFFF | MSIX_UPPER_MASK_BIT,
            MSIX_UPPER_MASK_BIT,
        ),
        256,
        16,
    ),
    array(ro("CCE_MSIX_PBA", cce::CCE_MSIX_PBA.base, ReadHook::Stored), 4, 8),
    side(rw("RCV_CTRL", rxe::RCV_CTRL, 0x27F), Side::RcvCtrl),
    ro("RCV_STATUS", rxe::RCV_STATUS, ReadHook::RcvStatus),
    ro("RCV_CONTEXTS", rxe::RCV_CONTEXTS, ReadHook::RcvContexts),
    ro("RCV_ARRAY_CNT", rxe::RCV_ARRAY_CNT, ReadHook::RcvArrayCnt),
    rw("RCV_BTH_QP", rxe::RCV_BTH_QP, rxe::RCV_BTH_QP_KDETH_QP.smask()),
    rw("RCV_MULTICAST", rxe::RCV_MULTICAST, u64::MAX),
    rw("RCV_BYPASS", rxe::RCV_BYPASS, 0x1F_00FF),
    rw("RCV_VL15", rxe::RCV_VL15, u64::MAX),
    ro("RCV_ERR_INFO", rxe::RCV_ERR_INFO, ReadHook::Stored),
    ro("RCV_ERR_STATUS", rxe::RCV_ERR_STATUS, ReadHook::Stored),
    rw("RCV_ERR_MASK", rxe::RCV_ERR_MASK, u64::MAX),
    side(reg("RCV_ERR_CLEAR", rxe::RCV_ERR_CLEAR, Access::W1c, u64::MAX, 0), Side::RcvErrClear),
    array(rw("RCV_QP_MAP_TABLE", rxe::RCV_QP_MAP_TABLE.base, u64::MAX), 32, 8),
    array(rw("RCV_PARTITION_KEY", rxe::RCV_PARTITION_KEY.base, u64::MAX), 16, 8),
    array(ro("RCV_COUNTER_ARRAY32", rxe::RCV_COUNTER_ARRAY32.base, ReadHook::Stored), 32, 8),
];

/// Indices into [`KERNEL_REGS`] (each a single register, so index = storage slot).
pub mod kreg {
    /// RcvCtxtCtrl.
    pub const CTRL: usize = 0;
    /// RcvCtxtStatus.
    pub const STATUS: usize = 1;
    /// RcvEgrCtrl.
    pub const EGR_CTRL: usize = 2;
    /// RcvTidCtrl.
    pub const TID_CTRL: usize = 3;
    /// RcvKeyCtrl.
    pub const KEY_CTRL: usize = 4;
    /// RcvHdrAddr.
    pub const HDR_ADDR: usize = 5;
    /// RcvHdrCnt.
    pub const HDR_CNT: usize = 6;
    /// RcvHdrEntSize.
    pub const HDR_ENT_SIZE: usize = 7;
    /// RcvHdrSize.
    pub const HDR_SIZE: usize = 8;
    /// RcvHdrTailAddr.
    pub const HDR_TAIL_ADDR: usize = 9;
    /// RcvAvailTimeOut.
    pub const AVAIL_TIME_OUT: usize = 10;
    /// RcvHdrOvflCnt.
    pub const HDR_OVFL_CNT: usize = 11;
    /// Number of kernel per-context registers.
    pub const COUNT: usize = 12;
}

/// Kernel-only per-context CSRs (offsets inside `RXE + 0x100000 + ctxt * 0x100`).
pub static KERNEL_REGS: &[RegSpec] = &[
    side(rw("RCV_CTXT_CTRL", rxe::RCV_CTXT_CTRL, 0x77F), Side::RcvCtxtCtrl),
    ro("RCV_CTXT_STATUS", rxe::RCV_CTXT_STATUS, ReadHook::CtxtStatus),
    rw(
        "RCV_EGR_CTRL",
        rxe::RCV_EGR_CTRL,
        rxe::RCV_EGR_CTRL_EGR_BASE_INDEX.smask() | rxe::RCV_EGR_CTRL_EGR_CNT.smask(),
    ),
    rw(
        "RCV_TID_CTRL",
        rxe::RCV_TID_CTRL,
        rxe::RCV_TID_CTRL_TID_BASE_INDEX.smask() | rxe::RCV_TID_CTRL_TID_PAIR_CNT.smask(),
    ),
    rw(
        "RCV_KEY_CTRL",
        rxe::RCV_KEY_CTRL,
        rxe::RCV_KEY_CTRL_JOB_KEY_VALUE.smask() | rxe::RCV_KEY_CTRL_JOB_KEY_ENABLE.smask(),
    ),
    rw("RCV_HDR_ADDR", rxe::RCV_HDR_ADDR, rxe::RCV_HDR_ADDR_MASK),
    rw("RCV_HDR_CNT", rxe::RCV_HDR_CNT, rxe::RCV_HDR_CNT_CNT.smask()),
    rw("RCV_HDR_ENT_SIZE", rxe::RCV_HDR_ENT_SIZE, rxe::RCV_HDR_ENT_SIZE_ENT_SIZE.smask()),
    rw("RCV_HDR_SIZE", rxe::RCV_HDR_SIZE, rxe::RCV_HDR_SIZE_HDR_SIZE.smask()),
    rw("RCV_HDR_TAIL_ADDR", rxe::RCV_HDR_TAIL_ADDR, rxe::RCV_HDR_TAIL_ADDR_MASK),
    side(
        rw(
            "RCV_AVAIL_TIME_OUT",
            rxe::RCV_AVAIL_TIME_OUT,
            rxe::RCV_AVAIL_TIME_OUT_TIME_OUT_RELOAD.smask(),
        ),
        Side::RcvAvailTimeOut,
    ),
    ro("RCV_HDR_OVFL_CNT", rxe::RCV_HDR_OVFL_CNT, ReadHook::HdrOvflCnt),
];

/// Storage slots of [`USER_REGS`].
pub mod ureg {
    /// RcvHdrTail.
    pub const HDR_TAIL: usize = 0;
    /// RcvHdrHead.
    pub const HDR_HEAD: usize = 1;
    /// RcvEgrIndexTail.
    pub const EGR_INDEX_TAIL: usize = 2;
    /// RcvEgrIndexHead.
    pub const EGR_INDEX_HEAD: usize = 3;
    /// RcvEgrOffsetTail.
    pub const EGR_OFFSET_TAIL: usize = 4;
    /// RcvTidFlowTable[0]; flow `f` is at `FLOW + f`.
    pub const FLOW: usize = 5;
    /// Number of user per-context storage slots.
    pub const COUNT: usize = FLOW + 32;
}

/// Writable bits of a TID flow entry: Seq, Gen, FlowValid, HdrSuppEnable, Keep* and the two
/// status bits (software clears them by writing the entry).
pub const TID_FLOW_WRITABLE: u64 = ((1 << 36) - 1) | (1 << 37) | (1 << 38);

/// User per-context CSRs (offsets inside `RXE + 0x300000 + ctxt * 0x1000`).
pub static USER_REGS: &[RegSpec] = &[
    ro("RCV_HDR_TAIL", rxe::RCV_HDR_TAIL, ReadHook::HdrTail),
    side(
        rw(
            "RCV_HDR_HEAD",
            rxe::RCV_HDR_HEAD,
            rxe::RCV_HDR_HEAD_HEAD.smask() | rxe::RCV_HDR_HEAD_COUNTER.smask(),
        ),
        Side::RcvHdrHead,
    ),
    ro("RCV_EGR_INDEX_TAIL", rxe::RCV_EGR_INDEX_TAIL, ReadHook::EgrIndexTail),
    side(
        rw("RCV_EGR_INDEX_HEAD", rxe::RCV_EGR_INDEX_HEAD, rxe::RCV_EGR_INDEX_HEAD_HEAD.smask()),
        Side::RcvEgrIndexHead,
    ),
    ro("RCV_EGR_OFFSET_TAIL", rxe::RCV_EGR_OFFSET_TAIL, ReadHook::EgrOffsetTail),
    array(rw("RCV_TID_FLOW_TABLE", rxe::RCV_TID_FLOW_TABLE.base, TID_FLOW_WRITABLE), 32, 8),
];

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::bar0;

    #[test]
    fn tables_decode_without_overlap() {
        let d = Decoders::new().unwrap();
        assert_eq!(d.kernel.slots(), kreg::COUNT);
        assert_eq!(d.user.slots(), ureg::COUNT);
        // Global registers lie in the UC CSR space, outside the per-context blocks and RcvArray.
        for (off, _) in d.global.iter() {
            assert!(!(bar0::RXE_PER_CONTEXT_KERNEL.base..bar0::TXE).contains(&off), "{off:#x}");
        }
    }

    #[test]
    fn slot_constants_match_the_tables() {
        let d = Decoders::new().unwrap();
        let k = |off| d.kernel.decode(off).map(|s| usize::from(s.slot));
        assert_eq!(k(rxe::RCV_CTXT_CTRL), Some(kreg::CTRL));
        assert_eq!(k(rxe::RCV_CTXT_STATUS), Some(kreg::STATUS));
        assert_eq!(k(rxe::RCV_EGR_CTRL), Some(kreg::EGR_CTRL));
        assert_eq!(k(rxe::RCV_TID_CTRL), Some(kreg::TID_CTRL));
        assert_eq!(k(rxe::RCV_KEY_CTRL), Some(kreg::KEY_CTRL));
        assert_eq!(k(rxe::RCV_HDR_ADDR), Some(kreg::HDR_ADDR));
        assert_eq!(k(rxe::RCV_HDR_CNT), Some(kreg::HDR_CNT));
        assert_eq!(k(rxe::RCV_HDR_ENT_SIZE), Some(kreg::HDR_ENT_SIZE));
        assert_eq!(k(rxe::RCV_HDR_SIZE), Some(kreg::HDR_SIZE));
        assert_eq!(k(rxe::RCV_HDR_TAIL_ADDR), Some(kreg::HDR_TAIL_ADDR));
        assert_eq!(k(rxe::RCV_AVAIL_TIME_OUT), Some(kreg::AVAIL_TIME_OUT));
        assert_eq!(k(rxe::RCV_HDR_OVFL_CNT), Some(kreg::HDR_OVFL_CNT));
        let u = |off| d.user.decode(off).map(|s| usize::from(s.slot));
        assert_eq!(u(rxe::RCV_HDR_TAIL), Some(ureg::HDR_TAIL));
        assert_eq!(u(rxe::RCV_HDR_HEAD), Some(ureg::HDR_HEAD));
        assert_eq!(u(rxe::RCV_EGR_INDEX_TAIL), Some(ureg::EGR_INDEX_TAIL));
        assert_eq!(u(rxe::RCV_EGR_INDEX_HEAD), Some(ureg::EGR_INDEX_HEAD));
        assert_eq!(u(rxe::RCV_EGR_OFFSET_TAIL), Some(ureg::EGR_OFFSET_TAIL));
        assert_eq!(u(0x800 + 31 * 8), Some(ureg::FLOW + 31));
    }

    #[test]
    fn global_and_chip_tables_do_not_overlap() {
        let d = Decoders::new().unwrap();
        for (off, s) in d.chip.iter() {
            let name = crate::regs::chip::CHIP_REGS[usize::from(s.spec)].name;
            assert!(d.global.decode(off).is_none(), "{name} at {off:#x} is also global");
            assert!(off < bar0::TXE_PIO_SEND, "{name}");
            assert!(bar0::RCV_ARRAY.index(off).is_none(), "{name}");
            assert!(bar0::RXE_PER_CONTEXT_KERNEL.index(off).is_none(), "{name}");
            assert!(bar0::RXE_PER_CONTEXT_USER.index(off).is_none(), "{name}");
        }
    }

    #[test]
    fn reset_values_respect_masks_and_kinds() {
        for table in [GLOBAL_REGS, KERNEL_REGS, USER_REGS, crate::regs::chip::CHIP_REGS] {
            for s in table {
                match s.access {
                    Access::W1c | Access::Wo => assert_eq!(s.reset, 0, "{}", s.name),
                    Access::Ro => assert_eq!(s.writable, 0, "{}", s.name),
                    Access::Rw => assert!(s.writable != 0, "{}", s.name),
                }
                if s.read != ReadHook::Stored {
                    assert_eq!(s.access, Access::Ro, "{} has a read hook but is writable", s.name);
                }
            }
        }
        let upper = GLOBAL_REGS.iter().find(|s| s.name == "CCE_MSIX_TABLE_UPPER").unwrap();
        assert_eq!(upper.reset, 0x1_0000_0000);
    }

    #[test]
    fn overlap_is_detected() {
        static BAD: &[RegSpec] = &[rw("A", 0x10, 1), array(rw("B", 0x0, 1), 4, 8)];
        assert_eq!(BlockDecoder::new(BAD, None).unwrap_err(), TableError::Overlap("A", "B", 0x10));
        static MIS: &[RegSpec] = &[rw("C", 0x104, 1)];
        assert!(matches!(BlockDecoder::new(MIS, Some(0x100)), Err(TableError::Misplaced("C", _))));
    }
}
