//! `plan-restore`, `restore` and `verify`.
//!
//! A restore is planned before anything is touched, and the plan is what runs: the
//! selected objects (`namespaces`, `objects`), each rewritten for the target
//! ([`crate::objects::for_target`]: `namespace-map`, `storage-class-map`), each looked up
//! in the target cluster (`kube=`), in the standard order ([`Stage`]): definitions,
//! namespaces, storage (then the wait for claims to bind), config, services, workloads
//! (then the wait for them to become ready), the rest. Blockers stop it before the first
//! write: a type the target does not serve, a storage class it does not have.
//!
//! An object that exists in the target is left alone, or with `existing=replace`
//! replaced (its `resourceVersion` sent, so a change made meanwhile is a conflict, not
//! lost). A claim is never replaced: its volume holds data. Objects that fail are
//! reported together at the end, after the others were restored; what was created
//! stays, and running the same restore again finishes the rest.

use std::time::{Duration, Instant};

use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{self, shown};
use serde_json::{Value, json};

use crate::api::{self, ApiResource, hint};
use crate::index::Index;
use crate::objects::{Stage, claims_of, for_target, ready};
use crate::selection::{Options, Why, options, read, select};
use crate::volumes::Copier;

mod files;
use files::{Files, data_copies, files_of, fill};

/// Between two looks at what is waited for.
const POLL: Duration = Duration::from_secs(1);
/// Objects named in one line at the most.
const NAMED: usize = 8;

/// One object to restore.
struct Work {
    stage: Stage,
    target: ApiResource,
    /// Target namespace.
    ns: Option<String>,
    name: String,
    body: Value,
    existing: Option<Value>,
    why: Why,
    /// For a claim whose files the restore point holds and may get: their archive.
    data: Option<Files>,
}

impl Work {
    fn label(&self) -> String {
        match &self.ns {
            Some(ns) => format!("{} {ns}/{}", self.target.key(), self.name),
            None => format!("{} {}", self.target.key(), self.name),
        }
    }
    fn is(&self, group: &str, kind: &str) -> bool {
        self.target.group == group && self.target.kind == kind
    }
    /// May `existing=replace` replace it? Never a claim or a volume (they hold data), a
    /// namespace (its labels carry its security), or what was only pulled in.
    fn replaceable(&self) -> bool {
        self.why != Why::Related
            && !self.is("", "PersistentVolumeClaim")
            && !self.is("", "PersistentVolume")
            && !self.is("", "Namespace")
    }
}

struct Prepared {
    server: String,
    works: Vec<Work>,
    warnings: Vec<String>,
    blockers: Vec<String>,
    replace: bool,
    wait: Duration,
    /// Storage classes of the target that bind a claim only once a pod uses it
    /// (`WaitForFirstConsumer`; `""`: the default class, when it is one of them): their
    /// claims are not waited for before the workloads.
    late_binding: Vec<String>,
    /// How the files of new claims are copied in (`None`: they are not).
    copier: Option<Copier>,
}

/// A volume that mounts a path of a node.
pub(crate) fn node_path(pv: &Value) -> bool {
    pv["spec"]["hostPath"].is_object() || pv["spec"]["local"].is_object()
}

