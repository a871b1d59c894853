//! What a restore may write, and to whom: the attributes the directory owns, the ones
//! never taken from a restore point (credentials, delegation), the ones written only when
//! the admin names them, the groups that control the domain, and the identity check
//! between a restore point's object and the live one.

use crate::changes::meaningful;
use crate::dir;
use crate::ldif::Obj;

/// `userAccountControl` bits.
pub(crate) const ACCOUNT_DISABLE: u32 = 0x2;
pub(crate) const NORMAL_ACCOUNT: u32 = 0x200;
pub(crate) const WORKSTATION_TRUST_ACCOUNT: u32 = 0x1000;

/// Attributes the directory owns: never written back.
const SYSTEM: [&str; 29] = [
    "objectGUID",
    "objectSid",
    "whenCreated",
    "whenChanged",
    "uSNCreated",
    "uSNChanged",
    "distinguishedName",
    "name",
    "instanceType",
    "objectCategory",
    "isDeleted",
    "isRecycled",
    "lastKnownParent",
    "replPropertyMetaData",
    "memberOf",
    "dSCorePropagationData",
    "sAMAccountType",
    "pwdLastSet",
    "badPwdCount",
    "badPasswordTime",
    "lastLogon",
    "lastLogoff",
    "logonCount",
    "lastLogonTimestamp",
    "primaryGroupID",
    "isCriticalSystemObject",
    "systemFlags",
    "msDS-LastKnownRDN",
    "objectClass",
];

/// Credentials and delegation settings: never written back from a restore point (a
/// crafted point could otherwise reset a password or grant delegation).
const NEVER: [&str; 21] = [
    "unicodePwd",
    "userPassword",
    "clearTextPassword",
    "dBCSPwd",
    "ntPwdHistory",
    "lmPwdHistory",
    "supplementalCredentials",
    "msDS-KeyCredentialLink",
    "msDS-AllowedToActOnBehalfOfOtherIdentity",
    "msDS-AllowedToDelegateTo",
    "altSecurityIdentities",
    "sIDHistory",
    "adminCount",
    "ms-Mcs-AdmPwd",
    "ms-Mcs-AdmPwdExpirationTime",
    "msLAPS-Password",
    "msLAPS-EncryptedPassword",
    "msFVE-RecoveryPassword",
    "msPKIAccountCredentials",
    "msPKIDPAPIMasterKeys",
    "msPKI-CredentialRoamingTokens",
];

/// Attributes that change what an account may do or run, or who may do what to the
/// object: written only when the admin names them in `attributes=` (not with `*`, not
/// when reanimating or re-creating). A security descriptor is written as owner, group and
/// DACL (the SD flags control), never its SACL.
const SENSITIVE: [&str; 7] = [
    "nTSecurityDescriptor",
    "userAccountControl",
    "servicePrincipalName",
    "scriptPath",
    "gPLink",
    "gPOptions",
    "msDS-SupportedEncryptionTypes",
];

fn listed(list: &[&str], attr: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(attr))
}

/// True for an attribute a restore may write without being told to by name. Only by its
/// name (a letter, then letters, digits and `-`, as every display name of the schema): an
/// attribute given by OID (`1.2.840.113556.1.2.281`, `OID.1.2…`, which only a crafted
/// restore point holds) or with options (`member;range=…`) would slip past every list.
pub(crate) fn writable(attr: &str) -> bool {
    meaningful(attr)
        && attr.starts_with(|c: char| c.is_ascii_alphabetic())
        && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !listed(&SYSTEM, attr)
        && !listed(&NEVER, attr)
        && !listed(&SENSITIVE, attr)
}

/// True for a credential or secret (LAPS, BitLocker, password hashes): its values are
/// never shown, only that it changed.
pub(crate) fn secret(attr: &str) -> bool {
    listed(&NEVER, attr)
}

/// True for an attribute a rollback may write when the admin named it.
pub(crate) fn writable_by_name(attr: &str) -> bool {
    writable(attr) || listed(&SENSITIVE, attr)
}

/// RIDs of the groups that administer the domain (Domain Admins, Domain Controllers,
/// Schema Admins, Enterprise Admins, Cert Publishers' neighbours …); with
/// `S-1-5-32-*` (Administrators, Account/Server/Print/Backup Operators …).
const PRIVILEGED_RIDS: [u32; 8] = [500, 502, 512, 516, 518, 519, 520, 521];

/// True for a group that grants control of the domain: memberships in it are never
/// linked by a restore (the plan says so; add them by hand if they are wanted).
pub(crate) fn privileged(group: &Obj) -> bool {
    let sid = group
        .values("objectSid")
        .first()
        .and_then(|s| dir::sid_text(s))
        .unwrap_or_default();
    let rid = sid
        .rsplit('-')
        .next()
        .and_then(|r| r.parse::<u32>().ok())
        .unwrap_or(0);
    sid.starts_with("S-1-5-32-")
        || PRIVILEGED_RIDS.contains(&rid)
        || group.text("adminCount").as_deref() == Some("1")
        || group
            .text("isCriticalSystemObject")
            .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
}

/// The live object with the point's GUID must be the same account: same SID (when both
/// have one) and the same most specific object class.
pub(crate) fn same_identity(point: &Obj, live: &Obj) -> bool {
    let sid_ok = match (
        point.values("objectSid").first(),
        live.values("objectSid").first(),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let class = |o: &Obj| {
        o.texts("objectClass")
            .last()
            .map(|c| c.to_ascii_lowercase())
    };
    sid_ok && class(point) == class(live)
}
