//! Velero's backup hooks, honoured when volume data is copied with `hooks=velero` (off by
//! default: whoever may annotate a pod then chooses a command the admin's kubectl account
//! runs in it): a pod annotated
//! `pre.hook.backup.velero.io/command` has that command run in it (`kubectl exec`, in
//! `pre.hook.backup.velero.io/container`, default its first container) before the files of
//! the claims it mounts are copied, and `post.hook.backup.velero.io/command` after them,
//! whatever happened in between. A failing pre hook leaves that pod's claims uncopied
//! (Velero's `on-error: Fail`, the default), or is a warning with `on-error: Continue`.
//! A hook runs at most `….hook.backup.velero.io/timeout` (a Go duration, `30s` by
//! default, as Velero's; one that is not a duration is the default, with a warning),
//! then kubectl is stopped and the hook has failed.
//!
//! The command is an argument list (a JSON array of strings, or one word), run without a
//! shell; its words come from the cluster and reach kubectl after `--` only.

use rehydra_plugin_sdk::rest::{shown, text};
use serde_json::Value;

/// The most words one hook command may have.
const WORDS_MAX: usize = 64;
/// Velero's default hook timeout, in seconds.
const TIMEOUT_DEFAULT: u32 = 30;
/// The longest timeout taken (a day), in seconds.
const TIMEOUT_MAX: u32 = 86_400;

/// One hook of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    /// `on-error: Fail` (the default): its pod's claims are not copied when it fails.
    pub fail: bool,
    /// How long it may run, in seconds.
    pub timeout_secs: u32,
    /// What the job should say of its annotations (a timeout that is not a duration).
    pub warning: Option<String>,
}

/// Seconds of a Go duration (`30s`, `1m30s`, `500ms`, `2h`; rounded up to whole
/// seconds), `None` when it is not one or is longer than a day.
fn duration_secs(text: &str) -> Option<u32> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit..];
        total += value * scale;
    }
    let secs = total.ceil();
    (secs <= f64::from(TIMEOUT_MAX)).then_some(secs as u32)
}

