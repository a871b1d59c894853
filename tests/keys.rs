use rehydra_api::{Code, KdfParams};
use rehydra_integration_tests::{PW, TestRepo};

#[test]
fn wrong_password_is_refused() {
    let r = TestRepo::new();
    let e = rehydra_api::open(&r.ctx, &r.location(), b"wrong")
        .err()
        .unwrap();
    assert_eq!(e.code, Code::WrongPassword);
    assert!(e.message.contains("wrong password"));
}

#[test]
fn add_list_remove_and_change_password() {
    let r = TestRepo::new();
    let s = r.open();
    let second = s
        .add_key(b"second", KdfParams::insecure_for_tests(), "ops")
        .unwrap();
    assert_eq!(s.keys().unwrap().len(), 2);
    let s2 = rehydra_api::open(&r.ctx, &r.location(), b"second").unwrap();
    assert_eq!(s2.id(), s.id());
    assert_eq!(
        s2.remove_key(&second[..8]).unwrap_err().code,
        Code::InvalidInput,
        "cannot remove the slot in use"
    );
    let first = s
        .keys()
        .unwrap()
        .into_iter()
        .find(|k| k.current)
        .unwrap()
        .id;
    s2.remove_key(&first[..8]).unwrap();
    assert_eq!(
        rehydra_api::open(&r.ctx, &r.location(), PW)
            .err()
            .unwrap()
            .code,
        Code::WrongPassword
    );
    let mut s3 = rehydra_api::open(&r.ctx, &r.location(), b"second").unwrap();
    s3.change_password(b"third", KdfParams::insecure_for_tests())
        .unwrap();
    assert!(rehydra_api::open(&r.ctx, &r.location(), b"second").is_err());
    assert!(rehydra_api::open(&r.ctx, &r.location(), b"third").is_ok());
    assert_eq!(s3.keys().unwrap().len(), 1);
}

#[test]
fn key_slot_holds_no_clear_key() {
    let r = TestRepo::new();
    for e in std::fs::read_dir(r.path().join("keys")).unwrap().flatten() {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        assert_eq!(v["kdf"], "argon2id");
        assert!(v.get("master").is_none());
        assert_eq!(
            v["wrapped"].as_str().unwrap().len(),
            (24 + 32 + 16) * 2,
            "nonce + sealed 32-byte key + tag"
        );
    }
}

/// Key slots written by a hostile or broken host: garbage, parameters beyond the bounds,
/// and a very expensive slot named to come first. None of them blocks the real slot,
/// none is run when it is out of bounds, and each is reported and can be removed.
#[test]
fn hostile_key_slots_never_block_the_others() {
    let r = TestRepo::new();
    let keys = r.path().join("keys");
    let real = std::fs::read_dir(&keys)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let slot: serde_json::Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
    let with = |m: u64, t: u64, p: u64| {
        let mut s = slot.clone();
        s["params"] = serde_json::json!({"m_kib": m, "t": t, "p": p});
        serde_json::to_vec(&s).unwrap()
    };
    // listed first: the most a slot may cost (256 MiB × 16 passes: seconds of work), then
    // one far beyond the bounds (4 GiB × 64 passes: minutes), then garbage
    std::fs::write(keys.join(format!("{:064}", 0)), with(256 << 10, 16, 1)).unwrap();
    std::fs::write(keys.join(format!("{:064}", 3)), with(4 << 20, 64, 1)).unwrap();
    std::fs::write(
        keys.join(format!("{:064}", 1)),
        with(u64::from(u32::MAX), 1000, 1),
    )
    .unwrap();
    std::fs::write(keys.join(format!("{:064}", 2)), b"{not json").unwrap();
    let started = std::time::Instant::now();
    let s = rehydra_api::open(&r.ctx, &r.location(), PW).unwrap();
    assert!(
        started.elapsed().as_secs() < 10,
        "the cheap slot is tried first"
    );
    let w = s.repository().warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().any(|w| w.contains("exceeds the bound")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("not a key slot")), "{w:?}");
    let listed = s.keys().unwrap();
    assert_eq!(listed.len(), 5);
    let bad = listed
        .iter()
        .find(|k| k.label.contains("unusable"))
        .unwrap();
    s.remove_key(&bad.id).unwrap();
    // a wrong password tries every usable slot, and still ends in seconds
    let started = std::time::Instant::now();
    let e = rehydra_api::open(&r.ctx, &r.location(), b"nope")
        .err()
        .unwrap();
    assert_eq!(e.code, Code::WrongPassword);
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

/// A config asking for gigabyte packs or an impossible zstd level is refused: every
/// writer would otherwise build such a pack in memory.
#[test]
fn config_bounds() {
    let r = TestRepo::new();
    let path = r.path().join("config");
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (field, value) in [
        ("pack_size", serde_json::json!(1u64 << 30)),
        ("zstd_level", serde_json::json!(99)),
        // accepted by a naive check, but the chunker itself would abort on it
        ("chunker", serde_json::json!({"min": 1, "avg": 1, "max": 1})),
    ] {
        let mut c = good.clone();
        c[field] = value;
        std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
        let e = rehydra_api::open(&r.ctx, &r.location(), PW).err().unwrap();
        assert_eq!(e.code, Code::Corrupt, "{field}: {}", e.message);
    }
    std::fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
    rehydra_api::open(&r.ctx, &r.location(), PW).unwrap();
}

/// Someone who can only add files plants many cheap slots (any password they like): the
/// owner's slot is still tried, on a machine that never opened the repository before.
#[test]
fn many_cheap_slots_do_not_hide_the_real_one() {
    let r = TestRepo::new();
    let keys = r.path().join("keys");
    let real = std::fs::read_dir(&keys)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let slot: serde_json::Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
    for i in 0..64 {
        let mut s = slot.clone();
        s["params"] = serde_json::json!({"m_kib": 8, "t": 1, "p": 1});
        s["wrapped"] = serde_json::json!(hex::encode([i as u8; 72]));
        std::fs::write(
            keys.join(format!("{i:064x}")),
            serde_json::to_vec(&s).unwrap(),
        )
        .unwrap();
    }
    let fresh = rehydra_api::Context {
        catalog: None,
        cache_dir: None,
        ..Default::default()
    };
    rehydra_api::open(&fresh, &r.location(), PW).unwrap();
}
