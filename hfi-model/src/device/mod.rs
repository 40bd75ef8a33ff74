//! `HfiDevice`: one WFR HFI. It owns the CSRs, the RcvArray, the receive contexts, the
//! interrupt state, the timing model and the event queue, and performs DMA only through
//! vm-memory. The runner owns time: it injects packets, calls [`HfiDevice::step_until`] and
//! reads or writes CSRs between steps.
//!
//! Here: configuration, construction, reset and the runner's API. [`mmio`]: BAR0 entry and
//! dispatch to the register tables; [`chip`]: behaviour behind the chip CSRs (SBus, 8051,
//! LCB/DCC); `rx`: the receive datapath (arrival, engine decision, write-back,
//! interrupt moderation); `tx`: the send contexts and SDMA engines behind their CSR blocks and
//! the PIO space, and the application of their effects (DMA writes, interrupts, packets to
//! the link or, in LCB loopback, to the receive side).

pub mod chip;
pub mod mmio;
mod rx;
mod tx;

use hfi_abi::{bar0, cce, rxe};
use rcvarray::RcvArrayStore;
use serde::{Deserialize, Serialize};
use vm_memory::GuestAddressSpace;

use crate::counters::Counters;
use crate::device::chip::ChipState;
use crate::dma::{Dma, DmaObserver};
use crate::receive::context::RcvContext;
use crate::receive::engine::Delivery;
use crate::regs::chip::CHIP_REGS;
use crate::regs::csr_file::{BlockCensus, CsrFile, CsrTouch};

/// Most RcvArray log records kept (a full hfi1 probe writes about 20 000).
pub const RCV_ARRAY_LOG_MAX: usize = 1 << 20;
use crate::events::{EventQueue, Slab};
use crate::irq::IntState;
use crate::packet::Packet;
use crate::regs::{Decoders, TableError, GLOBAL_REGS};
use crate::time::SimTime;
use crate::timing::{TimingModel, TimingParams};
use crate::transmit::pio::{PioSend, TxPacket};

/// Whether payload bytes are copied into host memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataMode {
    /// Every byte is written (functional correctness).
    #[default]
    Full,
    /// Headers, RHQ entries and all checks as usual, but payload bytes are not copied (timing
    /// studies at header-processing speed).
    HeaderOnly,
}

/// Static device configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Receive contexts (RCV_CONTEXTS), 1..=160.
    pub num_contexts: u32,
    /// RcvArray entries (RCV_ARRAY_CNT), a multiple of 8, 8..=131072.
    pub rcv_array_cnt: u32,
    /// CCE_REVISION.ChipRevMinor (0x10 = B-step, so hfi1's `is_ax()` is false).
    pub chip_rev_minor: u8,
    /// CCE_REVISION.ChipRevMajor.
    pub chip_rev_major: u8,
    /// CCE_REVISION2.ImplRevision.
    pub impl_revision: u8,
    /// Send contexts (SEND_CONTEXTS), 1..=160.
    pub send_contexts: u32,
    /// SDMA engines (SEND_DMA_ENGINES), 1..=16.
    pub sdma_engines: u32,
    /// PIO send buffer memory in bytes (SEND_PIO_MEM_SIZE): a multiple of 64, at most 1 MiB
    /// (SendCtxtCtrl.CtxtBase counts 64-byte blocks in 14 bits).
    pub pio_mem_size: u64,
    /// SDMA buffer memory in bytes (SEND_DMA_MEM_SIZE): a multiple of 64.
    pub sdma_mem_size: u64,
    /// Node GUID (DC_DC8051_CFG_LOCAL_GUID), non-zero. Bit 39 (which HFI of a dual ASIC)
    /// stays 0: the model is HFI 0 (CCE_REVISION2.HfiId = 0).
    pub node_guid: u64,
    /// Payload copy mode.
    pub data_mode: DataMode,
    /// Packets a context may hold back while DontDrop is set before further ones are dropped.
    pub backlog_limit: usize,
    /// Timing parameters.
    pub timing: TimingParams,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            num_contexts: 160,
            rcv_array_cnt: 65536,
            chip_rev_minor: 0x10,
            chip_rev_major: 0,
            impl_revision: 0,
            send_contexts: 160,
            sdma_engines: 16,
            pio_mem_size: DEFAULT_PIO_MEM_SIZE,
            sdma_mem_size: DEFAULT_SDMA_MEM_SIZE,
            node_guid: DEFAULT_NODE_GUID,
            data_mode: DataMode::Full,
            backlog_limit: 4096,
            timing: TimingParams::default(),
        }
    }
}

