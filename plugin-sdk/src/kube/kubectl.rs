//! kubectl on a command target (`command:kubectl@<target>`), always as an argument list
//! (never a shell string), every name in it checked first: namespaces and pods are
//! Kubernetes names, paths are absolute, free of control characters and never start with
//! `-`, so no argument can turn into an option or a second command.

use crate::commands;
use crate::kube::{is_label, is_subdomain};
use crate::prelude::*;
use crate::rest::shown;

/// Where a running kubectl is, and which pod and container it talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The command target that runs kubectl (`local` for this machine).
    pub target: String,
    /// kubectl `--context`, when set.
    pub context: Option<String>,
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

/// The longest a `stat` in the pod may take, in seconds.
pub const STAT_SECS: u32 = 120;

/// An absolute path for a kubectl argument: `/…`, no control characters, no `..`
/// component, no `:` (kubectl cp reads `a:b` as a pod's path), not `/` itself, at most
/// 1024 bytes.
///
/// # Errors
/// `invalid-input` naming it.
pub fn abs_path<'a>(what: &str, p: &'a str) -> Result<&'a str> {
    let ok = p.starts_with('/')
        && !p.trim_end_matches('/').is_empty()
        && !p.contains(':')
        && p.len() <= 1024
        && !p.chars().any(char::is_control)
        && !p.split('/').any(|c| c == "..");
    if ok {
        Ok(p)
    } else {
        Err(invalid(format!(
            "{what} `{}` is not an absolute path (not `/` itself) without `..`, `:` or control characters",
            shown(p, 120)
        )))
    }
}

/// Remove `file`, a copy staged on command target `target` (`command:rm@<target>`); the
/// warning to give (naming the file, to remove by hand) when it stays.
#[must_use]
pub fn unstage(target: &str, file: &str) -> Option<String> {
    let args = ["-f".to_string(), "--".to_string(), file.to_string()];
    let said = match commands::run(target, "rm", &args) {
        Ok(o) if o.status == 0 => return None,
        Ok(o) => format!("rm exited with {}", o.status),
        Err(e) => e.message,
    };
    Some(format!(
        "the staged copy {file} on {target} could not be removed ({said}); remove it by hand"
    ))
}

impl Pod {
    /// Check every name.
    ///
    /// # Errors
    /// `invalid-input` naming the setting to fix.
    pub fn new(
        target: &str,
        context: Option<&str>,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Self> {
        if target.is_empty()
            || target.len() > 253
            || !target
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(format!(
                "command-target `{}` is not a target name",
                shown(target, 80)
            )));
        }
        if let Some(c) = context
            && (c.is_empty()
                || c.len() > 253
                || c.starts_with('-')
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:@/".contains(&b)))
        {
            return Err(invalid(format!(
                "kube-context `{}` is not a context name kubectl takes here (letters, digits, -_.:@/)",
                shown(c, 80)
            )));
        }
        if !is_label(namespace) || !is_subdomain(pod) || !is_label(container) {
            return Err(invalid(format!(
                "namespace `{}`, pod `{}` and container `{}` must be Kubernetes names (set pod= or container= to the right ones)",
                shown(namespace, 80),
                shown(pod, 80),
                shown(container, 80)
            )));
        }
        Ok(Self {
            target: target.into(),
            context: context.map(str::to_string),
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
        })
    }

    fn with_context(&self, mut args: Vec<String>) -> Vec<String> {
        if let Some(c) = &self.context {
            args.push("--context".into());
            args.push(c.clone());
        }
        args
    }

    /// `kubectl cp <ns>/<pod>:<from> <to> -c <container>`.
    ///
    /// # Errors
    /// `invalid-input` for a path that is not absolute or holds control characters.
    pub fn cp_args(&self, from: &str, to: &str) -> Result<Vec<String>> {
        abs_path("the file in the pod", from)?;
        abs_path("staging", to)?;
        Ok(self.with_context(vec![
            "cp".into(),
            format!("{}/{}:{from}", self.namespace, self.pod),
            to.into(),
            "-c".into(),
            self.container.clone(),
        ]))
    }

    /// `kubectl cp <from> <ns>/<pod>:<to> -c <container>`: a file or folder of the
    /// command target into the pod.
    ///
    /// # Errors
    /// `invalid-input` for a path that is not absolute or holds control characters.
    pub fn cp_in_args(&self, from: &str, to: &str) -> Result<Vec<String>> {
        abs_path("staging", from)?;
        abs_path("the folder in the pod", to)?;
        Ok(self.with_context(vec![
            "cp".into(),
            from.into(),
            format!("{}/{}:{to}", self.namespace, self.pod),
            "-c".into(),
            self.container.clone(),
        ]))
    }

    /// `kubectl exec <pod> -n <ns> -c <container> -- <command…>`.
    pub fn exec_args(&self, command: &[&str]) -> Vec<String> {
        let mut a = self.with_context(vec![
            "exec".into(),
            self.pod.clone(),
            "-n".into(),
            self.namespace.clone(),
            "-c".into(),
            self.container.clone(),
        ]);
        a.push("--".into());
        a.extend(command.iter().map(|c| (*c).to_string()));
        a
    }