/// The `phase` (`pre` or `post`) backup hook of `pod`, if it has one. `Err` says why an
/// annotation cannot be used (a warning; the hook is not run).
pub fn of(pod: &Value, phase: &str) -> Result<Option<Hook>, String> {
    let ann = &pod["metadata"]["annotations"];
    let key = |k: &str| format!("{phase}.hook.backup.velero.io/{k}");
    let Some(raw) = ann.get(key("command")) else {
        return Ok(None);
    };
    let name = text(&pod["metadata"]["name"], 253).unwrap_or_default();
    let bad = |why: &str| format!("pod {name}: its {} is not used: {why}", key("command"));
    let raw = raw.as_str().ok_or_else(|| bad("not text"))?;
    let command: Vec<String> = if raw.trim_start().starts_with('[') {
        serde_json::from_str(raw).map_err(|_| bad("not a JSON array of strings"))?
    } else {
        vec![raw.trim().to_string()]
    };
    if command.is_empty()
        || command.len() > WORDS_MAX
        || command.iter().any(|w| w.len() > 4096 || w.contains('\0'))
        || command[0].is_empty()
    {
        return Err(bad(&format!(
            "`{}` is not a command of 1 to {WORDS_MAX} words",
            shown(raw, 80)
        )));
    }
    let containers = pod["spec"]["containers"].as_array();
    let first = containers
        .and_then(|c| c.first())
        .and_then(|c| text(&c["name"], 63));
    let container = match ann.get(key("container")).and_then(Value::as_str) {
        Some(c) => c,
        None => first.ok_or_else(|| bad("the pod has no container"))?,
    };
    let known = containers
        .into_iter()
        .flatten()
        .any(|c| c["name"].as_str() == Some(container));
    if !known {
        return Err(bad(&format!(
            "it names container `{}`, which the pod does not have",
            shown(container, 63)
        )));
    }
    let fail = ann
        .get(key("on-error"))
        .and_then(Value::as_str)
        .is_none_or(|v| !v.eq_ignore_ascii_case("continue"));
    // as Velero: none, empty or zero is the default, and one it cannot read is the
    // default too, said in a warning (the hook runs all the same: a post hook may thaw
    // what the pre hook froze)
    let mut warning = None;
    let timeout_secs = match ann
        .get(key("timeout"))
        .and_then(Value::as_str)
        .map(str::trim)
    {
        None | Some("") => TIMEOUT_DEFAULT,
        Some(t) => match duration_secs(t) {
            Some(0) => TIMEOUT_DEFAULT,
            Some(s) => s,
            None => {
                warning = Some(format!(
                    "pod {name}: its {} `{}` is not a duration of at most a day (30s, 1m30s, 2h): the hook runs with Velero's default of {TIMEOUT_DEFAULT} s",
                    key("timeout"),
                    shown(t, 40)
                ));
                TIMEOUT_DEFAULT
            }
        },
    };
    Ok(Some(Hook {
        pod: name.to_string(),
        container: container.to_string(),
        command,
        fail,
        timeout_secs,
        warning,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(ann: Value) -> Value {
        json!({"metadata": {"name": "web-0", "annotations": ann},
            "spec": {"containers": [{"name": "web"}, {"name": "sidecar"}]}})
    }

    #[test]
    fn velero_hook_annotations_are_read_as_velero_reads_them() {
        assert_eq!(of(&pod(json!({})), "pre"), Ok(None));
        let h = of(
            &pod(json!({"pre.hook.backup.velero.io/command": "[\"/sbin/fsfreeze\", \"--freeze\", \"/data\"]"})),
            "pre",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.command, ["/sbin/fsfreeze", "--freeze", "/data"]);
        assert_eq!(
            (h.container.as_str(), h.fail, h.timeout_secs),
            ("web", true, 30)
        );
        let h = of(
            &pod(json!({"post.hook.backup.velero.io/command": "sync",
                "post.hook.backup.velero.io/container": "sidecar",
                "post.hook.backup.velero.io/on-error": "Continue"})),
            "post",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.command, h.container, h.fail),
            (vec!["sync".to_string()], "sidecar".to_string(), false)
        );
        for bad in [
            json!({"pre.hook.backup.velero.io/command": "[1, 2]"}),
            json!({"pre.hook.backup.velero.io/command": "[]"}),
            json!({"pre.hook.backup.velero.io/command": "[\"\"]"}),
            json!({"pre.hook.backup.velero.io/command": "sync", "pre.hook.backup.velero.io/container": "other"}),
        ] {
            assert!(of(&pod(bad.clone()), "pre").is_err(), "{bad}");
        }
    }

    #[test]
    fn hook_timeouts_are_go_durations() {
        let t = |d: &str| {
            let h = of(
                &pod(json!({"pre.hook.backup.velero.io/command": "sync",
                    "pre.hook.backup.velero.io/timeout": d})),
                "pre",
            )
            .unwrap()
            .unwrap();
            (h.timeout_secs, h.warning.is_some())
        };
        assert_eq!(t("2m"), (120, false));
        assert_eq!(t("1m30s"), (90, false));
        assert_eq!(t("1.5h"), (5400, false));
        assert_eq!(
            t("500ms"),
            (1, false),
            "rounded up: a hook gets at least what it asked"
        );
        assert_eq!(t("0"), (30, false), "zero: Velero's default");
        assert_eq!(t(""), (30, false), "empty: Velero's default");
        assert_eq!(t("24h"), (86_400, false));
        // one Velero cannot read either: the default, and the hook still runs
        for bad in ["30", "s", "1x", "-1s", "1m 2s", "25h", "soon"] {
            assert_eq!(t(bad), (30, true), "{bad:?}");
        }
    }
}
