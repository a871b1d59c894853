//! Kubernetes clusters the host reaches with the CA and credentials of the admin's
//! kubeconfig (a client certificate, or a token): what `az aksarc get-credentials --admin`
//! and `kubectl` use. The catalog keeps the file's path and the context, never what the
//! file holds; it is read whenever a plugin runs, so renewed credentials are used as they
//! are. A plugin grants `http:<host>:<port>` of the cluster's API server and never sees
//! any of it.
//!
//! Refused: a context that skips TLS verification, basic authentication, a server on
//! plain HTTP that is not this machine. A user that runs a credential plugin (`exec`,
//! `auth-provider`: kubelogin) is not run: its CA is used, and the token comes from
//! Rehydra's own Azure sign-in with the AKS audience (`rehydra azure audience add`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::*;

/// Largest kubeconfig (or file it names) read.
const FILE_MAX: u64 = 1 << 20;

/// A cluster plugins reach through its kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KubeCluster {
    /// The admin's name for it (letters, digits, `-_.`).
    pub name: String,
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    /// Its context to use (default its `current-context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The API server the kubeconfig named when the cluster was added (set when it is
    /// kept): should the kubeconfig stop reading, requests to that server fail with the
    /// reason instead of going out without its CA and credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// How a cluster's API server is reached, read from its kubeconfig.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct KubeClusterView {
    /// The configuration.
    pub cluster: KubeCluster,
    /// The API server (`kube=` of the plugins), when the kubeconfig reads.
    pub server: Option<String>,
    /// How the host signs in: `client certificate`, `token`, or `Entra (rehydra azure
    /// audience)`.
    pub sign_in: Option<String>,
    /// Why the kubeconfig does not read, if it does not.
    pub problem: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterEntry,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: UserEntry,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry {
    server: String,
    #[serde(default)]
    certificate_authority: Option<PathBuf>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    #[serde(default)]
    tls_server_name: Option<String>,
    #[serde(default)]
    proxy_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct UserEntry {
    #[serde(default)]
    client_certificate: Option<PathBuf>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key: Option<PathBuf>,
    #[serde(default)]
    client_key_data: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    token_file: Option<PathBuf>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    exec: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "auth-provider")]
    auth_provider: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ContextEntry {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
}

/// What the host uses for one cluster.
pub(crate) struct KubeAccess {
    /// `https`, or `http` (this machine only, and then without credentials).
    pub scheme: String,
    /// Lower-case host of the API server.
    pub host: String,
    pub port: u16,
    /// `scheme://host:port`.
    pub server: String,
    pub tls: host::HostTls,
    /// `Bearer …` from the kubeconfig.
    pub authorization: Option<Zeroizing<String>>,
    pub sign_in: String,
}

