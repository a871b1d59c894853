//! What `rehydra azure status` shows: the source in use ([`SourceKind`]), the claims of its
//! token ([`Claims`]) and every source tried ([`Attempt`]), gathered in a [`Status`].

use std::fmt;
use std::time::SystemTime;

/// A place a token can come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceKind {
    /// A service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
    /// `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH`.
    Environment,
    /// The Azure CLI (`az`).
    AzureCli,
    /// The Azure Developer CLI (`azd`).
    AzureDeveloperCli,
    /// A configured service principal with a client secret.
    ServicePrincipalSecret,
    /// A configured service principal with a client certificate.
    ServicePrincipalCertificate,
    /// The Azure Arc managed identity (Connected Machine agent).
    AzureArc,
    /// The managed identity of an Azure VM (IMDS) or App Service.
    Imds,
}

impl SourceKind {
    /// A short name for messages and the CLI, e.g. `"Azure CLI"`.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Environment => "environment service principal",
            SourceKind::AzureCli => "Azure CLI",
            SourceKind::AzureDeveloperCli => "Azure Developer CLI",
            SourceKind::ServicePrincipalSecret => "service principal (client secret)",
            SourceKind::ServicePrincipalCertificate => "service principal (certificate)",
            SourceKind::AzureArc => "Azure Arc managed identity",
            SourceKind::Imds => "managed identity (IMDS)",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One source tried, and how it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The source.
    pub source: SourceKind,
    /// `None` when it gave a token; otherwise why not, in plain words ("az is not
    /// installed", "az: please run 'az login'", "AADSTS7000215: Invalid client secret
    /// provided.", …).
    pub failure: Option<String>,
}

/// What a token says about who it is for, decoded from its JWT payload without checking
/// the signature (display only; never used to decide anything).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// The tenant (`tid`).
    pub tenant: Option<String>,
    /// The application the token was issued to (`appid`, else `azp`).
    pub app_id: Option<String>,
    /// The signed-in user (`upn`, else `unique_name`, else `preferred_username`); absent
    /// for service principals and managed identities.
    pub user: Option<String>,
    /// The object id of the user or service principal (`oid`).
    pub object_id: Option<String>,
    /// When the token expires (`exp`).
    pub expires: Option<SystemTime>,
}

/// The identity as `rehydra azure status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The source whose token is in use; `None` when no source works.
    pub source: Option<SourceKind>,
    /// The claims of the current token; `None` without a token or when the token is not
    /// a JWT.
    pub claims: Option<Claims>,
    /// When the current token expires.
    pub expires: Option<SystemTime>,
    /// Every source tried, in order, when the source was chosen (one entry for a
    /// configured source), with why each failed.
    pub attempts: Vec<Attempt>,
    /// Why there is no token, when there is none.
    pub error: Option<String>,
}