/// Default SEND_PIO_MEM_SIZE: 192 KiB = 3072 blocks of 64 bytes (**choice**: hfi1 divides
/// whatever it reads among its send contexts; this leaves every default context more than the
/// 32-block minimum of an ACK context).
pub const DEFAULT_PIO_MEM_SIZE: u64 = 192 << 10;
/// Default SEND_DMA_MEM_SIZE: 256 KiB = 256 blocks of 64 bytes per engine with 16 engines
/// (**choice**).
pub const DEFAULT_SDMA_MEM_SIZE: u64 = 256 << 10;
/// Default node GUID: Intel's Omni-Path OUI 00:11:75 in bits 63:40, HFI index bit 39 clear
/// (**choice**).
pub const DEFAULT_NODE_GUID: u64 = 0x0011_7501_0000_0001;

/// Why a device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The configuration is outside what the chip allows.
    #[error("Invalid device configuration: {0}")]
    InvalidConfig(&'static str),
    /// The register tables are inconsistent (a bug).
    #[error("Register table error")]
    Table(#[from] TableError),
}

pub(crate) enum Event {
    Arrive(u32),
    Writeback(u32),
    Timer {
        ctxt: u32,
        gen: u64,
    },
    /// A transmit unit's interrupt source comes due.
    TxInterrupt(u64),
    /// A transmit unit's DMA write (credit return, SDMA head) comes due.
    TxDma {
        addr: u64,
        value: u64,
        kind: crate::transmit::TxDmaKind,
    },
}

/// A packet inside the device and, once decided, the plan of its DMA writes.
struct InFlight {
    pkt: Packet,
    plan: Option<Delivery>,
}

/// Slots of global registers the engine reads on its fast paths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GlobalSlots {
    pub bth_qp: usize,
    pub int_mask: usize,
    pub int_map: usize,
    pub rcv_err_status: usize,
}

/// One modelled HFI (receive side).
pub struct HfiDevice<M: GuestAddressSpace> {
    pub(crate) cfg: DeviceConfig,
    pub(crate) dec: Decoders,
    pub(crate) global: Vec<u64>,
    pub(crate) chip: Vec<u64>,
    pub(crate) chip_state: ChipState,
    pub(crate) csr: CsrFile,
    pub(crate) gslots: GlobalSlots,
    pub(crate) ctxts: Vec<RcvContext>,
    pub(crate) rcv_array: RcvArrayStore,
    pub(crate) rcv_array_latch: Option<(u32, u32)>,
    /// Every stored RcvArray write `(index, entry)` and every reset `(u32::MAX, 0)`, when
    /// recording (the differential check against the upstream driver); survives resets.
    pub(crate) rcv_array_log: Option<Vec<(u32, u64)>>,
    pub(crate) ints: IntState,
    pub(crate) rbuf_init_done: bool,
    dma: Dma<M>,
    observer: Option<Box<dyn DmaObserver>>,
    timing: TimingModel,
    queue: EventQueue<Event>,
    packets: Slab<InFlight>,
    pub(crate) pio: PioSend,
    /// Send contexts and SDMA engines (`device/tx.rs`).
    pub(crate) tx: tx::TxState,
    pub(crate) now: SimTime,
    pub(crate) counters: Counters,
}

impl<M: GuestAddressSpace> std::fmt::Debug for HfiDevice<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfiDevice")
            .field("now", &self.now)
            .field("num_contexts", &self.cfg.num_contexts)
            .field("queued_events", &self.queue.len())
            .finish()
    }
}

fn slot_of(dec: &Decoders, off: u64) -> Result<usize, DeviceError> {
    dec.global
        .decode(off)
        .map(|s| usize::from(s.slot))
        .ok_or(DeviceError::InvalidConfig("register table lacks a required register"))
}