fn prepare(req: &RestoreRequest) -> Result<Prepared> {
    let ix = Index::load()?;
    let o = options(&req.options)?;
    let entries = select(&ix, &o, &read)?;
    let (types, mut warnings) = api::discover(&o.server)?;
    let mut blockers = Vec::new();
    let mut works = Vec::new();
    let mut stored = Vec::new();
    for (e, why) in entries {
        let obj = read(e)?;
        if e.key == "persistentvolumes" {
            // a volume a provisioner made belongs to the source's storage: its claim gets a
            // new one; a statically provisioned one is restored, and its claim keeps it
            if obj["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"].is_string() {
                warnings.push(format!(
                    "persistent volume {} was made by a provisioner of the source cluster: not restored; its claim gets a new, empty volume",
                    e.name
                ));
                continue;
            }
            if node_path(&obj) && why != Why::Named {
                warnings.push(format!(
                    "persistent volume {} mounts a path of a node (hostPath or local): not restored unless named with objects=persistentvolumes/{}",
                    e.name, e.name
                ));
                continue;
            }
        }
        stored.push((e, why, obj));
    }
    // volumes first: a claim keeps its volume only when this restore creates it
    stored.sort_by_key(|(e, _, _)| e.key != "persistentvolumes");
    let mut bound: Vec<String> = Vec::new();
    for (e, why, obj) in stored {
        let Some(t) = ix.type_of(&e.key) else {
            continue;
        };
        let target = match api::by_kind(&types, &t.group, &t.kind) {
            Some(x) if x.resource == t.resource && x.namespaced == t.namespaced => x.clone(),
            Some(x) => {
                blockers.push(format!(
                    "{}: the restore point holds it as {} ({}), but {} serves {} as {} ({}): the restore point is not what it claims to be",
                    e.item(),
                    t.key(),
                    if t.namespaced { "namespaced" } else { "cluster-wide" },
                    o.server,
                    t.kind,
                    x.key(),
                    if x.namespaced { "namespaced" } else { "cluster-wide" },
                ));
                continue;
            }
            None => {
                blockers.push(format!(
                    "{}: {} does not serve {} ({}): install what defines it (its CRD or operator) first, or leave it out with objects=",
                    e.item(),
                    o.server,
                    t.kind,
                    if t.group.is_empty() { "core" } else { &t.group }
                ));
                continue;
            }
        };
        if target.version != t.version {
            warnings.push(format!(
                "{} is restored as {} (the restore point holds {}): the API server converts what it can",
                e.item(),
                target.api_version(),
                t.api_version()
            ));
        }
        let mut body = for_target(&obj, &o.remap, &bound);
        body["apiVersion"] = target.api_version().into();
        let ns = e
            .namespace
            .as_deref()
            .map(|n| o.remap.namespace(n).to_string());
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let existing = kube::get(
            &target.object(&o.server, ns.as_deref(), &name),
            "reading the target",
            hint,
        )?;
        if e.key == "persistentvolumes" && existing.is_none() {
            bound.push(name.clone());
        }
        let data = files_of(req, &ix, e, &body, &mut warnings);
        works.push(Work {
            stage: Stage::of(&t.group, &t.kind),
            target,
            ns,
            name,
            body,
            existing,
            why,
            data,
        });
    }
    namespaces(&o, &types, &mut works)?;
    let late_binding = storage_classes(&o, &types, &works, &mut warnings, &mut blockers)?;
    works.sort_by_key(|w| w.stage);
    let wide: Vec<String> = works
        .iter()
        .filter(|w| w.ns.is_none() && w.existing.is_none())
        .map(Work::label)
        .collect();
    if !wide.is_empty() {
        // every one named: they act beyond the namespaces restored
        warnings.push(format!(
            "cluster-wide objects this restore creates: {}",
            wide.join(", ")
        ));
    }
    let existing: Vec<String> = works
        .iter()
        .filter(|w| w.existing.is_some())
        .map(Work::label)
        .collect();
    if !existing.is_empty() {
        let what = if o.replace {
            "are replaced, except claims, volumes, namespaces and what was only pulled in"
        } else {
            "are left as they are (existing=replace replaces them)"
        };
        warnings.push(format!(
            "{} object(s) exist in the target and {what}: {}",
            existing.len(),
            list(&existing)
        ));
    }
    let copier = data_copies(req, &o, &works, &mut warnings, &mut blockers)?;
    Ok(Prepared {
        server: o.server,
        works,
        warnings,
        blockers,
        replace: o.replace,
        wait: o.wait,
        late_binding,
        copier,
    })
}

/// A Namespace for every target namespace that neither exists nor is restored.
fn namespaces(o: &Options, types: &[ApiResource], works: &mut Vec<Work>) -> Result<()> {
    let Some(t) = api::find(types, "namespaces") else {
        return Ok(());
    };
    let mut wanted: Vec<String> = works.iter().filter_map(|w| w.ns.clone()).collect();
    wanted.sort();
    wanted.dedup();
    for ns in wanted {
        if works.iter().any(|w| w.is("", "Namespace") && w.name == ns) {
            continue;
        }
        let url = t.object(&o.server, None, &ns);
        if kube::get(&url, "reading the target namespace", hint)?.is_some() {
            continue; // it exists: left exactly as it is
        }
        works.push(Work {
            stage: Stage::Namespaces,
            target: t.clone(),
            ns: None,
            name: ns.clone(),
            body: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            existing: None,
            why: Why::Related,
            data: None,
        });
    }
    Ok(())
}

