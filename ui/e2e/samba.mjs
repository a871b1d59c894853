// A real Samba AD domain controller on 127.0.0.1 for the app's end-to-end test, as the
// CLI tests make one (crates/cli/tests/cli/support/samba.rs): provisioned fresh, LDAPS
// with a certificate from a test CA, started in the foreground under the lock those tests
// take (domain controllers listen on fixed ports), stopped with its process group.
import fs from "node:fs";
import path from "node:path";
import { execFileSync, spawn, spawnSync } from "node:child_process";

export const BASE = "DC=test,DC=lan";
const ADMIN = "Administrator@test.lan";
const PASSWORD = "Rehydra-Test-1!";

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });

/** Provision and start a DC in `dir`; its `ldap(tool, args)` runs an OpenLDAP tool bound
 *  as the administrator, `stop()` ends it. */
export async function startDc(dir) {
  fs.mkdirSync(dir, { recursive: true });
  run("samba-tool", ["domain", "provision", "--realm", "TEST.LAN", "--domain", "TEST", "--server-role", "dc", "--dns-backend", "SAMBA_INTERNAL",
    "--host-name", "dc1", "--adminpass", PASSWORD, "--use-rfc2307", "--targetdir", dir, "--option=interfaces=127.0.0.1", "--option=bind interfaces only=yes"]);
  const tls = path.join(dir, "tls");
  fs.mkdirSync(tls);
  const ssl = (...args) => run("openssl", args, { cwd: tls });
  ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Rehydra test CA");
  ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=dc1.test.lan");
  fs.writeFileSync(path.join(tls, "ext"), "subjectAltName=DNS:dc1.test.lan,IP:127.0.0.1\n");
  ssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext");
  fs.chmodSync(path.join(tls, "srv.key"), 0o600);
  const conf = path.join(dir, "etc/smb.conf");
  const extra = `[global]\n\ttls enabled = yes\n\ttls keyfile = ${tls}/srv.key\n\ttls certfile = ${tls}/srv.pem\n\ttls cafile = ${tls}/ca.pem\n\tpid directory = ${dir}/run\n\tlog file = ${dir}/log.%m\n\tserver services = -dns\n`;
  fs.writeFileSync(conf, fs.readFileSync(conf, "utf8").replace("[global]\n", extra));
  fs.mkdirSync(path.join(dir, "run"));
  const log = fs.openSync(path.join(dir, "samba.out"), "w");
  // flock(1) holds the CLI tests' lock for as long as the DC runs
  const proc = spawn("flock", ["/tmp/rehydra-samba-dc.lock", "samba", "-s", conf, "-i", "--no-process-group"], { detached: true, stdio: ["ignore", "ignore", log] });
  const ldap = (tool, args) =>
    spawnSync(tool, ["-H", "ldaps://127.0.0.1", "-x", "-D", ADMIN, "-w", PASSWORD, ...args], { env: { ...process.env, LDAPTLS_CACERT: path.join(tls, "ca.pem") }, encoding: "utf8" });
  const t = Date.now();
  while (ldap("ldapsearch", ["-b", "", "-s", "base", "dnsHostName"]).status !== 0) {
    if (Date.now() - t > 90000) throw new Error(`samba did not answer LDAPS within 90 s: ${fs.readFileSync(path.join(dir, "samba.out"), "utf8")}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const apply = (ldif) => {
    const f = path.join(dir, "change.ldif");
    fs.writeFileSync(f, ldif);
    const o = ldap("ldapmodify", ["-a", "-f", f]);
    if (o.status !== 0) throw new Error(`${ldif}\n${o.stderr}`);
  };
  // TERM to the process group, KILL after 10 s; resolves once it has ended
  const stop = async () => {
    const signal = (sig) => {
      try {
        process.kill(-proc.pid, sig);
      } catch {
        // already gone
      }
    };
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const ended = new Promise((r) => proc.once("exit", r));
    signal("SIGTERM");
    const late = setTimeout(() => signal("SIGKILL"), 10000);
    await ended;
    // then samba's own processes, which leave with the group
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(-proc.pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    clearTimeout(late);
  };
  const pwFile = path.join(dir, "bind-password");
  fs.writeFileSync(pwFile, PASSWORD, { mode: 0o600 });
  return { ldap, apply, stop, ca: path.join(tls, "ca.pem"), admin: ADMIN, pwFile };
}
