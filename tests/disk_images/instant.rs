//! Instant recovery: a restore point's disk served over NBD, writes kept in an overlay.

use super::*;

#[test]
fn instant_recovery_serves_a_restore_point_over_nbd_and_writes_stay_in_the_overlay() {
    let r = TestRepo::new();
    let d = r.scratch("img");
    let img = d.join("vm.vhdx");
    qemu_vhdx(&img, "24M");
    qemu_write(&img, 3 << 20, 5 << 20, 11);
    let b = backup_disk(&r, &img, "vm");
    let s = r.open();
    let serve = |overlay: Option<&Path>, client: &dyn Fn(&str)| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "nbd://127.0.0.1:{}/vm",
            listener.local_addr().unwrap().port()
        );
        let cancel = Cancel::default();
        std::thread::scope(|sc| {
            let server = sc.spawn(|| {
                s.serve_nbd(
                    &b.restore_point.short_id,
                    &RestorePointFilter::default(),
                    None,
                    &listener,
                    "vm",
                    overlay,
                    &cancel,
                )
            });
            client(&url);
            cancel.cancel();
            server.join().unwrap().unwrap()
        })
    };
    let qemu_io = |url: &str, cmds: &[&str]| {
        let mut c = Command::new("qemu-io");
        c.args(["-f", "raw"]);
        for x in cmds {
            c.args(["-c", x]);
        }
        c.arg(url).output().unwrap()
    };
    // read-only: qemu-img sees the source disk; writes are refused
    let summary = serve(None, &|url| {
        run(Command::new("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "vhdx"])
            .arg(url)
            .arg(&img));
        let o = qemu_io(url, &["write -P 0xcd 0 4k"]);
        assert!(
            !o.status.success() || String::from_utf8_lossy(&o.stdout).contains("failed"),
            "a read-only export refuses writes"
        );
    });
    assert_eq!((summary.size, summary.written_blocks), (24 << 20, 0));

    // writable with an overlay: writes read back, partial blocks keep their old bytes
    let overlay = d.join("vm.overlay");
    let summary = serve(Some(&overlay), &|url| {
        let o = qemu_io(
            url,
            &[
                "write -P 0xcd 1M 64k",
                "write -P 0xee 3145828 100",
                "read -P 0xcd 1M 64k",
                "read -P 0xee 3145828 100",
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success() && !out.contains("failed") && !out.contains("mismatch"),
            "{out}"
        );
        // the bytes around the partial write are the disk's
        let before = d.join("around.raw");
        run(Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "raw"])
            .arg(url)
            .arg(&before));
        let got = std::fs::read(&before).unwrap();
        let src = rehydra_integration_tests::random_bytes(5 << 20, 11);
        assert!(
            got[(3 << 20)..(3 << 20) + 100] == src[..100]
                && got[(3 << 20) + 200..(3 << 20) + 4096] == src[200..4096]
        );
    });
    assert!(summary.written_blocks >= 17, "{}", summary.written_blocks);
    // the repository was only read: it checks clean and restores the original disk
    let report = r
        .open()
        .check(
            &rehydra_api::CheckOptions {
                read_data: true,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let out = d.join("restored.raw");
    r.open()
        .restore(
            &b.restore_point.short_id,
            &RestorePointFilter::default(),
            &out,
            &RestoreOptions::default(),
            &NoProgress,
            &Cancel::default(),
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vhdx"])
        .arg(&out)
        .arg(&img));
    // an overlay that exists is never reused or overwritten
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let e = s
        .serve_nbd(
            &b.restore_point.short_id,
            &RestorePointFilter::default(),
            None,
            &l,
            "vm",
            Some(&overlay),
            &Cancel::default(),
        )
        .unwrap_err();
    assert_eq!(e.code, Code::TargetExists);
}
