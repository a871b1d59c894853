#!/usr/bin/env python3
"""The built-in backup schedule of an Arc SQL Managed Instance, for the tests: one BACKUP sent over TDS with TLS to the
SQL Server stand-in (sql_standin.py), as the instance's own backup sidecar sends it (not copy-only, to its backup
volume), through python-tds.

    sql_agent.py PORT CA_PEM LOGIN PASSWORD_ENV full|diff|log DATABASE FILE

The certificate is checked against CA_PEM; not its name: this stands for a process inside the instance's pod, not for a
client under test.
"""
import os, sys

import pytds


def main():
    port, ca, login, password_env, level, database, file = sys.argv[1:]
    what = {"full": "DATABASE", "diff": "DATABASE", "log": "LOG"}[level]
    options = "DIFFERENTIAL, CHECKSUM" if level == "diff" else "CHECKSUM"
    conn = pytds.connect("127.0.0.1", port=int(port), user=login, password=os.environ[password_env], database="master",
                         autocommit=True, timeout=60, cafile=ca, validate_host=False)
    cur = conn.cursor()
    cur.execute(f"BACKUP {what} %(db)s TO DISK = %(file)s WITH {options}", {"db": database, "file": file})
    conn.close()


if __name__ == "__main__":
    main()
