"""The Azure Arc data services of the API server stand-in (kube_standin.py), served when
its state says "arcdata_api": true.

- The resources: every CustomResourceDefinition of the Arc data services' own file
  (tests/fixtures/arc-sql-mi/azure_arc-custom-resource-definitions.yaml), each served
  version in discovery as kube-apiserver derives it from a CRD (plural, singular, kind,
  shortNames, scope, the verbs of a custom resource, `<plural>/status`), the groups'
  versions in kube-apiserver's order (the first one preferred). Their conversion strategy
  is None: an object is one object whatever version it was written or is read in.
- The data controller's handling of a SqlManagedInstanceRestoreTask (point-in-time
  restore from the instance's built-in backups, to a new database of the same instance),
  one step per read of the API:
  a new task is Waiting; then it is checked: Failed with a message when the source
  instance is not in the task's namespace, keeps no backups (retention 0), the
  destination is another instance, the instance has no full backup of the source
  database, the restore point is outside the window, or the destination database exists;
  else a dry run is Completed ("Dry run succeeded") and a real one Restoring, then
  Completed with the database created on the instance. Each checked status carries
  earliestRestoreTime and latestRestoreTime.
- The window comes from the backups the instance took itself (not copy-only, in its
  /var/opt/mssql/backups/) as its msdb lists them (the SQL Server stand-in's state
  folder of the instance, state "arcdata_sql": {"<ns>/<instance>": DIR}): from the oldest
  full, but not beyond the instance's retention (spec.backup.retentionPeriodInDays,
  default 7) before the newest backup, to that newest backup. Outside it the message is
  the one a real cluster gives (`kubectl describe sqlmirestoretask` of a real Arc SQL MI:
  `'…' is outside the range of available backups from '…' to '…' (Parameter
  'RestoreTime')`, times with seven decimals there and six in the status).

`s` below is the stand-in module: its object store (select, find, touch, now).
"""
import datetime as dt, json, os, re

import yaml

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "tests", "fixtures", "arc-sql-mi",
                   "azure_arc-custom-resource-definitions.yaml")
_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
TASKS = "tasks.sql.arcdata.microsoft.com"


def _priority(version):
    """kube-apiserver's version order: GA before beta before alpha, higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    return ({None: 0, "beta": 1, "alpha": 2}[m[2]], -int(m[1]), -int(m[3] or 0), version)


def _load():
    with open(FIX) as f:
        crds = [c for c in yaml.safe_load_all(f) if c and c.get("kind") == "CustomResourceDefinition"]
    docs, versions = {}, {}
    for c in crds:
        spec, names = c["spec"], c["spec"]["names"]
        ns = spec["scope"] == "Namespaced"
        for v in (v for v in spec["versions"] if v.get("served")):
            gv = f'{spec["group"]}/{v["name"]}'
            doc = docs.setdefault(gv, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": []})
            doc["resources"].append({"name": names["plural"], "singularName": names.get("singular", names["kind"].lower()),
                                     "namespaced": ns, "kind": names["kind"], "verbs": _VERBS,
                                     **({"shortNames": names["shortNames"]} if names.get("shortNames") else {})})
            if "status" in v.get("subresources", {}):
                doc["resources"].append({"name": names["plural"] + "/status", "singularName": "", "namespaced": ns,
                                         "kind": names["kind"], "verbs": ["get", "patch", "update"]})
            versions.setdefault(spec["group"], set()).add(v["name"])
    groups = []
    for g, vs in versions.items():
        entries = [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(vs, key=_priority)]
        groups.append({"name": g, "versions": entries, "preferredVersion": entries[0]})
    return docs, groups


DOCS, GROUPS = _load()


def _msdb(st, ns, instance, table):
    d = (st.get("arcdata_sql") or {}).get(f"{ns}/{instance}")
    if not d:
        return None
    with open(os.path.join(d, table)) as f:
        return json.load(f)


def _at(text):
    """A moment of msdb (`2026-12-05T11:48:56.123`, UTC here) or of a task (`…Z`, or
    with an offset), as a naive UTC time."""
    try:
        t = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _shown(t, digits):
    """`2026-12-05T11:54:20.511000Z` (six decimals) or with a seventh, always 0."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0" * (digits - 6) + "Z"


