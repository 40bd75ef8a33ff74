//! The user library's receive side (PSM-like): posted receives, eager messages copied out of
//! eager buffers, and rendezvous: on a LONG_RTS the receiver acquires TIDs for one window from
//! the TID cache, programs a TID flow, sends a LONG_CTS with the tidlist through its PIO send
//! context, and completes the window when the last packet's header arrives (PSM never
//! suppresses it); then it releases the TIDs and grants the next window.

use std::collections::BTreeMap;

use hfi_abi::psm::{Cts, PsmHeader};
use hfi_abi::wire::{self, opcode};
use hfi_abi::{rxe, Kdeth0, RcvType};
use serde::Serialize;

use crate::hw::rcvarray_mmio::MmioRcvArray;
use crate::hw::{Hfi, HwError, PioSender, RcvCtxt, RxEntry};
use crate::tid::{FdBinding, TidContext};
use crate::transport::Transport;
use crate::user::{Acquired, RndvConfig, TidCache};

/// The process side the receiver needs: its memory for pinning, and writes into its buffers
/// (eager copy-out).
pub trait UserProcess {
    /// The process memory as the TID code pins it.
    fn pin_dma(&mut self) -> &mut dyn mmu::PinDma;
    /// Writes `data` at user address `va`; false if the range is not mapped.
    fn write_user(&mut self, va: u64, data: &[u8]) -> bool;
}

/// Receive failures that stop the receiver (per-message failures are [`Completion`]s).
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The hardware layer failed.
    #[error("Hardware access failed")]
    Hw(#[from] HwError),
}

/// How a message ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Completion {
    /// Message id.
    pub msg_id: u32,
    /// True when every byte was placed.
    pub ok: bool,
    /// Bytes placed.
    pub bytes: u64,
    /// Why it failed (empty on success).
    pub reason: String,
}

/// Receiver counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecvStats {
    /// RHQ entries handled.
    pub rhq_entries: u64,
    /// Eager packets copied out.
    pub eager_packets: u64,
    /// Rendezvous requests seen.
    pub rts: u64,
    /// CTS grants sent.
    pub cts_sent: u64,
    /// Windows completed.
    pub windows: u64,
    /// Expected packets reported with RHF.TidErr.
    pub tid_errors: u64,
    /// Expected packets reported with a TID-flow error.
    pub flow_errors: u64,
    /// Window grants postponed because the cache had no room (NoProgress).
    pub no_progress: u64,
    /// Entries for messages that were not posted (dropped).
    pub unexpected: u64,
    /// Messages completed.
    pub completed: u64,
    /// Messages failed.
    pub failed: u64,
    /// TID releases the cache reported as failed (TID_FREE errors).
    pub release_errors: u64,
}

#[derive(Debug)]
struct Window {
    off: u64,
    len: u64,
    acquired: Acquired,
}

#[derive(Debug)]
struct Recv {
    va: u64,
    len: u64,
    msg_len: Option<u64>,
    placed: u64,
    window: Option<Window>,
    rndv: bool,
    failed: Option<String>,
}

/// Where the sender lives (the CTS destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr {
    /// Receive context of the remote peer.
    pub ctxt: u32,
    /// Its LID.
    pub lid: u16,
    /// Our LID.
    pub own_lid: u16,
}

/// The receive side of one endpoint (one context, one subcontext fd).
#[derive(Debug)]
pub struct Receiver {
    /// The hardware context.
    pub ctx: RcvCtxt,
    /// The PIO send context used for CTS grants.
    pub pio: PioSender,
    /// The TID cache.
    pub cache: TidCache,
    cfg: RndvConfig,
    remote: RemoteAddr,
    recvs: BTreeMap<u32, Recv>,
    flow_gen: [u32; 32],
    flow_owner: [Option<u32>; 32],
    /// Counters.
    pub stats: RecvStats,
}

/// Everything a receiver call needs besides itself.
pub struct Env<'a, T: Transport> {
    /// The device.
    pub hfi: &'a mut Hfi<T>,
    /// The kernel-side TID state of the context.
    pub tid: &'a mut TidContext,
    /// This endpoint's fd (subcontext).
    pub fd: u32,
    /// The process.
    pub proc: &'a mut dyn UserProcess,
}

