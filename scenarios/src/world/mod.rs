//! The simulated world of one node: the device model, its host memory, and the remote sender at
//! the other end of the link ([`World`]). Packets the driver sends through PIO go to the remote
//! peer; its answers go onto the link. The in-process transport ([`inproc`]) drives a `World`
//! directly; `hfi-sim serve` ([`serve`]) serves the same device model over a vfio-user socket.
//!
//! Around it, everything a node in process is made of:
//!
//! - [`node`]: one receiving endpoint (the driver's generic `driver::endpoint::Endpoint`) over
//!   the in-process transport or the socket, with the world's hooks (host-cost ledger, trace);
//! - [`process`]: the simulated user process whose buffers receive the data;
//! - [`host_costs`]: host-side costs on the simulated clock;
//! - [`dma_watch`]: the DMA oracle;
//! - [`link_faults`]: packet faults on the link;
//! - [`trace`]: the run's trace log (Chrome/Perfetto JSON).

pub mod dma_watch;
pub mod host_costs;
pub mod inproc;
pub mod link_faults;
pub mod node;
pub mod process;
pub mod serve;
pub mod trace;

pub use inproc::InProcTransport;

use std::sync::Arc;

use hfi_model::remote::RemotePeer;
use hfi_model::{Dest, DeviceConfig, HfiDevice, Peer, PeerConfig, SimTime};
use vm_memory::GuestMemoryMmap;

/// Host memory type of the in-process world.
pub type Mem = Arc<GuestMemoryMmap>;

/// Device + memory + remote peer.
#[derive(Debug)]
pub struct World {
    /// The device.
    pub dev: HfiDevice<Mem>,
    /// Host memory (DMA target).
    pub mem: Mem,
    /// The remote sender.
    pub remote: RemotePeer,
    /// Remote-peer protocol errors (a CTS it could not answer).
    pub remote_errors: u64,
    /// Packet faults applied on the link (fault injection).
    pub link_faults: Vec<crate::world::link_faults::PacketFault>,
    /// Arrival times of the expected packets of each message (for "after N packets").
    pub arrivals: std::collections::BTreeMap<u32, Vec<SimTime>>,
    /// Fault injection: this many of the next interrupts are lost on the way to the host.
    pub lose_interrupts: u32,
    /// Interrupts lost so far.
    pub lost_interrupts: u64,
}

/// Why a world could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The device configuration was rejected.
    #[error("Device configuration rejected")]
    Device(#[from] hfi_model::DeviceError),
    /// The peer configuration was rejected.
    #[error("Peer configuration rejected")]
    Peer(#[from] hfi_model::PeerError),
    /// Host memory could not be mapped.
    #[error("Host memory of {0} bytes could not be mapped")]
    Memory(usize),
}

impl World {
    /// A world with `mem_bytes` of host memory at address 0.
    pub fn new(
        cfg: DeviceConfig,
        peer: PeerConfig,
        rndv_threshold: usize,
        mem_bytes: usize,
    ) -> Result<Self, WorldError> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(vm_memory::GuestAddress(0), mem_bytes)])
            .map_err(|_| WorldError::Memory(mem_bytes))?;
        let mem = Arc::new(mem);
        let dev = HfiDevice::new(cfg, mem.clone())?;
        let remote = RemotePeer::new(Peer::new(peer)?, rndv_threshold);
        Ok(Self {
            dev,
            mem,
            remote,
            remote_errors: 0,
            link_faults: Vec::new(),
            arrivals: std::collections::BTreeMap::new(),
            lose_interrupts: 0,
            lost_interrupts: 0,
        })
    }

    /// Hands what the driver sent to the remote peer and its answers to the link.
    pub fn pump(&mut self) {
        for tx in self.dev.take_tx_packets() {
            match self.remote.on_packet(&tx.bytes) {
                Ok(pk) => {
                    let pk = if self.link_faults.is_empty() {
                        pk
                    } else {
                        crate::world::link_faults::apply(&mut self.link_faults, pk)
                    };
                    for p in pk {
                        let msg = hfi_abi::psm::PsmHeader::decode(p.header())
                            .filter(|h| h.opcode == hfi_abi::wire::opcode::EXPTID)
                            .map(|h| h.msg_id);
                        let at = self.dev.link_send_at(tx.time, p);
                        if let Some(m) = msg {
                            self.arrivals.entry(m).or_default().push(at);
                        }
                    }
                }
                Err(_) => self.remote_errors += 1,
            }
        }
    }

    /// The remote application posts a send to `dest`.
    pub fn post_send(&mut self, dest: Dest, data: Arc<[u8]>) {
        for p in self.remote.post_send(dest, data) {
            self.dev.link_send(p);
        }
    }

    /// Advances simulated time to the next event (or by `max_ns`), pumping the remote peer;
    /// returns the interrupt vectors signalled.
    pub fn advance(&mut self, max_ns: u64) -> Vec<u16> {
        self.pump();
        let limit = self.dev.now().plus(max_ns.saturating_mul(1000));
        match self.dev.next_event_time() {
            Some(t) if t <= limit => {
                self.dev.step_until(t);
            }
            _ => {
                self.dev.step_until(limit);
            }
        }
        self.pump();
        self.take_irqs()
    }

    /// Takes the signalled vectors, minus the interrupts a fault loses.
    fn take_irqs(&mut self) -> Vec<u16> {
        let v = self.dev.take_interrupts();
        if !v.is_empty() && self.lose_interrupts > 0 {
            self.lose_interrupts -= 1;
            self.lost_interrupts += 1;
            return Vec::new();
        }
        v
    }

    /// Runs the device until an interrupt reaches the host or `max_ns` passed (interrupt-driven
    /// receive: the driver sleeps until then).
    pub fn wait_for_interrupt(&mut self, max_ns: u64) -> Vec<u16> {
        let limit = self.dev.now().plus(max_ns.saturating_mul(1000));
        loop {
            self.pump();
            match self.dev.next_event_time() {
                Some(t) if t <= limit => {
                    self.dev.step_until(t);
                    let v = self.take_irqs();
                    if !v.is_empty() {
                        self.pump();
                        return v;
                    }
                }
                _ => {
                    self.dev.step_until(limit);
                    self.pump();
                    return self.take_irqs();
                }
            }
        }
    }

    /// Lets the device run for `ps` picoseconds (the host is busy meanwhile).
    pub fn run_for_ps(&mut self, ps: u64) {
        self.pump();
        let limit = self.dev.now().plus(ps);
        self.dev.step_until(limit);
        self.pump();
    }

    /// Current simulated time.
    pub fn now(&self) -> SimTime {
        self.dev.now()
    }
}
