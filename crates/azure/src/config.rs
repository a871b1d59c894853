//! What the admin chose: the identity source ([`IdentityConfig`]), where a client secret
//! comes from ([`SecretSource`]) and the knobs around them ([`IdentityOptions`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Which Azure identity Rehydra uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityConfig {
    /// The chain, first that works: environment service principal (`AZURE_TENANT_ID` +
    /// `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH`), Azure
    /// CLI (`az`), Azure Developer CLI (`azd`), managed identity (Azure Arc when the machine
    /// has the Connected Machine agent, else IMDS with a short probe).
    ///
    /// The first source that gives a token is kept for the life of the [`Identity`]
    /// (it is not silently swapped for another identity later); until one works, every
    /// call walks the chain again.
    ///
    /// [`Identity`]: crate::Identity
    Auto,
    /// The account signed in to the Azure CLI (`az login`).
    AzureCli,
    /// The account signed in to the Azure Developer CLI (`azd auth login`).
    AzureDeveloperCli,
    /// A service principal with a client secret from a file, an environment variable, or
    /// the OS keychain.
    ServicePrincipalSecret {
        /// The directory (tenant) id or domain.
        tenant: String,
        /// The application (client) id.
        client_id: String,
        /// Where the client secret is read from, once, when the identity is built.
        secret: SecretSource,
    },
    /// A service principal with a client certificate: a PEM file holding the certificate
    /// and its unencrypted RSA private key (PKCS#8 or PKCS#1). PFX files are refused with
    /// the command that converts them.
    ServicePrincipalCertificate {
        /// The directory (tenant) id or domain.
        tenant: String,
        /// The application (client) id.
        client_id: String,
        /// The PEM file.
        certificate: PathBuf,
    },
    /// The machine's managed identity: Azure Arc (challenge-file flow on
    /// `localhost:40342`) when the Connected Machine agent is installed, else IMDS
    /// (`169.254.169.254`).
    ManagedIdentity {
        /// The client id of a user-assigned identity (IMDS only; Azure Arc machines have
        /// only their system-assigned identity, and asking for another is an error).
        client_id: Option<String>,
    },
}

/// Where a client secret is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A file holding the secret (surrounding whitespace is ignored). On Unix the file
    /// must not be readable by other users.
    File(PathBuf),
    /// An environment variable of this process.
    Env(String),
    /// The OS keychain: Windows Credential Manager, the macOS keychain, or the Secret
    /// Service (GNOME Keyring, KWallet) over the D-Bus session bus on Linux.
    Keyring {
        /// The keychain entry's service name.
        service: String,
        /// The keychain entry's user name.
        user: String,
    },
}

/// Settings around an [`IdentityConfig`]; `Default` is right outside tests.
#[derive(Clone, Debug)]
pub struct IdentityOptions {
    /// The Entra ID authority, e.g. `https://login.microsoftonline.us`; must be https.
    /// `None`: `AZURE_AUTHORITY_HOST`, else the public cloud.
    pub authority_host: Option<String>,
    /// How long `az` or `azd` may take before it is killed (default 30 s).
    pub cli_timeout: Duration,
    /// The `PATH` that `az` and `azd` are looked up in (and run with); `None`: this
    /// process's. Services started by systemd or the task scheduler often have a shorter
    /// `PATH` than the admin's shell.
    pub cli_path: Option<OsString>,
    /// How long the IMDS probe waits for any answer before managed identity is
    /// considered absent (default 1 s).
    pub imds_probe_timeout: Duration,
    /// Where the IMDS probe goes; `None`: IMDS itself. Tokens always come from IMDS, so
    /// this is for tests (pointing the probe at a closed loopback port).
    pub imds_probe_url: Option<String>,
    /// The Azure Arc token endpoint; `None`: `IDENTITY_ENDPOINT` when `IMDS_ENDPOINT` is
    /// also set, else `http://localhost:40342/metadata/identity/oauth2/token`. Must be on
    /// this machine (loopback). Setting it also tells the chain that Arc is present.
    pub arc_endpoint: Option<String>,
    /// The folder the Arc agent writes its challenge files to; `None`:
    /// `/var/opt/azcmagent/tokens` (Linux) or `%ProgramData%\AzureConnectedMachineAgent\Tokens`
    /// (Windows).
    pub arc_token_folder: Option<PathBuf>,
    /// PEM files whose certificates are trusted for HTTPS in addition to the system's
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR`, when set, replace the system store instead).
    pub extra_roots: Vec<PathBuf>,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        Self {
            authority_host: None,
            cli_timeout: Duration::from_secs(30),
            cli_path: None,
            imds_probe_timeout: Duration::from_secs(1),
            imds_probe_url: None,
            arc_endpoint: None,
            arc_token_folder: None,
            extra_roots: Vec::new(),
        }
    }
}
