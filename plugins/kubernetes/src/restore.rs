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

use rehydra_plugin_sdk::engine;
use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube::{self, is_label};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{self, shown};
use serde_json::{Value, json};

use crate::api::{self, ApiResource, hint};
use crate::index::{Entry, Index};
use crate::objects::{Remap, Stage, claims_of, for_target, pairs, ready};
use crate::settings;

/// Default wait for claims and workloads.
const WAIT_DEFAULT: u64 = 300;
/// Between two looks at what is waited for.
const POLL: Duration = Duration::from_secs(1);
/// Objects named in one line at the most.
const NAMED: usize = 8;

struct Options {
    server: String,
    namespaces: Vec<String>,
    objects: Vec<String>,
    remap: Remap,
    replace: bool,
    wait: Duration,
}

fn options(s: &[Property]) -> Result<Options> {
    let wait = match setting(s, "wait-secs")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => WAIT_DEFAULT,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= 86_400)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "wait-secs `{}` is not a number of seconds (0 to 86400)",
                        shown(v, 40)
                    ),
                )
            })?,
    };
    Ok(Options {
        server: settings::server(s)?,
        namespaces: settings::namespaces("namespaces", setting(s, "namespaces"))?,
        objects: settings::list(setting(s, "objects")),
        remap: Remap {
            namespaces: pairs(
                "namespace-map",
                setting(s, "namespace-map").unwrap_or_default(),
                is_label,
            )?,
            storage_classes: pairs(
                "storage-class-map",
                setting(s, "storage-class-map").unwrap_or_default(),
                kube::is_subdomain,
            )?,
        },
        replace: setting(s, "existing") == Some("replace"),
        wait: Duration::from_secs(wait),
    })
}

/// One object to restore.
struct Work {
    stage: Stage,
    target: ApiResource,
    /// Target namespace.
    ns: Option<String>,
    name: String,
    body: Value,
    existing: Option<Value>,
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
}

struct Prepared {
    server: String,
    works: Vec<Work>,
    warnings: Vec<String>,
    blockers: Vec<String>,
    replace: bool,
    wait: Duration,
}

/// Does `e` match one of `objects=` (`resource[.group]/namespace/name` or
/// `resource[.group]/name`)?
fn named(objects: &[String], e: &Entry) -> bool {
    let resource = e.key.split('.').next().unwrap_or_default();
    objects.iter().any(|o| {
        let parts: Vec<&str> = o.split('/').collect();
        let (k, ns, n) = match parts.as_slice() {
            [k, ns, n] => (*k, Some(*ns), *n),
            [k, n] => (*k, None, *n),
            _ => return false,
        };
        (k == e.key || k == resource) && ns == e.namespace.as_deref() && n == e.name
    })
}

/// The entries the options select.
fn select<'a>(
    ix: &'a Index,
    o: &Options,
    stored: &dyn Fn(&Entry) -> Result<Value>,
) -> Result<Vec<&'a Entry>> {
    for ns in &o.namespaces {
        if !ix.namespaces.contains(ns) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "namespace `{ns}` is not in this restore point; it holds: {}",
                    ix.namespaces.join(", ")
                ),
            ));
        }
    }
    for o in &o.objects {
        if !ix.objects.iter().any(|e| named(std::slice::from_ref(o), e)) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "objects: `{}` is not in this restore point (write resource[.group]/namespace/name, e.g. configmaps/shop/web)",
                    shown(o, 120)
                ),
            ));
        }
    }
    let in_scope = |ns: &str| o.namespaces.is_empty() || o.namespaces.iter().any(|n| n == ns);
    let mut out = Vec::new();
    for e in &ix.objects {
        let want = match (&e.namespace, e.key.as_str()) {
            (Some(ns), _) => in_scope(ns) && (o.objects.is_empty() || named(&o.objects, e)),
            (None, "namespaces") => {
                in_scope(&e.name)
                    && (o.objects.is_empty()
                        || named(&o.objects, e)
                        || ix
                            .objects
                            .iter()
                            .any(|x| x.namespace.as_ref() == Some(&e.name) && named(&o.objects, x)))
            }
            (None, "persistentvolumes") => {
                // with the claim it is bound to
                let pv = stored(e)?;
                let claim_ns = pv["spec"]["claimRef"]["namespace"]
                    .as_str()
                    .unwrap_or_default();
                let claim = pv["spec"]["claimRef"]["name"].as_str().unwrap_or_default();
                in_scope(claim_ns)
                    && (o.objects.is_empty()
                        || named(&o.objects, e)
                        || named(
                            &o.objects,
                            &Entry {
                                key: "persistentvolumeclaims".into(),
                                namespace: Some(claim_ns.into()),
                                name: claim.into(),
                            },
                        ))
            }
            (None, _) => o.objects.is_empty() || named(&o.objects, e),
        };
        if want {
            out.push(e);
        }
    }
    // definitions only with their custom resources
    let keys: Vec<&str> = out.iter().map(|e| e.key.as_str()).collect();
    out.retain(|e| {
        e.key != "customresourcedefinitions.apiextensions.k8s.io"
            || keys.contains(&e.name.as_str())
            || named(&o.objects, e)
    });
    Ok(out)
}