impl<T: Transport> std::fmt::Debug for Env<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("fd", &self.fd).finish()
    }
}

impl Receiver {
    /// A receiver on an enabled context.
    pub fn new(
        ctx: RcvCtxt,
        cache: TidCache,
        cfg: RndvConfig,
        send_ctxt: u32,
        remote: RemoteAddr,
    ) -> Self {
        Self {
            ctx,
            pio: PioSender::new(send_ctxt),
            cache,
            cfg,
            remote,
            recvs: BTreeMap::new(),
            flow_gen: [0; 32],
            flow_owner: [None; 32],
            stats: RecvStats::default(),
        }
    }

    /// Posts a receive of up to `len` bytes into `[va, va + len)` for message `msg_id`.
    pub fn post_recv(&mut self, msg_id: u32, va: u64, len: u64) {
        self.recvs.insert(
            msg_id,
            Recv { va, len, msg_len: None, placed: 0, window: None, rndv: false, failed: None },
        );
    }

    /// Posts a receive for message `msg_id` and asks the remote application to send it:
    /// `len` bytes of `hfi_abi::psm::pattern(seed, msg_id, ..)`, through the PIO send context.
    pub fn request<T: Transport>(
        &mut self,
        env: &mut Env<'_, T>,
        msg_id: u32,
        va: u64,
        len: u32,
        seed: u32,
    ) -> Result<(), RecvError> {
        self.post_recv(msg_id, va, u64::from(len));
        let mut hdr = self.control_header(hfi_abi::psm::OPCODE_SEND_REQUEST, msg_id, seed, len, 0);
        hdr.connidx = self.ctx.ctxt | (env.fd << 8);
        self.pio.send(env.hfi.transport(), &hdr.encode()).map_err(HwError::from)?;
        Ok(())
    }

    /// The window in flight for message `msg_id`: `(offset, length)`.
    pub fn window(&self, msg_id: u32) -> Option<(u64, u64)> {
        self.recvs.get(&msg_id).and_then(|r| r.window.as_ref()).map(|w| (w.off, w.len))
    }

    /// The header of a control packet to the remote peer (send request, CTS): no TID, KVer 2.
    fn control_header(
        &self,
        op: u8,
        msg_id: u32,
        offset: u32,
        len: u32,
        payload_len: u32,
    ) -> PsmHeader {
        PsmHeader {
            opcode: op,
            dlid: self.remote.lid,
            slid: self.remote.own_lid,
            pkey: 0xFFFF,
            kdeth_qp: rxe::DEFAULT_KDETH_QP as u32,
            ctxt: self.remote.ctxt,
            kdeth0: Kdeth0::new(0, 0, 0, false, false, false),
            msg_id,
            msg_offset: offset,
            msg_len: len,
            payload_len,
            ..PsmHeader::default()
        }
    }

    /// Receives still in progress.
    pub fn pending(&self) -> usize {
        self.recvs.len()
    }

    /// Tears the endpoint down as a closing process does: the TID cache frees its TIDs, the
    /// fd's kernel state is released (hfi1's close), and the context is disabled with all its
    /// RcvArray entries invalidated.
    pub fn shutdown<T: Transport>(
        &mut self,
        hfi: &mut Hfi<T>,
        tid: &mut TidContext,
        fd: u32,
        mm: &mut dyn mmu::PinDma,
    ) -> Result<(), HwError> {
        let mut wc = self.ctx.wc;
        {
            let mut hw = MmioRcvArray::new(hfi.transport(), &mut wc);
            let mut b = FdBinding { ctx: &mut *tid, fd, hw: &mut hw, mm: &mut *mm };
            let _ = self.cache.cleanup(&mut b);
        }
        {
            let mut hw = MmioRcvArray::new(hfi.transport(), &mut wc);
            tid.close(fd, &mut hw, mm);
        }
        self.ctx.wc = wc;
        hfi.close_context(&mut self.ctx)
    }

