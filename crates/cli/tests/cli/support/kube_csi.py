"""The CSI VolumeSnapshot API of the API server stand-in (kube_standin.py), as
external-snapshotter's CRDs, its controller and a CSI driver's external-provisioner serve
it; the stand-in serves it when its state says "csi_api": true.

- a VolumeSnapshot of a Bound claim whose volume is its class's CSI driver's gets a
  VolumeSnapshotContent (the volume's files copied as they are now, to
  snapshots/<content> in the state folder) and is readyToUse one read later; a missing
  class, another driver or the state's "csi_error" is status.error;
- a claim whose dataSource is a ready VolumeSnapshot of its storage class's driver, asking
  for at least its size, is provisioned with those files (else it stays Pending);
- deleting a VolumeSnapshot deletes a Delete-policy content and its files.

`s` below is the stand-in module: its object store (select, find, store, touch, now, qty).
"""
import shutil, time

from kube_volumes import clone_tree, content_dir, md, volume_dir

GV = "snapshot.storage.k8s.io/v1"
_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV, "resources": [
    {"name": n, "singularName": n[:-1], "namespaced": ns, "kind": k, "verbs": _VERBS, "shortNames": sn}
    for n, ns, k, sn in (("volumesnapshotclasses", False, "VolumeSnapshotClass", ["vsclass", "vsclasses"]),
                         ("volumesnapshotcontents", False, "VolumeSnapshotContent", ["vsc", "vscs"]),
                         ("volumesnapshots", True, "VolumeSnapshot", ["vs"]))] + [
    {"name": n + "/status", "singularName": "", "namespaced": ns, "kind": k, "verbs": ["get", "patch", "update"]}
    for n, ns, k in (("volumesnapshotcontents", False, "VolumeSnapshotContent"), ("volumesnapshots", True, "VolumeSnapshot"))]}
GROUP = {"name": "snapshot.storage.k8s.io", "versions": [{"groupVersion": GV, "version": "v1"}],
         "preferredVersion": {"groupVersion": GV, "version": "v1"}}
STATE_DIR = []  # the state folder of this process (volumes/ and snapshots/ live there)


def controller(st, s):
    """The controller pass of external-snapshotter over every VolumeSnapshot (see above)."""
    for vs in s.select(st, GV, "VolumeSnapshot"):
        spec, status, m = vs.get("spec", {}), vs.setdefault("status", {}), md(vs)
        if m.get("deletionTimestamp") or status.get("readyToUse") or status.get("error"):
            continue
        if status.get("boundVolumeSnapshotContentName"):
            status["readyToUse"] = True
            s.touch(st, vs)
            continue
        claim = s.find(st, "v1", "PersistentVolumeClaim", m["namespace"], spec.get("source", {}).get("persistentVolumeClaimName"))
        if not claim or claim.get("status", {}).get("phase") != "Bound":
            continue  # waits for the claim, as the controller does
        pv = s.find(st, "v1", "PersistentVolume", None, claim["spec"].get("volumeName"))
        cls = s.find(st, GV, "VolumeSnapshotClass", None, spec.get("volumeSnapshotClassName"))
        driver = (pv or {}).get("spec", {}).get("csi", {}).get("driver")
        err = st.get("csi_error")
        if not cls:
            err = f'Failed to get VolumeSnapshotClass with error volumesnapshotclass.snapshot.storage.k8s.io "{spec.get("volumeSnapshotClassName")}" not found'
        elif driver != cls.get("driver"):
            err = f'Failed to create VolumeSnapshotContent with error the controller failed to update {m["namespace"]}/{m["name"]}: the volume of claim {md(claim)["name"]} is not of driver {cls.get("driver")}'
        if err:
            status.update(error={"message": err, "time": s.now()}, readyToUse=False)
            s.touch(st, vs)
            continue
        name = "snapcontent-" + m["uid"]
        clone_tree(volume_dir(STATE_DIR[0], md(pv)["name"]), content_dir(STATE_DIR[0], name))
        c = s.store(st, {"apiVersion": GV, "kind": "VolumeSnapshotContent", "metadata": {"name": name},
                         "spec": {"deletionPolicy": cls.get("deletionPolicy", "Delete"), "driver": driver, "volumeSnapshotClassName": md(cls)["name"],
                                  "source": {"volumeHandle": pv["spec"]["csi"].get("volumeHandle")},
                                  "volumeSnapshotRef": {"kind": "VolumeSnapshot", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"]}}})
        c["status"] = {"readyToUse": True, "restoreSize": s.qty(pv["spec"].get("capacity", {}).get("storage")), "snapshotHandle": "snap-" + m["uid"],
                       "creationTime": int(time.time() * 1e9)}
        status.update(boundVolumeSnapshotContentName=name, creationTime=s.now(), readyToUse=False,
                      restoreSize=pv["spec"].get("capacity", {}).get("storage"))
        s.touch(st, vs)


def source(st, s, claim, sc):
    """The content claim `claim` (of storage class `sc`) is provisioned from: its
    dataSource's ready VolumeSnapshot, of the class's driver, no larger than the claim
    asks; None otherwise (the claim stays Pending)."""
    spec = claim["spec"]
    ref = spec.get("dataSourceRef") or spec.get("dataSource") or {}
    vs = s.find(st, GV, "VolumeSnapshot", md(claim)["namespace"], ref.get("name")) \
        if ref.get("kind") == "VolumeSnapshot" and ref.get("apiGroup") == "snapshot.storage.k8s.io" else None
    content = vs and vs.get("status", {}).get("readyToUse") and \
        s.find(st, GV, "VolumeSnapshotContent", None, vs["status"].get("boundVolumeSnapshotContentName"))
    if not content or content["spec"].get("driver") != sc["provisioner"] \
            or s.qty(spec.get("resources", {}).get("requests", {}).get("storage")) < content["status"]["restoreSize"]:
        return None
    return content


def fill(content, pv):
    """Provision volume `pv` with the files of `content`."""
    clone_tree(content_dir(STATE_DIR[0], md(content)["name"]), volume_dir(STATE_DIR[0], md(pv)["name"]))


def deleted(st, s, vs):
    """VolumeSnapshot `vs` is gone: a Delete-policy content goes with its files."""
    c = s.find(st, GV, "VolumeSnapshotContent", None, vs.get("status", {}).get("boundVolumeSnapshotContentName"))
    if c and c["spec"].get("deletionPolicy") == "Delete":
        st["objects"].remove(c)
        shutil.rmtree(content_dir(STATE_DIR[0], md(c)["name"]), ignore_errors=True)
