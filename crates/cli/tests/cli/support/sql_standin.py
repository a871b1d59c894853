#!/usr/bin/env python3
"""A stand-in for Microsoft SQL Server, for the SQL Server plugin's tests (tiberius: T-SQL over TDS with TLS).

pysqlbridge (PyPI 2.1.3) is used as a library: a real TDS server (TLS for the whole session when the client asks
ENCRYPT_ON/REQ, SQL logins, batches, sp_executesql RPCs, a real SELECT engine). This adds what a backup product
reads and sends: the server catalog and msdb history, and BACKUP/RESTORE behaving as SQL Server's do.

Usage: sql_standin.py --state DIR --cert PEM --key PEM --user LOGIN --password-env VAR --port-file F [--keytab KT] [--root R]
(listens on 127.0.0.1, a free port, written to F through a temp file and a rename once listening). With --root, the
instance runs in a container whose file system is R: BACKUP TO DISK = '/x/y.bak' writes R/x/y.bak (msdb says /x/y.bak).
With --entra PRINCIPAL, Microsoft Entra sign-ins (TDS FEDAUTH security tokens) are taken as PRINCIPAL (see entra()).
With --keytab, Windows authentication is Kerberos checked by MIT's GSS-API (python-gssapi) with the service's keys in KT
(pysqlbridge's acceptor is pywin32's SSPI, Windows only); each principal signed in is a line of DIR/logins.jsonl.
With --ntlm-users F, Windows authentication is NTLM checked by pyspnego's acceptor against the accounts of F
(DOMAIN:user:password lines, the domain's account database); each is a line of DIR/logins.jsonl too.
DIR/{databases,master_files,backupset,backupmediafamily}.json serve sys.databases, sys.master_files,
msdb.dbo.backupset and msdb.dbo.backupmediafamily (re-read on every query; BACKUP/RESTORE append to them).
DIR/statements.jsonl: one JSON line per batch or RPC {at, kind, proc, sql, params, error}.
DIR/server_properties.json: SERVERPROPERTY's answers (InstanceDefaultDataPath …), when a test writes it.
A database in an availability group (group_database_id set) names this instance's replica_id, its replica_role (PRIMARY,
SECONDARY, RESOLVING: sys.dm_hadr_availability_replica_states) and replica_preferred (what
sys.fn_hadr_backup_is_preferred_replica answers; 1 outside a group); on a secondary, BACKUP allows what SQL Server does.
DIR/standin.json: what SQL Server keeps inside itself (restoring databases; where a chain restarted); a test's
"backup_seconds": how long each BACKUP takes (DIR/working appears when one starts), during which an Attention from the
client stops it (nothing written); "huge_value": {"in": REGEX, "chars": N} makes a hostile instance of it: a batch
matching REGEX is answered with one nvarchar(max) value of N characters.
"""
import argparse, dataclasses, datetime as dt, decimal, hashlib, json, logging, os, re, select, socket, sys, threading, time, uuid
from dataclasses import dataclass

from pysqlbridge import auth
from pysqlbridge.catalog import Catalog
from pysqlbridge.certificate import load as load_certificate
from pysqlbridge.logins import Login, LoginStore
from pysqlbridge import server as bridge_server
from pysqlbridge.server import BridgeServer
from pysqlbridge.source import Table
from pysqlbridge.tds import connection as tds_connection, rpc
from pysqlbridge.tds.result import Bit, Column, DateTime, Integer, NVarChar, Query, QueryError, QueryResult, UniqueIdentifier

STATE, USER, SERVER, LOCK, WHO, ROOT = ".", "sa", socket.gethostname(), threading.RLock(), threading.local(), None

@dataclass(frozen=True)
class Numeric(Integer):
    """numeric(p,0): NUMERICN on the wire (sign byte, little-endian magnitude). pysqlbridge has no decimal
    type; as an Integer subclass its engine compares, sorts, joins and MAXes the values as whole numbers."""
    width: int = 8
    precision: int = 25
    def size(self):  # SQL Server's storage size for the precision
        return 5 if self.precision < 10 else 9 if self.precision < 20 else 13 if self.precision < 29 else 17
    def type_info(self):
        return bytes([0x6C, self.size(), self.precision, 0])
    def encode(self, v):
        return b"\x00" if v is None else bytes([self.size(), int(v) >= 0]) + abs(int(v)).to_bytes(self.size() - 1, "little")

