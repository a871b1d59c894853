#!/usr/bin/env python3
"""Exercises the API server stand-in (kube_standin.py) as a client would, on 127.0.0.3:
what it answers must be what kube-apiserver answers. Non-zero exit on a failure."""
import json, os, sys, tempfile, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube_standin import *  # noqa: E402,F401,F403


def self_test():
    import urllib.error, urllib.request
    d, fails = tempfile.mkdtemp(prefix="kube-standin-"), []
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "disk.csi.akshci.com",
          "metadata": {"name": "default", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump({"objects": [sc], "page": 2, "expire_continue": False, "service_cidr": "10.96.", "ready_after_gets": 1}, f)
    srv, url = serve(d, "127.0.0.3")

    def call(method, path, body=None, token="aks-self-test"):
        req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers=dict({"Authorization": "Bearer " + token} if token else {}, **{"Content-Type": "application/json"} if body is not None else {}))
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def expect(what, got, code, message=None, reason=None):
        if got[0] != code or message not in (None, got[1].get("message")) or reason not in (None, got[1].get("reason")):
            fails.append(what)
            print(f"FAIL {what}: {got[0]} {json.dumps(got[1])[:300]}")
        return got[1]

    def check(what, ok):
        if not ok:
            fails.append(what)
            print("FAIL " + what)

    def state(**kw):
        with LOCK:
            st = load(d)[0]
            save(d, dict(st, **kw))

    cm = lambda name, **meta: {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta, name=name), "data": {"k": "v"}}
    pvc = lambda name, **spec: {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                                "spec": dict({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, **spec)}
    dep = lambda name, vols: {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "containers": [{"name": "c", "image": "nginx", "envFrom": [{"configMapRef": {"name": "cm1"}}]}], "volumes": vols}}}}
    svc = lambda name, ip=None: {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": dict({"ports": [{"port": 80}]}, **({"clusterIP": ip} if ip else {}))}
    A, N, D = "/api/v1", "/api/v1/namespaces/demo", "/apis/apps/v1/namespaces/demo/deployments"

    expect("401 without token", call("GET", "/api", token=None), 401, "Unauthorized", "Unauthorized")
    check("serverAddress is own", expect("/api", call("GET", "/api"), 200)["serverAddressByClientCIDRs"][0]["serverAddress"] == url[7:])
    check("core discovery", any(x["name"] == "configmaps" for x in expect("/api/v1", call("GET", A), 200)["resources"]))
    check("apps discovery", any(x["name"] == "deployments" for x in expect("apps", call("GET", "/apis/apps/v1"), 200)["resources"]))
    check("storage discovery", expect("storage", call("GET", "/apis/storage.k8s.io/v1"), 200)["groupVersion"] == "storage.k8s.io/v1")
    check("other gv empty", expect("batch", call("GET", "/apis/batch/v1"), 200)["resources"] == [])
    expect("unknown path", call("GET", "/apis/nope/v1"), 404, "the server could not find the requested resource", "NotFound")
    expect("group not served", call("GET", "/apis/batch/v1/jobs"), 404)
    expect("verb lacking", call("POST", A + "/componentstatuses", {}), 405, reason="MethodNotAllowed")
    check("ns Active", expect("create ns", call("POST", A + "/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}), 201)["status"]["phase"] == "Active")
    expect("missing ns", call("POST", A + "/namespaces/ghost/configmaps", cm("x")), 404, 'namespaces "ghost" not found', "NotFound")
    c1 = expect("create cm", call("POST", N + "/configmaps", cm("cm1", labels={"tier": "a"})), 201)
    check("server fields", c1["metadata"].get("uid") and c1["metadata"]["creationTimestamp"].endswith("Z") and "generation" not in c1["metadata"])
    expect("exists", call("POST", N + "/configmaps", cm("cm1")), 409, 'configmaps "cm1" already exists', "AlreadyExists")
    expect("no name", call("POST", N + "/configmaps", cm("")), 422, 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required', "Invalid")
    expect("rv on create", call("POST", N + "/configmaps", cm("cm9", resourceVersion="5")), 500, "resourceVersion should not be set on objects to be created")
    expect("ns mismatch", call("POST", N + "/configmaps", cm("cm9", namespace="other")), 400, "the namespace of the provided object does not match the namespace sent on the request")
    expect("kind mismatch", call("POST", N + "/secrets", cm("cm9")), 400, reason="BadRequest")
    expect("get 404", call("GET", N + "/configmaps/nope"), 404, 'configmaps "nope" not found')
    expect("get 404 apps", call("GET", D + "/nope"), 404, 'deployments.apps "nope" not found')
    check("pvc Pending at creation", expect("pvc", call("POST", N + "/persistentvolumeclaims", pvc("data")), 201)["status"]["phase"] == "Pending")
    expect("pvc, missing class", call("POST", N + "/persistentvolumeclaims", pvc("lost", storageClassName="missing")), 201)
    d1 = expect("deploy", call("POST", D, dep("web", [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "c", "configMap": {"name": "late"}}])), 201)
    check("generation 1, empty status", d1["metadata"]["generation"] == 1 and d1["status"] == {})
    expect("deploy broken", call("POST", D, dep("broken", [{"name": "d", "persistentVolumeClaim": {"claimName": "lost"}}])), 201)
    w = expect("get web", call("GET", D + "/web"), 200)
    check("not ready while a configmap is missing", "readyReplicas" not in w["status"] and w["status"]["conditions"][0]["reason"] == "MinimumReplicasUnavailable")
    check("pvc Bound on a read", expect("get pvc", call("GET", N + "/persistentvolumeclaims/data"), 200)["status"]["phase"] == "Bound")
    expect("create late", call("POST", N + "/configmaps", cm("late")), 201)
    w = expect("get web", call("GET", D + "/web"), 200)
    check("ready flips", w["status"].get("readyReplicas") == 1 and w["status"]["conditions"][0]["status"] == "True")
    for _ in range(3):
        br = expect("get broken", call("GET", D + "/broken"), 200)
    check("broken stays unavailable", br["status"]["conditions"][0]["status"] == "False" and br["status"].get("unavailableReplicas") == 1)
    check("lost stays Pending", expect("get lost", call("GET", N + "/persistentvolumeclaims/lost"), 200)["status"]["phase"] == "Pending")
    check("pv provisioned", any(p["spec"]["csi"]["driver"] == "disk.csi.akshci.com" for p in expect("pvs", call("GET", A + "/persistentvolumes"), 200)["items"]))
    expect("cm3", call("POST", N + "/configmaps", cm("cm3", labels={"tier": "b"})), 201)
    full, names, token = expect("full list", call("GET", N + "/configmaps"), 200), [], ""
    while True:
        page = expect("page", call("GET", N + "/configmaps?limit=1" + ("&continue=" + token if token else "")), 200)
        check("page of 1 without kind", len(page["items"]) == 1 and "kind" not in page["items"][0] and "apiVersion" not in page["items"][0])
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        check("remainingItemCount", not token or page["metadata"]["remainingItemCount"] == len(full["items"]) - len(names))
        if not token:
            break
    check("paging covers all, in order", names == [i["metadata"]["name"] for i in full["items"]] == sorted(names) and len(names) >= 3)
    big = expect("limit > page", call("GET", N + "/configmaps?limit=50"), 200)
    check("state.page caps the page", len(big["items"]) == 2 and big["metadata"]["continue"])
    state(expire_continue=True)
    expect("410", call("GET", N + "/configmaps?limit=1&continue=" + big["metadata"]["continue"]), 410, reason="Expired")
    expect("flag cleared", call("GET", N + "/configmaps?limit=1&continue=" + big["metadata"]["continue"]), 200)
    expect("bad token", call("GET", N + "/configmaps?limit=1&continue=zzz"), 400, reason="BadRequest")
    sel = lambda s: sorted(i["metadata"]["name"] for i in expect("sel " + s, call("GET", N + "/configmaps?labelSelector=" + s.replace(" ", "%20")), 200)["items"])
    check("selector =", sel("tier=a") == sel("tier==a") == ["cm1"])
    check("selector in", sel("tier in (a,b)") == ["cm1", "cm3"])
    check("selector !=", "cm1" not in sel("tier!=a") and "late" in sel("tier!=a"))
    check("selector !key", sel("!tier") == ["kube-root-ca.crt", "late"])
    check("selector notin + exists", sel("tier notin (a),tier") == ["cm3"])
    expect("bad selector", call("GET", N + "/configmaps?labelSelector=tier%20in%20(a"), 400, reason="BadRequest")
    cur = expect("get cm1", call("GET", N + "/configmaps/cm1"), 200)
    ok = expect("put", call("PUT", N + "/configmaps/cm1", dict(cur, data={"k": "v2"})), 200)
    check("rv bumped", int(ok["metadata"]["resourceVersion"]) > int(cur["metadata"]["resourceVersion"]))
    expect("stale rv", call("PUT", N + "/configmaps/cm1", dict(cur, data={"k": "v2"})), 409, 'Operation cannot be fulfilled on configmaps "cm1": ' + OPT_LOCK, "Conflict")
    no_rv = dict(ok, metadata={k: v for k, v in ok["metadata"].items() if k != "resourceVersion"}, data={"k": "v3"})
    expect("unconditional update", call("PUT", N + "/configmaps/cm1", no_rv), 200)
    state(require_resource_version=True)
    expect("rv required", call("PUT", N + "/configmaps/cm1", no_rv), 422, 'configmaps "cm1" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update', "Invalid")
    state(require_resource_version=False)
    expect("put missing", call("PUT", N + "/configmaps/nope", cm("nope")), 404, 'configmaps "nope" not found')
    p = expect("get pvc", call("GET", N + "/persistentvolumeclaims/data"), 200)
    expect("pvc resize", call("PUT", N + "/persistentvolumeclaims/data", dict(p, spec=dict(p["spec"], resources={"requests": {"storage": "2Gi"}}))), 200)
    expect("pvc immutable", call("PUT", N + "/persistentvolumeclaims/data", dict(p, spec=dict(p["spec"], accessModes=["ReadWriteMany"]), metadata={k: v for k, v in p["metadata"].items() if k != "resourceVersion"})), 422,
           'PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims')
    s1 = expect("svc", call("POST", N + "/services", svc("web")), 201)
    check("clusterIP allocated", s1["spec"]["clusterIP"].startswith("10.96.") and s1["spec"]["clusterIPs"] == [s1["spec"]["clusterIP"]])
    expect("svc out of range", call("POST", N + "/services", svc("ext", "192.168.0.1")), 422,
           'Service "ext" is invalid: spec.clusterIPs: Invalid value: []string{"192.168.0.1"}: failed to allocate IP 192.168.0.1: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12')
    expect("svc ip taken", call("POST", N + "/services", svc("dup", "10.96.0.1")), 422, reason="Invalid")
    expect("clusterIP immutable", call("PUT", N + "/services/web", dict(s1, spec=dict(s1["spec"], clusterIP="10.96.9.9", clusterIPs=["10.96.9.9"]))), 422,
           'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.9.9"}: may not change once set')
    gone = expect("delete", call("DELETE", N + "/configmaps/cm3"), 200)
    check("delete answers Status", gone["status"] == "Success" and gone["details"]["name"] == "cm3")
    expect("delete again", call("DELETE", N + "/configmaps/cm3"), 404, 'configmaps "cm3" not found')
    check("ns Terminating", expect("delete ns", call("DELETE", A + "/namespaces/demo"), 200)["status"]["phase"] == "Terminating")
    expect("delete terminating ns", call("DELETE", A + "/namespaces/demo"), 409, reason="Conflict")
    expect("create in terminating ns", call("POST", N + "/configmaps", cm("z")), 403, reason="Forbidden")
    expect("ns gone on the next read", call("GET", A + "/namespaces/demo"), 404, 'namespaces "demo" not found')
    check("its objects gone", not any(i["metadata"]["namespace"] == "demo" for i in expect("all cms", call("GET", A + "/configmaps"), 200)["items"]))
    with open(os.path.join(d, "calls.log")) as f:
        check("calls.log", f.readline() == "GET /api 401\n")
    srv.shutdown()
    print("self-test:", "FAILED: " + "; ".join(fails) if fails else "ok", f"({d})")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(self_test())
