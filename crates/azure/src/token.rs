//! [`Token`], a bearer token that never prints, and the decoding of its claims for
//! display.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::status::Claims;

/// A bearer token. `Debug` prints `Token(…)`; the secret is zeroized on drop.
#[derive(Clone)]
pub struct Token {
    secret: Zeroizing<String>,
    /// When the token stops being accepted.
    pub expires: SystemTime,
}

impl Token {
    pub(crate) fn new(secret: String, expires: SystemTime) -> Self {
        Self {
            secret: Zeroizing::new(secret),
            expires,
        }
    }

    /// The `Authorization` header value: `"Bearer …"`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret.as_str())
    }

    /// The token itself, for protocols that want it bare.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// What the token says about who it is for; `None` when it is not a JWT.
    pub fn claims(&self) -> Option<Claims> {
        claims(&self.secret)
    }

    /// Whether the token is still good for at least `margin`.
    pub(crate) fn valid_for(&self, margin: Duration) -> bool {
        SystemTime::now()
            .checked_add(margin)
            .is_some_and(|t| self.expires > t)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// Decodes a JWT's payload (the middle part) without verifying anything.
pub(crate) fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let object = value.as_object()?;
    let text = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| object.get(*n).and_then(|v| v.as_str()).map(str::to_owned))
    };
    let expires = object
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
    Some(Claims {
        tenant: text(&["tid"]),
        app_id: text(&["appid", "azp"]),
        user: text(&["upn", "unique_name", "preferred_username"]),
        object_id: text(&["oid"]),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn claims_of_a_user_token() {
        let c = claims(&jwt(
            r#"{"tid":"t1","appid":"04b07795","upn":"admin@contoso.com","oid":"o1","exp":2000000000}"#,
        ))
        .unwrap();
        assert_eq!(c.tenant.as_deref(), Some("t1"));
        assert_eq!(c.app_id.as_deref(), Some("04b07795"));
        assert_eq!(c.user.as_deref(), Some("admin@contoso.com"));
        assert_eq!(c.object_id.as_deref(), Some("o1"));
        assert_eq!(
            c.expires,
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
    }

    #[test]
    fn claims_fall_back_to_v2_names() {
        let c = claims(&jwt(r#"{"azp":"app","unique_name":"u@x"}"#)).unwrap();
        assert_eq!(c.app_id.as_deref(), Some("app"));
        assert_eq!(c.user.as_deref(), Some("u@x"));
        assert_eq!(c.tenant, None);
    }

    #[test]
    fn non_jwt_tokens_have_no_claims() {
        assert_eq!(claims("opaque-token"), None);
        assert_eq!(claims("a.b.c"), None);
        assert_eq!(claims("a.b.c.d"), None);
        assert_eq!(claims(&jwt("[1,2]")), None);
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = Token::new("s3cret-value".into(), SystemTime::now());
        assert_eq!(format!("{t:?}"), "Token(…)");
        assert_eq!(t.bearer(), "Bearer s3cret-value");
    }
}