    /// Handles every new RHQ entry, grants windows that are due, and returns the messages that
    /// ended.
    pub fn progress<T: Transport>(
        &mut self,
        env: &mut Env<'_, T>,
    ) -> Result<Vec<Completion>, RecvError> {
        let entries = env.hfi.poll(&mut self.ctx, 256)?;
        for e in entries {
            self.stats.rhq_entries += 1;
            self.handle(env, &e)?;
        }
        let ids: Vec<u32> = self.recvs.keys().copied().collect();
        for id in ids {
            self.grant_if_due(env, id)?;
        }
        Ok(self.reap(env))
    }

    fn handle<T: Transport>(&mut self, env: &mut Env<'_, T>, e: &RxEntry) -> Result<(), RecvError> {
        let Some(h) = PsmHeader::decode(&e.hdr) else {
            self.stats.unexpected += 1;
            return Ok(());
        };
        let hdr_dws = self.ctx.cfg.hdr_dws;
        let Some(r) = self.recvs.get_mut(&h.msg_id) else {
            self.stats.unexpected += 1;
            return Ok(());
        };
        match (e.rhf.rcv_type(), h.opcode) {
            (Some(RcvType::Eager), opcode::EAGER) => {
                self.stats.eager_packets += 1;
                r.msg_len = Some(u64::from(h.msg_len));
                let Some(p) = &e.payload else {
                    r.failed
                        .get_or_insert_with(|| "eager payload dropped (eager ring full)".into());
                    return Ok(());
                };
                let end = u64::from(h.msg_offset) + p.len() as u64;
                if end > r.len {
                    r.failed.get_or_insert_with(|| {
                        "eager message longer than the posted buffer".into()
                    });
                } else if !env.proc.write_user(r.va + u64::from(h.msg_offset), p) {
                    r.failed.get_or_insert_with(|| "eager copy into an unmapped buffer".into());
                } else {
                    r.placed += p.len() as u64;
                }
            }
            (Some(RcvType::Eager), opcode::LONG_RTS) => {
                self.stats.rts += 1;
                r.rndv = true;
                r.msg_len = Some(u64::from(h.msg_len));
                if u64::from(h.msg_len) > r.len {
                    r.failed.get_or_insert_with(|| {
                        "rendezvous message longer than the posted buffer".into()
                    });
                }
            }
            (Some(RcvType::Expected), _) => {
                if e.rhf.tid_err() {
                    self.stats.tid_errors += 1;
                    r.failed.get_or_insert_with(|| "expected packet with a TID error".into());
                } else if e.rhf.rcv_type_err() != 0 {
                    self.stats.flow_errors += 1;
                    r.failed.get_or_insert_with(|| "expected packet with a TID-flow error".into());
                } else if let Some(w) = &r.window {
                    let end = u64::from(h.msg_offset) + e.payload_len(hdr_dws) as u64;
                    if end >= w.off + w.len {
                        self.stats.windows += 1;
                        r.placed += w.len;
                        if let Some(w) = r.window.take() {
                            let fd = env.fd;
                            let mut wc = self.ctx.wc;
                            let mut hw = MmioRcvArray::new(env.hfi.transport(), &mut wc);
                            let mut b =
                                FdBinding { ctx: env.tid, fd, hw: &mut hw, mm: env.proc.pin_dma() };
                            if self.cache.release(&mut b, &w.acquired).is_err() {
                                self.stats.release_errors += 1;
                            }
                            self.ctx.wc = wc;
                        }
                        let flow = (h.flow as usize).min(31);
                        if let Some(o) = self.flow_owner.get_mut(flow) {
                            *o = None;
                        }
                    }
                }
            }
            _ => {
                if e.rhf.has_error() {
                    r.failed.get_or_insert_with(|| "packet with an RHF error".into());
                } else {
                    self.stats.unexpected += 1;
                }
            }
        }
        Ok(())
    }

