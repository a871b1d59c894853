//! Why a source failed, in plain words: `azure_identity`'s errors carry a credential
//! name, a troubleshooting link and whatever the tool printed; an admin wants "az is not
//! installed" or "AADSTS7000215: Invalid client secret provided.".
//!
//! Whatever comes out of here has anything shaped like a JWT removed, so a token a tool
//! printed by mistake never reaches a log or a screen.

use crate::status::SourceKind;

/// The longest reason we show.
const MAX_LEN: usize = 300;

/// The reason `err` from the source `kind` failed.
pub(crate) fn plain(kind: SourceKind, err: &azure_core::Error) -> String {
    let text = redact(&detail(err));
    let text = match kind {
        SourceKind::AzureCli => cli("az", "az login", &text),
        SourceKind::AzureDeveloperCli => cli("azd", "azd auth login", &text),
        SourceKind::Environment
        | SourceKind::ServicePrincipalSecret
        | SourceKind::ServicePrincipalCertificate => entra(&text),
        SourceKind::AzureArc | SourceKind::Imds => first_line(&text),
    };
    shorten(text)
}

/// The first message in `err`'s chain that is not one of `azure_core`'s wrappers
/// ("XCredential authentication failed. …", "retry policy expired …").
fn detail(err: &azure_core::Error) -> String {
    const WRAPPERS: [&str; 3] = [
        "authentication failed.",
        "will no longer be retried",
        "will not be retried",
    ];
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut last = err.to_string();
    while let Some(e) = current {
        let text = e.to_string();
        if !WRAPPERS.iter().any(|w| text.contains(w)) {
            return text;
        }
        last = text;
        current = e.source();
    }
    last
}

/// `az` and `azd` failures: not installed, not signed in, timed out, or their first
/// error line.
fn cli(tool: &str, login: &str, text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("not found on path")
        || lower.contains("wasn't found on path")
        || lower.contains("is not recognized")
    {
        return format!("{tool} is not installed (not found on PATH)");
    }
    if lower.contains(login) || lower.contains("not logged in") {
        return format!("{tool}: please run '{login}'");
    }
    if lower.contains("did not answer within") {
        let rest = text
            .split_once("did not answer within")
            .map_or("", |(_, r)| r);
        return format!("{tool} did not answer within {}", first_line(rest));
    }
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed without a message");
    let line = line.strip_prefix("ERROR:").map_or(line, str::trim);
    format!("{tool}: {line}")
}

/// Entra ID errors: `AADSTS…` with the first sentence of its description; transport
/// errors as they are.
fn entra(text: &str) -> String {
    if let Some(start) = text.find("AADSTS") {
        let rest = &text[start..];
        let line = rest.lines().next().unwrap_or(rest);
        return match line.find(". ") {
            Some(end) => line[..=end].to_owned(),
            None => line.trim().to_owned(),
        };
    }
    first_line(text)
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed without a message")
        .to_owned()
}

fn shorten(mut text: String) -> String {
    if text.len() > MAX_LEN {
        let mut end = MAX_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// `text` with every JWT-looking run (`eyJ…` with two dots) replaced by `…`.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        let candidate = &rest[start..];
        let len = candidate
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')))
            .unwrap_or(candidate.len());
        let run = &candidate[..len];
        out.push_str(&rest[..start]);
        if run.matches('.').count() >= 2 || run.len() >= 40 {
            out.push('…');
        } else {
            out.push_str(run);
        }
        rest = &candidate[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::error::ErrorKind;

    fn err(message: &str) -> azure_core::Error {
        azure_core::Error::with_message(ErrorKind::Credential, message.to_owned())
    }

    #[test]
    fn cli_reasons() {
        assert_eq!(
            plain(SourceKind::AzureCli, &err("az not found on PATH")),
            "az is not installed (not found on PATH)"
        );
        assert_eq!(
            plain(
                SourceKind::AzureCli,
                &err("ERROR: Please run 'az login' to setup account.\n")
            ),
            "az: please run 'az login'"
        );
        assert_eq!(
            plain(
                SourceKind::AzureDeveloperCli,
                &err("\nERROR: not logged in, run `azd auth login` to login")
            ),
            "azd: please run 'azd auth login'"
        );
        assert_eq!(
            plain(
                SourceKind::AzureCli,
                &err("ERROR: AADSTS50173: The provided grant has expired.\nmore")
            ),
            "az: AADSTS50173: The provided grant has expired."
        );
    }

    #[test]
    fn entra_reasons() {
        let description = "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent \
                           is the value.\r\nTrace ID: 1\r\nCorrelation ID: 2";
        assert_eq!(
            plain(SourceKind::ServicePrincipalSecret, &err(description)),
            "AADSTS7000215: Invalid client secret provided."
        );
        let wrapped = azure_core::Error::with_error(
            ErrorKind::Credential,
            err(description),
            format!(
                "ClientSecretCredential authentication failed. {description}\nTo troubleshoot, visit https://aka.ms/x"
            ),
        );
        assert_eq!(
            plain(SourceKind::ServicePrincipalSecret, &wrapped),
            "AADSTS7000215: Invalid client secret provided."
        );
    }

    #[test]
    fn tokens_are_redacted() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl";
        let text = format!("az printed {jwt} by mistake; eyJ alone stays");
        assert_eq!(redact(&text), "az printed … by mistake; eyJ alone stays");
        let reason = plain(
            SourceKind::AzureCli,
            &err(&format!("ERROR: bad token {jwt}")),
        );
        assert!(!reason.contains(jwt), "{reason}");
    }
}