LSN, BYTES, GUID, DATE, BIT, I1, I2, I4, I8 = Numeric(), Numeric(precision=20), UniqueIdentifier(), DateTime(), Bit(), *map(Integer, (1, 2, 4, 8))
def S(n=128): return NVarChar(n)
# The four views under the names a client writes. pysqlbridge drops a name's database part, so
# msdb.dbo.backupset reaches Catalog.get as ('dbo', 'backupset'); sys.* would reach its own built-ins.
VIEWS = {
    ("sys", "databases"): ("databases.json", dict(name=S(), database_id=I4, recovery_model_desc=S(60), state_desc=S(60),
                           compatibility_level=I1, is_encrypted=BIT, group_database_id=GUID, replica_id=GUID, create_date=DATE)),
    # this instance's replica of each group its databases are in: derived from their rows (see view)
    ("sys", "dm_hadr_availability_replica_states"): ("databases.json", dict(replica_id=GUID, is_local=BIT, role_desc=S(60))),
    ("sys", "master_files"): ("master_files.json", dict(database_id=I4, file_id=I4, type=I1, type_desc=S(60), name=S(),
                              physical_name=S(260), size=I4)),
    ("dbo", "backupset"): ("backupset.json", dict(
        backup_set_id=I4, backup_set_uuid=GUID, media_set_id=I4, database_name=S(), type=S(1), is_copy_only=BIT, first_lsn=LSN,
        last_lsn=LSN, checkpoint_lsn=LSN, database_backup_lsn=LSN, differential_base_lsn=LSN, first_recovery_fork_guid=GUID,
        last_recovery_fork_guid=GUID, backup_start_date=DATE, backup_finish_date=DATE, backup_size=BYTES, has_backup_checksums=BIT,
        server_name=S(), user_name=S(), recovery_model=S(60), position=I2, name=S(), description=S(255))),
    ("dbo", "backupmediafamily"): ("backupmediafamily.json", dict(media_set_id=I4, family_sequence_number=I1,
                                   physical_device_name=S(260), device_type=I1)),
}
MSG = {  # sys.messages text of every error raised here (all severity 16), followed by 3013 where SQL Server sends it
    911: "Database '{0}' does not exist. Make sure that the name is entered correctly.",
    3059: "This BACKUP or RESTORE command is not supported on a database mirror or secondary replica.",
    927: "Database '{0}' cannot be opened. It is in the middle of a restore.",
    942: "Database '{0}' cannot be opened because it is offline.",
    3035: 'Cannot perform a differential backup for database "{0}", because a current database backup does not exist. Perform a full database backup by reissuing BACKUP DATABASE, omitting the WITH DIFFERENTIAL option.',
    3117: "The log or differential backup cannot be restored because no files are ready to rollforward.",
    3118: 'The database "{0}" does not exist. RESTORE can only create a database when restoring either a full backup or a file backup of the primary file.',
    3119: "Problems were identified while planning for the RESTORE statement. Previous messages provide details.",
    3136: "This differential backup cannot be restored because the database has not been restored to the correct earlier state.",
    3153: "The database is already fully recovered.",
    3154: "The backup set holds a backup of a database other than the existing '{0}' database.",
    3156: "File '{0}' cannot be restored to '{1}'. Use WITH MOVE to identify a valid location for the file.",
    3159: 'The tail of the log for the database "{0}" has not been backed up. Use BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log.',
    3183: 'RESTORE detected an error on page (1:{1}) in database "{0}" as read from the backup set.',
    3201: "Cannot open backup device '{0}'. Operating system error {1}.",
    3234: "Logical file '{0}' is not part of database '{1}'. Use RESTORE FILELISTONLY to list the logical file names.",
    3241: "The media family on device '{0}' is incorrectly formed. SQL Server cannot process this media family.",
    3246: "The media family on device '{0}' is marked as nonappendable. Reissue the statement using the INIT option to overwrite the media.",
    4208: "The statement BACKUP LOG is not allowed while the recovery model is SIMPLE. Use BACKUP DATABASE or change the recovery model using ALTER DATABASE.",
    4214: "BACKUP LOG cannot be performed because there is no current database backup.",
    4305: "The log in this backup set begins at LSN {0}, which is too recent to apply to the database. An earlier log backup that includes LSN {1} can be restored.",
    4326: "The log in this backup set terminates at LSN {0}, which is too early to apply to the database. A more recent log backup that includes LSN {1} can be restored.",
    4335: "The specified STOPAT time is too early. All or part of the database is already rolled forward beyond that point.",
    5133: 'Directory lookup for the file "{0}" failed with the operating system error 2(The system cannot find the file specified.).',
}

def fail(number, verb, *args, also=()):
    """Raise SQL Server's error (a real ERROR token: number, severity 16, text), then what follows it."""
    after = [QueryError(MSG[n].format(*a), number=n) for n, a in also] + [QueryError(f"{verb} is terminating abnormally.", number=3013)]
    raise QueryError(MSG[number].format(*args), number=number, following=tuple(after))

def on_disk(path):
    """Where a path the instance is given lies on this machine: under --root (the instance's container) when given."""
    return os.path.join(ROOT, os.path.abspath(path).lstrip("/")) if ROOT else os.path.abspath(path)

def load(name, default=None):
    path = os.path.join(STATE, name)
    return json.loads(open(path, encoding="utf-8-sig").read()) if os.path.exists(path) else [] if default is None else default

def save(name, value):
    path = os.path.join(STATE, name)
    open(path + ".tmp", "w").write(json.dumps(value, indent=1))
    os.replace(path + ".tmp", path)  # readers see the old file or the new one, never half of one

def moment(v):  # ISO 8601 text ('Z'/offsets taken to UTC), .NET's "/Date(ms)/" or a datetime -> naive datetime
    if isinstance(v, str) and re.fullmatch(r"/Date\((-?\d+)\)/", v.strip()):
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=int(v.strip()[6:-2]))
    v = dt.datetime.fromisoformat(v.strip()) if isinstance(v, str) else v
    return v.astimezone(dt.timezone.utc).replace(tzinfo=None) if v and v.tzinfo else v

def typed(v, kind):
    if v is None or isinstance(kind, NVarChar): return None if v is None else str(v)
    return bool(v) if isinstance(kind, Bit) else int(v) if isinstance(kind, Integer) else moment(v) if isinstance(kind, DateTime) else str(v).upper()

def view(key):
    file, kinds = VIEWS[key]
    rows, kinds = load(file), dict(kinds)
    if key == ("sys", "databases"):  # what fn_hadr_backup_is_preferred_replica answers for each (see answer)
        rows = [dict(r, hadr_backup_preferred=r.get("group_database_id") is None or bool(r.get("replica_preferred"))) for r in rows]
        kinds["hadr_backup_preferred"] = BIT
    if key == ("sys", "dm_hadr_availability_replica_states"):
        rows = list({r["replica_id"]: {"replica_id": r["replica_id"], "is_local": True, "role_desc": r.get("replica_role")}
                     for r in rows if r.get("group_database_id") and r.get("replica_id")}.values())
    for r in rows:  # keys a test adds beyond the documented columns are served too
        for k, v in r.items():
            if v is not None and k not in kinds:
                kinds[k] = BIT if isinstance(v, bool) else Numeric(precision=38) if isinstance(v, int) else S()
    for n, k in kinds.items():  # text columns as wide as what they hold
        if isinstance(k, NVarChar):
            longest = max([len(str(r.get(n) or "")) for r in rows] + [k.max_chars])
            kinds[n] = NVarChar(None if longest > 4000 else longest)
    return Table(key[1], [Column(n, k) for n, k in kinds.items()], [[typed(r.get(n), k) for n, k in kinds.items()] for r in rows])

class StandInCatalog(Catalog):  # the four views first; every other name is pysqlbridge's
    def get(self, name, schema=None, parameters=None):
        key = ((schema or "").lower(), name.lower())
        return view(key) if key in VIEWS else super().get(name, schema, parameters)
    def _about(self, query):  # DB_NAME() is the database the login reached, as on SQL Server
        return dict(super()._about(query), database="master")

CATALOG, _read_value = StandInCatalog(), rpc._read_value

def read_value(payload, at, type_id):
    """RPC parameter values pysqlbridge misreads as raw integers/bytes: decimal/numeric (tiberius sends an LSN as
    numeric(p,0)) and uniqueidentifier. (Date parameters need tiberius's chrono/time feature, which the plugin lacks.)"""
    if type_id in (0x6A, 0x6C):  # DECIMALN/NUMERICN: size, precision, scale, length, sign, magnitude
        scale, n = payload[at + 2], payload[at + 3]
        mag = int.from_bytes(payload[at + 5:at + 4 + n], "little") * (1 if n and payload[at + 4] else -1)
        return (None if not n else mag if not scale else decimal.Decimal(mag).scaleb(-scale)), at + 4 + n
    if type_id == 0x24:  # GUIDN: size, length, 16 bytes in the mixed-endian form
        return (str(uuid.UUID(bytes_le=bytes(payload[at + 2:at + 18]))).upper() if payload[at + 1] else None), at + 2 + payload[at + 1]
    return _read_value(payload, at, type_id)

