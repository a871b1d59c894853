//! Helpers shared by the host test binaries.
#![allow(dead_code)]

use std::sync::Mutex;

use rehydra_plugin_host::*;

pub use rehydra_test_support::built_plugins as built;

pub fn dev_key() -> TrustedKey {
    TrustedKey {
        publisher: "rehydra-dev".into(),
        key: rehydra_test_support::dev_key(),
    }
}

pub fn host(dev: bool) -> PluginHost {
    PluginHost::new(HostConfig {
        developer_mode: dev,
        ..HostConfig::default()
    })
    .unwrap()
}

pub fn props(p: &[(&str, &str)]) -> Vec<Property> {
    Property::list(p)
}

pub fn grants(specs: &[&str]) -> Grants {
    Grants(specs.iter().map(|s| Grant::parse(s).unwrap()).collect())
}

#[derive(Default)]
pub struct Audit(pub Mutex<Vec<AuditEvent>>);
impl Events for Audit {
    fn audit(&self, e: &AuditEvent) {
        self.0.lock().unwrap().push(e.clone());
    }
}

pub fn fixture(h: &PluginHost) -> LoadedPlugin {
    h.load(&built().join("fixture.wasm"), &[dev_key()]).unwrap()
}

pub struct Token;
impl Credentials for Token {
    fn authorization(&self, host: &str) -> Result<Option<String>, String> {
        Ok((host == "127.0.0.1").then(|| "Bearer s3cret-token".to_string()))
    }
}

/// One-shot HTTP server: answers whether the expected token arrived, and sets a cookie.
pub fn server() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/vaults", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let authed = head
            .to_ascii_lowercase()
            .contains("authorization: bearer s3cret-token");
        let body = if authed { "authenticated" } else { "anonymous" };
        let mut s = s;
        write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nSet-Cookie: session=abc\r\nX-Ms-Request-Id: 42\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        head
    });
    (url, t)
}