/// A file the kubeconfig is or names: at most 1 MiB, and on Unix writable by its owner
/// only (whoever may change the CA may capture the credentials, and whoever may change
/// the kubeconfig may send them elsewhere).
fn read_file(p: &Path, what: &str) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(p).map_err(|e| format!("{what} {}: {e}", p.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("{what} {}: {e}", p.display()))?;
    if !meta.is_file() || meta.len() > FILE_MAX {
        return Err(format!(
            "{what} {} is not a file of at most 1 MiB",
            p.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(format!(
                "{what} {} may be changed by other users: make it writable by its owner only (chmod go-w)",
                p.display()
            ));
        }
    }
    let mut out = Vec::new();
    f.take(FILE_MAX + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{what} {}: {e}", p.display()))?;
    if out.len() as u64 > FILE_MAX {
        return Err(format!("{what} {} is over 1 MiB", p.display()));
    }
    Ok(out)
}

/// Does the YAML use anchors or aliases (`&a`, `*a`)? Kubeconfigs do not; refusing them
/// keeps an alias bomb from stalling every plugin run.
fn has_aliases(text: &[u8]) -> bool {
    text.windows(2).enumerate().any(|(i, w)| {
        matches!(w[0], b'&' | b'*')
            && (w[1].is_ascii_alphanumeric() || w[1] == b'_')
            && (i == 0
                || matches!(
                    text[i - 1],
                    b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b'-' | b':'
                ))
    })
}

fn data(v: &str, what: &str) -> std::result::Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .map_err(|_| format!("{what} is not base64"))
}

impl KubeCluster {
    /// Check the name and the path.
    ///
    /// # Errors
    /// A name that is not 1 to 100 letters, digits, `-_.`; a relative kubeconfig path.
    pub fn validate(&self) -> Result<()> {
        if !self.kubeconfig.is_absolute() {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "kubeconfig {} is not an absolute path (every later run reads it from wherever it runs)",
                    self.kubeconfig.display()
                ),
            ));
        }
        let ok = (1..=100).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "`{}` is not a cluster name: 1 to 100 letters, digits and -_.",
                    self.name
                ),
            ))
        }
    }

    /// Read the kubeconfig now: the API server, its CA and the credentials.
    pub(crate) fn access(&self) -> std::result::Result<KubeAccess, String> {
        let file = &self.kubeconfig;
        let text = Zeroizing::new(read_file(file, "kubeconfig")?);
        if has_aliases(&text) {
            return Err(format!(
                "kubeconfig {} uses YAML anchors or aliases, which kubeconfigs do not: refused",
                file.display()
            ));
        }
        let cfg: Config = yaml_serde::from_slice(&text)
            .map_err(|e| format!("kubeconfig {} does not read: {e}", file.display()))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let rel = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };
        let ctx_name = self
            .context
            .clone()
            .or_else(|| cfg.current_context.clone())
            .ok_or_else(|| {
                format!(
                    "kubeconfig {} names no current context: say which with --context",
                    file.display()
                )
            })?;
        let ctx = cfg
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .map(|c| &c.context)
            .ok_or_else(|| format!("kubeconfig {} has no context `{ctx_name}`", file.display()))?;
        let cluster = cfg
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .map(|c| &c.cluster)
            .ok_or_else(|| {
                format!(
                    "kubeconfig {} has no cluster `{}`",
                    file.display(),
                    ctx.cluster
                )
            })?;
        let none = UserEntry::default();
        let user = match &ctx.user {
            Some(u) => cfg
                .users
                .iter()
                .find(|x| &x.name == u)
                .map(|x| &x.user)
                .ok_or_else(|| format!("kubeconfig {} has no user `{u}`", file.display()))?,
            None => &none,
        };
        if cluster.insecure_skip_tls_verify {
            return Err(format!(
                "context `{ctx_name}` skips TLS verification (insecure-skip-tls-verify): Rehydra does not send credentials to a server it cannot verify; give the cluster's CA (certificate-authority-data)"
            ));
        }
        if cluster.tls_server_name.is_some() || cluster.proxy_url.is_some() {
            return Err(format!(
                "context `{ctx_name}` sets tls-server-name or proxy-url, which Rehydra does not follow (a proxy: set HTTPS_PROXY)"
            ));
        }
        let url = url::Url::parse(&cluster.server)
            .map_err(|e| format!("the server `{}` is not a URL: {e}", cluster.server))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let loopback = match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if host.is_empty() || !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(format!(
                "the server `{}` is not https://host[:port] (plain http only on this machine)",
                cluster.server
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || !url.username().is_empty() {
            return Err(format!(
                "the server `{}` has a path, query or user: only an API server at the root of https://host[:port] is supported",
                cluster.server
            ));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let ca_pem = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(d), _) => Some(data(d, "certificate-authority-data")?),
            (None, Some(p)) => Some(read_file(&rel(p), "certificate-authority")?),
            (None, None) => None,
        };
        if user.username.is_some() {
            return Err(format!(
                "user of context `{ctx_name}` signs in with a user name and password (basic authentication), which Kubernetes no longer offers: use a client certificate or a token"
            ));
        }
        let cert = match (&user.client_certificate_data, &user.client_certificate) {
            (Some(d), _) => Some(data(d, "client-certificate-data")?),
            (None, Some(p)) => Some(read_file(&rel(p), "client-certificate")?),
            (None, None) => None,
        };
        let key = match (&user.client_key_data, &user.client_key) {
            (Some(d), _) => Some(Zeroizing::new(data(d, "client-key-data")?)),
            (None, Some(p)) => Some(Zeroizing::new(read_file(&rel(p), "client-key")?)),
            (None, None) => None,
        };
        let identity_pem = match (cert, key) {
            (Some(c), Some(k)) => {
                let mut pem = Zeroizing::new(c);
                if !pem.ends_with(b"\n") {
                    pem.push(b'\n');
                }
                pem.extend_from_slice(&k);
                Some(pem)
            }
            (None, None) => None,
            _ => {
                return Err(format!(
                    "user of context `{ctx_name}` has a client certificate without its key, or a key without its certificate"
                ));
            }
        };
        let token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(Zeroizing::new(t.trim().to_string())),
            (None, Some(p)) => {
                let raw = Zeroizing::new(read_file(&rel(p), "tokenFile")?);
                Some(Zeroizing::new(
                    String::from_utf8_lossy(&raw).trim().to_string(),
                ))
            }
            (None, None) => None,
        }
        .filter(|t| !t.is_empty());
        if url.scheme() == "http" && (identity_pem.is_some() || token.is_some()) {
            return Err(format!(
                "context `{ctx_name}` would send a client certificate or token over plain http: a kubeconfig's credentials go only over TLS"
            ));
        }
        let sign_in = if identity_pem.is_some() {
            "client certificate"
        } else if token.is_some() {
            "token"
        } else if user.exec.is_some() || user.auth_provider.is_some() {
            "Entra (rehydra azure audience; the kubeconfig's credential plugin is not run)"
        } else {
            "none from the kubeconfig (rehydra azure audience, if set)"
        };
        Ok(KubeAccess {
            server: format!(
                "{}://{}:{port}",
                url.scheme(),
                url.host_str().unwrap_or_default()
            ),
            scheme: url.scheme().to_string(),
            host,
            port,
            tls: host::HostTls {
                ca_pem,
                identity_pem,
            },
            authorization: token.map(|t| Zeroizing::new(format!("Bearer {}", t.as_str()))),
            sign_in: sign_in.to_string(),
        })
    }

    fn view(&self) -> KubeClusterView {
        match self.access() {
            Ok(a) => KubeClusterView {
                cluster: self.clone(),
                server: Some(a.server),
                sign_in: Some(a.sign_in),
                problem: None,
            },
            Err(e) => KubeClusterView {
                cluster: self.clone(),
                server: None,
                sign_in: None,
                problem: Some(e),
            },
        }
    }
}