def marking(fn, kind):  # remember whether the request being answered came as a batch or as an RPC
    return lambda *a, **k: (setattr(WHO, "kind", kind), fn(*a, **k))[1]

rpc._read_value = read_value
tds_connection.parse_rpc = marking(tds_connection.parse_rpc, "rpc")
tds_connection.parse_sql_batch = marking(tds_connection.parse_sql_batch, "batch")

TOKEN = re.compile(r"\s+|--[^\n]*|/\*.*?\*/|(N?'(?:[^']|'')*')|(\[(?:[^\]]|\]\])*\])|(@@?\w+)|([\w$#]+)|(.)", re.S | re.I)

def tokens(sql):  # (kind, text, start, end)
    return [(("str", "br", "var", "word", "punct")[m.lastindex - 1], m.group(m.lastindex), m.start(), m.end())
            for m in TOKEN.finditer(sql) if m.lastindex]

def value(tok, params):
    kind, text = tok[:2]
    if kind == "var":
        found = [v for k, v in params.items() if k.lower() == text.lower()]
        if not found: raise QueryError(f'Must declare the scalar variable "{text}".', number=137, severity=15)
        return found[0]
    return text[text.index("'") + 1:-1].replace("''", "'") if kind == "str" else text[1:-1].replace("]]", "]") if kind == "br" else text

def parse(toks, params):
    """BACKUP|RESTORE {DATABASE|LOG name | HEADERONLY|FILELISTONLY|VERIFYONLY} [TO|FROM DISK = x, ...] [WITH opt, ...]"""
    words = [t[1].upper() if t[0] == "word" else t[1] for t in toks]
    p, i = {"verb": words[0], "kind": words[1], "name": None, "disks": [], "opts": {}, "moves": []}, 2
    try:
        if p["kind"] in ("DATABASE", "LOG"):
            p["name"], i = value(toks[2], params), 3
        if i < len(toks) and words[i] in ("TO", "FROM"):
            while i < len(toks) and words[i] in ("TO", "FROM", ","):  # devices come before WITH
                assert words[i + 2] == "="
                p["disks"].append((words[i + 1], value(toks[i + 3], params)))  # DISK|URL|TAPE = value
                i += 4
        while i < len(toks) and words[i] in ("WITH", ","):
            key, i = words[i + 1], i + 2
            if key == "MOVE":  # MOVE 'logical' TO 'physical'
                p["moves"].append((value(toks[i], params), value(toks[i + 2], params)))
                i += 3
            elif i < len(toks) and words[i] == "=":
                p["opts"][key], i = value(toks[i + 1], params), i + 2
            else:
                p["opts"][key], depth = True, 0
                while i < len(toks) and (depth or words[i] != ","):  # skip e.g. ENCRYPTION (...)
                    depth, i = depth + (words[i] == "(") - (words[i] == ")"), i + 1
        assert i == len(toks) and (p["disks"] or p["verb"] == "RESTORE")
        if p["disks"] and [d[0] for d in p["disks"]] != ["DISK"]:
            raise QueryError("sql_standin: only a single DISK = ... device is supported", number=50000)
    except (AssertionError, IndexError):
        raise QueryError(f"Incorrect syntax near '{toks[min(i, len(toks) - 1)][1]}'.", number=102, severity=15)
    return p

def find(rows, key, name):
    return next((r for r in rows if str(r.get(key, "")).lower() == str(name).lower()), None)

def chain(name, db):
    """Where the database's backup chain stands: recomputed from msdb history on every BACKUP (so a test can
    seed backupset.json), starting from where a RESTORE ... WITH RECOVERY left it, if one did."""
    c = dict(load("standin.json", {}).get("chains", {}).get(name.lower()) or {
        "fork": str(uuid.uuid5(uuid.NAMESPACE_URL, "fork/" + name.lower())).upper(), "base": None, "log_from": None,
        "log_from_at": None, "after": 0, "head": (30 + int(db.get("database_id") or 5)) * 10 ** 15 + 100 * 10 ** 5 + 1}, fulls=0, logs=0)
    rows = [r for r in load("backupset.json") if str(r.get("database_name")).lower() == name.lower() and int(r.get("backup_set_id") or 0) > c["after"]]
    for r in sorted(rows, key=lambda r: int(r.get("backup_set_id") or 0)):
        copy, first, last = bool(r.get("is_copy_only")), int(r.get("first_lsn") or 0), int(r.get("last_lsn") or 0)
        c["head"], c["fork"] = max(c["head"], last), str(r.get("last_recovery_fork_guid") or c["fork"]).upper()
        if r["type"] == "D":
            c["fulls"] += 1
            if not copy:  # a copy-only full is never a differential base
                c["base"] = {"lsn": int(r["checkpoint_lsn"]), "uuid": r.get("backup_set_uuid")}
            if c["log_from"] is None:  # the first full starts the log chain
                c["log_from"], c["log_from_at"] = first, r.get("backup_start_date")
        elif r["type"] == "L" and not copy:  # a copy-only log does not truncate: the next log starts where this one did
            c["log_from"], c["log_from_at"], c["logs"] = last, r.get("backup_finish_date"), c["logs"] + 1
    return c

def payload(name, s, fulls):
    """Deterministic pseudo-random content. A full is 48 blocks of 8 KiB, the k-th full of a database rewriting
    5 consecutive blocks of the one before (90% shared, so a deduplicating engine sees repeats); differentials
    and logs are fresh content derived from their LSN range."""
    key, shake = name.lower().encode(), lambda seed: hashlib.shake_256(seed).digest(8192)
    if s["type"] != "D":
        return b"".join(shake(b"%s|%s|%d|%d|%d" % (key, s["type"].encode(), s["first_lsn"], s["last_lsn"], i)) for i in range(12 if s["type"] == "I" else 16))
    touched = lambda i: next((k for k in range(fulls, 0, -1) if (i - 5 * k) % 48 < 5), 0)
    return b"".join(shake(b"%s|D|%d|%d" % (key, i, touched(i))) for i in range(48))

CLOCK = [dt.datetime(2000, 1, 1)]
def now():  # UTC, strictly increasing so that successive backups have distinct times
    CLOCK[0] = max(dt.datetime.utcnow(), CLOCK[0] + dt.timedelta(milliseconds=10))
    return CLOCK[0]
