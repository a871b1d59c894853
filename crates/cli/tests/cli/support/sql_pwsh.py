#!/usr/bin/env python3
"""A stand-in for PowerShell on a command target, for the test of SQL batches run through one (`sql-server add
--via`). No PowerShell runs here: this does what the host's script (crates/plugin-host/src/state/sql_via.rs) asks
PowerShell to do, with a real SQL client (python-tds) against the SQL Server stand-in. As PowerShell would, it runs the
command line's bootstrap, which reads the script from standard input; from the script's first lines it takes the
connection string, the batch, the parameters (each base64 of its UTF-8) and the timeout; connects to the instance the
connection string names as the target's account (a SQL login here, and the CA it trusts, from --login-file: the
stand-in has no Windows accounts), with TLS as the script's Encrypt=True asks; runs the batch with the parameters bound
as @P1, @P2 … (sp_executesql); and prints the answer as the script does: one line, REHYDRA-SQL and base64 of
{"sets": [{"columns", "rows"}]} or {"error": {"number", "message", "open"}}, values as text the way the script formats
them. Each payload is appended to --log (JSON lines), so the test sees what went through.

Usage: sql_pwsh.py --login-file F --log F -NoProfile -NonInteractive -Command BOOTSTRAP  (the script on stdin;
-EncodedCommand instead of -Command, as a command target over SSH runs PowerShell)
"""
import base64, datetime as dt, decimal, json, os, re, sys, uuid

import ipaddress

import pytds
import pytds.tls
from cryptography import x509


def name_matches(cert, name):
    """The certificate names the host connected to, as SqlClient checks it: a DNS name or an IP address among its
    subject alternative names (python-tds's own check knows DNS names only, through an API pyOpenSSL dropped)."""
    host = name.decode() if isinstance(name, bytes) else name
    try:
        san = cert.to_cryptography().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.ip_address(host) in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        return host.lower() in (d.lower() for d in san.get_values_for_type(x509.DNSName))


pytds.tls.validate_host = name_matches


def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, dt.datetime):  # SQL Server's datetime, to the millisecond
        return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}"
    if isinstance(v, dt.date):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


def say(o):
    print("REHYDRA-SQL " + base64.b64encode(json.dumps(o).encode()).decode())


def main():
    args = sys.argv[1:]
    login = json.load(open(args[args.index("--login-file") + 1]))
    log = args[args.index("--log") + 1]
    # -Command here, -EncodedCommand (base64 of UTF-16LE) through a target over SSH
    if "-EncodedCommand" in args:
        bootstrap = base64.b64decode(args[args.index("-EncodedCommand") + 1]).decode("utf-16-le")
    else:
        bootstrap = args[args.index("-Command") + 1]
    if "[Console]::In.ReadToEnd()" not in bootstrap:
        print("not the host's bootstrap", file=sys.stderr)
        return 1
    script = sys.stdin.read()
    if "System.Data.SqlClient.SqlConnection" not in script or not script.isascii():
        print("not the host's SQL script", file=sys.stderr)
        return 1
    b64 = r"\[Text\.Encoding\]::UTF8\.GetString\(\[Convert\]::FromBase64String\('([A-Za-z0-9+/=]*)'\)\)"
    text_of = lambda m: base64.b64decode(m).decode()
    q = {
        "c": text_of(re.search(r"^\$cs = " + b64 + "$", script, re.M).group(1)),
        "b": text_of(re.search(r"^\$batch = " + b64 + "$", script, re.M).group(1)),
        "p": [text_of(m) for m in re.findall(b64, re.search(r"^\$params = \[string\[\]\]@\((.*)\)$", script, re.M).group(1))],
        "t": int(re.search(r"^\$timeout = (\d+)$", script, re.M).group(1)),
        # (over SSH, sshd says from where: the test tells the target's batches from this machine's)
        "ssh": os.environ.get("SSH_CONNECTION"),
    }
    with open(log, "a") as f:
        f.write(json.dumps(q) + "\n")
    server = re.search(r"Server=tcp:([^,;]+),(\d+);", q["c"])
    opened = False
    try:
        # TLS as the script's Encrypt=True asks, the certificate checked against the test CA (the target's trust)
        # and the name connected to, as SqlClient checks it
        conn = pytds.connect(server.group(1), port=int(server.group(2)), user=login["user"], password=login["password"],
                             database="master", autocommit=True, timeout=q["t"], cafile=login["cafile"],
                             validate_host=True)
        opened = True
        cur = conn.cursor()
        params = {f"P{i + 1}": p for i, p in enumerate(q["p"])}
        # python-tds names parameters %(name)s and sends them as @name through sp_executesql
        batch = re.sub(r"@P(\d+)\b", r"%(P\1)s", q["b"].replace("%", "%%")) if params else q["b"]
        cur.execute(batch, params or None)
        sets = []
        while True:
            if cur.description:
                cols = [d[0] for d in cur.description]
                sets.append({"columns": cols, "rows": [[text(v) for v in row] for row in cur.fetchall()]})
            if not cur.nextset():
                break
        conn.close()
        say({"sets": sets})
    except Exception as e:  # as the script's catch: every failure is an answer
        say({"error": {"number": getattr(e, "msg_no", 0) or getattr(e, "number", 0) or 0, "message": f"{type(e).__name__}: {e}", "open": not opened}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
