"""Pods and the files of volumes, shared by the API server stand-in (kube_standin.py) and
the kubectl stand-in (fake_kubectl.py).

A pod runs once every claim it mounts is Bound (a claim of a WaitForFirstConsumer class
binds because a pod uses it), on its spec.nodeName or the one node; an image whose name
holds `missing` is never pulled (ErrImagePull), as on a node that cannot reach the
registry. A volume's files are the folder volumes/<persistent volume> of the stand-in's
state folder, as a CSI driver keeps them on its storage.
"""
import json, os, shutil

NODE = "aks-nodepool1-0"


def md(o):
    return o.setdefault("metadata", {})


def claims(pod):
    return [v["persistentVolumeClaim"]["claimName"] for v in pod.get("spec", {}).get("volumes", []) if "persistentVolumeClaim" in v]


def pod_status(pod, bound, t):
    """The status a kubelet reports: Pending while a claim is unbound or the image is not
    pulled, else Running."""
    spec, cs = pod.get("spec", {}), pod.get("spec", {}).get("containers", [])
    unbound = [c for c in claims(pod) if not bound(c)]
    if unbound:
        return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."}]}
    if any("missing" in c.get("image", "") for c in cs):
        return {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [copy]"}],
                "containerStatuses": [{"name": c["name"], "ready": False, "restartCount": 0, "image": c.get("image"), "imageID": "",
                                       "state": {"waiting": {"reason": "ErrImagePull", "message": f'failed to pull and unpack image "{c.get("image")}": not found'}}} for c in cs]}
    spec.setdefault("nodeName", NODE)
    return {"phase": "Running", "hostIP": "10.240.0.4", "podIP": "10.244.0.17", "startTime": t,
            "conditions": [{"type": k, "status": "True"} for k in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{"name": c["name"], "ready": True, "started": True, "restartCount": 0, "image": c.get("image"), "imageID": "",
                                   "state": {"running": {"startedAt": t}}} for c in cs]}


def volume_dir(state_dir, pv):
    return os.path.join(state_dir, "volumes", pv)


def content_dir(state_dir, content):
    return os.path.join(state_dir, "snapshots", content)


def clone_tree(src, dst):
    """The files of `src` as a VolumeSnapshot (or a volume made from one) keeps them at
    `dst`: contents, modes, owners (numerically, where this process may set them), links as
    links."""
    shutil.rmtree(dst, ignore_errors=True)
    if not os.path.isdir(src):
        os.makedirs(dst)
        return
    shutil.copytree(src, dst, symlinks=True)
    for root, dirs, files in os.walk(src):
        for n in [None] + dirs + files:
            s = os.path.join(root, n) if n else root
            st = os.lstat(s)
            try:
                os.lchown(os.path.join(dst, os.path.relpath(s, src)), st.st_uid, st.st_gid)
            except PermissionError:
                pass


def read_state(state_dir):
    with open(os.path.join(state_dir, "state.json")) as f:
        return json.load(f)


def find(st, kind, ns, name):
    return next((o for o in st["objects"] if o.get("kind") == kind and md(o).get("namespace") == ns and md(o).get("name") == name), None)