def iso(t): return t.isoformat(timespec="milliseconds")

def backup(p):
    verb, log, opts = f"BACKUP {p['kind']}", p["kind"] == "LOG", p["opts"]
    db = find(load("databases.json"), "name", p["name"])
    if not db: fail(911, verb, p["name"])
    name, state, recovery = db["name"], str(db.get("state_desc") or "ONLINE").upper(), str(db.get("recovery_model_desc") or "FULL").upper()
    if state in ("RESTORING", "OFFLINE"): fail(927 if state == "RESTORING" else 942, verb, name)
    if log and recovery == "SIMPLE": fail(4208, verb)
    c, diff, copy = chain(name, db), "DIFFERENTIAL" in opts, "COPY_ONLY" in opts
    if db.get("group_database_id") is not None and str(db.get("replica_role")).upper() == "SECONDARY":
        # a secondary replica: COPY_ONLY fulls and plain logs only
        if diff or (copy if log else not copy): fail(3059, verb)
    if log and c["log_from"] is None: fail(4214, verb)
    if diff and not c["base"]: fail(3035, verb, name)
    path = str(p["disks"][0][1])
    if not os.path.isdir(os.path.dirname(on_disk(path))): fail(3201, verb, path, "3(The system cannot find the path specified.)")
    if os.path.exists(on_disk(path)) and not {"INIT", "FORMAT"} & set(opts):  # appending a set to existing media is not modelled
        fail(3246, verb, path)
    # LSNs: the log moves on one virtual log file between backups. A log starts where the last non-copy-only
    # log ended (or at the first full); full and differential point at the current base full's checkpoint.
    base, head = (c["base"] or {}).get("lsn", 0), c["head"] + 10 ** 15 + 24 * 10 ** 5
    first = c["log_from"] if log else head
    ckpt, last = (max(first, head - 16 * 10 ** 5), head) if log else (head + 8 * 10 ** 5, head + 48 * 10 ** 5)
    sets, media, start = load("backupset.json"), load("backupmediafamily.json"), now()
    s = {"backup_set_id": max([int(r.get("backup_set_id") or 0) for r in sets] + [0]) + 1, "backup_set_uuid": str(uuid.uuid4()).upper(),
         "media_set_id": max([int(r.get("media_set_id") or 0) for r in sets + media] + [0]) + 1, "database_name": name,
         "type": "L" if log else "I" if diff else "D", "is_copy_only": copy, "first_lsn": first, "last_lsn": last, "checkpoint_lsn": ckpt,
         "database_backup_lsn": base, "differential_base_lsn": base if diff else None, "first_recovery_fork_guid": c["fork"],
         "last_recovery_fork_guid": c["fork"], "backup_start_date": iso(start), "backup_finish_date": iso(now()), "backup_size": 0,
         "has_backup_checksums": "CHECKSUM" in opts, "server_name": SERVER, "user_name": USER, "recovery_model": recovery,
         "position": 1, "name": opts.get("NAME"), "description": opts.get("DESCRIPTION")}
    files = [f for f in load("master_files.json") if f.get("database_id") == db.get("database_id")] or [
        {"file_id": 1, "type": 0, "type_desc": "ROWS", "name": name, "physical_name": f"/var/opt/mssql/data/{name}.mdf", "size": 1024},
        {"file_id": 2, "type": 1, "type_desc": "LOG", "name": name + "_log", "physical_name": f"/var/opt/mssql/data/{name}_log.ldf", "size": 1024}]
    data = payload(name, s, c["fulls"] + 1)
    s["backup_size"] = len(data) + 4096
    header = {"set": s, "files": files, "compatibility_level": db.get("compatibility_level"), "begins_at": c["log_from_at"] if log else None,
              "begins_chain": log and not c["logs"] and not c["after"], "base_uuid": (c["base"] or {}).get("uuid")}
    # The file: a magic line, the JSON header RESTORE reads (the backupset row, the file list), the data, and a
    # SHA-256 of everything before it, which RESTORE checks (a flipped bit anywhere is msg 3183).
    body = b"SQLSTANDIN-BACKUP-1\n" + json.dumps(header).encode() + b"\n" + data
    open(on_disk(path), "wb").write(body + b"\nSHA256:" + hashlib.sha256(body).hexdigest().encode() + b"\n")
    save("backupset.json", sets + [s])
    save("backupmediafamily.json", media + [{"media_set_id": s["media_set_id"], "family_sequence_number": 1, "physical_device_name": path, "device_type": 2}])