    fn grant_if_due<T: Transport>(
        &mut self,
        env: &mut Env<'_, T>,
        id: u32,
    ) -> Result<(), RecvError> {
        let Some(r) = self.recvs.get(&id) else { return Ok(()) };
        let Some(msg_len) = r.msg_len else { return Ok(()) };
        if !r.rndv || r.window.is_some() || r.failed.is_some() || r.placed >= msg_len {
            return Ok(());
        }
        let Some(flow) = self.flow_owner.iter().position(Option::is_none) else { return Ok(()) };
        let off = r.placed;
        let want = (msg_len - off).min(u64::from(self.cfg.window)) as u32;
        let va = r.va + off;
        let fd = env.fd;
        let mut wc = self.ctx.wc;
        let acq = {
            let mut hw = MmioRcvArray::new(env.hfi.transport(), &mut wc);
            let mut b = FdBinding { ctx: env.tid, fd, hw: &mut hw, mm: env.proc.pin_dma() };
            self.cache.acquire(&mut b, va, want)
        };
        self.ctx.wc = wc;
        let acquired = match acq {
            Ok(a) if a.length > 0 => a,
            Ok(_) | Err(crate::user::CacheError::NoProgress) => {
                self.stats.no_progress += 1;
                return Ok(());
            }
            Err(e) => {
                if let Some(r) = self.recvs.get_mut(&id) {
                    r.failed = Some(format!("TID registration failed: {e}"));
                }
                return Ok(());
            }
        };
        let len = u64::from(acquired.length);
        let gen = self.flow_gen.get(flow).copied().unwrap_or(0);
        if let Some(g) = self.flow_gen.get_mut(flow) {
            *g = (gen + 1) & 0xF_FFFF;
        }
        if self.ctx.cfg.tid_flows {
            env.hfi.set_tid_flow(&self.ctx, flow as u32, gen, 0)?;
        }
        let cts = Cts {
            tid_offset: acquired.tid_offset,
            flow: flow as u32,
            gen,
            seq: 0,
            tids: acquired.tids.clone(),
        };
        let payload = cts.encode();
        let hdr =
            self.control_header(opcode::LONG_CTS, id, off as u32, len as u32, payload.len() as u32);
        let mut pkt = hdr.encode().to_vec();
        pkt.extend_from_slice(&payload);
        pkt.resize(pkt.len().next_multiple_of(4), 0);
        debug_assert_eq!(wire::PSM_PACKET_HDR_BYTES, 56);
        self.pio.send(env.hfi.transport(), &pkt).map_err(HwError::from)?;
        self.stats.cts_sent += 1;
        if let Some(o) = self.flow_owner.get_mut(flow) {
            *o = Some(id);
        }
        if let Some(r) = self.recvs.get_mut(&id) {
            r.window = Some(Window { off, len, acquired });
        }
        Ok(())
    }

    /// Removes ended messages (done, or failed with no window in flight... or failed with one:
    /// its TIDs are released first).
    fn reap<T: Transport>(&mut self, env: &mut Env<'_, T>) -> Vec<Completion> {
        let ended: Vec<u32> = self
            .recvs
            .iter()
            .filter(|(_, r)| r.failed.is_some() || r.msg_len.is_some_and(|l| r.placed >= l))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in ended {
            let Some(mut r) = self.recvs.remove(&id) else { continue };
            if let Some(w) = r.window.take() {
                let fd = env.fd;
                let mut wc = self.ctx.wc;
                let mut hw = MmioRcvArray::new(env.hfi.transport(), &mut wc);
                let mut b = FdBinding { ctx: env.tid, fd, hw: &mut hw, mm: env.proc.pin_dma() };
                if self.cache.release(&mut b, &w.acquired).is_err() {
                    self.stats.release_errors += 1;
                }
                self.ctx.wc = wc;
                for o in self.flow_owner.iter_mut() {
                    if *o == Some(id) {
                        *o = None;
                    }
                }
            }
            let ok = r.failed.is_none();
            if ok {
                self.stats.completed += 1;
            } else {
                self.stats.failed += 1;
            }
            out.push(Completion {
                msg_id: id,
                ok,
                bytes: r.placed,
                reason: r.failed.unwrap_or_default(),
            });
        }
        out
    }
}