/// Every claim's storage class must exist in the target. Returns the classes that bind
/// late (see [`Prepared::late_binding`]).
fn storage_classes(
    o: &Options,
    types: &[ApiResource],
    works: &[Work],
    warnings: &mut Vec<String>,
    blockers: &mut Vec<String>,
) -> Result<Vec<String>> {
    let mut classes: Vec<&str> = works
        .iter()
        .filter(|w| w.is("", "PersistentVolumeClaim") && w.existing.is_none())
        .filter_map(|w| w.body["spec"]["storageClassName"].as_str())
        .filter(|c| !c.is_empty())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let claims = works.iter().any(|w| w.is("", "PersistentVolumeClaim"));
    let Some(sc) = api::find(types, "storageclasses.storage.k8s.io").filter(|_| claims) else {
        if !classes.is_empty() {
            warnings.push(format!(
                "{} does not serve storage classes: cannot check that {} exist",
                o.server,
                classes.join(", ")
            ));
        }
        return Ok(vec![]);
    };
    let all = kube::list(
        &sc.collection(&o.server, None),
        "listing the target's storage classes",
        hint,
    )?;
    let have: Vec<String> = all
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let mut late_binding: Vec<String> = Vec::new();
    for c in &all {
        if c["volumeBindingMode"] == "WaitForFirstConsumer" {
            let name = c["metadata"]["name"].as_str().unwrap_or_default();
            late_binding.push(name.to_string());
            if c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
            {
                late_binding.push(String::new());
            }
        }
    }
    for c in classes {
        if !have.iter().any(|h| h == c) {
            blockers.push(format!(
                "storage class `{}` does not exist on {}: map it with storage-class-map=<class in the restore point>={}",
                shown(c, 80),
                o.server,
                if have.is_empty() { "<a class of the target>".to_string() } else { format!("<one of {}>", have.join(", ")) }
            ));
        }
    }
    Ok(late_binding)
}

fn list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED {
        s.push_str(&format!(" and {} more", names.len() - NAMED));
    }
    s
}

pub fn plan(req: &RestoreRequest) -> Result<RestorePlan> {
    if let Some(text) = setting(&req.options, "find") {
        return crate::find::plan(&Index::load()?, text);
    }
    let p = prepare(req)?;
    let mut steps: Vec<Step> = Vec::new();
    for stage in Stage::ALL {
        let works: Vec<&Work> = p.works.iter().filter(|w| w.stage == stage).collect();
        if works.is_empty() {
            continue;
        }
        let names: Vec<String> = works.iter().map(|w| w.label()).collect();
        let exist = works.iter().filter(|w| w.existing.is_some()).count();
        let mut detail = format!(
            "{} object(s) on {}: {}",
            works.len(),
            p.server,
            list(&names)
        );
        if exist > 0 {
            detail.push_str(&format!(
                "; {exist} exist and are {}",
                if p.replace { "replaced" } else { "skipped" }
            ));
        }
        let depends_on = steps.last().map(|s| vec![s.id.clone()]).unwrap_or_default();
        steps.push(Step {
            id: stage.id().into(),
            title: stage.title().into(),
            detail,
            depends_on,
        });
    }
    let copies: Vec<&Work> = p
        .works
        .iter()
        .filter(|w| w.data.is_some() && w.existing.is_none())
        .collect();
    if let (Some(c), false) = (&p.copier, copies.is_empty()) {
        let detail = copies
            .iter()
            .map(|w| c.describe(w.ns.as_deref().unwrap_or_default(), &w.name))
            .collect::<Vec<_>>()
            .join("; ");
        let storage = steps.iter().find(|s| s.id == Stage::Storage.id());
        steps.push(Step {
            id: "volume-data".into(),
            title: "the files of the new claims, before the workloads start".into(),
            detail,
            depends_on: storage.map(|s| vec![s.id.clone()]).unwrap_or_default(),
        });
    }
    Ok(RestorePlan {
        steps,
        warnings: p.warnings,
        blockers: p.blockers,
    })
}

enum Done {
    /// With the uid the API server gave it.
    Created(String),
    Replaced,
    Skipped,
}

/// The error of a failed write. For a Secret only the status and the reason: an
/// admission webhook's message may quote the object sent.
fn status_error(w: &Work, what: &str, r: &rehydra_plugin_sdk::http::Response) -> Error {
    if w.is("", "Secret") {
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let reason = rest::text(&v["reason"], 60).unwrap_or("no reason given");
        return Error::new(
            rehydra_plugin_sdk::azure::arm::status_code(r.status),
            format!(
                "{what}: answered {}: {reason} (the message is not shown: it may quote the secret)",
                r.status
            ),
        );
    }
    rest::answer_error(what, r, hint(r.status))
}