/// The clusters' access, read when a plugin call starts: each API server's own TLS and
/// token. A kubeconfig that does not read cannot say where its server is: it changes
/// nothing, and `plugins kube-cluster list` says why.
pub(crate) struct Configured(Vec<Entry>);

enum Entry {
    Read(KubeAccess),
    /// The kubeconfig of the cluster at `server` (as added) does not read now.
    Broken {
        scheme: String,
        host: String,
        port: u16,
        reason: String,
    },
}

impl Configured {
    pub(crate) fn read(clusters: &[KubeCluster]) -> Self {
        Self(
            clusters
                .iter()
                .filter_map(|c| match c.access() {
                    Ok(a) => Some(Entry::Read(a)),
                    Err(reason) => {
                        let url = url::Url::parse(c.server.as_deref()?).ok()?;
                        Some(Entry::Broken {
                            scheme: url.scheme().to_string(),
                            host: url.host_str()?.to_ascii_lowercase(),
                            port: url.port_or_known_default()?,
                            reason: format!("cluster `{}`: {reason}", c.name),
                        })
                    }
                })
                .collect(),
        )
    }

    /// The access of the server at `scheme://host:port`, if a cluster is configured
    /// there: the scheme must match too, so credentials meant for TLS never go out in
    /// clear. A cluster whose kubeconfig no longer reads is the reason.
    pub(crate) fn at(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Option<std::result::Result<&KubeAccess, String>> {
        let host = host.to_ascii_lowercase();
        self.0.iter().find_map(|e| match e {
            Entry::Read(a) if a.scheme == scheme && a.host == host && a.port == port => Some(Ok(a)),
            Entry::Broken {
                scheme: s,
                host: h,
                port: p,
                reason,
            } if *s == scheme && *h == host && *p == port => Some(Err(reason.clone())),
            _ => None,
        })
    }
}

impl Plugins {
    /// Add or replace a cluster; its kubeconfig must read now.
    ///
    /// # Errors
    /// An invalid name; the kubeconfig does not read or is refused; catalog failure.
    pub fn set_kube_cluster(&self, mut c: KubeCluster) -> Result<KubeClusterView> {
        c.validate()?;
        c.server = None;
        let mut view = c.view();
        if let Some(p) = &view.problem {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!("cluster `{}`: {p}", c.name),
            ));
        }
        // one cluster per API server: two would leave which credentials go to it to chance
        if let Some(other) = self
            .kube_cluster_views()?
            .into_iter()
            .find(|o| o.cluster.name != c.name && o.server.is_some() && o.server == view.server)
        {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "cluster `{}` already reaches {}: replace it (plugins kube-cluster add {} …) or remove it first",
                    other.cluster.name,
                    view.server.as_deref().unwrap_or_default(),
                    other.cluster.name
                ),
            ));
        }
        c.server.clone_from(&view.server);
        view.cluster.server.clone_from(&view.server);
        self.set_spec(rehydra_catalog::Specs::KubeClusters, &c.name, &c)?;
        Ok(view)
    }

    /// Forget a cluster; returns whether it was configured.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn remove_kube_cluster(&self, name: &str) -> Result<bool> {
        self.remove_spec(rehydra_catalog::Specs::KubeClusters, name)
    }

    /// Configured clusters.
    ///
    /// # Errors
    /// Catalog failure; a stored cluster that no longer parses.
    pub fn kube_clusters(&self) -> Result<Vec<KubeCluster>> {
        self.specs(
            rehydra_catalog::Specs::KubeClusters,
            "Kubernetes cluster",
            "rehydra plugins kube-cluster add",
        )
    }

    /// Configured clusters with their API server and sign-in as their kubeconfigs say
    /// now.
    ///
    /// # Errors
    /// As [`Self::kube_clusters`].
    pub fn kube_cluster_views(&self) -> Result<Vec<KubeClusterView>> {
        Ok(self
            .kube_clusters()?
            .iter()
            .map(KubeCluster::view)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn a_kubeconfig_gives_the_server_its_ca_and_the_credentials() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ca.crt"), "CA-PEM\n").unwrap();
        std::fs::write(d.path().join("tok"), "s3cr3t\n").unwrap();
        let cfg = format!(
            r#"apiVersion: v1
kind: Config
current-context: admin@aks-a
clusters:
- name: aks-a
  cluster:
    server: https://10.0.0.5:6443
    certificate-authority-data: {}
- name: aks-b
  cluster:
    server: https://AKS-B.contoso.local
    certificate-authority: ca.crt
contexts:
- name: admin@aks-a
  context: {{cluster: aks-a, user: admin}}
- name: ops@aks-b
  context: {{cluster: aks-b, user: ops, namespace: shop}}
- name: entra@aks-b
  context: {{cluster: aks-b, user: entra}}
users:
- name: admin
  user:
    client-certificate-data: {}
    client-key-data: {}
- name: ops
  user:
    tokenFile: tok
- name: entra
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]
"#,
            b64("CA-DATA"),
            b64("CERT"),
            b64("KEY")
        );
        let file = write(d.path(), "config", &cfg);
        let c = |ctx: Option<&str>| KubeCluster {
            name: "a".into(),
            kubeconfig: file.clone(),
            context: ctx.map(str::to_string),
            server: None,
        };
        let a = c(None).access().unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.server.as_str()),
            ("10.0.0.5", 6443, "https://10.0.0.5:6443")
        );
        assert_eq!(a.tls.ca_pem.as_deref(), Some(&b"CA-DATA"[..]));
        assert_eq!(
            a.tls.identity_pem.as_deref().map(|v| v.as_slice()),
            Some(&b"CERT\nKEY"[..])
        );
        assert!(a.authorization.is_none() && a.sign_in == "client certificate");
        let b = c(Some("ops@aks-b")).access().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("aks-b.contoso.local", 443));
        assert_eq!(
            b.tls.ca_pem.as_deref(),
            Some(&b"CA-PEM\n"[..]),
            "a file next to the kubeconfig"
        );
        assert_eq!(
            b.authorization.as_deref().map(String::as_str),
            Some("Bearer s3cr3t")
        );
        let e = c(Some("entra@aks-b")).access().unwrap();
        assert!(e.authorization.is_none() && e.tls.identity_pem.is_none());
        assert!(e.sign_in.starts_with("Entra"), "{}", e.sign_in);
        assert!(
            c(Some("nope"))
                .access()
                .err()
                .unwrap_or_default()
                .contains("no context `nope`")
        );
        // the debug form of what the host holds shows no secret
        assert!(!format!("{:?}", a.tls).contains("KEY"));
    }

    #[test]
    fn unsafe_or_unsupported_kubeconfigs_are_refused_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        let one = |cluster: &str, user: &str| {
            let text = format!(
                "current-context: c\nclusters:\n- name: k\n  cluster:\n{cluster}\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n{user}\n"
            );
            let f = write(d.path(), "cfg", &text);
            KubeCluster {
                name: "x".into(),
                kubeconfig: f,
                context: None,
                server: None,
            }
            .access()
        };
        let ok_user = "    token: t";
        let err = |cluster: &str, user: &str| one(cluster, user).err().unwrap_or_default();
        assert!(
            err(
                "    server: https://k:6443\n    insecure-skip-tls-verify: true",
                ok_user
            )
            .contains("skips TLS verification")
        );
        assert!(
            err("    server: http://10.0.0.5:6443", ok_user)
                .contains("plain http only on this machine")
        );
        assert!(
            one(
                "    server: http://127.0.0.1:8001",
                "    exec: {command: x}"
            )
            .is_ok(),
            "kubectl proxy on this machine, which signs in by itself"
        );
        assert!(
            err("    server: http://127.0.0.1:8001", ok_user).contains("only over TLS"),
            "a token never goes over plain http"
        );
        assert!(
            err(
                "    server: https://rancher.example/k8s/clusters/c-1",
                ok_user
            )
            .contains("has a path")
        );
        assert!(err("    server: http://127.evil.example:80", ok_user).contains("plain http only"));
        assert!(
            err("    server: &s https://k:6443", ok_user).contains("anchors or aliases"),
            "no alias bombs"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let f = d.path().join("cfg");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
            let e = KubeCluster {
                name: "x".into(),
                kubeconfig: f.clone(),
                context: None,
                server: None,
            }
            .access()
            .err()
            .unwrap_or_default();
            assert!(e.contains("changed by other users"), "{e}");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(
            KubeCluster {
                name: "a".into(),
                kubeconfig: "rel/config".into(),
                context: None,
                server: None
            }
            .validate()
            .is_err(),
            "a relative kubeconfig path"
        );
        assert!(
            has_aliases(b"a: *x") && has_aliases(b"- &x [1]") && !has_aliases(b"token: abc&def*")
        );
        assert!(
            err(
                "    server: https://k:6443",
                "    username: admin\n    password: pw"
            )
            .contains("basic authentication")
        );
        assert!(
            err(
                "    server: https://k:6443",
                "    client-certificate-data: Q0VSVA=="
            )
            .contains("without its key")
        );
        assert!(
            err(
                "    server: https://k:6443\n    proxy-url: http://p:3128",
                ok_user
            )
            .contains("proxy-url")
        );
        assert!(
            KubeCluster {
                name: "a b".into(),
                kubeconfig: "/x".into(),
                context: None,
                server: None
            }
            .validate()
            .is_err()
        );
    }
}
