//! The NBD server over real sockets: several clients, idle and stalled clients, and the
//! copy-on-write overlay.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::nbd_client::{CMD_DISC, CMD_READ, CMD_WRITE, CMD_WRITE_ZEROES, Nbd, StopOnDrop};
use rehydra_disk::RawImage;
use rehydra_disk::nbd::{Export, Overlay, ServeOptions, serve_with};

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn raw_disk(dir: &Path, len: usize) -> (RawImage, Vec<u8>) {
    let p = dir.join("disk.raw");
    let bytes = pattern(len, 1);
    std::fs::write(&p, &bytes).unwrap();
    (RawImage::open(&p).unwrap(), bytes)
}

fn quick() -> ServeOptions {
    ServeOptions {
        idle_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    }
}

#[test]
fn idle_and_stalled_clients_are_dropped_while_others_are_served() {
    let d = tempfile::tempdir().unwrap();
    let (mut disk, bytes) = raw_disk(d.path(), 1 << 20);
    let mut ex = Export {
        name: "d".into(),
        disk: &mut disk,
        overlay: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let server = sc.spawn(|| serve_with(&listener, &mut ex, &stop, &quick()));
        let _stop = StopOnDrop(&stop);
        // connects and never says anything
        let mut idle = Nbd::connect(addr);
        idle.greeting();
        // a second client is served meanwhile
        let mut b = Nbd::connect(addr);
        b.handshake();
        assert_eq!(b.go("d"), Ok(1 << 20));
        let (err, data) = b.cmd(CMD_READ, 4096, 8192, &[]);
        assert_eq!(err, 0);
        assert!(data == bytes[4096..4096 + 8192]);
        // stalls in the middle of a request
        let mut mid_request = Nbd::connect(addr);
        mid_request.handshake();
        assert_eq!(mid_request.go("d"), Ok(1 << 20));
        mid_request.send(&[0x25, 0x60, 0x95, 0x13, 0, 0, 0, 0, 0, 0]);
        // stalls in the middle of the option haggling
        let mut mid_handshake = Nbd::connect(addr);
        mid_handshake.handshake();
        mid_handshake.send(&0x4948_4156_454f_5054u64.to_be_bytes());
        for (name, c) in [
            ("idle", &mut idle),
            ("mid-request", &mut mid_request),
            ("mid-handshake", &mut mid_handshake),
            ("idle after a request", &mut b),
        ] {
            assert!(c.closed_by_server(), "the {name} client is still connected");
        }
        // and the server still serves
        let mut e = Nbd::connect(addr);
        e.handshake();
        assert_eq!(e.go("d"), Ok(1 << 20));
        e.cmd_no_reply(CMD_DISC);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
}

#[test]
fn a_client_that_does_not_read_its_replies_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big.raw");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut disk = RawImage::open(&p).unwrap();
    let mut ex = Export {
        name: "d".into(),
        disk: &mut disk,
        overlay: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let server = sc.spawn(|| serve_with(&listener, &mut ex, &stop, &quick()));
        let _stop = StopOnDrop(&stop);
        let mut c = Nbd::connect(addr);
        c.handshake();
        assert_eq!(c.go("d"), Ok(64 << 20));
        // 128 MiB of replies asked for, far more than the sockets buffer, and none read
        for i in 0..4 {
            c.request(CMD_READ, i * (16 << 20), 32 << 20, &[]);
        }
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            c.closed_by_server(),
            "the client that does not read is still connected"
        );
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
}