/// `body` for replacing `current`: its `resourceVersion` (a change made meanwhile is a
/// conflict), and what the target's controllers own kept: finalizers, owner references,
/// a Service's cluster IPs and node ports.
fn replacement(w: &Work, current: &Value) -> Value {
    let mut body = w.body.clone();
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    for f in ["finalizers", "ownerReferences"] {
        if let Some(v) = current["metadata"].get(f) {
            body["metadata"][f] = v.clone();
        }
    }
    if w.is("", "Service") {
        for f in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
            if let Some(v) = current["spec"].get(f) {
                body["spec"][f] = v.clone();
            }
        }
        let live = current["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for p in body["spec"]["ports"].as_array_mut().into_iter().flatten() {
            let same = live.iter().find(|l| {
                l["port"] == p["port"]
                    && l["protocol"].as_str().unwrap_or("TCP")
                        == p["protocol"].as_str().unwrap_or("TCP")
            });
            if let Some(n) = same.and_then(|l| l.get("nodePort")) {
                p["nodePort"] = n.clone();
            }
        }
    }
    body
}

/// Create or replace one object.
fn apply(p: &Prepared, w: &Work, warnings: &mut Vec<String>) -> Result<Done> {
    let what = format!("restoring {}", w.label());
    let url = w.target.object(&p.server, w.ns.as_deref(), &w.name);
    let existing = match &w.existing {
        Some(e) => Some(e.clone()),
        None => {
            let r = rest::send(
                "POST",
                &w.target.collection(&p.server, w.ns.as_deref()),
                Some(&w.body),
            )?;
            match r.status {
                200..=299 => {
                    let made: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    return Ok(Done::Created(crate::objects::uid(&made)));
                }
                // made meanwhile (by a controller, or another restore)
                409 => kube::get(&url, &what, hint)?,
                _ => return Err(status_error(w, &what, &r)),
            }
        }
    };
    let Some(current) = existing else {
        return Err(Error::new(
            ErrorCode::Failed,
            format!("{what}: it exists, then does not"),
        ));
    };
    if !p.replace {
        return Ok(Done::Skipped);
    }
    if !w.replaceable() {
        warnings.push(format!(
            "{}: exists and is kept (claims and volumes hold data, a namespace's labels carry its security, and what was only pulled in is never replaced)",
            w.label()
        ));
        return Ok(Done::Skipped);
    }
    let r = rest::send("PUT", &url, Some(&replacement(w, &current)))?;
    match r.status {
        200..=299 => Ok(Done::Replaced),
        _ => Err(status_error(w, &what, &r)),
    }
}

/// Wait until `check` holds for every work of `which`, or the time is up; what is still
/// not there, by label.
fn wait_for(
    p: &Prepared,
    which: &[&Work],
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Vec<String>> {
    let start = Instant::now();
    let mut pending: Vec<&Work> = which.to_vec();
    loop {
        let mut still = Vec::new();
        for w in pending {
            let url = w.target.object(&p.server, w.ns.as_deref(), &w.name);
            match kube::get(&url, &format!("reading {}", w.label()), hint)? {
                Some(obj) if check(&obj) => {}
                _ => still.push(w),
            }
        }
        pending = still;
        if pending.is_empty() || start.elapsed() >= p.wait {
            break;
        }
        host::progress(
            start.elapsed().as_secs(),
            p.wait.as_secs(),
            &format!("waiting for {} {what}", pending.len()),
        );
        if host::cancelled() {
            return Err(Error::new(
                ErrorCode::Cancelled,
                format!("cancelled while waiting for {what}; what was created stays"),
            ));
        }
        std::thread::sleep(POLL);
    }
    Ok(pending.iter().map(|w| w.label()).collect())
}

pub fn restore(req: &RestoreRequest) -> Result<RestoreReport> {
    rehydra_plugin_sdk::found::refuse_in_restore(&req.options, "find", "objects")?;
    let p = prepare(req)?;
    refuse_blocked(&p.blockers)?;
    let mut warnings = p.warnings.clone();
    let (mut created, mut replaced, mut skipped, mut bytes) = (0, 0, 0, 0u64);
    let mut failed = Vec::new();
    let total = p.works.len() as u64;
    let mut new_claims: Vec<(&Work, String)> = Vec::new();
    for (i, w) in p.works.iter().enumerate() {
        if i > 0 && p.works[i - 1].stage == Stage::Storage && w.stage != Stage::Storage {
            wait_claims(&p, &mut warnings)?;
            bytes += fill(&p, &new_claims)?;
        }
        if host::cancelled() {
            return Err(Error::new(
                ErrorCode::Cancelled,
                format!("cancelled after {created} object(s) were created; they stay"),
            ));
        }
        host::progress(i as u64, total, &w.label());
        match apply(&p, w, &mut warnings) {
            Ok(Done::Created(uid)) => {
                created += 1;
                if w.data.is_some() {
                    new_claims.push((w, uid));
                }
            }
            Ok(Done::Replaced) => replaced += 1,
            Ok(Done::Skipped) => skipped += 1,
            Err(e) => failed.push(e.message),
        }
        bytes += w.body.to_string().len() as u64;
    }
    if p.works.last().is_some_and(|w| w.stage == Stage::Storage) {
        wait_claims(&p, &mut warnings)?;
        bytes += fill(&p, &new_claims)?;
    }
    let workloads: Vec<&Work> = p
        .works
        .iter()
        .filter(|w| ready(&w.body).is_some())
        .collect();
    if !p.wait.is_zero() && !workloads.is_empty() {
        let late = wait_for(&p, &workloads, "workloads to become ready", |o| {
            ready(o) == Some(true)
        })?;
        if !late.is_empty() {
            let needs: Vec<String> = workloads
                .iter()
                .filter(|w| late.contains(&w.label()))
                .flat_map(|w| claims_of(&w.body))
                .map(|c| shown(&c, 80))
                .collect();
            warnings.push(format!(
                "not ready after {} s: {}{}",
                p.wait.as_secs(),
                list(&late),
                if needs.is_empty() {
                    String::new()
                } else {
                    format!(" (they mount {})", list(&needs))
                }
            ));
        }
    }
    if !failed.is_empty() {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "{} of {} object(s) could not be restored ({created} created, {replaced} replaced, {skipped} left as they were; those stay): {}",
                failed.len(),
                p.works.len(),
                failed.join("; ")
            ),
        ));
    }
    host::info(&format!(
        "{created} object(s) created, {replaced} replaced, {skipped} left as they were on {}",
        p.server
    ));
    Ok(RestoreReport { bytes, warnings })
}