impl<M: GuestAddressSpace> HfiDevice<M> {
    /// A device in its reset state, DMAing into `mem`.
    pub fn new(cfg: DeviceConfig, mem: M) -> Result<Self, DeviceError> {
        if cfg.num_contexts == 0 || u64::from(cfg.num_contexts) > rxe::RXE_NUM_CONTEXTS {
            return Err(DeviceError::InvalidConfig("num_contexts must be 1..=160"));
        }
        if cfg.rcv_array_cnt < 8 || cfg.rcv_array_cnt % 8 != 0 || cfg.rcv_array_cnt > 131_072 {
            return Err(DeviceError::InvalidConfig(
                "rcv_array_cnt must be a multiple of 8 in 8..=131072",
            ));
        }
        if cfg.send_contexts == 0 || u64::from(cfg.send_contexts) > bar0::TXE_PER_CONTEXT.count {
            return Err(DeviceError::InvalidConfig("send_contexts must be 1..=160"));
        }
        if cfg.sdma_engines == 0 || u64::from(cfg.sdma_engines) > bar0::TXE_PER_SDMA.count {
            return Err(DeviceError::InvalidConfig("sdma_engines must be 1..=16"));
        }
        let block = hfi_abi::txe::PIO_BLOCK_SIZE;
        if cfg.pio_mem_size < 2 * block
            || cfg.pio_mem_size % block != 0
            || cfg.pio_mem_size > 1 << 20
        {
            return Err(DeviceError::InvalidConfig(
                "pio_mem_size must be a multiple of 64 bytes in 128..=1 MiB",
            ));
        }
        if cfg.sdma_mem_size == 0 || cfg.sdma_mem_size % hfi_abi::txe::SDMA_BLOCK_SIZE != 0 {
            return Err(DeviceError::InvalidConfig(
                "sdma_mem_size must be a non-zero multiple of 64",
            ));
        }
        if cfg.node_guid == 0 {
            return Err(DeviceError::InvalidConfig("node_guid must be non-zero"));
        }
        let dec = Decoders::new()?;
        let gslots = GlobalSlots {
            bth_qp: slot_of(&dec, rxe::RCV_BTH_QP)?,
            int_mask: slot_of(&dec, cce::CCE_INT_MASK.base)?,
            int_map: slot_of(&dec, cce::CCE_INT_MAP.base)?,
            rcv_err_status: slot_of(&dec, rxe::RCV_ERR_STATUS)?,
        };
        let global = dec.global.reset_values(GLOBAL_REGS);
        let chip = dec.chip.reset_values(CHIP_REGS);
        let ctxts = (0..cfg.num_contexts).map(|_| RcvContext::default()).collect();
        let rcv_array = RcvArrayStore::new(cfg.rcv_array_cnt);
        let timing = TimingModel::new(cfg.timing.clone());
        let tx = tx::TxState::new(cfg.send_contexts, cfg.sdma_engines);
        Ok(Self {
            cfg,
            dec,
            global,
            chip,
            chip_state: ChipState::default(),
            csr: CsrFile::new(),
            gslots,
            ctxts,
            rcv_array,
            rcv_array_latch: None,
            rcv_array_log: None,
            ints: IntState::default(),
            rbuf_init_done: false,
            dma: Dma::new(mem),
            observer: None,
            timing,
            queue: EventQueue::default(),
            packets: Slab::default(),
            pio: PioSend::default(),
            tx,
            now: SimTime::ZERO,
            counters: Counters::default(),
        })
    }

    /// Device reset (FLR / DEVICE_RESET): every CSR (modelled or generic), context, RcvArray
    /// entry and queued event goes back to its reset state. Time, counters and the CSR census
    /// are kept.
    pub fn reset(&mut self) {
        self.global = self.dec.global.reset_values(GLOBAL_REGS);
        self.chip = self.dec.chip.reset_values(CHIP_REGS);
        self.chip_state = ChipState::default();
        self.csr.reset();
        for c in &mut self.ctxts {
            *c = RcvContext::default();
        }
        self.rcv_array.reset();
        self.rcv_array_latch = None;
        if let Some(log) = &mut self.rcv_array_log {
            log.push((u32::MAX, 0));
        }
        self.ints = IntState::default();
        self.rbuf_init_done = false;
        self.queue.clear();
        self.packets.clear();
        self.pio = PioSend::default();
        self.tx = tx::TxState::new(self.cfg.send_contexts, self.cfg.sdma_engines);
        self.timing.reset();
        self.counters.reset_count += 1;
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// Current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Every CSR offset read or written since the device was created (the census of
    /// [`crate::regs::csr_file`]), in offset order.
    pub fn csr_touched(&self) -> Vec<CsrTouch> {
        self.csr.touched()
    }

    /// The CSR census per BAR0 block.
    pub fn csr_census(&self) -> std::collections::BTreeMap<&'static str, BlockCensus> {
        self.csr.census()
    }

    /// Non-zero generic CSRs currently held.
    pub fn generic_csrs_stored(&self) -> usize {
        self.csr.stored()
    }

    /// The 8051 stub's last command type (reports, tests).
    pub fn dc8051_last_command(&self) -> Option<u64> {
        self.chip_state.dc8051.last_type()
    }