/// The stored object of `e`, checked against its entry.
fn read(e: &Entry) -> Result<Value> {
    let item = e.item();
    let obj: Value = serde_json::from_slice(&engine::read_document(&item)?)
        .map_err(|err| Error::new(ErrorCode::Failed, format!("{item} is not JSON: {err}")))?;
    let name_ok = obj["metadata"]["name"].as_str() == Some(e.name.as_str());
    let ns_ok = obj["metadata"]["namespace"].as_str() == e.namespace.as_deref();
    if !name_ok || !ns_ok {
        return Err(Error::new(
            ErrorCode::Failed,
            format!("{item} holds another object than its name says; the restore point is damaged"),
        ));
    }
    Ok(obj)
}

fn prepare(req: &RestoreRequest) -> Result<Prepared> {
    let ix = Index::load()?;
    let o = options(&req.options)?;
    let entries = select(&ix, &o, &read)?;
    let (types, mut warnings) = api::discover(&o.server)?;
    let mut blockers = Vec::new();
    let mut works = Vec::new();
    // statically provisioned volumes are restored (their claims keep them); a volume a
    // provisioner made belongs to the source's storage, and its claim gets a new one
    let mut stored = Vec::new();
    let mut bound = Vec::new();
    for e in &entries {
        let obj = read(e)?;
        if e.key == "persistentvolumes" {
            if obj["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"].is_string() {
                warnings.push(format!(
                    "persistent volume {} was made by a provisioner of the source cluster: not restored; its claim gets a new, empty volume",
                    e.name
                ));
                continue;
            }
            bound.push(e.name.clone());
        }
        stored.push((*e, obj));
    }
    for (e, obj) in stored {
        let Some(t) = ix.type_of(&e.key) else {
            continue;
        };
        let Some(target) = api::by_kind(&types, &t.group, &t.kind).cloned() else {
            blockers.push(format!(
                "{}: {} does not serve {} ({}): install what defines it (its CRD or operator) first, or leave it out with objects=",
                e.item(),
                o.server,
                t.kind,
                if t.group.is_empty() { "core" } else { &t.group }
            ));
            continue;
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
        works.push(Work {
            stage: Stage::of(&t.group, &t.kind),
            target,
            ns,
            name,
            body,
            existing,
        });
    }
    namespaces(&o, &types, &mut works)?;
    storage_classes(&o, &types, &works, &mut warnings, &mut blockers)?;
    works.sort_by_key(|w| w.stage);
    let existing: Vec<String> = works
        .iter()
        .filter(|w| w.existing.is_some())
        .map(Work::label)
        .collect();
    if !existing.is_empty() {
        let what = if o.replace {
            "are replaced (claims excepted: their volumes hold data)"
        } else {
            "are left as they are (existing=replace replaces them)"
        };
        warnings.push(format!(
            "{} object(s) exist in the target and {what}: {}",
            existing.len(),
            list(&existing)
        ));
    }
    Ok(Prepared {
        server: o.server,
        works,
        warnings,
        blockers,
        replace: o.replace,
        wait: o.wait,
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
        let existing = kube::get(
            &t.object(&o.server, None, &ns),
            "reading the target namespace",
            hint,
        )?;
        works.push(Work {
            stage: Stage::Namespaces,
            target: t.clone(),
            ns: None,
            name: ns.clone(),
            body: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            existing,
        });
    }
    Ok(())
}

/// Every claim's storage class must exist in the target.
fn storage_classes(
    o: &Options,
    types: &[ApiResource],
    works: &[Work],
    warnings: &mut Vec<String>,
    blockers: &mut Vec<String>,
) -> Result<()> {
    let mut classes: Vec<&str> = works
        .iter()
        .filter(|w| w.is("", "PersistentVolumeClaim") && w.existing.is_none())
        .filter_map(|w| w.body["spec"]["storageClassName"].as_str())
        .filter(|c| !c.is_empty())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return Ok(());
    }
    let Some(sc) = api::find(types, "storageclasses.storage.k8s.io") else {
        warnings.push(format!(
            "{} does not serve storage classes: cannot check that {} exist",
            o.server,
            classes.join(", ")
        ));
        return Ok(());
    };
    let have: Vec<String> = kube::list(
        &sc.collection(&o.server, None),
        "listing the target's storage classes",
        hint,
    )?
    .iter()
    .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
    .collect();
    for c in classes {
        if !have.iter().any(|h| h == c) {
            blockers.push(format!(
                "storage class `{c}` does not exist on {}: map it with storage-class-map=<class in the restore point>={}",
                o.server,
                if have.is_empty() { "<a class of the target>".to_string() } else { format!("<one of {}>", have.join(", ")) }
            ));
        }
    }
    Ok(())
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
    Ok(RestorePlan {
        steps,
        warnings: p.warnings,
        blockers: p.blockers,
    })
}

enum Done {
    Created,
    Replaced,
    Skipped,
}

fn status_error(what: &str, r: &rehydra_plugin_sdk::http::Response) -> Error {
    rest::answer_error(what, r, hint(r.status))
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
                200..=299 => return Ok(Done::Created),
                // made meanwhile (by a controller, or another restore)
                409 => kube::get(&url, &what, hint)?,
                _ => return Err(status_error(&what, &r)),
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
    if w.is("", "PersistentVolumeClaim") {
        warnings.push(format!(
            "{}: exists and is kept (a claim is never replaced: its volume holds data)",
            w.label()
        ));
        return Ok(Done::Skipped);
    }
    let mut body = w.body.clone();
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    if w.is("", "Service") {
        // a service's cluster IP cannot change
        for f in ["clusterIP", "clusterIPs"] {
            if let Some(v) = current["spec"].get(f) {
                body["spec"][f] = v.clone();
            }
        }
    }
    let r = rest::send("PUT", &url, Some(&body))?;
    match r.status {
        200..=299 => Ok(Done::Replaced),
        _ => Err(status_error(&what, &r)),
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
    let p = prepare(req)?;
    if !p.blockers.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("the restore cannot start: {}", p.blockers.join("; ")),
        ));
    }
    let mut warnings = p.warnings.clone();
    let (mut created, mut replaced, mut skipped, mut bytes) = (0, 0, 0, 0u64);
    let mut failed = Vec::new();
    let total = p.works.len() as u64;
    for (i, w) in p.works.iter().enumerate() {
        if i > 0 && p.works[i - 1].stage == Stage::Storage && w.stage != Stage::Storage {
            wait_claims(&p, &mut warnings)?;
        }
        if host::cancelled() {
            return Err(Error::new(
                ErrorCode::Cancelled,
                format!("cancelled after {created} object(s) were created; they stay"),
            ));
        }
        host::progress(i as u64, total, &w.label());
        match apply(&p, w, &mut warnings) {
            Ok(Done::Created) => created += 1,
            Ok(Done::Replaced) => replaced += 1,
            Ok(Done::Skipped) => skipped += 1,
            Err(e) => failed.push(e.message),
        }
        bytes += w.body.to_string().len() as u64;
    }
    if p.works.last().is_some_and(|w| w.stage == Stage::Storage) {
        wait_claims(&p, &mut warnings)?;
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
    let claims: Vec<&Work> = p
        .works
        .iter()
        .filter(|w| w.is("", "PersistentVolumeClaim"))
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
    Ok(VerifyReport {
        ok: findings.is_empty(),
        findings,
    })
}
