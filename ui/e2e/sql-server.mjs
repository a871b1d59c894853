// The app's end-to-end test, SQL Server part: the TDS stand-in the CLI tests use
// (pysqlbridge, TLS, SQL logins, msdb history; BACKUP and RESTORE recorded, not run), a
// database backed up by the CLI as a full, a log, a differential and a log; then, in the
// restore wizard, a moment between the differential and the last log picked in the
// calendar of `stop-at`, the database restored under another name on another instance,
// the chosen backups and the generated script shown before anything runs.
import fs from "node:fs";
import path from "node:path";
import { execFileSync, spawn } from "node:child_process";

const here = path.dirname(new URL(import.meta.url).pathname);

/** `t`: the test's session `s`, `cli`, `env`, `repo`, `tmp`, `plugins`, `check`, `wizardTo`, `shot`. */
export async function sqlServer(t) {
  const { s, check } = t;
  const dir = path.join(t.tmp, "sql");
  const [tls, state, stage, data, far] = ["tls", "state", "stage", "data", "far"].map((d) => path.join(dir, d));
  for (const d of [tls, state, stage, data, far]) fs.mkdirSync(d, { recursive: true });
  const ssl = (...args) => execFileSync("openssl", args, { cwd: tls, stdio: "ignore" });
  ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Rehydra test CA");
  ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=sql01.test.lan");
  fs.writeFileSync(path.join(tls, "ext"), "subjectAltName=DNS:sql01.test.lan,DNS:localhost,IP:127.0.0.1\n");
  ssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext");
  const table = (name, rows) => fs.writeFileSync(path.join(state, name), JSON.stringify(rows));
  const read = (name) => JSON.parse(fs.readFileSync(path.join(state, name), "utf8"));
  table("databases.json", [{ name: "sales", database_id: 5, recovery_model_desc: "FULL", state_desc: "ONLINE", compatibility_level: 160, is_encrypted: false, group_database_id: null, create_date: "2026-01-05T09:00:00" }]);
  table("master_files.json", [
    { database_id: 5, file_id: 1, type: 0, type_desc: "ROWS", name: "sales", physical_name: `${data}/sales.mdf`, size: 2048 },
    { database_id: 5, file_id: 2, type: 1, type_desc: "LOG", name: "sales_log", physical_name: `${data}/sales_log.ldf`, size: 512 },
  ]);
  table("backupset.json", []);
  table("backupmediafamily.json", []);
  // where the other instance puts new databases
  table("server_properties.json", { InstanceDefaultDataPath: `${far}/`, InstanceDefaultLogPath: `${far}/` });
  const pwFile = path.join(dir, "sql.pw");
  fs.writeFileSync(pwFile, "Str0ng!pass'word", { mode: 0o600 });
  const portFile = path.join(dir, "port");
  const log = fs.openSync(path.join(dir, "standin.out"), "w");
  const standin = spawn(path.join(process.env.HOME, ".cache/rehydra/venv/bin/python"), [
    path.join(here, "../../crates/cli/tests/cli/support/sql_standin.py"), "--state", state, "--cert", path.join(tls, "srv.pem"),
    "--key", path.join(tls, "srv.key"), "--user", "rehydra", "--password-env", "STANDIN_PW", "--port-file", portFile,
  ], { env: { ...process.env, STANDIN_PW: "Str0ng!pass'word" }, stdio: ["ignore", log, log] });
  try {
    const started = Date.now();
    while (!fs.existsSync(portFile)) {
      if (Date.now() - started > 60000) throw new Error(`the SQL Server stand-in did not start: ${fs.readFileSync(path.join(dir, "standin.out"), "utf8")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const port = fs.readFileSync(portFile, "utf8").trim();
    const [here1, other] = [`127.0.0.1:${port}`, `localhost:${port}`];
    const cli = (...args) =>
      execFileSync(t.cli, args, { env: { ...t.env, REHYDRA_REPOSITORY: t.repo, REHYDRA_PASSWORD: "correct horse battery staple" }, stdio: ["ignore", "pipe", "pipe"] }).toString();
    cli("plugins", "install", path.join(t.plugins, "sql-server.wasm"));
    for (const name of [here1, other]) {
      cli("plugins", "sql-server", "add", name, "--login", "rehydra", "--password-file", pwFile, "--ca-file", path.join(tls, "ca.pem"));
    }
    cli("plugins", "grant", "sql-server", "engine", `sql:${here1}`, `sql:${other}`, `files:${dir}`, `files-write:${dir}`);
    const asset = `${here1}/sales`;
    for (const level of ["full", "log", "diff", "log"]) {
      cli("plugins", "run", "sql-server", "backup", "--asset", asset, "--set", `level=${level}`, "--set", `staging=${stage}`);
    }
    // halfway between the differential's end and the last log's: the full, the
    // differential and that log reach it
    const ends = read("backupset.json").map((b) => Date.parse(`${b.backup_finish_date.slice(0, 23)}Z`));
    // (to the millisecond: the two may be under a second apart)
    const moment = new Date(Math.floor((ends[2] + ends[3]) / 2)).toISOString().slice(0, 23);
    const second = moment.slice(0, 19);

    await s.click('[data-testid="nav-inventory"]');
    await s.click('[data-testid="nav-restore"]');
    await t.wizardTo(asset, "plugin");
    await s.type('[data-testid="wizard-target"]', "-");
    await s.wait('[data-testid="wizard-options-form"]', (x) => x.includes("stop-at"));
    const calendar = await s.exec('return document.querySelector(\'[data-testid="setting-stop-at"]\').type');
    // what picking a day and a time in the calendar gives the page: the field's value, then
    // an input event
    await s.exec(`const i = document.querySelector('[data-testid="setting-stop-at"]');
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(i, "${moment}");
      i.dispatchEvent(new Event("input", { bubbles: true }));`);
    await s.type('[data-testid="setting-staging"]', stage);
    await s.type('[data-testid="setting-server"]', other);
    await s.type('[data-testid="setting-database"]', "sales_dr");
    await t.shot("14d-restore-sql-server-calendar");
    await s.click('[data-testid="wizard-plan"]');
    const plan = await s.text(await s.wait('[data-testid="plan"]', (x) => x.includes("RESTORE DATABASE [sales_dr]"), 60000));
    const planned = read("databases.json").every((d) => d.name !== "sales_dr");
    check(
      calendar === "datetime-local" && plan.includes("full backup finished") && plan.includes("diff backup finished")
        && plan.includes(`STOPAT = N'${second}`) && plan.includes(`${far}/sales_dr.mdf`) && planned,
      `the wizard's calendar for stop-at (${moment}) plans the full, the differential and the log that reach it, and shows the RESTORE script for another instance first; the plan wrote nothing`,
    );
    await s.click('[data-testid="plan-confirm"]');
    await s.click('[data-testid="plan-run"]');
    await s.wait('[data-testid="run-result"]', (x) => /restored/i.test(x), 60000);
    const shown = await s.exec('return document.querySelector(\'[data-testid="run-result"]\').parentElement.innerText');
    const restores = fs.readFileSync(path.join(state, "statements.jsonl"), "utf8").trim().split("\n")
      .map((l) => JSON.parse(l).sql).filter((q) => q.startsWith("RESTORE"));
    const copy = read("databases.json").find((d) => d.name === "sales_dr");
    check(
      copy && copy.state_desc === "ONLINE" && restores.length === 4 && restores[3] === "RESTORE DATABASE [sales_dr] WITH RECOVERY"
        && restores[2].startsWith("RESTORE LOG [sales_dr]") && restores[2].includes(`STOPAT = N'${second}`)
        && shown.includes("restored on") && !shown.includes("Debug:"),
      `a database came back under another name on another instance to ${moment} from the restore wizard: ${restores.length} RESTORE statements, the last log stopped at the moment; the result says so without the statements' debug lines`,
    );
    await t.shot("14e-restore-sql-server");
  } finally {
    standin.kill();
  }
}
