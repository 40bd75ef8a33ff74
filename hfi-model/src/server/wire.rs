//! The socket side: framing, validation and dispatch of vfio-user messages, and the accept
//! loop.
//!
//! Why not `vfio_user::Server::run`: in 0.1.7 it reads a fixed-size body per command whatever
//! `message_size` says (a wrong size desynchronises the stream), computes
//! `message_size - size_of::<Version>()` unchecked (underflow panic, or a multi-GiB
//! allocation that aborts the process), unwraps a `CString` built from client bytes, allocates
//! REGION_READ/WRITE buffers of the client's `count` (up to 4 GiB), and sends error code 0 for
//! everything but `InvalidInput` (qemu-facts "Gaps and traps" 3, 4, 8). An abort cannot be
//! caught by running it on a thread, so the server frames every message itself: the header is
//! read with its fd (at most one, `max_msg_fds` = 1), `message_size` is bounded before any
//! allocation, the body is read whole, each command checks its exact size, and every
//! rejection gets an error reply with a real errno and a counter. The wire format and the
//! version/capability reply are the crate's (its `Client` is what the driver uses, and QEMU 11
//! accepted the crate's reply). Each connection runs on its own thread; a panic there is a
//! counted lost connection.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use super::model::{ModelThread, Reply, Request};
use super::pci::CONFIG_SIZE;
use super::protocol::libc_errno as errno;
use super::protocol::*;
use super::stats::ServerStats;

/// Read timeout tick; the stop flag is checked at each tick.
const TICK: Duration = Duration::from_millis(50);
/// Ticks a message may stall half-read before the connection is dropped (5 s).
const STALL_TICKS: u32 = 100;

#[derive(Clone, Copy, Debug)]
struct Header {
    id: u16,
    command: u16,
    size: u32,
    flags: u32,
}

impl Header {
    fn parse(b: &[u8; HEADER]) -> Self {
        let b16 = |o: usize| (u32_at(b, o) & 0xffff) as u16;
        let b32 = |o: usize| u32_at(b, o);
        Self { id: b16(0), command: b16(2), size: b32(4), flags: b32(8) }
    }
    fn no_reply(&self) -> bool {
        self.flags & FLAG_NO_REPLY != 0
    }
}

fn header_bytes(id: u16, command: u16, size: usize, flags: u32, error: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(HEADER));
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&command.to_le_bytes());
    v.extend_from_slice(&(size as u32).to_le_bytes());
    v.extend_from_slice(&flags.to_le_bytes());
    v.extend_from_slice(&error.to_le_bytes());
    v
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(o..o + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(o..o + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    Lost,
    Stop,
    ModelGone,
}

/// Outcome of one message.
enum Out {
    Reply(Vec<u8>),
    NoReply,
    Error(i32),
}

struct Conn<'a> {
    stream: UnixStream,
    model: &'a ModelThread,
    stop: &'a AtomicBool,
    stats: ServerStats,
}

