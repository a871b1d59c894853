#!/usr/bin/env python3
"""A stand-in for one Kubernetes API server (the cluster of an AKS enabled by Azure Arc
instance, reached with an Entra token), for the kubernetes plugin's tests.

A cluster cannot run here. This server answers with the official discovery documents
(tests/fixtures/aks-kubernetes) and behaves like kube-apiserver where a client can get it wrong:

- every request needs `Authorization: Bearer aks-…` (what the test's Azure CLI stand-in
  hands out for the AKS Arc Entra server app), a token of state `tokens`, or a client
  certificate signed by `tls.client_ca` (with state `tls`: HTTPS with `tls.cert`/`tls.key`),
  else 401 Unauthorized;
- discovery: /api (serverAddress = this server), /api/v1, /apis, /apis/G, /apis/apps/v1,
  /apis/storage.k8s.io/v1, /version; the other group/versions of apis.json answer an empty
  resource list: their objects are not served; anything else is 404;
- the resources of those documents (namespaced ones also listed across namespaces) with
  list/get/create/update/delete; a verb a resource lacks is 405; PATCH, deletecollection and
  subresources (/status, /scale…) are not served (405 / 404);
- lists: limit/continue paging (page size min(limit, state.page)) with opaque base64url
  tokens like the etcd3 store's; a bad token is 400; `expire_continue` makes the next
  continued list 410 Expired; remainingItemCount only without selectors; items carry no
  apiVersion/kind; labelSelector (=, ==, !=, in, notin, key, !key, <, >) and fieldSelector
  (metadata.name, metadata.namespace);
- errors are Status objects with the real reasons, messages and details; a create carrying
  metadata.resourceVersion is the reason-less 500 the etcd3 store answers;
- create: apiVersion/kind may be omitted (the decoder defaults them from the URL) but must
  match when given; the namespace must match the URL's, exist and not be terminating; uid,
  creationTimestamp, resourceVersion (one global counter), generation (apps workloads) are
  set, status is reset, some defaults applied (replicas, strategies, Secret stringData ->
  data, the default StorageClass, Service clusterIP(s) from `service_cidr`, 422 outside it
  or when taken);
- update (PUT): no resourceVersion = unconditional update (built-in types allow it) unless
  `require_resource_version` (then the 422 of types that do not); stale = 409 Conflict;
  changing uid, a PVC spec (but a bound claim's requests), a Service clusterIP or a
  StatefulSet spec outside its mutable fields is 422; status is kept; a no-op keeps the rv;
- delete: Status Success; namespaces, PVCs, PVs and objects with finalizers answer the
  object with deletionTimestamp (namespace: Terminating) and go on the next read (a PVC once
  no workload mounts it, foreign finalizers once an update drops them);
- before each resource GET/list a tiny controller creates StatefulSet claims, binds PVCs (a
  named PV, the smallest Available PV of the claim's class, access modes and size, or a PV
  `pvc-<uid>` provisioned through an existing StorageClass with the
  provisioner as CSI driver; a missing class or PV, a PV claimed by another uid,
  no-provisioner, or WaitForFirstConsumer without a workload stays Pending) and gives
  Deployments, StatefulSets and DaemonSets the real controllers' status shapes: ready only
  when every mounted PVC is Bound and every referenced ConfigMap/Secret (key) and
  ServiceAccount exists, then after `ready_after_gets` reads; its writes bump the rv;
- with "csi_api": true it serves snapshot.storage.k8s.io/v1 (kube_csi.py: a VolumeSnapshot
  copies a volume's files, a claim made from a ready one gets them, unless an Available PV
  matches it first, as the PV controller's matching ignores data sources);
- with "arcdata_api": true it serves the Azure Arc data services' resources (kube_arcdata.py:
  their CRDs, and SqlManagedInstanceRestoreTasks carried out against the instance's msdb);
- like a real cluster it holds namespaces default, kube-system, kube-public, kube-node-lease
  and Service default/kubernetes (seeded once unless "seed": false); a namespace created
  through the API gets ServiceAccount `default` and ConfigMap `kube-root-ca.crt`.

Usage: kube_standin.py DIR HOST (e.g. 127.0.0.3). DIR/state.json: {"objects": [...], "page",
"expire_continue", "service_cidr", "service_range", "ready_after_gets",
"require_resource_version", "seed", "csi_api", "arcdata_api", "arcdata_sql"}, read on every request, written after every change (tmp +
rename); the stand-in keeps "rv", "ticks", "seeded" there. DIR/calls.log: one line a request,
`METHOD PATH?QUERY STATUS`. The first stdout line is {"url": "http://HOST:PORT"}.
`kube_standin_selftest.py` exercises it on 127.0.0.3; non-zero exit on a failure.
"""
import base64, copy, json, os, re, sys, tempfile, threading, time, traceback, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import kube_arcdata, kube_csi
from kube_volumes import claims as pod_claims, pod_status

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "tests", "fixtures", "aks-kubernetes")
LOCK = threading.Lock()

def fixture(name):
    with open(os.path.join(FIX, name)) as f:
        return json.load(f)

DOCS = {"v1": fixture("api__v1.json"), "apps/v1": fixture("apis__apps__v1.json"),
        "storage.k8s.io/v1": fixture("apis__storage.k8s.io__v1.json")}
