//! Conversions between the generated binding types and the DTOs.

use crate::bindings::rehydra::plugin::files as wit_files;
use crate::bindings::wit;
use crate::dto::*;

impl From<wit::ErrorCode> for ErrorCode {
    fn from(c: wit::ErrorCode) -> Self {
        match c {
            wit::ErrorCode::Denied => Self::Denied,
            wit::ErrorCode::NotFound => Self::NotFound,
            wit::ErrorCode::InvalidInput => Self::InvalidInput,
            wit::ErrorCode::Unavailable => Self::Unavailable,
            wit::ErrorCode::Cancelled => Self::Cancelled,
            wit::ErrorCode::Unsupported => Self::Unsupported,
            wit::ErrorCode::Failed => Self::Failed,
        }
    }
}

impl From<HostError> for wit::Error {
    fn from(e: HostError) -> Self {
        let code = match e.code {
            ErrorCode::Denied => wit::ErrorCode::Denied,
            ErrorCode::NotFound => wit::ErrorCode::NotFound,
            ErrorCode::InvalidInput => wit::ErrorCode::InvalidInput,
            ErrorCode::Unavailable => wit::ErrorCode::Unavailable,
            ErrorCode::Cancelled => wit::ErrorCode::Cancelled,
            ErrorCode::Unsupported => wit::ErrorCode::Unsupported,
            ErrorCode::Failed => wit::ErrorCode::Failed,
        };
        wit::Error {
            code,
            message: e.message,
        }
    }
}

impl From<rehydra_plugin_rules::files::Entry> for wit_files::Entry {
    fn from(e: rehydra_plugin_rules::files::Entry) -> Self {
        use rehydra_plugin_rules::files::EntryKind as Kind;
        let kind = match e.kind {
            Kind::File => wit_files::EntryKind::File,
            Kind::Directory => wit_files::EntryKind::Directory,
            Kind::Symlink => wit_files::EntryKind::Symlink,
            Kind::Other => wit_files::EntryKind::Other,
        };
        Self {
            name: e.name,
            kind,
            size: e.size,
            modified: e.modified,
        }
    }
}

fn props_in(p: Vec<wit::Property>) -> Vec<Property> {
    p.into_iter()
        .map(|p| Property {
            name: p.name,
            value: p.value,
        })
        .collect()
}

pub(crate) fn props_out(p: &[Property]) -> Vec<wit::Property> {
    p.iter()
        .map(|p| wit::Property {
            name: p.name.clone(),
            value: p.value.clone(),
        })
        .collect()
}

const FLAG_NAMES: [(wit::ProtectionFlags, &str); 6] = [
    (wit::ProtectionFlags::TRUSTED_LAUNCH, "trusted-launch"),
    (wit::ProtectionFlags::ARC_MANAGED, "arc-managed"),
    (wit::ProtectionFlags::HAS_CHECKPOINTS, "has-checkpoints"),
    (wit::ProtectionFlags::ENCRYPTED, "encrypted"),
    (wit::ProtectionFlags::CLUSTERED, "clustered"),
    (wit::ProtectionFlags::NEEDS_QUIESCE, "needs-quiesce"),
];

impl From<wit::Asset> for Asset {
    fn from(a: wit::Asset) -> Self {
        let flags = FLAG_NAMES
            .iter()
            .filter(|(f, _)| a.flags.contains(*f))
            .map(|(_, n)| (*n).to_string())
            .collect();
        Self {
            kind: a.kind,
            id: a.id,
            name: shown(a.name),
            parent: a.parent,
            properties: props_in(a.properties),
            flags,
        }
    }
}

pub(crate) fn asset_out(a: &Asset) -> wit::Asset {
    let mut flags = wit::ProtectionFlags::empty();
    for (f, n) in FLAG_NAMES {
        if a.flags.iter().any(|x| x == n) {
            flags |= f;
        }
    }
    wit::Asset {
        kind: a.kind.clone(),
        id: a.id.clone(),
        name: a.name.clone(),
        parent: a.parent.clone(),
        properties: props_out(&a.properties),
        flags,
    }
}