impl Conn<'_> {
    fn read_full(&mut self, mut buf: &mut [u8]) -> Result<(), End> {
        let mut stalls = 0;
        while !buf.is_empty() {
            match self.stream.read(buf) {
                Ok(0) => return Err(End::Lost),
                Ok(n) => {
                    stalls = 0;
                    buf = buf.get_mut(n..).unwrap_or_default();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(End::Stop);
                    }
                    stalls += 1;
                    if stalls > STALL_TICKS {
                        return Err(End::Lost);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(End::Lost),
            }
        }
        Ok(())
    }

    /// Reads a header and the fd sent with it.
    fn read_header(&mut self) -> Result<([u8; HEADER], Option<File>), End> {
        let mut hdr = [0u8; HEADER];
        loop {
            match self.stream.recv_with_fd(&mut hdr) {
                Ok((0, _)) => return Err(End::Closed),
                Ok((n, fd)) => {
                    self.read_full(hdr.get_mut(n..).unwrap_or_default())?;
                    return Ok((hdr, fd));
                }
                Err(e) if matches!(e.errno(), libc_eagain::EAGAIN | libc_eagain::EINTR) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(End::Stop);
                    }
                }
                Err(_) => return Err(End::Lost),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.stream.write_all(bytes).map_err(|_| End::Lost)
    }

    fn call(&self, req: Request) -> Result<Reply, End> {
        self.model.call(req).ok_or(End::ModelGone)
    }

    fn run(&mut self) -> End {
        loop {
            match self.one() {
                Ok(()) => {}
                Err(e) => return e,
            }
        }
    }

    fn one(&mut self) -> Result<(), End> {
        let (raw, fd) = self.read_header()?;
        let h = Header::parse(&raw);
        self.stats.message_count += 1;
        if h.size > MAX_MSG {
            self.stats.oversized_message_count += 1;
            self.error(h, errno::E2BIG)?;
            // The body cannot be skipped safely: the framing is lost.
            return Err(End::Lost);
        }
        let body_len = (h.size as usize).saturating_sub(HEADER);
        let mut body = vec![0u8; body_len];
        self.read_full(&mut body)?;
        if (h.size as usize) < HEADER || h.flags & 0xf != 0 {
            self.stats.malformed_message_count += 1;
            return self.error(h, errno::EINVAL);
        }
        match self.dispatch(h, &body, fd)? {
            Out::Reply(r) => self.send(&r),
            Out::NoReply => Ok(()),
            Out::Error(e) => {
                if e == errno::EINVAL {
                    self.stats.malformed_message_count += 1;
                }
                self.error(h, e)
            }
        }
    }

    fn error(&mut self, h: Header, e: i32) -> Result<(), End> {
        self.stats.error_reply_count += 1;
        let r = header_bytes(h.id, h.command, HEADER, FLAG_REPLY | FLAG_ERROR, e as u32);
        self.send(&r)
    }

    fn status(&self, req: Request, h: Header, reply: Vec<u8>) -> Result<Out, End> {
        Ok(match self.call(req)? {
            Reply::Status(0) if h.no_reply() => Out::NoReply,
            Reply::Status(0) => Out::Reply(reply),
            Reply::Status(e) => Out::Error(e),
            _ => Out::Error(errno::EFAULT),
        })
    }

    fn dispatch(&mut self, h: Header, b: &[u8], fd: Option<File>) -> Result<Out, End> {
        let must_reply = matches!(
            h.command,
            cmd::VERSION
                | cmd::DEVICE_GET_INFO
                | cmd::DEVICE_GET_REGION_INFO
                | cmd::DEVICE_GET_IRQ_INFO
                | cmd::REGION_READ
        );
        if must_reply && h.no_reply() {
            return Ok(Out::Error(errno::EINVAL));
        }
        let ok = |size: usize| header_bytes(h.id, h.command, size, FLAG_REPLY, 0);
        match h.command {
            cmd::VERSION => {
                let Some((&0, json)) = b.get(4..).and_then(<[u8]>::split_last) else {
                    return Ok(Out::Error(errno::EINVAL));
                };
                if b.len() > MAX_VERSION_BODY
                    || !serde_json::from_slice::<serde_json::Value>(json)
                        .is_ok_and(|v| v.is_object())
                {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let mut r = ok(HEADER + 4 + SERVER_CAPS.len() + 1);
                r.extend_from_slice(&[0, 0, 0, 0]); // major 0, minor 0 (as the crate)
                r.extend_from_slice(SERVER_CAPS.as_bytes());
                r.push(0);
                Ok(Out::Reply(r))
            }
            cmd::DMA_MAP => {
                if b.len() != 32 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let (offset, addr, size) = (u64_at(b, 8), u64_at(b, 16), u64_at(b, 24));
                self.status(Request::DmaMap { addr, size, offset, file: fd }, h, ok(HEADER))
            }
            cmd::DMA_UNMAP => {
                if b.len() != 24 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let flags = u32_at(b, 4);
                if flags & !(1 << 2) != 0 {
                    return Ok(Out::Error(errno::ENOTSUP)); // dirty-page bitmaps
                }
                let (addr, size) = (u64_at(b, 8), u64_at(b, 16));
                let mut r = ok(HEADER + 24);
                r.extend_from_slice(b);
                self.status(Request::DmaUnmap { addr, size, all: flags & (1 << 2) != 0 }, h, r)
            }
            cmd::DEVICE_GET_INFO => {
                if b.len() != 16 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let mut r = ok(HEADER + 16);
                for v in [16u32, 0b11 /* RESET | PCI */, NUM_REGIONS, NUM_IRQS] {
                    r.extend_from_slice(&v.to_le_bytes());
                }
                Ok(Out::Reply(r))
            }
            cmd::DEVICE_GET_REGION_INFO => {
                if b.len() != 32 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let index = u32_at(b, 8);
                let (flags, size) = match index {
                    REGION_BAR0 => (0b11u32, hfi_abi::bar0::BAR0_SIZE),
                    REGION_CONFIG => (0b11, CONFIG_SIZE as u64),
                    i if i < NUM_REGIONS => (0, 0),
                    _ => return Ok(Out::Error(errno::EINVAL)),
                };
                let mut r = ok(HEADER + 32);
                for v in [32u32, flags, index, 0] {
                    r.extend_from_slice(&v.to_le_bytes());
                }
                r.extend_from_slice(&size.to_le_bytes());
                r.extend_from_slice(&0u64.to_le_bytes());
                Ok(Out::Reply(r))
            }
            cmd::DEVICE_GET_IRQ_INFO => {
                if b.len() != 16 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let index = u32_at(b, 8);
                let (flags, count) = match index {
                    0 => (0b1011u32, 1u32), // EVENTFD | MASKABLE | NORESIZE, one INTx line
                    // EVENTFD: vectors are set one by one (no NORESIZE).
                    super::protocol::MSIX_IRQ_INDEX => (0b0001, super::msix::VECTORS),
                    super::protocol::ERR_IRQ_INDEX => (0b1001, 1), // EVENTFD | NORESIZE
                    i if i < NUM_IRQS => (0b1001, 0),
                    _ => return Ok(Out::Error(errno::EINVAL)),
                };
                let mut r = ok(HEADER + 16);
                for v in [16u32, flags, index, count] {
                    r.extend_from_slice(&v.to_le_bytes());
                }
                Ok(Out::Reply(r))
            }
            cmd::DEVICE_SET_IRQS => {
                if b.len() < 20 || b.len() > 20 + 1024 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let (flags, index, start, count) =
                    (u32_at(b, 4), u32_at(b, 8), u32_at(b, 12), u32_at(b, 16));
                if flags & super::protocol::irq_flags::DATA_BOOL != 0 {
                    return Ok(Out::Error(errno::ENOTSUP));
                }
                self.status(Request::SetIrqs { index, flags, start, count, fd }, h, ok(HEADER))
            }
            cmd::REGION_READ => {
                if b.len() != 16 {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let (offset, region, count) = (u64_at(b, 0), u32_at(b, 8), u32_at(b, 12));
                if count > MAX_XFER {
                    return Ok(Out::Error(errno::E2BIG));
                }
                let req = match region {
                    REGION_BAR0 => Request::BarRead { offset, len: count as usize },
                    REGION_CONFIG => Request::CfgRead { offset, len: count as usize },
                    _ => return Ok(Out::Error(errno::EINVAL)),
                };
                match self.call(req)? {
                    Reply::Data(d) => {
                        let mut r = ok(HEADER + 16 + d.len());
                        r.extend_from_slice(b);
                        r.extend_from_slice(&d);
                        Ok(Out::Reply(r))
                    }
                    Reply::Status(e) => Ok(Out::Error(e)),
                    Reply::Stats(_) => Ok(Out::Error(errno::EFAULT)),
                }
            }
            cmd::REGION_WRITE => {
                let count = u32_at(b, 12);
                if b.len() < 16 || b.len() - 16 != count as usize {
                    return Ok(Out::Error(errno::EINVAL));
                }
                let (offset, region) = (u64_at(b, 0), u32_at(b, 8));
                let data = b.get(16..).unwrap_or_default().to_vec();
                let req = match region {
                    REGION_BAR0 => Request::BarWrite { offset, data },
                    REGION_CONFIG => Request::CfgWrite { offset, data },
                    _ => return Ok(Out::Error(errno::EINVAL)),
                };
                let mut r = ok(HEADER + 16);
                r.extend_from_slice(b.get(..16).unwrap_or_default());
                self.status(req, h, r)
            }
            cmd::DEVICE_RESET => {
                if !b.is_empty() {
                    return Ok(Out::Error(errno::EINVAL));
                }
                self.status(Request::Reset, h, ok(HEADER))
            }
            cmd::GET_REGION_IO_FDS | cmd::DMA_READ | cmd::DMA_WRITE | cmd::DIRTY_PAGES => {
                self.stats.unsupported_command_count += 1;
                Ok(Out::Error(errno::ENOTSUP))
            }
            _ => {
                self.stats.unknown_command_count += 1;
                Ok(Out::Error(errno::ENOSYS))
            }
        }
    }
}

mod libc_eagain {
    pub const EAGAIN: i32 = 11;
    pub const EINTR: i32 = 4;
}

/// Serves connections from `listener` one after another until `stop` is set. Each connection
/// runs on its own thread; when it ends (closed, lost, panicked) the device is reset and its
/// DMA maps and eventfds dropped. Returns an error only if the model thread is gone.
pub fn serve(
    listener: &UnixListener,
    model: &ModelThread,
    stop: &AtomicBool,
    stats: &mut ServerStats,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                // Bounded accept poll so SIGTERM is noticed (wall-clock pacing of the socket
                // side only; the model never sleeps).
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(e) => return Err(e),
        };
        stats.connection_count += 1;
        let end = serve_one(stream, model, stop, stats);
        match end {
            End::Closed => stats.connection_closed_count += 1,
            End::Stop => {}
            End::Lost => stats.connection_lost_count += 1,
            End::ModelGone => {
                stats.connection_lost_count += 1;
                return Err(std::io::Error::other("model thread gone"));
            }
        }
        if model.call(Request::Disconnect).is_none() {
            return Err(std::io::Error::other("model thread gone"));
        }
    }
    Ok(())
}

fn serve_one(
    stream: UnixStream,
    model: &ModelThread,
    stop: &AtomicBool,
    stats: &mut ServerStats,
) -> End {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(TICK)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))));
    if setup.is_err() {
        return End::Lost;
    }
    std::thread::scope(|s| {
        let worker =
            std::thread::Builder::new().name("vfio-user-conn".into()).spawn_scoped(s, || {
                let mut c = Conn { stream, model, stop, stats: ServerStats::default() };
                let end = c.run();
                (end, c.stats)
            });
        match worker.map(|w| w.join()) {
            Ok(Ok((end, st))) => {
                stats.merge(&st);
                end
            }
            // A panic (a bug of ours, never expected) or a failed spawn: a lost connection.
            _ => End::Lost,
        }
    })
}
