//! The overlay of a writable NBD export keeps its memory within a fixed budget however
//! many blocks are written. Measured with a counting allocator, alone in its test binary
//! so no other test's allocations blur the count.
// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

mod nbd_client;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use nbd_client::{CMD_DISC, CMD_READ, CMD_WRITE, CMD_WRITE_ZEROES, Nbd, StopOnDrop};
use rehydra_disk::nbd::{Export, Overlay, ServeOptions, serve_with};
use rehydra_disk::{DiskImage, Span};

static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A disk of `0x5a` bytes that takes no room.
struct Filled(u64);

impl DiskImage for Filled {
    fn format(&self) -> &'static str {
        "raw"
    }
    fn virtual_size(&self) -> u64 {
        self.0
    }
    fn spans(&self) -> Vec<Span> {
        vec![Span::Data {
            offset: 0,
            len: self.0,
        }]
    }
    fn read_at(&mut self, _offset: u64, buf: &mut [u8]) -> rehydra_disk::Result<()> {
        buf.fill(0x5a);
        Ok(())
    }
}

#[test]
fn overlay_memory_does_not_grow_with_written_blocks() {
    const SIZE: u64 = 4 << 30;
    const REQ: u32 = 32 << 20;
    let d = tempfile::tempdir().unwrap();
    let mut disk = Filled(SIZE);
    let overlay = Overlay::create(&d.path().join("overlay"), SIZE).unwrap();
    let mut ex = Export {
        name: "d".into(),
        disk: &mut disk,
        overlay: Some(overlay),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let server = sc.spawn(|| serve_with(&listener, &mut ex, &stop, &ServeOptions::default()));
        let _stop = StopOnDrop(&stop);
        let mut c = Nbd::connect(addr);
        c.handshake();
        assert_eq!(c.go("d"), Ok(SIZE));
        // warm up the request path, then measure
        assert_eq!(c.cmd(CMD_WRITE, 4096, 4096, &[7; 4096]).0, 0);
        assert_eq!(c.cmd(CMD_READ, 0, 8192, &[]).0, 0);
        let before = LIVE.load(Ordering::Relaxed);
        // every 4 KiB block of the 4 GiB disk (1 048 576 blocks, 32 bitmap pages)
        for off in (0..SIZE).step_by(REQ as usize) {
            assert_eq!(c.cmd(CMD_WRITE_ZEROES, off, REQ, &[]).0, 0);
        }
        let grown = LIVE.load(Ordering::Relaxed) - before;
        assert!(
            grown < 256 << 10,
            "the overlay's memory grew by {grown} bytes for 1 048 576 written blocks"
        );
        // behaviour: zeros where written, then a write over them reads back
        let (err, data) = c.cmd(CMD_READ, SIZE - 8192, 8192, &[]);
        assert!(err == 0 && data.iter().all(|&b| b == 0));
        assert_eq!(c.cmd(CMD_WRITE, SIZE - 6000, 100, &[9; 100]).0, 0);
        let (_, data) = c.cmd(CMD_READ, SIZE - 8192, 8192, &[]);
        assert!(data[..2192].iter().all(|&b| b == 0) && data[2192..2292] == [9; 100]);
        c.cmd_no_reply(CMD_DISC);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
    assert_eq!(ex.overlay.as_ref().map(Overlay::blocks), Some(1 << 20));
}