fn wait_claims(p: &Prepared, warnings: &mut Vec<String>) -> Result<()> {
    // a claim of a class that binds on first use waits for its pod: not waited for here
    let claims: Vec<&Work> = p
        .works
        .iter()
        .filter(|w| w.is("", "PersistentVolumeClaim"))
        .filter(|w| {
            let class = w.body["spec"]["storageClassName"]
                .as_str()
                .unwrap_or_default();
            !p.late_binding.iter().any(|l| l == class)
        })
        .collect();
    if p.wait.is_zero() || claims.is_empty() {
        return Ok(());
    }
    let late = wait_for(p, &claims, "claims to bind", |o| {
        o["status"]["phase"] == "Bound"
    })?;
    if !late.is_empty() {
        warnings.push(format!(
            "claims not bound after {} s (their pods wait for them): {}",
            p.wait.as_secs(),
            list(&late)
        ));
    }
    Ok(())
}

/// Every object document is there, parses and is the object its entry names.
pub fn verify(_req: &RestoreRequest) -> Result<VerifyReport> {
    let ix = Index::load()?;
    let mut findings = Vec::new();
    for e in &ix.objects {
        if let Err(err) = read(e) {
            findings.push(Finding {
                rule: "kubernetes.object-unreadable".into(),
                severity: Severity::High,
                asset: None,
                title: format!("{} cannot be restored", e.item()),
                detail: err.message,
                recommendation: "Restore from another restore point; run rehydra check on the repository".into(),
            });
        }
    }
    Ok(VerifyReport::of(findings))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::selection::tests::t;

    #[test]
    fn a_replacement_keeps_what_the_target_owns_and_some_objects_are_never_replaced() {
        let w = |kind: &str, why: Why| Work {
            stage: Stage::Services,
            target: t("", "services", kind, true),
            ns: Some("shop".into()),
            name: "web".into(),
            body: json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
            existing: None,
            why,
            data: None,
        };
        let current = json!({"metadata": {"resourceVersion": "77", "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]},
            "spec": {"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let b = replacement(&w("Service", Why::Selected), &current);
        assert_eq!(b["metadata"]["resourceVersion"], "77");
        assert_eq!(
            b["metadata"]["finalizers"][0],
            "service.kubernetes.io/load-balancer-cleanup"
        );
        assert_eq!(b["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(
            b["spec"]["ports"],
            json!([{"port": 80, "nodePort": 30080}, {"port": 443}])
        );
        assert!(w("Service", Why::Selected).replaceable());
        assert!(!w("Service", Why::Related).replaceable());
        for kind in ["PersistentVolumeClaim", "PersistentVolume", "Namespace"] {
            assert!(!w(kind, Why::Named).replaceable(), "{kind}");
        }
    }
}