def _window(st, ns, instance, database, days):
    media = {m.get("media_set_id"): str(m.get("physical_device_name", "")) for m in _msdb(st, ns, instance, "backupmediafamily.json") or []}
    rows = [r for r in _msdb(st, ns, instance, "backupset.json") or []
            if str(r.get("database_name", "")).lower() == database.lower() and not r.get("is_copy_only")
            and media.get(r.get("media_set_id"), "").startswith("/var/opt/mssql/backups/") and _at(r.get("backup_finish_date"))]
    fulls = [_at(r["backup_finish_date"]) for r in rows if r.get("type") == "D"]
    if not fulls:
        return None
    last = max(_at(r["backup_finish_date"]) for r in rows)
    return max(min(fulls), last - dt.timedelta(days=days)), last


def _database(st, ns, instance, name):
    return next((d for d in _msdb(st, ns, instance, "databases.json") or [] if str(d.get("name", "")).lower() == name.lower()), None)


def _create_database(st, ns, instance, name, like):
    """What the restore leaves on the instance: the new database, ONLINE."""
    d = st["arcdata_sql"][f"{ns}/{instance}"]
    path = os.path.join(d, "databases.json")
    with open(path) as f:
        rows = json.load(f)
    rows.append(dict(like, name=name, database_id=max([r.get("database_id", 4) for r in rows] + [4]) + 1, state_desc="ONLINE",
                     group_database_id=None, create_date=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds")))
    with open(path + ".tmp", "w") as f:
        json.dump(rows, f)
    os.replace(path + ".tmp", path)


def _check(st, s, task):
    """The outcome of checking `task`: (state, message, window or None)."""
    m, spec = s.md(task), task.get("spec") or {}
    ns, src, dst = m["namespace"], spec.get("source") or {}, spec.get("destination") or {}
    name, db, new = str(src.get("name", "")), str(src.get("database", "")), str(dst.get("database", ""))
    mi = s.find(st, "sql.arcdata.microsoft.com/v1", "SqlManagedInstance", ns, name)
    if not mi:
        return "Failed", f"SqlManagedInstance '{name}' not found in namespace '{ns}'", None
    days = ((mi.get("spec") or {}).get("backup") or {}).get("retentionPeriodInDays", 7)
    if days == 0:
        return "Failed", f"Point in time restore is not available: SqlManagedInstance '{name}' keeps no backups (retentionPeriodInDays is 0)", None
    if dst.get("name") != name:
        return "Failed", f"The destination instance '{dst.get('name', '')}' is not the source instance '{name}': point-in-time restore is only supported to the same instance", None
    window = _window(st, ns, name, db, days) if _database(st, ns, name, db) else None
    if not window:
        return "Failed", f"No backups were found for database '{db}' on instance '{name}'", None
    point = _at(spec.get("restorePoint", ""))
    if point is None or not window[0] <= point <= window[1]:
        return "Failed", (f"'{_shown(point, 7) if point else spec.get('restorePoint', '')}' is outside the range of available backups from "
                          f"'{_shown(window[0], 7)}' to '{_shown(window[1], 7)}' (Parameter 'RestoreTime')"), window
    if not new or _database(st, ns, name, new):
        return "Failed", f"Database '{new}' already exists on instance '{name}'", window
    if spec.get("dryRun") is True:
        return "Completed", "Dry run succeeded", window
    return "Restoring", f"Restoring database '{new}' from the backups of '{db}'", window


def controller(st, s):
    """The data controller's pass over the restore tasks (see above)."""
    for task in s.select(st, f"{TASKS}/v1", "SqlManagedInstanceRestoreTask"):
        status = task.get("status") or {}
        if s.md(task).get("deletionTimestamp") or status.get("state") in ("Completed", "Failed"):
            continue
        if not status.get("state"):
            new = {"state": "Waiting"}
        elif status["state"] == "Waiting":
            state, message, window = _check(st, s, task)
            new = {"state": state, "message": message}
            if window:
                new.update(earliestRestoreTime=_shown(window[0], 6), latestRestoreTime=_shown(window[1], 6))
        else:  # Restoring: done, unless the source database went meanwhile
            spec = task["spec"]
            ns, name = s.md(task)["namespace"], spec["source"]["name"]
            source = _database(st, ns, name, spec["source"]["database"])
            if source:
                _create_database(st, ns, name, spec["destination"]["database"], source)
                new = dict(status, state="Completed", message=f"Database '{spec['destination']['database']}' restored")
            else:
                new = dict(status, state="Failed", message=f"Database '{spec['source']['database']}' was not found on instance '{name}'")
        task["status"] = dict(new, lastUpdateTime=_shown(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), 6))
        s.touch(st, task)