GROUPS = fixture("apis.json")
DOCS[kube_csi.GV] = kube_csi.RESOURCES  # served only with "csi_api": true
DOCS.update(kube_arcdata.DOCS)  # served only with "arcdata_api": true
OPTIONAL = dict({kube_csi.GV: "csi_api"}, **{gv: "arcdata_api" for gv in kube_arcdata.DOCS})
RES, PLURAL = {}, {}  # (gv, plural) -> resource; (gv, kind) -> plural
for _gv, _doc in DOCS.items():
    for _r in _doc["resources"]:
        if "/" not in _r["name"]:
            RES[(_gv, _r["name"])] = dict(_r, gv=_gv, group=_gv.rpartition("/")[0])
            PLURAL[(_gv, _r["kind"])] = _r["name"]
STATUS_SUB = {(gv, r["name"].split("/")[0]) for gv, d in DOCS.items() for r in d["resources"] if r["name"].endswith("/status")}
GEN_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
DELETE_LATER = {"Namespace", "PersistentVolumeClaim", "PersistentVolume"}
SYSTEM_FINALIZERS = {"kubernetes.io/pvc-protection", "kubernetes.io/pv-protection"}
DEFAULTS = {
    "Deployment": {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                   "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
    "StatefulSet": {"replicas": 1, "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady",
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
    "DaemonSet": {"revisionHistoryLimit": 10, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
}
STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
OPT_LOCK = "the object has been modified; please apply your changes to the latest version and try again"
CAUSE = {"Invalid value": "FieldValueInvalid", "Required value": "FieldValueRequired", "Forbidden": "FieldValueForbidden"}
KEY = r"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
VAL = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
REQUIREMENT = re.compile(rf"({KEY})(?:\s*(==|=|!=)\s*({VAL})|\s+(in|notin)\s*\(([^()]*)\)|\s*([<>])\s*(-?\d+))?")

class Fail(Exception):
    """An error answer: a metav1.Status as kube-apiserver writes it."""

    def __init__(self, code, reason, message, details=None):
        self.code = code
        self.body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
        self.body.update({"reason": reason} if reason else {}, **({"details": details} if details is not None else {}), code=code)

def qual(r):  # "configmaps", "deployments.apps": how messages name a resource
    return r["name"] + ("." + r["group"] if r["group"] else "")

def det(r, name, kind=None, **extra):
    return dict({"name": name} if name else {}, **({"group": r["group"]} if r["group"] else {}), kind=kind or r["name"], **extra)

def not_found(r, name):
    return Fail(404, "NotFound", f'{qual(r)} "{name}" not found', det(r, name))

def conflict(r, name, why):
    return Fail(409, "Conflict", f'Operation cannot be fulfilled on {qual(r)} "{name}": {why}', det(r, name))

def invalid(r, name, errs, kind=None):
    """errs: [(field, body as field.Error.ErrorBody() writes it)]; kind defaults to the Kind."""
    kind, msgs = kind or r["kind"], [f"{f}: {b}" for f, b in errs]
    causes = [{"reason": CAUSE[b.split(":")[0]], "message": b, "field": f} for f, b in errs]
    agg = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    qk = kind + ("." + r["group"] if r["group"] else "")
    return Fail(422, "Invalid", f'{qk} "{name}" is invalid: {agg}', det(r, name, kind, causes=causes))

def bad(message):
    return Fail(400, "BadRequest", message)

def gostr(v):  # Go's %#v of a []string, as field errors print values
    return "[]string{" + ", ".join(json.dumps(x) for x in v) + "}"

def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

def md(o):
    return o.setdefault("metadata", {})

def okey(o):  # etcd key order: namespace/name
    return f'{o["metadata"]["namespace"]}/{o["metadata"]["name"]}' if o["metadata"].get("namespace") else o["metadata"]["name"]

def group(gv):
    return (gv or "").rpartition("/")[0]

def select(st, gv, kind, ns=None):  # any version of the group: one object whatever version it is read in
    return [o for o in st["objects"] if group(o.get("apiVersion")) == group(gv) and o.get("kind") == kind and (ns is None or md(o).get("namespace") == ns)]

def find(st, gv, kind, ns, name):
    return next((o for o in select(st, gv, kind, ns) if md(o).get("name") == name), None)

def touch(st, o):
    st["rv"] += 1
    md(o)["resourceVersion"] = str(st["rv"])

# ---- state and storage ---------------------------------------------------------------

def load(d):
    path = os.path.join(d, "state.json")
    st = {"objects": []}
    if os.path.exists(path):
        with open(path) as f:
            st = json.load(f)
    before = json.dumps(st, sort_keys=True)
    st.setdefault("objects", [])
    if "rv" not in st:
        st["rv"] = max([int(md(o)["resourceVersion"]) for o in st["objects"] if str(md(o).get("resourceVersion", "")).isdigit()] + [1000])
    for o in st["objects"]:  # objects a test writes get the server fields they lack
        m = md(o)
        m.setdefault("uid", str(uuid.uuid4()))
        m.setdefault("creationTimestamp", now())
        if not m.get("resourceVersion"):
            touch(st, o)
        if o.get("kind") in GEN_KINDS:
            m.setdefault("generation", 1)
    if st.get("seed", True) and not st.get("seeded"):
        st["seeded"] = True
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if not find(st, "v1", "Namespace", None, ns):
                store(st, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        if not find(st, "v1", "Service", "default", "kubernetes"):
            store(st, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                       "spec": {"clusterIP": ip_pool(st)[0], "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}})
    return st, before

def save(d, st):
    path = os.path.join(d, "state.json")
    with open(path + ".tmp", "w") as f:
        json.dump(st, f, indent=1)
    os.replace(path + ".tmp", path)

def store(st, o):
    """Create without the request checks: what the API and the controllers both do."""
    on_create(st, RES[(o["apiVersion"], PLURAL[(o["apiVersion"], o["kind"])])], o)
    m = md(o)
    m["uid"], m["creationTimestamp"] = str(uuid.uuid4()), now()
    if o["kind"] in GEN_KINDS:
        m["generation"] = 1
    touch(st, o)
    st["objects"].append(o)
    if o["kind"] == "Namespace":  # what the serviceaccount and root-ca-cert-publisher controllers add
        store(st, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": m["name"]}})
        store(st, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": m["name"]},
                   "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nc3RhbmQtaW4gY2x1c3RlciBDQQ==\n-----END CERTIFICATE-----\n"}})
    return o

def ip_pool(st):
    prefix = st.get("service_cidr", "10.96.")
    missing = 4 - len([p for p in prefix.split(".") if p])
    if missing <= 1:
        return [f"{prefix}{i}" for i in range(1, 255)]
    return [f"{prefix}{'0.' * (missing - 2)}{i // 256}.{i % 256}" for i in range(1, 65535) if 0 < i % 256 < 255]

def on_create(st, r, o):
    kind, m = o["kind"], md(o)
    if (r["gv"], r["name"]) in STATUS_SUB:
        o["status"] = {}
    for k, v in DEFAULTS.get(kind, {}).items():
        o.setdefault("spec", {}).setdefault(k, copy.deepcopy(v))
    if kind == "Namespace":
        m.setdefault("labels", {})["kubernetes.io/metadata.name"] = m["name"]
        o["spec"], o["status"] = {"finalizers": ["kubernetes"]}, {"phase": "Active"}
    elif kind == "Secret":
        secret_data(o)
    elif kind == "Service":
        allocate(st, r, o)
        o["status"] = {"loadBalancer": {}}
    elif kind == "PersistentVolumeClaim":
        s = o.setdefault("spec", {})
        s.setdefault("volumeMode", "Filesystem")
        if s.get("dataSource") and not s.get("dataSourceRef"):  # AnyVolumeDataSource (on by default since 1.24)
            s["dataSourceRef"] = dict(s["dataSource"])
        dflt = [md(c)["name"] for c in select(st, "storage.k8s.io/v1", "StorageClass") if md(c).get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
        if "storageClassName" not in s and dflt:  # the DefaultStorageClass admission plugin
            s["storageClassName"] = dflt[0]
        m["finalizers"] = sorted(set(m.get("finalizers", [])) | {"kubernetes.io/pvc-protection"})
        o["status"] = {"phase": "Pending"}
    elif kind == "PersistentVolume":
        m["finalizers"] = sorted(set(m.get("finalizers", [])) | {"kubernetes.io/pv-protection"})
        o["status"] = {"phase": "Available"}
    elif kind == "StorageClass":
        o.setdefault("reclaimPolicy", "Delete")
        o.setdefault("volumeBindingMode", "Immediate")

def secret_data(o):
    data = o.get("data") or {}
    for k, v in (o.pop("stringData", None) or {}).items():
        data[k] = base64.b64encode(v.encode()).decode()
    if data:
        o["data"] = data
    o.setdefault("type", "Opaque")

def allocate(st, r, o, old=None):
    s, name = o.setdefault("spec", {}), md(o)["name"]
    s.setdefault("type", "ClusterIP")
    if s["type"] == "ExternalName":
        return
    ips = s.get("clusterIPs") or ([s["clusterIP"]] if s.get("clusterIP") else [])
    taken = {ip for svc in select(st, "v1", "Service") for ip in svc.get("spec", {}).get("clusterIPs", [])}
    if old is not None:
        before = old.get("spec", {}).get("clusterIPs") or []
        if not ips:  # omitted on update: the server keeps the allocated ones
            ips = before
        elif ips[:1] != before[:1]:
            raise invalid(r, name, [("spec.clusterIPs[0]", f"Invalid value: {gostr(ips)}: may not change once set")])
    elif ips and ips[0] != "None":
        why = None if ips[0].startswith(st.get("service_cidr", "10.96.")) else \
            f"provided IP is not in the valid range. The range of valid IPs is {st.get('service_range', '10.96.0.0/12')}"
        why = why or ("provided IP is already allocated" if ips[0] in taken else None)
        if why:
            raise invalid(r, name, [("spec.clusterIPs", f"Invalid value: {gostr(ips)}: failed to allocate IP {ips[0]}: {why}")])
    elif not ips:
        ips = [next(ip for ip in ip_pool(st)[9:] if ip not in taken)]
    s["clusterIP"], s["clusterIPs"] = ips[0], ips
    s.setdefault("ipFamilies", ["IPv4"])
    s.setdefault("ipFamilyPolicy", "SingleStack")
    s.setdefault("sessionAffinity", "None")

def remove(st, o):
    st["objects"].remove(o)
    m = md(o)
    if o["kind"] == "VolumeSnapshot":
        kube_csi.deleted(st, sys.modules[__name__], o)
    if o["kind"] == "Namespace":
        for x in [x for x in st["objects"] if md(x).get("namespace") == m["name"]]:
            remove(st, x)
    pv = find(st, "v1", "PersistentVolume", None, o.get("spec", {}).get("volumeName")) if o["kind"] == "PersistentVolumeClaim" else None
    if pv and pv["spec"].get("claimRef", {}).get("uid") == m["uid"]:  # the reclaim policy
        if pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            st["objects"].remove(pv)
        else:
            pv["status"] = {"phase": "Released"}
            touch(st, pv)

# ---- the controllers, run before every resource read ---------------------------------

def claims_of(w):
    spec = w.get("spec", {})
    out = [v["persistentVolumeClaim"]["claimName"] for v in spec.get("template", {}).get("spec", {}).get("volumes", []) if "persistentVolumeClaim" in v]
    if w["kind"] == "StatefulSet":
        out += [f'{t["metadata"]["name"]}-{md(w)["name"]}-{i}' for t in spec.get("volumeClaimTemplates", []) for i in range(spec.get("replicas", 1))]
    return out

def mounted(st, ns, claim):
    pods = [p for p in select(st, "v1", "Pod", ns) if not md(p).get("deletionTimestamp")]
    return any(claim in claims_of(w) for k in WORKLOADS for w in select(st, "apps/v1", k, ns) if k == "DaemonSet" or w.get("spec", {}).get("replicas", 1) > 0) \
        or any(claim in pod_claims(p) for p in pods)

UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

def qty(q):
    n = re.fullmatch(r"(\d+)(|k|M|G|T|Ki|Mi|Gi|Ti)", str(q or ""))
    return int(n.group(1)) * UNITS[n.group(2)] if n else 0

def available(st, c):
    """The smallest Available PV (no claimRef) of the claim's class, access modes and size."""
    s = c["spec"]
    fit = [pv for pv in select(st, "v1", "PersistentVolume")
           if not pv["spec"].get("claimRef") and not md(pv).get("deletionTimestamp") and not s.get("selector")
           and pv["spec"].get("storageClassName", "") == s.get("storageClassName", "")
           and set(s.get("accessModes", [])) <= set(pv["spec"].get("accessModes", []))
           and qty(pv["spec"].get("capacity", {}).get("storage")) >= qty(s.get("resources", {}).get("requests", {}).get("storage"))]
    return min(fit, key=lambda pv: qty(pv["spec"]["capacity"]["storage"]), default=None)

def bind(st, c):
    s, m, ann = c.setdefault("spec", {}), md(c), {}
    if s.get("volumeName"):
        pv = find(st, "v1", "PersistentVolume", None, s["volumeName"])
        ref = (pv or {}).get("spec", {}).get("claimRef") or {}
        if not pv or md(pv).get("deletionTimestamp") or pv["spec"].get("storageClassName", "") != s.get("storageClassName", ""):
            return
        if ref and ((ref.get("namespace"), ref.get("name")) != (m["namespace"], m["name"]) or ref.get("uid", m["uid"]) != m["uid"]):
            return  # "volume already bound to a different claim"
    else:
        sc = find(st, "storage.k8s.io/v1", "StorageClass", None, s.get("storageClassName"))
        if sc and sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not mounted(st, m["namespace"], m["name"]):
            return
        source = s.get("dataSourceRef") or s.get("dataSource")
        if (old := available(st, c)):  # the PV controller's findBestMatchForClaim, before provisioning (a data source or not)
            s["volumeName"] = md(old)["name"]
            old["spec"]["claimRef"] = {}
            bind(st, c)
            md(c)["annotations"]["pv.kubernetes.io/bound-by-controller"] = "yes"
            return
        if not s.get("storageClassName") or not sc or sc.get("provisioner") == "kubernetes.io/no-provisioner":
            return
        content = source and kube_csi.source(st, sys.modules[__name__], c, sc)
        if source and not content:
            return
        pv = store(st, {"apiVersion": "v1", "kind": "PersistentVolume",
                        "metadata": {"name": "pvc-" + m["uid"], "annotations": {"pv.kubernetes.io/provisioned-by": sc["provisioner"]}},
                        "spec": {"capacity": {"storage": s.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                                 "accessModes": s.get("accessModes", ["ReadWriteOnce"]), "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                                 "storageClassName": md(sc)["name"], "volumeMode": s.get("volumeMode", "Filesystem"),
                                 "csi": {"driver": sc["provisioner"], "volumeHandle": "vol-" + m["uid"], "fsType": "ext4"}}})
        if content:
            kube_csi.fill(content, pv)
        s["volumeName"] = md(pv)["name"]
        ann = {"pv.kubernetes.io/bound-by-controller": "yes", "volume.kubernetes.io/storage-provisioner": sc["provisioner"],
               "volume.beta.kubernetes.io/storage-provisioner": sc["provisioner"]}
    pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"],
                              "apiVersion": "v1", "resourceVersion": m["resourceVersion"]}
    pv["status"] = {"phase": "Bound"}
    touch(st, pv)
    m.setdefault("annotations", {}).update(ann, **{"pv.kubernetes.io/bind-completed": "yes"})
    c["status"] = {"phase": "Bound", "accessModes": pv["spec"].get("accessModes", []), "capacity": pv["spec"].get("capacity", {})}
    touch(st, c)

def blockers(st, w):
    """What keeps the workload's pods from running: claims not Bound, missing references."""
    ns, pod, out = md(w)["namespace"], w.get("spec", {}).get("template", {}).get("spec", {}), []

    def need(kind, name, key=None, optional=False):
        o = find(st, "v1", kind, ns, name)
        if not optional and (not o or (key and key not in (o.get("data") or {}) and key not in (o.get("binaryData") or {}))):
            out.append(f"{kind} {name} {key or ''}")

    for claim in claims_of(w):
        c = find(st, "v1", "PersistentVolumeClaim", ns, claim)
        if not c or c.get("status", {}).get("phase") != "Bound":
            out.append(f"PersistentVolumeClaim {claim}")
    for v in pod.get("volumes", []):
        for src in [v] + v.get("projected", {}).get("sources", []):
            if "configMap" in src:
                need("ConfigMap", src["configMap"].get("name"), optional=src["configMap"].get("optional"))
            if "secret" in src:
                need("Secret", src["secret"].get("secretName", src["secret"].get("name")), optional=src["secret"].get("optional"))
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for ref, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
            for e in c.get("env", []):
                x = e.get("valueFrom", {}).get(ref + "KeyRef")
                if x:
                    need(kind, x.get("name"), x.get("key"), x.get("optional"))
            for e in c.get("envFrom", []):
                if ref + "Ref" in e:
                    need(kind, e[ref + "Ref"].get("name"), optional=e[ref + "Ref"].get("optional"))
    sa = pod.get("serviceAccountName") or pod.get("serviceAccount")
    if sa and sa != "default" and not find(st, "v1", "ServiceAccount", ns, sa):
        out.append(f"ServiceAccount {sa}")
    return out

def workload_status(st, w, ready):
    spec, m = w.get("spec", {}), md(w)
    gen, want, t = m.get("generation", 1), spec.get("replicas", 1), now()
    rev = f'{m["name"]}-{m["uid"].replace("-", "")[:10]}'
    if w["kind"] == "Deployment":  # zero counts are omitted, as the real status omits them
        s, ok = {"observedGeneration": gen}, ready or not want
        if want:
            s.update({"replicas": want, "updatedReplicas": want}, **({"readyReplicas": want, "availableReplicas": want} if ready else {"unavailableReplicas": want}))
        s["conditions"] = [
            {"type": "Available", "status": str(ok), "lastUpdateTime": t, "lastTransitionTime": t,
             "reason": "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if ok else "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "True", "lastUpdateTime": t, "lastTransitionTime": t,
             "reason": "NewReplicaSetAvailable" if ok else "ReplicaSetUpdated",
             "message": f'ReplicaSet "{rev}" has successfully progressed.' if ok else f'ReplicaSet "{rev}" is progressing.'}]
        return s
    if w["kind"] == "StatefulSet":  # OrderedReady creates one pod and waits for it
        made = want if ready or spec.get("podManagementPolicy") == "Parallel" else min(want, 1)
        s = {"observedGeneration": gen, "replicas": made, "availableReplicas": want if ready else 0,
             "currentRevision": rev, "updateRevision": rev, "collisionCount": 0}
        s.update({"currentReplicas": made, "updatedReplicas": made} if made else {}, **({"readyReplicas": want} if ready and want else {}))
        return s
    n = len(select(st, "v1", "Node")) or 1  # a DaemonSet wants a pod per node
    return {"currentNumberScheduled": n, "numberMisscheduled": 0, "desiredNumberScheduled": n, "numberReady": n if ready else 0,
            "observedGeneration": gen, "updatedNumberScheduled": n, ("numberAvailable" if ready else "numberUnavailable"): n}

def untimed(s):
    s = dict(s or {}, conditions=[{k: v for k, v in c.items() if not k.startswith("last")} for c in (s or {}).get("conditions", [])])
    return json.dumps(s, sort_keys=True)

def tick(st):
    for o in list(st["objects"]):  # finish deletions
        m = md(o)
        if o in st["objects"] and m.get("deletionTimestamp") and not set(m.get("finalizers", [])) - SYSTEM_FINALIZERS:
            if not (o["kind"] == "PersistentVolumeClaim" and mounted(st, m["namespace"], m["name"])):
                remove(st, o)
    for s in select(st, "apps/v1", "StatefulSet"):
        sm, spec = md(s), s.get("spec", {})
        for t in spec.get("volumeClaimTemplates", []):
            for i in range(spec.get("replicas", 1)):
                name = f'{t["metadata"]["name"]}-{sm["name"]}-{i}'
                if not find(st, "v1", "PersistentVolumeClaim", sm["namespace"], name):
                    labels = dict(spec.get("selector", {}).get("matchLabels", {}), **t["metadata"].get("labels", {}))
                    store(st, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": copy.deepcopy(t.get("spec", {})),
                               "metadata": {"name": name, "namespace": sm["namespace"], "labels": labels}})
    for c in select(st, "v1", "PersistentVolumeClaim"):
        if c.get("status", {}).get("phase") != "Bound" and not md(c).get("deletionTimestamp"):
            bind(st, c)
    kube_csi.controller(st, sys.modules[__name__])
    if st.get("arcdata_api"):
        kube_arcdata.controller(st, sys.modules[__name__])
    for p in select(st, "v1", "Pod"):  # the kubelet: see kube_volumes.pod_status
        ns = md(p)["namespace"]
        c = lambda n: (find(st, "v1", "PersistentVolumeClaim", ns, n) or {}).get("status", {}).get("phase") == "Bound"
        new = pod_status(p, c, p.get("status", {}).get("startTime") or now())
        if untimed(new) != untimed(p.get("status")):
            p["status"] = new
            touch(st, p)
    after = st.get("ready_after_gets", 1)
    for w in [w for kind in WORKLOADS for w in select(st, "apps/v1", kind)]:
        m = md(w)
        key, gen, blocked = f'{w["kind"]}/{m.get("namespace")}/{m["name"]}', m.get("generation", 1), blockers(st, w)
        t = st.setdefault("ticks", {}).get(key)
        t = [gen, 0] if blocked or not t or t[0] != gen else t
        t[1] = t[1] if blocked else min(t[1] + 1, after)
        st["ticks"][key] = t
        new = workload_status(st, w, not blocked and t[1] >= after)
        if untimed(new) != untimed(w.get("status")):
            w["status"] = new
            touch(st, w)

# ---- lists ---------------------------------------------------------------------------

def parse_selector(text):
    reqs = []
    for part in (re.split(r",(?![^()]*\))", text) if text.strip() else []):
        part = part.strip()
        m = re.fullmatch(rf"!\s*({KEY})", part) or REQUIREMENT.fullmatch(part)
        vals = [v.strip() for v in m[5].split(",")] if m and m.re is REQUIREMENT and m[4] else []
        if not m or any(not re.fullmatch(VAL, v) for v in vals):
            raise bad(f'unable to parse requirement: "{part}": a label selector requirement is key, !key, key=value, key!=value, key in (v1,v2), key notin (v1,v2)')
        if m.re is not REQUIREMENT:
            reqs.append((m[1], "!", []))
        elif m[2]:
            reqs.append((m[1], "!=" if m[2] == "!=" else "=", [m[3]]))
        elif m[4]:
            reqs.append((m[1], m[4], vals))
        elif m[6]:
            reqs.append((m[1], m[6], [int(m[7])]))
        else:
            reqs.append((m[1], "exists", []))
    return reqs

def matches(reqs, labels):
    for key, op, vals in reqs:
        has, v = key in labels, labels.get(key)
        if op in ("<", ">"):
            ok = has and v.lstrip("-").isdigit() and (int(v) < vals[0] if op == "<" else int(v) > vals[0])
        else:
            ok = {"=": has and v in vals, "in": has and v in vals, "!=": not has or v not in vals,
                  "notin": not has or v not in vals, "exists": has, "!": not has}[op]
        if not ok:
            return False
    return True

def field_matcher(text):
    conds = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([^!=]+)(==|!=|=)(.*)", part)
        if not m or m[1] not in ("metadata.name", "metadata.namespace"):
            raise bad(f"field label not supported: {m[1] if m else part}")
        conds.append((m[1].split(".")[1], m[2] == "!=", m[3]))
    return lambda o: all((md(o).get(f, "") == v) != neg for f, neg, v in conds)

def do_list(st, r, ns, q):
    arg = lambda k: q.get(k, [""])[0]
    reqs, fmatch = parse_selector(arg("labelSelector")), field_matcher(arg("fieldSelector"))
    items = sorted((o for o in select(st, r["gv"], r["kind"], ns) if matches(reqs, md(o).get("labels") or {}) and fmatch(o)), key=okey)
    if not re.fullmatch(r"-?\d*", arg("limit")):
        raise bad(f'invalid limit: "{arg("limit")}"')
    limit, rv = int(arg("limit") or 0), st["rv"]
    if arg("continue"):  # the token is what the etcd3 store encodes: {"v", "rv", "start"}
        try:
            tok = json.loads(base64.urlsafe_b64decode(arg("continue") + "=" * (-len(arg("continue")) % 4)))
            assert tok["v"] == "meta.k8s.io/v1" and isinstance(tok["rv"], int) and tok["rv"] > 0 and tok["start"]
        except Exception:
            raise bad("invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        if st.get("expire_continue"):
            st["expire_continue"] = False
            raise Fail(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
        rv, items = tok["rv"], [o for o in items if okey(o) >= tok["start"]]
    size = min(limit, st["page"]) if limit > 0 and st.get("page") else limit
    meta = {"resourceVersion": str(rv)}
    if size > 0 and len(items) > size:
        start = okey(items[size - 1]) + "\x00"
        meta["continue"] = base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":")).encode()).decode().rstrip("=")
        if not reqs and not arg("fieldSelector"):
            meta["remainingItemCount"] = len(items) - size
        items = items[:size]
    out = [{k: v for k, v in copy.deepcopy(o).items() if k not in ("apiVersion", "kind")} for o in items]
    if r["gv"] in kube_arcdata.DOCS:  # custom resources are listed whole, in the version asked for
        out = [dict(o, apiVersion=r["gv"], kind=r["kind"]) for o in out]
    return 200, {"kind": r["kind"] + "List", "apiVersion": r["gv"], "metadata": meta, "items": out}

# ---- writes --------------------------------------------------------------------------

def decode(r, raw):
    try:
        o = json.loads(raw or b"null")
        assert isinstance(o, dict) and isinstance(o.get("metadata", {}), dict)
    except (ValueError, AssertionError) as e:
        raise bad(f"the object provided is unrecognized (must be of type {r['kind']}): couldn't get version/kind; json parse error: {e or 'not an object'}")
    av, kind = o.get("apiVersion"), o.get("kind")
    if kind and kind != r["kind"]:
        raise bad(f'{kind} in version "{(av or r["gv"]).rpartition("/")[2]}" cannot be handled as a {r["kind"]}: the kind does not match the resource of the URL')
    if av and av != r["gv"]:
        raise bad(f"the API version in the data ({av}) does not match the expected API version ({r['gv']})")
    o["apiVersion"], o["kind"] = r["gv"], r["kind"]
    o.setdefault("metadata", {})
    return o

def create(st, r, ns, o):
    m = o["metadata"]
    if r["namespaced"]:
        if m.get("namespace") and m["namespace"] != ns:
            raise bad("the namespace of the provided object does not match the namespace sent on the request")
        m["namespace"], nso = ns, find(st, "v1", "Namespace", None, ns)
        if not nso:  # the NamespaceLifecycle admission plugin
            raise Fail(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        if md(nso).get("deletionTimestamp"):
            raise Fail(403, "Forbidden", f'{qual(r)} "{m.get("name", "")}" is forbidden: unable to create new content in namespace {ns} because it is being terminated',
                       det(r, m.get("name"), causes=[{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated", "field": "metadata.namespace"}]))
    else:
        m.pop("namespace", None)
    name = m.get("name")
    if not name:
        raise invalid(r, "", [("metadata.name", "Required value: name or generateName is required")])
    rv = str(m.pop("resourceVersion", "") or "")
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink"):
        m.pop(k, None)
    cur = find(st, r["gv"], r["kind"], ns, name)
    if not cur:
        on_create(st, r, copy.deepcopy(o))  # validation (clusterIP) before storage, as the REST layer does
    if rv.isdigit() and int(rv):  # storage.ErrResourceVersionSetOnCreate is no Status: 500, no reason
        raise Fail(500, "", "resourceVersion should not be set on objects to be created")
    if cur:
        gone = "object is being deleted: " if md(cur).get("deletionTimestamp") else ""
        raise Fail(409, "AlreadyExists", f'{gone}{qual(r)} "{name}" already exists', det(r, name))
    return 201, store(st, o)

def update(st, r, ns, name, new, cur):
    m, cm, kind = md(new), md(cur), r["kind"]
    new["apiVersion"] = cur["apiVersion"]  # kept in the version it is stored in, whatever the one written in
    if r["namespaced"] and m.setdefault("namespace", ns) != ns:
        raise bad(f"the namespace of the object ({m['namespace']}) does not match the namespace on the URL ({ns})")
    if m.get("name") != name:
        raise bad(f"the name of the object ({m.get('name', '')}) does not match the name on the URL ({name})")
    rv = str(m.get("resourceVersion") or "0")
    if rv == "0" and st.get("require_resource_version"):  # as for the types without unconditional update
        raise invalid(r, name, [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")], kind=r["name"])
    if rv != "0" and rv != cm["resourceVersion"]:
        raise conflict(r, name, OPT_LOCK)
    if m.get("uid") and m["uid"] != cm["uid"]:
        raise invalid(r, name, [("metadata.uid", f'Invalid value: "{m["uid"]}": field is immutable')])
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "generation", "resourceVersion"):
        m.pop(k, None)
        if k in cm:
            m[k] = cm[k]
    spec, old = new.get("spec") or {}, cur.get("spec") or {}
    for k, v in DEFAULTS.get(kind, {}).items():
        new.setdefault("spec", spec).setdefault(k, copy.deepcopy(v))
    if (r["gv"], r["name"]) in STATUS_SUB:
        new["status"] = copy.deepcopy(cur.get("status"))
    if kind == "Secret":
        secret_data(new)
    elif kind == "Namespace":
        m.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        new["spec"] = copy.deepcopy(cur.get("spec"))
    elif kind == "Service":
        allocate(st, r, new, cur)
    elif kind == "PersistentVolumeClaim":
        a, b = copy.deepcopy(spec), copy.deepcopy(old)
        a.setdefault("volumeMode", "Filesystem")
        b["volumeName"] = b.get("volumeName") or a.get("volumeName")  # the binder may set it once
        if cur.get("status", {}).get("phase") == "Bound":
            for x in (a, b):
                x.get("resources", {}).get("requests", {}).pop("storage", None)
        if {k: v for k, v in a.items() if v is not None} != {k: v for k, v in b.items() if v is not None}:
            raise invalid(r, name, [("spec", "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims")])
    elif kind == "StatefulSet" and {k: v for k, v in spec.items() if k not in STS_MUTABLE} != {k: v for k, v in old.items() if k not in STS_MUTABLE}:
        raise invalid(r, name, [("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")])
    if kind in GEN_KINDS and new.get("spec") != cur.get("spec"):
        m["generation"] = cm.get("generation", 1) + 1
    if json.dumps(new, sort_keys=True) == json.dumps(cur, sort_keys=True):
        return 200, dict(cur, apiVersion=r["gv"])  # a no-op write keeps resourceVersion
    st["objects"][st["objects"].index(cur)] = new
    touch(st, new)
    if m.get("deletionTimestamp") and not set(m.get("finalizers", [])) - SYSTEM_FINALIZERS and kind not in DELETE_LATER:
        remove(st, new)
    return 200, dict(new, apiVersion=r["gv"])

def delete(st, r, o, raw):
    m = md(o)
    try:
        pre = (json.loads(raw) if raw.strip() else {}).get("preconditions") or {}
    except (ValueError, AttributeError):
        raise bad("the body of the request is not a DeleteOptions object")
    for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        if pre.get(field) and pre[field] != m[field]:
            raise conflict(r, m["name"], f"Precondition failed: {label} in precondition: {pre[field]}, {label} in object meta: {m[field]}")
    if o["kind"] == "Namespace" and m.get("deletionTimestamp"):
        raise conflict(r, m["name"], "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.")
    if m.get("finalizers") or o["kind"] in DELETE_LATER:
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"], m["deletionGracePeriodSeconds"] = now(), 0
            o["status"] = {"phase": "Terminating"} if o["kind"] == "Namespace" else o.get("status")
            touch(st, o)
        return 200, o
    remove(st, o)
    return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": det(r, m["name"], uid=m["uid"])}

# ---- routing -------------------------------------------------------------------------

def discovery(parts, host, st):
    if parts == ["api"]:
        doc = fixture("api.json")
        for a in doc.get("serverAddressByClientCIDRs", []):
            a["serverAddress"] = host
        return doc
    groups = dict(GROUPS, groups=GROUPS["groups"] + ([kube_csi.GROUP] if st.get("csi_api") else [])
                  + (kube_arcdata.GROUPS if st.get("arcdata_api") else []))
    if parts in (["api", "v1"], ["apis"]):
        return DOCS["v1"] if parts[0] == "api" else groups
    if parts == ["version"]:
        return st.get("version") or {"major": "1", "minor": "30", "gitVersion": "v1.30.4", "gitTreeState": "clean",
                                     "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"}
    group = next((g for g in groups["groups"] if parts[:1] == ["apis"] and parts[1:2] == [g["name"]]), None)
    if group and len(parts) == 2:
        return dict({"kind": "APIGroup", "apiVersion": "v1"}, **{k: group[k] for k in ("name", "versions", "preferredVersion")})
    if group and len(parts) == 3 and any(v["groupVersion"] == "/".join(parts[1:]) for v in group["versions"]):
        return DOCS.get("/".join(parts[1:])) or {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "/".join(parts[1:]), "resources": []}
    return None

def authenticated(req, st):
    """An Entra token for the AKS audience, a token of `tokens`, or (over TLS) a client
    certificate the cluster's CA signed: what kube-apiserver's authenticators accept."""
    if getattr(req.connection, "getpeercert", None) and req.connection.getpeercert():
        return True
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return scheme.lower() == "bearer" and (token.startswith("aks-") or token in st.get("tokens", []))

def route(req, st, path, q, raw):
    if not authenticated(req, st):
        raise Fail(401, "Unauthorized", "Unauthorized")
    method, parts = req.command, [p for p in path.split("/") if p]
    doc = discovery(parts, "%s:%d" % req.server.server_address[:2], st) if method == "GET" else None
    if doc is not None:
        return 200, doc
    gv, rest = None, []
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces" and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        ns, rest = rest[1], rest[2:]
    r = RES.get((gv, rest[0])) if rest and (gv not in OPTIONAL or st.get(OPTIONAL[gv])) else None
    name = rest[1] if len(rest) == 2 else None
    if not r or len(rest) > 2 or (ns and not r["namespaced"]) or (r["namespaced"] and name and not ns):
        raise Fail(404, "NotFound", "the server could not find the requested resource", {})
    verb = {("GET", True): "get", ("GET", False): "list", ("POST", False): "create", ("PUT", True): "update", ("DELETE", True): "delete"}.get((method, bool(name)))
    if verb not in r["verbs"]:
        raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
    if method == "GET":
        tick(st)
    if verb == "list":
        return do_list(st, r, ns, q)
    if verb == "create":
        return create(st, r, ns, decode(r, raw))
    cur = find(st, gv, r["kind"], ns, name)
    if not cur:
        raise not_found(r, name)
    if verb == "get":
        return 200, dict(cur, apiVersion=gv)
    return update(st, r, ns, name, decode(r, raw), cur) if verb == "update" else delete(st, r, cur, raw)

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw, url = self.rfile.read(n) if n else b"", urlsplit(self.path)
        with LOCK:
            st, before = load(self.server.dir)
            try:
                status, answer = route(self, st, url.path, parse_qs(url.query, keep_blank_values=True), raw)
            except Fail as e:
                status, answer = e.code, e.body
            except Exception as e:  # a bug of the stand-in, answered like an unexpected apiserver error
                traceback.print_exc()
                status, answer = 500, Fail(500, "InternalError", f"Internal error occurred: {e}").body
            if json.dumps(st, sort_keys=True) != before:
                save(self.server.dir, st)
            with open(os.path.join(self.server.dir, "calls.log"), "a") as f:
                f.write(f"{self.command} {url.path}{'?' + url.query if url.query else ''} {status}\n")
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do

def serve(d, host):
    srv = ThreadingHTTPServer((host, 0), Handler)
    srv.dir, srv.daemon_threads = d, True
    kube_csi.STATE_DIR[:] = [d]
    with LOCK:
        st = load(d)[0]
        save(d, st)
    scheme = "http"
    tls = st.get("tls")
    if tls:
        # HTTPS with the server certificate of `tls.cert`/`tls.key`; with `tls.client_ca`
        # a client certificate is asked for and, when sent, must chain to it
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls["cert"], tls["key"])
        if tls.get("client_ca"):
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(tls["client_ca"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"{scheme}://{host}:{srv.server_address[1]}"

if __name__ == "__main__":
    server, base = serve(sys.argv[1], sys.argv[2])
    print(json.dumps({"url": base}), flush=True)
    threading.Event().wait()