#[test]
fn a_writable_export_has_one_client_and_refuses_others_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let (mut disk, bytes) = raw_disk(d.path(), 1 << 20);
    let overlay = Overlay::create(&d.path().join("overlay"), 1 << 20).unwrap();
    let mut ex = Export {
        name: "d".into(),
        disk: &mut disk,
        overlay: Some(overlay),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let server = sc.spawn(|| serve_with(&listener, &mut ex, &stop, &quick()));
        let _stop = StopOnDrop(&stop);
        let mut a = Nbd::connect(addr);
        a.handshake();
        assert_eq!(a.go("d"), Ok(1 << 20));
        assert_eq!(a.cmd(CMD_WRITE, 0, 4096, &[0xee; 4096]).0, 0);
        // a second writer is told the export is in use, not left hanging
        let mut b = Nbd::connect(addr);
        b.handshake();
        let e = b.go("d").expect_err("a second client of a writable export");
        assert!(e & (1 << 31) != 0, "an NBD error reply: {e:#x}");
        let mut b2 = Nbd::connect(addr);
        b2.handshake();
        b2.option(1, b"d"); // EXPORT_NAME has no error reply: the connection is closed
        assert!(b2.closed_by_server());
        // once the first has gone, the next one gets the export, writes and all
        a.cmd_no_reply(CMD_DISC);
        let mut c = (0..100)
            .find_map(|_| {
                let mut c = Nbd::connect(addr);
                c.handshake();
                match c.go("d") {
                    Ok(_) => Some(c),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(100));
                        None
                    }
                }
            })
            .expect("the export is free again");
        let (err, data) = c.cmd(CMD_READ, 0, 8192, &[]);
        assert_eq!(err, 0);
        assert!(data[..4096] == [0xee; 4096] && data[4096..] == bytes[4096..8192]);
        c.cmd_no_reply(CMD_DISC);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
    assert_eq!(ex.overlay.as_ref().map(Overlay::blocks), Some(1));
}

#[test]
fn the_overlay_reads_back_writes_and_the_source_elsewhere() {
    let d = tempfile::tempdir().unwrap();
    let size = (1 << 20) + 1000;
    let (mut disk, bytes) = raw_disk(d.path(), size);
    let overlay = Overlay::create(&d.path().join("overlay"), size as u64).unwrap();
    let mut ex = Export {
        name: "d".into(),
        disk: &mut disk,
        overlay: Some(overlay),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    let mut model = bytes.clone();
    std::thread::scope(|sc| {
        let server = sc.spawn(|| serve_with(&listener, &mut ex, &stop, &ServeOptions::default()));
        let _stop = StopOnDrop(&stop);
        let mut c = Nbd::connect(addr);
        c.handshake();
        assert_eq!(c.go("d"), Ok(size as u64));
        let r = pattern(4 * 300, 9);
        for i in 0..300 {
            let x = u32::from_le_bytes(r[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
            let off = x % size;
            let len = (x / 7 % 20_000).min(size - off) as u32;
            let (o, l) = (off, len as usize);
            match i % 3 {
                0 => {
                    let data = pattern(l, i as u64 + 100);
                    assert_eq!(c.cmd(CMD_WRITE, off as u64, len, &data).0, 0);
                    model[o..o + l].copy_from_slice(&data);
                }
                1 => {
                    assert_eq!(c.cmd(CMD_WRITE_ZEROES, off as u64, len, &[]).0, 0);
                    model[o..o + l].fill(0);
                }
                _ => {
                    let (err, data) = c.cmd(CMD_READ, off as u64, len, &[]);
                    assert_eq!(err, 0);
                    assert!(data == model[o..o + l], "read {l} at {o}");
                }
            }
        }
        for off in (0..size).step_by(1 << 16) {
            let l = (1 << 16).min(size - off);
            let (err, data) = c.cmd(CMD_READ, off as u64, l as u32, &[]);
            assert_eq!(err, 0);
            assert!(data == model[off..off + l], "read {l} at {off}");
        }
        // past the end
        assert_ne!(c.cmd(CMD_WRITE, size as u64 - 10, 20, &[1; 20]).0, 0);
        c.cmd_no_reply(CMD_DISC);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
    });
    assert!(
        std::fs::read(d.path().join("disk.raw")).unwrap() == bytes,
        "the source is never written"
    );
}
