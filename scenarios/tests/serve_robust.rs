//! Robustness of `hfi-sim serve`: a client dropped mid-transfer, then a new client served; a
//! fuzz run of ≥ 10 000 random and malformed messages on raw sockets, after which a
//! well-formed client still works and the server is alive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod serve_common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use driver::Policy;
use mmu::Contiguity;
use scenarios::world::node::NodeConfig;
use serve_common::Server;

fn one_message_ok(server: &Server, seed: u32) {
    let cfg = NodeConfig { policy: Policy::V2023, ..Default::default() };
    let mut node = scenarios::world::serve::connect_node(&server.socket, &cfg).unwrap();
    let len = 1usize << 20;
    let va = node.alloc(len as u64, Contiguity::Contiguous).unwrap();
    node.request(1, va, len as u32, seed).unwrap();
    let done = node.run(30_000_000_000).unwrap();
    assert!(done.iter().any(|c| c.msg_id == 1 && c.ok), "{done:?}");
    assert_eq!(node.proc.read(va, len).unwrap(), hfi_abi::psm::pattern(seed, 1, len));
}

#[test]
fn client_dropped_mid_transfer_then_new_client_served() {
    let mut server = Server::start();
    {
        let cfg = NodeConfig::default();
        let mut node = scenarios::world::serve::connect_node(&server.socket, &cfg).unwrap();
        let va = node.alloc(4 << 20, Contiguity::Contiguous).unwrap();
        node.request(5, va, 4 << 20, 3).unwrap();
        for _ in 0..3 {
            node.progress().unwrap();
        }
        assert!(node.rx.pending() > 0, "still in flight");
        // Dropped without close or teardown: the socket just goes away.
    }
    one_message_ok(&server, 11);
    assert!(server.alive());
    let stats = server.stop();
    assert_eq!(stats["server"]["connection_count"], 2, "{stats}");
    assert!(stats["server"]["reset_count"].as_u64().unwrap() >= 2, "{stats}");
}

/// xorshift64*: a seeded generator for the fuzz messages.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn header(id: u16, cmd: u16, size: u32, flags: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&cmd.to_le_bytes());
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&flags.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn fuzz_message(r: &mut Rng) -> Vec<u8> {
    let id = r.next() as u16;
    match r.below(6) {
        // Random bytes.
        // Random header fields, a body of the size it claims.
        0 => {
            let body = r.below(64) as usize;
            let mut m = header(id, r.next() as u16, (16 + body) as u32, r.next() as u32);
            m.extend((0..body).map(|_| r.next() as u8));
            m
        }
        // Known command, random body size and content.
        1 => {
            let cmd = 1 + r.below(14) as u16;
            let body = r.below(48) as usize;
            let mut m = header(id, cmd, (16 + body) as u32, 0);
            m.extend((0..body).map(|_| r.next() as u8));
            m
        }
        // Unknown command.
        2 => header(id, 15 + r.below(1000) as u16, 16, 0),
        // message_size smaller than a header.
        3 => header(id, 1 + r.below(14) as u16, r.below(16) as u32, 0),
        // Region read of a huge count / region write with a lying count.
        4 => {
            let read = r.below(2) == 0;
            let mut m = header(id, if read { 9 } else { 10 }, 32, r.below(64) as u32);
            m.extend_from_slice(&r.next().to_le_bytes());
            m.extend_from_slice(&(r.below(10) as u32).to_le_bytes());
            m.extend_from_slice(&(r.next() as u32).to_le_bytes());
            m
        }
        // A header claiming less than a header: only the 16 bytes are sent.
        _ => header(id, 4, r.below(16) as u32, 0),
    }
}

/// The last message of a connection: truncated, random bytes, or oversized.
fn last_message(r: &mut Rng) -> Vec<u8> {
    match r.below(3) {
        0 => (0..r.below(64)).map(|_| r.next() as u8).collect(),
        1 => header(1, 9, u32::MAX, 0), // oversized: the server drops the connection
        _ => {
            let mut m = header(2, 4, 32, 0);
            m.extend_from_slice(&[0u8; 8]);
            m
        }
    }
}

/// Reads replies until EOF; returns (replies, error replies with errno 0).
fn drain(mut s: UnixStream) -> (u64, u64) {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let (mut n, mut zero_err) = (0, 0);
    let mut rest = &buf[..];
    while rest.len() >= 16 {
        let size = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
        let flags = u32::from_le_bytes(rest[8..12].try_into().unwrap());
        let err = u32::from_le_bytes(rest[12..16].try_into().unwrap());
        n += 1;
        if flags & (1 << 5) != 0 && err == 0 {
            zero_err += 1;
        }
        rest = &rest[size.clamp(16, rest.len())..];
    }
    (n, zero_err)
}

#[test]
fn fuzz_messages_then_well_formed_client() {
    let mut server = Server::start();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = 0u64;
    let mut replies = 0u64;
    let mut conns = 0;
    while sent < 10_000 {
        let s = UnixStream::connect(&server.socket).unwrap();
        let reader = s.try_clone().unwrap();
        let t = std::thread::spawn(move || drain(reader));
        conns += 1;
        let mut w = &s;
        for _ in 0..200 {
            let m = fuzz_message(&mut r);
            if w.write_all(&m).is_err() {
                break;
            }
            sent += 1;
        }
        if w.write_all(&last_message(&mut r)).is_ok() {
            sent += 1;
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let (n, zero_err) = t.join().unwrap();
        assert_eq!(zero_err, 0, "error replies must carry an errno");
        replies += n;
    }
    assert!(server.alive());
    one_message_ok(&server, 5);
    let stats = server.stop();
    let s = &stats["server"];
    assert!(s["message_count"].as_u64().unwrap() >= 10_000, "{stats}");
    assert!(replies >= 9_000, "{replies} replies");
    assert!(s["unknown_command_count"].as_u64().unwrap() > 0, "{stats}");
    assert!(s["malformed_message_count"].as_u64().unwrap() > 0, "{stats}");
    assert!(s["error_reply_count"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(s["connection_count"].as_u64().unwrap(), conns + 1);
    eprintln!("fuzz: {sent} messages on {conns} connections, {replies} replies; {s}");
}