def read_media(path, verb, target):
    """The header of the backup set a file holds, once the file is known to be one this stand-in wrote, intact."""
    if not os.path.isfile(on_disk(path)): fail(3201, verb, path, "2(The system cannot find the file specified.)")
    body, _, digest = open(on_disk(path), "rb").read().rpartition(b"\nSHA256:")
    if not body.startswith(b"SQLSTANDIN-BACKUP-1\n"): fail(3241, verb, path)
    try:
        header = json.loads(body.split(b"\n", 2)[1])
    except ValueError:
        header = None
    if header is None or hashlib.sha256(body).hexdigest().encode() != digest.strip():
        fail(3183, verb, header["set"]["database_name"] if header else target, 8 + len(body) // 8192 % 97)
    return header

def cols(spec):  # "Name:kind ..." -> the columns of a RESTORE ...ONLY answer, in the documented order
    kinds = dict(s=S(), l=S(260), c=S(1), i1=I1, i2=I2, i4=I4, i8=I8, d=DATE, n=LSN, z=BYTES, b=BIT, g=GUID)
    return [Column(n, kinds[k]) for n, k in (w.split(":") for w in spec.split())]

HEADER = cols("""BackupName:s BackupDescription:s BackupType:i2 ExpirationDate:d Compressed:i1 Position:i2 DeviceType:i1 UserName:s
    ServerName:s DatabaseName:s DatabaseVersion:i4 DatabaseCreationDate:d BackupSize:z FirstLSN:n LastLSN:n CheckpointLSN:n
    DatabaseBackupLSN:n BackupStartDate:d BackupFinishDate:d SortOrder:i2 CodePage:i2 UnicodeLocaleId:i4 UnicodeComparisonStyle:i4
    CompatibilityLevel:i1 SoftwareVendorId:i4 SoftwareVersionMajor:i4 SoftwareVersionMinor:i4 SoftwareVersionBuild:i4 MachineName:s
    Flags:i4 BindingID:g RecoveryForkID:g Collation:s FamilyGUID:g HasBulkLoggedData:b IsSnapshot:b IsReadOnly:b IsSingleUser:b
    HasBackupChecksums:b IsDamaged:b BeginsLogChain:b HasIncompleteMetaData:b IsForceOffline:b IsCopyOnly:b FirstRecoveryForkID:g
    ForkPointLSN:n RecoveryModel:s DifferentialBaseLSN:n DifferentialBaseGUID:g BackupTypeDescription:s BackupSetGUID:g
    CompressedBackupSize:i8 Containment:i1""")
FILELIST = cols("LogicalName:s PhysicalName:l Type:c FileGroupName:s Size:z MaxSize:z FileId:i8")  # the leading documented columns

def header_row(h):
    s, begins, t = h["set"], bool(h.get("begins_chain")), h["set"]["type"]
    sums, copy, family = bool(s["has_backup_checksums"]), bool(s["is_copy_only"]), str(uuid.uuid5(uuid.NAMESPACE_URL, "family/" + s["database_name"].lower())).upper()
    return [s.get("name"), s.get("description"), {"D": 1, "L": 2, "I": 5}[t], None, 0, 1, 2, s["user_name"], s["server_name"], s["database_name"],
            None, None, s["backup_size"], s["first_lsn"], s["last_lsn"], s["checkpoint_lsn"], s["database_backup_lsn"], moment(s["backup_start_date"]),
            moment(s["backup_finish_date"]), 52, 0, 1033, 196609, h["compatibility_level"], 4608, 17, 0, 1000, s["server_name"],
            16 * sums + 64 * begins + 512 * copy, family, s["last_recovery_fork_guid"], "SQL_Latin1_General_CP1_CI_AS", family, False, False, False,
            False, sums, False, begins, False, False, copy, s["first_recovery_fork_guid"], None, s["recovery_model"], s["differential_base_lsn"],
            h["base_uuid"] if t == "I" else None, {"D": "Database", "L": "Transaction Log", "I": "Database Differential"}[t],
            s["backup_set_uuid"], s["backup_size"], 0]

def recover(name, rs, ext):
    """WITH RECOVERY: the database goes online on a new recovery fork, and its backup chain restarts here."""
    dbs = load("databases.json")
    find(dbs, "name", name)["state_desc"] = "ONLINE"
    save("databases.json", dbs)
    ext.setdefault("chains", {})[name.lower()] = {"fork": str(uuid.uuid4()).upper(), "head": rs["lsn"], "base": rs["base"], "log_from": rs["lsn"],
                                                  "log_from_at": iso(now()), "after": max([int(r.get("backup_set_id") or 0) for r in load("backupset.json")] + [0])}
    del ext["restoring"][name.lower()]

def restore(p):
    kind, opts, name = p["kind"], p["opts"], p["name"]
    verb = {"VERIFYONLY": "VERIFY DATABASE", "FILELISTONLY": "RESTORE FILELIST"}.get(kind, "RESTORE " + kind)
    ext, dbs = load("standin.json", {}), load("databases.json")
    rs, db = ext.setdefault("restoring", {}).get(str(name).lower()), find(dbs, "name", name) if name else None
    if kind in ("DATABASE", "LOG") and not p["disks"]:  # RESTORE DATABASE x WITH RECOVERY
        if rs is None: fail(3153 if db else 3118, verb, name)
        if "NORECOVERY" not in opts:
            recover(db["name"], rs, ext)
        return save("standin.json", ext)
    h = read_media(str(p["disks"][0][1]), verb, name)
    s, files = h["set"], h["files"]
    if kind == "HEADERONLY": return QueryResult(HEADER, [header_row(h)])
    if kind == "FILELISTONLY":
        return QueryResult(FILELIST, [[f["name"], f["physical_name"], "DL"[f.get("type") == 1], None if f.get("type") == 1 else "PRIMARY",
                                       int(f.get("size") or 0) * 8192, 35184372080640, f["file_id"]] for f in files])
    if kind == "VERIFYONLY":  # the file is intact: "The backup set on file 1 is valid." (an informational message)
        return None
    recovering = not {"NORECOVERY", "STANDBY"} & set(opts)
    if s["type"] == "D":  # a full starts (or restarts) the restore sequence
        if db and rs is None and "REPLACE" not in opts:  # SQL Server's safety checks (WITH REPLACE skips them)
            if db["name"].lower() != s["database_name"].lower(): fail(3154, verb, db["name"])
            if str(db.get("recovery_model_desc") or "FULL").upper() != "SIMPLE" and "STOPAT" not in opts: fail(3159, verb, db["name"])
        moved = {k.lower(): v for k, v in p["moves"]}
        for logical, _ in p["moves"]:
            if not find(files, "name", logical): fail(3234, verb, logical, name)
        files = [dict(f, physical_name=moved.get(f["name"].lower(), f["physical_name"])) for f in files]
        for f in files:
            if not os.path.isdir(os.path.dirname(on_disk(f["physical_name"])) or "."):
                fail(5133, verb, f["physical_name"], also=[(3156, (f["name"], f["physical_name"])), (3119, ())])
        db_id = db["database_id"] if db else max([int(d.get("database_id") or 4) for d in dbs] + [4]) + 1
        save("databases.json", [d for d in dbs if d is not db] + [{
            "name": db["name"] if db else name, "database_id": db_id, "recovery_model_desc": s["recovery_model"], "state_desc": "RESTORING",
            "compatibility_level": h["compatibility_level"], "is_encrypted": False, "group_database_id": None, "create_date": iso(now())}])
        save("master_files.json", [f for f in load("master_files.json") if f.get("database_id") != db_id] + [dict(f, database_id=db_id) for f in files])
        rs = ext["restoring"][name.lower()] = {"lsn": s["last_lsn"], "base": None if s["is_copy_only"] else {"lsn": s["checkpoint_lsn"], "uuid": s["backup_set_uuid"]}}
        db = find(load("databases.json"), "name", name)
    elif rs is None: fail(3117 if db else 3118, verb, name)
    elif s["type"] == "I":  # a differential applies only on top of its own base full
        if not rs["base"] or s["differential_base_lsn"] != rs["base"]["lsn"] or rs["lsn"] >= s["last_lsn"]: fail(3136, verb)
        rs["lsn"] = s["last_lsn"]
    else:  # a log applies only if it covers the point the database has been rolled forward to
        if s["first_lsn"] > rs["lsn"]: fail(4305, verb, s["first_lsn"], rs["lsn"])
        if s["last_lsn"] <= rs["lsn"]: fail(4326, verb, s["last_lsn"], rs["lsn"])
        try:
            stop, begins, ends = moment(opts.get("STOPAT")), moment(h["begins_at"]), moment(s["backup_finish_date"])
        except (ValueError, TypeError):
            raise QueryError("Conversion failed when converting date and/or time from character string.", number=241)
        if stop and begins and stop < begins: fail(4335, verb)
        if stop and stop < ends:  # stopping inside this log: at an LSN between its two ends, in proportion
            span = s["last_lsn"] - s["first_lsn"]
            frac = (stop - begins) / (ends - begins) if begins and ends > begins else 0
            rs["lsn"] = max(rs["lsn"], (s["first_lsn"] + int(span * frac)) // 10 ** 5 * 10 ** 5 + 1)
        else:
            rs["lsn"] = s["last_lsn"]
            recovering = recovering and not stop  # a stop point beyond this log leaves the database restoring (msg 4322)
    if recovering:
        recover(db["name"], rs, ext)
    save("standin.json", ext)

OURS = {"BACKUP": ("DATABASE", "LOG"), "RESTORE": ("DATABASE", "LOG", "HEADERONLY", "FILELISTONLY", "VERIFYONLY")}
ASSIGN = re.compile(r"(?:DECLARE|SET)\s+(@\w+)(?:\s+\w+(?:\s*\([\w\s,]*\))?)?\s*=\s*(N?'(?:[^']|'')*'|-?\d+)\s*$", re.I)
DOTDOT = re.compile(r"(N?'(?:[^']|'')*')|(?<=[\w\]])\.\.(?=[\w\[])")

XP_DELETE = re.compile(r"\s*EXEC(?:UTE)?\s+master\.dbo\.xp_delete_file\s+0\s*,\s*(@\w+|N?'(?:[^']|'')*')\s*;?\s*$", re.I)

def delete_file(arg, params):
    """xp_delete_file 0, <file>: removes a backup file and nothing else (a file without a backup header stays)."""
    path = str(value(tokens(arg)[0], params))
    with LOCK:
        if os.path.isfile(on_disk(path)) and open(on_disk(path), "rb").read(20) == b"SQLSTANDIN-BACKUP-1\n":
            os.remove(on_disk(path))
    return QueryResult([], [])

SERVERPROPERTY = re.compile(r"(@@SERVERNAME|SERVERPROPERTY\('(\w+)'\))\s+AS\s+nvarchar\(\d+\)\)\s+AS\s+(\w+)", re.I)

def server_properties(sql):
    """SELECT CAST(SERVERPROPERTY('Name') AS nvarchar(n)) AS alias, ...: DIR/server_properties.json's values, NULL for a name it
    does not hold (as SQL Server answers NULL for a property it does not know); CAST(@@SERVERNAME …) among them, the machine's
    name."""
    props, asked = load("server_properties.json", {}), SERVERPROPERTY.findall(sql)
    return QueryResult([Column(alias, S(260)) for _, _, alias in asked],
                       [[props.get(prop) if prop else SERVER for _, prop, _ in asked]])

HADR = re.compile(r"sys\.fn_hadr_backup_is_preferred_replica\(\s*(\w+)\.name\s*\)", re.I)

class Attention(Exception):
    """The client sent an Attention while a statement ran: SQL Server stops the statement."""

def working(seconds):
    """A statement that takes `seconds` unless the client sends an Attention (MS-TDS 2.2.1.7) meanwhile. SQL Server
    reads the connection while a request runs; pysqlbridge answers a request before it reads the next, so what
    arrives is read here, decrypted, and handed back to pysqlbridge, which acknowledges the Attention (DONE with
    DONE_ATTN) after this statement's answer. A client gone without one is noticed at the end, as SQL Server
    notices a closed connection when it next writes to it."""
    conn, sock, end = WHO.conn, WHO.sock, time.monotonic() + seconds
    open(os.path.join(STATE, "working"), "w").close()  # for a test to see the statement running
    while time.monotonic() < end:
        if not select.select([sock], [], [], 0.1)[0]:
            continue
        data = sock.recv(65536)
        if not data:  # the client is gone
            time.sleep(0.1)
            continue
        plain = conn._tunnel.unwrap(data) if conn.session_encrypted else data
        (conn._plaintext if conn.session_encrypted else conn._buffer).extend(plain)
        if plain[:1] == b"\x06":
            logging.info("an Attention stopped the statement")
            raise Attention()

def answer(query):
    huge = load("standin.json", {}).get("huge_value")
    if huge and re.search(huge["in"], query.sql):
        return QueryResult([Column("value", NVarChar(None))], [["x" * huge["chars"]]])
    if query.procedure: return CATALOG.answer(query)
    # fn_hadr_backup_is_preferred_replica(alias.name): the database row's answer (see view)
    query = dataclasses.replace(query, sql=HADR.sub(lambda m: f"{m[1]}.hadr_backup_preferred", query.sql))
    if SERVERPROPERTY.search(query.sql): return server_properties(query.sql)
    if XP_DELETE.match(query.sql): return delete_file(XP_DELETE.match(query.sql)[1], dict(query.parameters))
    sql = DOTDOT.sub(lambda m: m.group(1) or ".dbo.", query.sql)  # msdb..backupset means msdb.dbo.backupset
    parts = [[]]  # statements, split at ';' and before each BACKUP/RESTORE
    for t in tokens(sql):
        if t[1] == ";" or (t[1].upper() in OURS and t[0] == "word" and parts[-1]):
            parts.append([])
        parts[-1] += [t] if t[1] != ";" else []
    ours = [bool(p) and len(p) > 1 and p[1][1].upper() in OURS.get(p[0][1].upper(), ()) for p in parts]
    if not any(ours):  # everything without BACKUP/RESTORE goes to pysqlbridge unchanged
        return CATALOG.answer(Query(sql=sql, parameters=query.parameters, session=query.session))
    answers, params = [], dict(query.parameters)
    for mine, toks in zip(ours, parts):
        if mine:
            p = parse(toks, params)
            if p["verb"] == "BACKUP" and load("standin.json", {}).get("backup_seconds"):
                working(load("standin.json", {})["backup_seconds"])
            with LOCK:
                answers.append((backup if p["verb"] == "BACKUP" else restore)(p) or QueryResult([], []))
        elif toks:
            text = sql[toks[0][2]:toks[-1][3]]
            if ASSIGN.match(text):  # DECLARE @db sysname = N'x' / SET @db = N'x', read by a BACKUP later in the batch
                params[ASSIGN.match(text)[1]] = value(tokens(ASSIGN.match(text)[2])[0], params)
            r = CATALOG.answer(Query(sql=text, parameters=query.parameters, session=query.session))
            answers += [QueryResult(r.columns, r.rows, error=r.error), *r.following]
    return QueryResult(answers[0].columns, answers[0].rows, following=tuple(answers[1:]), error=answers[0].error)

def handle(query):
    """pysqlbridge's query handler: answer, and log the request with its parameter values and outcome."""
    kind, error, WHO.kind = getattr(WHO, "kind", None), None, None
    query.session["server"] = SERVER  # @@SERVERNAME: the machine name, as in backupset.server_name
    try:
        return answer(query)
    except QueryError as exc:
        error = exc.number
        raise
    except Attention:  # stopped: no rows (pysqlbridge then acknowledges the Attention)
        error = "attention"
        return QueryResult([], [])
    finally:
        params = {k: v for k, v in query.parameters.items() if k.startswith("@")} or dict(enumerate(query.arguments))
        entry = {"at": iso(dt.datetime.utcnow()), "kind": kind or "other", "proc": query.procedure or ("sp_executesql" if kind == "rpc" else None),
                 "sql": query.sql, "params": params, "error": error}
        with LOCK, open(os.path.join(STATE, "statements.jsonl"), "a") as f:
            f.write(json.dumps(entry, default=lambda o: o.hex() if isinstance(o, bytes) else str(o)) + "\n")

def signed_in(**entry):
    """A line of DIR/logins.jsonl: who a Windows or Entra sign-in was, and how."""
    with LOCK, open(os.path.join(STATE, "logins.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")

def kerberos(keytab):
    """Windows authentication as SQL Server does it with Kerberos, in place of pysqlbridge's SSPI acceptor.

    The LOGIN7 carries the client's AP-REQ, which GSS-API checks with the service's keys. That completes the exchange
    at once; with mutual authentication it also yields the AP-REP, which goes back as an SSPI message of its own, then
    the login response in another (the client reads the token, then the login response, and sends nothing between:
    tiberius's last, empty token is no packet). A token GSS-API refuses closes the connection, which is pysqlbridge's
    answer to any refused exchange."""
    import gssapi

    def init(self):
        self._ctx = gssapi.SecurityContext(usage="accept", creds=gssapi.Credentials(usage="accept", store={"keytab": keytab}))
        self._complete, self._last = False, b""

    def step(self, token):
        try:
            out = self._ctx.step(token) or b""
        except gssapi.exceptions.GSSError as exc:
            logging.warning("Kerberos refused a login: %s", exc)
            raise auth.AuthenticationError(f"Kerberos refused the token: {exc}") from exc
        self._complete = self._ctx.complete
        if not self._complete:
            return auth.AuthResult(out, False)
        self._last = out
        signed_in(principal=str(self._ctx.initiator_name), mech=str(self._ctx.mech))
        return auth.AuthResult(b"", True)

    auth.SspiAcceptor.__init__, auth.SspiAcceptor.step = init, step
    def windows_login(self):  # as SQL Server names a Windows login: NETBIOS\user (TEST\Administrator)
        if not self._complete: return None
        user, _, realm = str(self._ctx.initiator_name).partition("@")
        return f"{realm.split('.')[0]}\\{user}"
    auth.SspiAcceptor.username = property(windows_login)
    finish = tds_connection.Connection._finish_login
    def finish_login(self, responses):
        last = getattr(self._acceptor, "_last", b"")
        if last:
            self._send(responses, tds_connection.sspi_token(last), packet_id=0)
        finish(self, responses)
    tds_connection.Connection._finish_login = finish_login

def ntlm(users):
    """Windows authentication as SQL Server does it with NTLM (a Windows account and its password, no service principal),
    in place of pysqlbridge's SSPI acceptor: pyspnego's NTLM acceptor, an implementation of its own, checks the client's
    NTLMv2 response against the accounts in `users`, as the domain controller does for SQL Server. The LOGIN7 carries
    NEGOTIATE; the CHALLENGE goes back as an SSPI token; the client's AUTHENTICATE comes in an SSPI message, and the login
    response follows. A refused response is answered as SQL Server answers a Windows sign-in the domain refused (18452,
    whose words name only a domain, a wrong password among its causes), and the connection ends.
    The client's AUTHENTICATE is an SSPI message (0x11) in MS-TDS, but tiberius sends it in a packet typed LOGIN7 (0x10),
    and SQL Server takes either (tiberius-rs/tiberius pull request 351): so does this."""
    import hmac
    import spnego
    from spnego import _ntlm
    from spnego._ntlm_raw.messages import Authenticate
    from pysqlbridge.tds import token as tds_token
    from pysqlbridge.tds.packet import PacketType
    os.environ["NTLM_USER_FILE"] = users
    # NTProofStr is an HMAC over the blob the client sent (MS-NLMP 3.3.2), and Windows checks it so; pyspnego checks it
    # over its own re-packing of the blob, which ends in four zero bytes after the AV pairs. The Windows build's NTLM
    # (tiberius's, from the winauth crate) ends its blob at the AV pairs' end, so with pyspnego's check alone a right
    # password is refused: here, and only for that difference, the HMAC is taken over the blob as sent
    packed, SENT = _ntlm.compute_response_v2, threading.local()
    def as_sent(nt_hash, server_challenge, client_challenge, time, av_pairs):
        expected_nt, expected_lm, key = packed(nt_hash, server_challenge, client_challenge, time, av_pairs)
        blob = getattr(SENT, "blob", b"")
        if blob and expected_nt[16:] == blob + b"\0" * 4:
            proof = hmac.new(nt_hash, server_challenge + blob, "md5").digest()
            return proof + blob, expected_lm, hmac.new(nt_hash, proof, "md5").digest()
        return expected_nt, expected_lm, key
    _ntlm.compute_response_v2 = as_sent

    def init(self):
        self._ctx, self._complete = spnego.server(protocol="ntlm"), False

    def step(self, token):
        try:
            SENT.blob = Authenticate.unpack(token).nt_challenge_response[16:] if token[8:12] == b"\3\0\0\0" else b""
            out = self._ctx.step(token) or b""
        except spnego.exceptions.SpnegoError as exc:
            logging.warning("NTLM refused a login: %s", exc)
            raise auth.AuthenticationError(f"NTLM refused the token: {exc}") from exc
        self._complete = self._ctx.complete
        if self._complete:
            signed_in(principal=self._ctx.client_principal, mech="ntlm")
        return auth.AuthResult(out, self._complete)

    auth.SspiAcceptor.__init__, auth.SspiAcceptor.step = init, step
    auth.SspiAcceptor.username = property(lambda self: self._ctx.client_principal if self._complete else None)
    step_sspi = tds_connection.Connection._step_sspi
    def step_sspi_either(self, responses):
        take = self._take_message
        def as_sspi():
            m = take()
            return m._replace(type=PacketType.SSPI) if m is not None and m.type is PacketType.LOGIN7 else m
        self._take_message = as_sspi
        try:
            return step_sspi(self, responses)
        except auth.AuthenticationError:  # SQL Server's answer to a refused Windows sign-in, then the connection ends
            self._send(responses, tds_token.error_response(
                18452, "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.",
                server=self._server_name, severity=14, tds_version=self._tds_version))
            self._state = tds_connection.ConnectionState.FAILED
            return True
        finally:
            del self._take_message
    tds_connection.Connection._step_sspi = step_sspi_either

def entra(principal):
    """Microsoft Entra sign-in as SQL Server takes it (TDS federated authentication with a security token), which
    pysqlbridge lacks: PRELOGIN answers FEDAUTHREQUIRED when asked; a LOGIN7 whose feature extension carries a FEDAUTH
    token signs in as `principal` when the token is one for SQL's audience (the test's Azure sign-in marks those `sql-`,
    as the Key Vault and Kubernetes stand-ins read theirs), else it is refused with SQL Server's 18456; the login response
    then carries a FEATUREEXTACK for FEDAUTH. Each sign-in is a line of DIR/logins.jsonl."""
    from pysqlbridge.tds import login as tds_login, prelogin as tds_prelogin
    from pysqlbridge.tds import token as tds_token
    ask = tds_connection.server_response
    def answer(*, asked=None, **kw):
        r = ask(asked=asked, **kw)
        if asked is not None and any(t == tds_prelogin.PreloginOption.FEDAUTHREQUIRED for t, _ in asked.options):
            r.options.append((tds_prelogin.PreloginOption.FEDAUTHREQUIRED, b"\x01"))
        return r
    tds_connection.server_response = answer
    parse = tds_login.Login7.parse.__func__
    def parse_login(cls, payload):
        fedauth, at = None, tds_login.FIXED_HEADER_SIZE + 5 * 4  # ibExtension/cbExtension: the sixth pair
        if payload[27] & 0x10:  # OptionFlags3 fExtension: ibExtension points at the DWORD offset of FeatureExt
            ib, cb = int.from_bytes(payload[at:at + 2], "little"), int.from_bytes(payload[at + 2:at + 4], "little")
            o = int.from_bytes(payload[ib:ib + 4], "little") if cb == 4 and ib + 4 <= len(payload) else len(payload)
            while o < len(payload) and payload[o] != 0xFF:
                n = int.from_bytes(payload[o + 1:o + 5], "little")
                data = payload[o + 5:o + 5 + n]
                if payload[o] == 0x02 and data and data[0] >> 1 == 0x01:  # FEDAUTH, library: security token
                    length = int.from_bytes(data[1:5], "little")
                    fedauth = bytes(data[5:5 + length]).decode("utf-16-le")
                o += 5 + n
            payload = bytearray(payload)
            payload[at + 2:at + 4] = b"\0\0"  # pysqlbridge reads the extension as a string: none
        login = parse(cls, bytes(payload))
        login.fedauth = fedauth
        return login
    tds_login.Login7.parse = classmethod(parse_login)
    sql_login = tds_connection.Connection._answer_sql_login
    def answer_login(self, responses):
        token = getattr(self._login, "fedauth", None)
        if token is None:
            return sql_login(self, responses)
        ok = token.startswith("sql-")
        signed_in(principal=principal if ok else None, mech="fedauth", audience_ok=ok)
        if ok:
            self._entra = principal
            self._finish_login(responses)
            return True
        logging.warning("refused an Entra login: the token is not for SQL's audience")
        self._send(responses, tds_token.error_response(18456, "Login failed for user '<token-identified principal>'.",
                                                       server=self._server_name, severity=14, tds_version=self._tds_version))
        self._state = tds_connection.ConnectionState.FAILED
        return True
    tds_connection.Connection._answer_sql_login = answer_login
    respond = tds_connection.login_response
    def login_response(**kw):
        body, last = respond(**kw), tds_token.done(tds_version=kw.get("tds_version", tds_token.TDS_74))
        if getattr(getattr(WHO, "conn", None), "_entra", None) is None or not body.endswith(last):
            return body
        return body[:-len(last)] + bytes([0xAE, 0x02]) + (0).to_bytes(4, "little") + b"\xff" + last
    tds_connection.login_response = login_response

def per_connection():
    """Each connection's socket and pysqlbridge Connection, for `working` (handled on a thread of their own)."""
    init = tds_connection.Connection.__init__
    def connection(self, *a, **k):
        init(self, *a, **k)
        WHO.conn = self
    tds_connection.Connection.__init__ = connection
    bridge_server._Handler.setup = lambda self: setattr(WHO, "sock", self.request)
    # SUSER_SNAME(): a SQL login's name too (pysqlbridge knows only a Windows one)
    tds_connection.Connection.username = property(
        lambda self: getattr(self, "_entra", None) or (
            self._acceptor.username if self._acceptor else self._login.user_name if self._login else None))

def main():
    global STATE, USER, ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("--state", "--cert", "--key", "--user", "--password-env", "--port-file"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--keytab")
    ap.add_argument("--ntlm-users", metavar="F", help="take NTLM sign-ins of the accounts in F (DOMAIN:user:password lines)")
    ap.add_argument("--root", help="the instance's file system (a container's): every path it is given lies under it")
    ap.add_argument("--entra", metavar="PRINCIPAL", help="accept Microsoft Entra sign-ins (FEDAUTH tokens for SQL) as PRINCIPAL")
    args = ap.parse_args()
    per_connection()
    if args.keytab:
        kerberos(args.keytab)
    if args.ntlm_users:
        ntlm(args.ntlm_users)
    if args.entra:
        entra(args.entra)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="sql_standin %(levelname)s %(message)s")
    password = os.environ.get(args.password_env) or sys.exit(f"sql_standin: the environment variable {args.password_env} is not set")
    STATE, USER, ROOT = os.path.abspath(args.state), args.user, args.root and os.path.abspath(args.root)
    # The client asks ENCRYPT_ON (or REQ); pysqlbridge's Connection answers ON and keeps the TLS tunnel for the
    # whole session (it reverts to cleartext after the login only for a client that asked OFF).
    server = BridgeServer("127.0.0.1", 0, certificate=load_certificate(args.cert, args.key), query_handler=handle, database="master",
                          logins=LoginStore([Login(user=args.user, secret=password, hashed=False)]))
    open(args.port_file + ".tmp", "w").write(str(server.address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    logging.info("listening on 127.0.0.1:%d, state in %s", server.address[1], STATE)
    server.serve_forever()

if __name__ == "__main__":
    main()