    /// Run kubectl with `args`; a non-zero exit is an error with what kubectl said.
    ///
    /// # Errors
    /// Not granted, kubectl missing, or its failure.
    pub fn run(&self, args: &[String], what: &str) -> Result<()> {
        self.run_within(args, what, None)
    }

    /// [`Self::run`], kubectl stopped after `timeout_secs` seconds when given (an
    /// `exec`'s own `--request-timeout` does not end its stream, so the host's limit on
    /// the command does).
    ///
    /// # Errors
    /// As [`Self::run`]; past the time, `failed` saying so.
    pub fn run_within(&self, args: &[String], what: &str, timeout_secs: Option<u32>) -> Result<()> {
        self.output(args, what, timeout_secs).map(drop)
    }

    /// The size in bytes of `file` in the pod, a regular file (`kubectl exec … -- stat -c
    /// '%F %s' -- <file>`, which names a link as one: it is not followed).
    ///
    /// # Errors
    /// As [`Self::run`], after at most [`STAT_SECS`] (kubectl or its target missing is
    /// `unavailable`); `not-found` only when stat in the pod finds no such file; `failed`
    /// for a folder, a link or anything else that is not a regular file,
    /// or an answer that is not a size; a path that is not absolute.
    pub fn file_size(&self, file: &str) -> Result<u64> {
        abs_path("the file in the pod", file)?;
        let what = "reading the size of the file in the pod";
        let out = self
            .output(
                &self.exec_args(&["stat", "-c", "%F %s", "--", file]),
                what,
                Some(STAT_SECS),
            )
            .map_err(|e| match e.code {
                // stat ran in the pod and found nothing there
                ErrorCode::Failed
                    if e.message.contains("cannot stat")
                        && e.message.contains("No such file or directory") =>
                {
                    Error::new(
                        ErrorCode::NotFound,
                        format!("{file} is not in pod {}/{}", self.namespace, self.pod),
                    )
                }
                // kubectl itself or its command target is missing: not a file gone
                ErrorCode::NotFound => Error::new(ErrorCode::Unavailable, e.message),
                _ => e,
            })?;
        let said = String::from_utf8_lossy(&out);
        let said = said.trim();
        let size = said
            .strip_prefix("regular file ")
            .or_else(|| said.strip_prefix("regular empty file "))
            .map(str::parse);
        match size {
            Some(Ok(size)) => Ok(size),
            _ => Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "{what}: {file} is not a regular file there (stat says `{}`)",
                    shown(said, 80)
                ),
            )),
        }
    }

    /// What kubectl wrote on its standard output, as [`Self::run_within`] runs it.
    fn output(&self, args: &[String], what: &str, timeout_secs: Option<u32>) -> Result<Vec<u8>> {
        let out = match timeout_secs {
            Some(t) => commands::run_within(&self.target, "kubectl", args, t),
            None => commands::run(&self.target, "kubectl", args),
        }
        .map_err(|e| {
            // the grant is worth naming only when kubectl could not be run at all
            let hint = if matches!(e.code, ErrorCode::Denied | ErrorCode::NotFound) {
                format!(" (grant command:kubectl@{})", self.target)
            } else {
                String::new()
            };
            Error::new(
                e.code,
                format!("{what}: kubectl on {}: {}{hint}", self.target, e.message),
            )
        })?;
        if out.status != 0 {
            let said = String::from_utf8_lossy(&out.stderr);
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "{what}: kubectl exited with {}: {}",
                    out.status,
                    shown(said.trim(), 400)
                ),
            ));
        }
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_lists_hold_checked_names_only() {
        let p = Pod::new(
            "local",
            Some("arc-admin@cluster1"),
            "arc",
            "sqlmi1-0",
            "arc-sqlmi",
        )
        .unwrap();
        assert_eq!(
            p.cp_args("/var/opt/mssql/backups/rehydra/a.bak", "/stage/a.bak")
                .unwrap(),
            [
                "cp",
                "arc/sqlmi1-0:/var/opt/mssql/backups/rehydra/a.bak",
                "/stage/a.bak",
                "-c",
                "arc-sqlmi",
                "--context",
                "arc-admin@cluster1"
            ]
        );
        assert!(p.cp_args("/x", "relative/a.bak").is_err());
        assert!(p.cp_args("/x", "/stage/../etc/a").is_err());
        assert!(p.cp_args("/x", "/stage/a\n.bak").is_err());
        for (ns, pod, c) in [
            ("arc;rm", "p", "c"),
            ("arc", "-p", "c"),
            ("arc", "p", "--all"),
            ("..", "p", "c"),
            ("arc", "p/x", "c"),
        ] {
            assert!(
                Pod::new("local", None, ns, pod, c).is_err(),
                "{ns} {pod} {c}"
            );
        }
        assert!(Pod::new("local", Some("--kubeconfig=/x"), "arc", "p", "c").is_err());
        assert!(Pod::new("a b", None, "arc", "p", "c").is_err());
    }
}