    /// The RcvArray (oracle, tests).
    pub fn rcv_array(&self) -> &RcvArrayStore {
        &self.rcv_array
    }

    /// A receive context (oracle, tests).
    pub fn context(&self, ctxt: u32) -> Option<&RcvContext> {
        self.ctxts.get(ctxt as usize)
    }

    /// The DMA target memory.
    pub fn memory(&self) -> &M {
        self.dma.memory()
    }

    /// Installs an observer that sees every DMA write before it lands.
    pub fn set_dma_observer(&mut self, obs: Option<Box<dyn DmaObserver>>) {
        self.observer = obs;
    }

    /// Takes the MSI-X vectors signalled since the last call (ascending).
    pub fn take_interrupts(&mut self) -> Vec<u16> {
        std::mem::take(&mut self.ints.pending).into_iter().collect()
    }

    /// True if a vector was signalled and not yet taken.
    pub fn interrupt_pending(&self) -> bool {
        !self.ints.pending.is_empty()
    }

    /// Takes the packets sent (PIO capture, enabled send contexts, SDMA engines) since the last
    /// call, in send order; packets looped back in LCB loopback are not here.
    pub fn take_tx_packets(&mut self) -> Vec<TxPacket> {
        std::mem::take(&mut self.pio.tx)
    }

    /// Time of the next queued event.
    pub fn next_event_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }

    /// Number of queued events (packets in flight, timers).
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }

    /// The link peer hands a packet to the link at the current time: it arrives after link
    /// serialization (FIFO behind earlier packets) and the fixed link latency.
    pub fn link_send(&mut self, pkt: Packet) -> SimTime {
        self.link_send_at(self.now, pkt)
    }

    /// As [`Self::link_send`], handed to the link at `t` (not before the current time).
    pub fn link_send_at(&mut self, t: SimTime, pkt: Packet) -> SimTime {
        let t = t.max(self.now);
        let arrive = self.timing.link_arrival(t, pkt.wire_len() as u64);
        let h = self.packets.insert(InFlight { pkt, plan: None });
        self.queue.schedule(arrive, Event::Arrive(h));
        arrive
    }

    /// Processes every event due at or before `t`, then sets the clock to `t` (time never goes
    /// backwards). Returns the number of events processed.
    pub fn step_until(&mut self, t: SimTime) -> usize {
        let mut n = 0;
        while let Some((et, ev)) = self.queue.pop_due(t) {
            self.now = self.now.max(et);
            self.handle(ev);
            n += 1;
        }
        self.now = self.now.max(t);
        n
    }

    /// Processes events until the queue is empty; returns the time of the last one.
    pub fn run_until_idle(&mut self) -> SimTime {
        while let Some((et, ev)) = self.queue.pop_due(SimTime(u64::MAX)) {
            self.now = self.now.max(et);
            self.handle(ev);
        }
        self.now
    }

    /// Receives one packet at the current time and completes it immediately, bypassing the
    /// link. Used by benches and functional tests; timing still accounts pipeline and PCIe.
    pub fn receive_now(&mut self, pkt: Packet) {
        let h = self.packets.insert(InFlight { pkt, plan: None });
        self.arrive(h);
        self.run_until_idle();
    }

    /// Packets inside the device (in flight or held back).
    pub fn packets_in_device(&self) -> usize {
        self.packets.len()
    }

    pub(crate) fn raise_source(&mut self, src: u64) {
        let mask = self.global.get(self.gslots.int_mask..self.gslots.int_mask + 12).unwrap_or(&[]);
        let map = self.global.get(self.gslots.int_map..self.gslots.int_map + 96).unwrap_or(&[]);
        self.ints.raise(src, mask, map, &mut self.counters);
    }

    /// Starts (or stops) recording RcvArray writes and resets; a recording in progress is
    /// kept when turned on again. At most [`RCV_ARRAY_LOG_MAX`] records are kept.
    pub fn record_rcv_array(&mut self, on: bool) {
        if !on {
            self.rcv_array_log = None;
        } else if self.rcv_array_log.is_none() {
            self.rcv_array_log = Some(Vec::new());
        }
    }

    /// The recorded RcvArray writes and resets, in order.
    pub fn rcv_array_log(&self) -> &[(u32, u64)] {
        self.rcv_array_log.as_deref().unwrap_or(&[])
    }

    /// BAR0 size.
    pub const BAR0_SIZE: u64 = bar0::BAR0_SIZE;
}
