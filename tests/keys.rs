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