impl From<wit::Finding> for Finding {
    fn from(f: wit::Finding) -> Self {
        let severity = match f.severity {
            wit::Severity::Info => "info",
            wit::Severity::Low => "low",
            wit::Severity::Medium => "medium",
            wit::Severity::High => "high",
            wit::Severity::Critical => "critical",
        };
        Self {
            rule: f.rule,
            severity: severity.into(),
            asset: f.asset,
            title: shown(f.title),
            detail: shown(f.detail),
            recommendation: shown(f.recommendation),
        }
    }
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(i: wit::PluginInfo) -> Self {
        Self {
            id: i.id,
            name: i.name,
            version: i.version,
            workloads: i.workloads,
            description: i.description,
        }
    }
}

impl From<ItemKind> for wit::ItemKind {
    fn from(k: ItemKind) -> Self {
        match k {
            ItemKind::Tree => Self::Tree,
            ItemKind::Stream => Self::Stream,
            ItemKind::Disk => Self::Disk,
            ItemKind::Document => Self::Document,
        }
    }
}

impl From<ItemInfo> for wit::ItemInfo {
    fn from(i: ItemInfo) -> Self {
        Self {
            name: i.name,
            kind: i.kind.into(),
            size: i.size,
        }
    }
}

impl From<ItemSummary> for wit::ItemSummary {
    fn from(i: ItemSummary) -> Self {
        Self {
            name: i.name,
            kind: i.kind.into(),
            size: i.size,
            new_bytes: i.new_bytes,
        }
    }
}

pub(crate) fn restore_point_out(p: &RestorePointInfo) -> wit::RestorePoint {
    wit::RestorePoint {
        id: p.id.clone(),
        time: p.time.clone(),
        workload: p.workload.clone(),
        asset: p.asset.clone(),
        plugin_id: p.plugin_id.clone(),
        plugin_version: p.plugin_version.clone(),
        consistency: p.consistency.clone(),
        items: p.items.iter().cloned().map(Into::into).collect(),
        tags: p.tags.clone(),
    }
}

pub(crate) fn restore_request_out(r: &RestoreRequest) -> wit::RestoreRequest {
    wit::RestoreRequest {
        restore_point: restore_point_out(&r.restore_point),
        target: r.target.clone(),
        options: props_out(&r.options),
    }
}

/// Text a plugin wrote, safe to print: every control character but the line break becomes
/// U+FFFD, so nothing a plugin (or the restore point or server it read) says can steer a
/// terminal or forge a log line's prefix.
pub(crate) fn shown(s: String) -> String {
    if s.chars().any(|c| c.is_control() && c != '\n') {
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect()
    } else {
        s
    }
}

fn all_shown(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(shown).collect()
}

impl From<wit::RestorePlan> for RestorePlan {
    fn from(p: wit::RestorePlan) -> Self {
        Self {
            steps: p
                .steps
                .into_iter()
                .map(|s| Step {
                    id: shown(s.id),
                    title: shown(s.title),
                    detail: shown(s.detail),
                    depends_on: all_shown(s.depends_on),
                })
                .collect(),
            warnings: all_shown(p.warnings),
            blockers: all_shown(p.blockers),
        }
    }
}

impl From<wit::BackupReport> for BackupReport {
    fn from(r: wit::BackupReport) -> Self {
        Self {
            consistency: shown(r.consistency),
            warnings: all_shown(r.warnings),
        }
    }
}

impl From<wit::RestoreReport> for RestoreReport {
    fn from(r: wit::RestoreReport) -> Self {
        Self {
            bytes: r.bytes,
            warnings: all_shown(r.warnings),
        }
    }
}

impl From<wit::VerifyReport> for VerifyReport {
    fn from(r: wit::VerifyReport) -> Self {
        Self {
            ok: r.ok,
            findings: r.findings.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_cannot_steer_a_terminal() {
        assert_eq!(shown("plain\nline".into()), "plain\nline");
        assert_eq!(shown("a\u{1b}[2Jb\rc".into()), "a\u{fffd}[2Jb\u{fffd}c");
    }
}
