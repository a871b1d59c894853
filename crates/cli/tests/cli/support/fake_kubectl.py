#!/usr/bin/env python3
"""A stand-in for kubectl's `cp` and `exec … -- tar`, against the API server stand-ins
(kube_standin.py).

    fake_kubectl.py CONTEXTS.json cp SRC DST -c CONTAINER [--context NAME]
    fake_kubectl.py CONTEXTS.json exec POD -n NS -c CONTAINER [--context NAME] -- COMMAND…

CONTEXTS.json maps context names (and "" for the current one) to stand-in state folders.
As kubectl does, the pod must exist and run and have the container. A pod's file system
is its volume mounts (a claim's volume: kube_volumes.volume_dir; an emptyDir: a folder of
its own) and the folders above them; a read-only mount cannot be written.

- `cp <ns>/<pod>:<file> <local file>` and `cp <local file> <ns>/<pod>:<file>` copy one
  file (into the pod: the parent must be a folder there);
- `exec …` writes `<ns>/<pod>/<container>: <argument list as JSON>` to exec.log in the
  state folder; `false` fails; `mkdir -p DIR`, `rm -f FILE` and `stat -c '%F %s' -- PATH` do
  what they do in the pod (stat prints the kind and the size; a missing path fails); anything else but
  tar succeeds;
- `exec … -- tar -c -f <archive> -C <dir> .` and `tar -x -f <archive> -C <dir>
  [--numeric-owner]` run tar in the pod: owners (numerically), modes, symbolic and hard
  links are kept; an entry that would land outside `<dir>` is refused, as tar refuses it.
"""
import json, os, shutil, sys, tarfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube_volumes import find, read_state, volume_dir  # noqa: E402


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
        if "emptyDir" in v:
            d = os.path.join(state_dir, "scratch", ns, name, v["name"])
        else:
            claim = find(st, "PersistentVolumeClaim", ns, v["persistentVolumeClaim"]["claimName"])
            d = volume_dir(state_dir, claim["spec"]["volumeName"])
        os.makedirs(d, exist_ok=True)
        mounts[m["mountPath"].rstrip("/")] = (d, m.get("readOnly", False))
    return mounts


def where(mounts, path, write=False):
    """The host path of a path in the pod (refused where the pod cannot reach or write)."""
    path = os.path.normpath(path)
    for mp, (d, ro) in mounts.items():
        if path == mp or path.startswith(mp + "/"):
            if write and ro:
                fail(f"tar: can't open '{path}': Read-only file system\ncommand terminated with exit code 1")
            return os.path.normpath(os.path.join(d, os.path.relpath(path, mp)))
    fail(f"tar: {path}: Cannot open: No such file or directory\ncommand terminated with exit code 2")


def tar_in_pod(mounts, args):
    archive = directory = None
    mode, i = None, 0
    while i < len(args):
        a = args[i]
        if a in ("-c", "-x"):
            mode = a
        elif a == "-f":
            archive, i = args[i + 1], i + 1
        elif a == "-C":
            directory, i = args[i + 1], i + 1
        elif a not in (".", "--numeric-owner"):
            fail(f"tar: unrecognized option '{a}'")
        i += 1
    if mode == "-c":
        src, out = where(mounts, directory), where(mounts, archive, write=True)
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
            t.add(src, arcname=".", recursive=True)
    elif mode == "-x":
        src, dst = where(mounts, archive), where(mounts, directory, write=True)
        with tarfile.open(src) as t:
            for m in t.getmembers():
                target = os.path.normpath(os.path.join(dst, m.name))
                if os.path.isabs(m.name) or not (target == dst or target.startswith(dst + "/")):
                    fail(f"tar: {m.name}: Member name contains '..'")
                link = os.path.normpath(os.path.join(dst, m.linkname))
                if m.islnk() and not (link == dst or link.startswith(dst + "/")):
                    fail(f"tar: {m.linkname}: hard link target outside the folder")
            try:  # owners and modes as the archive says (Python 3.14's default filter drops them)
                t.extractall(dst, numeric_owner=True, filter="fully_trusted")
            except TypeError:  # before the filters (Python < 3.11.4)
                t.extractall(dst, numeric_owner=True)
    else:
        fail("tar: you must specify one of the '-Acdtrux' options")


def main():
    contexts, args = sys.argv[1], sys.argv[2:]
    with open(contexts) as f:
        states = json.load(f)
    ctx, container, ns, rest, cmd = "", None, None, [], []
    if "--" in args:
        args, cmd = args[: args.index("--")], args[args.index("--") + 1:]
    i = 0
    while i < len(args):
        if args[i] in ("--context", "-c", "-n"):
            v = args[i + 1]
            if args[i] == "--context":
                ctx = v
            elif args[i] == "-c":
                container = v
            else:
                ns = v
            i += 2
        else:
            rest.append(args[i])
            i += 1
    if ctx not in states:
        fail(f'error: context "{ctx}" does not exist')
    if not container:
        fail(f"fake kubectl: no -c in {args}")
    if rest[:1] == ["exec"] and len(rest) == 2 and ns and cmd:
        mounts = pod_fs(states[ctx], ns, rest[1], container)
        with open(os.path.join(states[ctx], "exec.log"), "a") as log:
            log.write(f"{ns}/{rest[1]}/{container}: {json.dumps(cmd)}\n")
        if cmd[0] == "tar":
            tar_in_pod(mounts, cmd[1:])
        elif cmd[0] == "false":
            fail("command terminated with exit code 1")
        elif cmd[0] == "sleep" and len(cmd) == 2:
            time.sleep(float(cmd[1]))
        elif cmd[:2] == ["mkdir", "-p"] and len(cmd) == 3:
            os.makedirs(where(mounts, cmd[2], write=True), exist_ok=True)
        elif cmd[:2] == ["rm", "-f"] and len(cmd) == 3:
            path = where(mounts, cmd[2], write=True)
            if os.path.isfile(path):
                os.remove(path)
        elif cmd[:4] == ["stat", "-c", "%F %s", "--"] and len(cmd) == 5:
            path = where(mounts, cmd[4])
            if not os.path.lexists(path):
                fail(f"stat: cannot statx '{cmd[4]}': No such file or directory\ncommand terminated with exit code 1")
            kind = ("symbolic link" if os.path.islink(path) else "directory" if os.path.isdir(path)
                    else "regular empty file" if os.path.getsize(path) == 0 else "regular file")
            print(f"{kind} {os.lstat(path).st_size}")
    elif rest[:1] == ["cp"] and len(rest) == 3:
        src, dst = rest[1], rest[2]
        if ":" in src:
            (ns, pod), path = src.split(":", 1)[0].split("/", 1), src.split(":", 1)[1]
            shutil.copyfile(where(pod_fs(states[ctx], ns, pod, container), path), dst)
        elif ":" in dst:
            (ns, pod), path = dst.split(":", 1)[0].split("/", 1), dst.split(":", 1)[1]
            shutil.copyfile(src, where(pod_fs(states[ctx], ns, pod, container), path, write=True))
        else:
            fail("error: one of src or dest must be a remote file specification")
    else:
        fail(f"fake kubectl: unexpected arguments {sys.argv[2:]}")


main()
