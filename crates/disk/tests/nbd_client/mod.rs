//! A minimal NBD client (fixed newstyle, simple replies) for the server tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_WRITE_ZEROES: u16 = 6;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;

/// Sets the server's stop flag when dropped, so a failing test does not wait for ever.
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One connection; every read gives up after 5 s.
pub struct Nbd {
    s: TcpStream,
    handle: u64,
}

impl Nbd {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Self { s, handle: 0 }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    fn recv(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.s
            .read_exact(&mut b)
            .unwrap_or_else(|e| panic!("no answer from the server: {e}"));
        b
    }

    /// The server's greeting.
    pub fn greeting(&mut self) {
        let g = self.recv(18);
        assert_eq!(u64::from_be_bytes(g[..8].try_into().unwrap()), NBDMAGIC);
        assert_eq!(u64::from_be_bytes(g[8..16].try_into().unwrap()), IHAVEOPT);
    }

    /// Greeting, then the client flags (fixed newstyle, no zeroes).
    pub fn handshake(&mut self) {
        self.greeting();
        self.send(&3u32.to_be_bytes());
    }

    pub fn option(&mut self, opt: u32, data: &[u8]) {
        let mut m = IHAVEOPT.to_be_bytes().to_vec();
        m.extend_from_slice(&opt.to_be_bytes());
        m.extend_from_slice(&(data.len() as u32).to_be_bytes());
        m.extend_from_slice(data);
        self.send(&m);
    }

    /// `NBD_OPT_GO`: the export size, or the error reply type.
    pub fn go(&mut self, name: &str) -> Result<u64, u32> {
        let mut d = (name.len() as u32).to_be_bytes().to_vec();
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&0u16.to_be_bytes());
        self.option(7, &d);
        let mut size = 0;
        loop {
            let h = self.recv(20);
            assert_eq!(u64::from_be_bytes(h[..8].try_into().unwrap()), REPLY_MAGIC);
            let kind = u32::from_be_bytes(h[12..16].try_into().unwrap());
            let len = u32::from_be_bytes(h[16..20].try_into().unwrap()) as usize;
            let data = self.recv(len);
            match kind {
                1 => return Ok(size),
                3 if data.len() >= 10 && data[..2] == [0, 0] => {
                    size = u64::from_be_bytes(data[2..10].try_into().unwrap());
                }
                k if k & (1 << 31) != 0 => return Err(k),
                _ => {}
            }
        }
    }

    pub fn request(&mut self, kind: u16, offset: u64, len: u32, data: &[u8]) {
        self.handle += 1;
        let mut m = 0x2560_9513u32.to_be_bytes().to_vec();
        m.extend_from_slice(&0u16.to_be_bytes());
        m.extend_from_slice(&kind.to_be_bytes());
        m.extend_from_slice(&self.handle.to_be_bytes());
        m.extend_from_slice(&offset.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(data);
        self.send(&m);
    }

    /// A command and its simple reply: the error and, for a good read, the data.
    pub fn cmd(&mut self, kind: u16, offset: u64, len: u32, data: &[u8]) -> (u32, Vec<u8>) {
        self.request(kind, offset, len, data);
        let r = self.recv(16);
        assert_eq!(u32::from_be_bytes(r[..4].try_into().unwrap()), 0x6744_6698);
        assert_eq!(
            u64::from_be_bytes(r[8..16].try_into().unwrap()),
            self.handle
        );
        let err = u32::from_be_bytes(r[4..8].try_into().unwrap());
        let data = if kind == CMD_READ && err == 0 {
            self.recv(len as usize)
        } else {
            Vec::new()
        };
        (err, data)
    }

    pub fn cmd_no_reply(&mut self, kind: u16) {
        self.request(kind, 0, 0, &[]);
    }

    /// True when the server closes the connection within the 5 s read timeout (anything
    /// it still sends first is skipped).
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => {
                    return matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                    );
                }
            }
        }
    }
}
