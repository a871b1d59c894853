#!/usr/bin/env python3
"""A stand-in for kubectl's `cp`, against the API server stand-ins (kube_standin.py).

    fake_kubectl.py CONTEXTS.json cp SRC DST -c CONTAINER [--context NAME]

CONTEXTS.json maps context names (and "" for the current one) to stand-in state folders.
One of SRC and DST is `<namespace>/<pod>:<path>`. As kubectl does: the pod must exist and
run and have the container; from a pod, the files under <path> land in DST (made if
missing, merged if not), symbolic links skipped with a warning; into a pod, when <path>
is a folder there SRC's files land in <path>/<basename of SRC>, and a read-only mount
cannot be written. A pod's file system is its volume mounts and the folders above them;
a mount's files are its claim's volume (kube_volumes.volume_dir).
"""
import os, shutil, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube_volumes import claims, find, read_state, volume_dir  # noqa: E402


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def pod_fs(state_dir, ns, name, container):
    st = read_state(state_dir)
    pod = find(st, "Pod", ns, name)
    if not pod:
        fail(f'Error from server (NotFound): pods "{name}" not found')
    if pod.get("status", {}).get("phase") != "Running":
        fail(f"error: unable to upgrade connection: pod {name} is not running")
    c = next((c for c in pod["spec"].get("containers", []) if c["name"] == container), None)
    if not c:
        fail(f'error: unable to upgrade connection: container not found ("{container}")')
    mounts = {}
    for m in c.get("volumeMounts", []):
        v = next(v for v in pod["spec"]["volumes"] if v["name"] == m["name"])
        claim = find(st, "PersistentVolumeClaim", ns, v["persistentVolumeClaim"]["claimName"])
        pv = claim["spec"]["volumeName"]
        mounts[m["mountPath"].rstrip("/")] = (volume_dir(state_dir, pv), m.get("readOnly", False))
    return mounts


def where(mounts, path):
    """(host folder, read-only) of a path in the pod, or None for a folder above a mount."""
    path = path.rstrip("/") or "/"
    for mp, (d, ro) in mounts.items():
        if path == mp or path.startswith(mp + "/"):
            return os.path.join(d, os.path.relpath(path, mp)), ro
    return None


def copy_tree(src, dst):
    os.makedirs(dst, exist_ok=True)
    for entry in sorted(os.listdir(src)):
        s, d = os.path.join(src, entry), os.path.join(dst, entry)
        if os.path.islink(s):
            print(f'warning: skipping symlink: "{d}" -> "{os.readlink(s)}"', file=sys.stderr)
        elif os.path.isdir(s):
            copy_tree(s, d)
        else:
            shutil.copyfile(s, d)
            os.chmod(d, os.stat(s).st_mode & 0o7777)


def main():
    contexts, args = sys.argv[1], sys.argv[2:]
    import json
    with open(contexts) as f:
        states = json.load(f)
    ctx, container = "", None
    rest = []
    i = 0
    while i < len(args):
        if args[i] == "--context":
            ctx, i = args[i + 1], i + 2
        elif args[i] == "-c":
            container, i = args[i + 1], i + 2
        else:
            rest.append(args[i])
            i += 1
    if len(rest) != 3 or rest[0] != "cp" or not container:
        fail(f"fake kubectl: unexpected arguments {args}")
    if ctx not in states:
        fail(f'error: context "{ctx}" does not exist')
    src, dst = rest[1], rest[2]
    if ":" in src:
        (ns, pod), path = src.split(":", 1)[0].split("/", 1), src.split(":", 1)[1]
        at = where(pod_fs(states[ctx], ns, pod, container), path)
        if not at or not os.path.isdir(at[0]):
            fail(f"tar: removing leading '/' from member names\nerror: {path}: no such file or directory")
        copy_tree(at[0], dst)
    elif ":" in dst:
        (ns, pod), path = dst.split(":", 1)[0].split("/", 1), dst.split(":", 1)[1]
        mounts = pod_fs(states[ctx], ns, pod, container)
        inside = path.rstrip("/") + "/" + os.path.basename(src.rstrip("/"))
        at = where(mounts, inside)
        if not at:
            fail(f"tar: can't create directory '{inside}': Read-only file system")
        if at[1]:
            fail(f"tar: can't open '{inside}': Read-only file system\ncommand terminated with exit code 1")
        copy_tree(src, at[0])
    else:
        fail("error: one of src or dest must be a remote file specification")


main()
