import { type ReactNode, useEffect, useState } from "react";
import { api, asError, type ApiError, type Directory, type KubeClusterView, type PasswordSource, type SqlServer, type Target } from "../ipc";
import { Empty, ErrorBox, TableHead } from "./common";

type PasswordKind = "file" | "env" | "keychain";

/** Where a password is kept, as the admin reads it (never the password). */
function passwordWhere(p: PasswordSource): string {
  if ("file" in p) return `file ${p.file}`;
  if ("env" in p) return `environment variable ${p.env}`;
  return `keychain ${p.keychain.service}/${p.keychain.user}`;
}

/** Where a new connection's password is kept: the form's three fields. */
type PasswordForm = { kind: PasswordKind; where: string; user: string };

function passwordSource(f: PasswordForm): PasswordSource {
  return f.kind === "file" ? { file: f.where } : f.kind === "env" ? { env: f.where } : { keychain: { service: f.where, user: f.user } };
}

function PasswordFields({ form, onChange, testid }: { form: PasswordForm; onChange: (f: PasswordForm) => void; testid: string }) {
  return (
    <>
      <label>
        Password from
        <select data-testid={`${testid}-pw-kind`} value={form.kind} onChange={(e) => onChange({ ...form, kind: e.target.value as PasswordKind })}>
          <option value="file">a file only its owner can read</option>
          <option value="env">an environment variable</option>
          <option value="keychain">the OS keychain</option>
        </select>
      </label>
      <label>
        {form.kind === "file" ? "Password file" : form.kind === "env" ? "Environment variable" : "Keychain service"}
        <input data-testid={`${testid}-pw-where`} value={form.where} onChange={(e) => onChange({ ...form, where: e.target.value })} />
      </label>
      {form.kind === "keychain" && (
        <label>Keychain user<input value={form.user} onChange={(e) => onChange({ ...form, user: e.target.value })} /></label>
      )}
    </>
  );
}

/** Kept connections: "nothing yet", or a table with a row each (cells in `cols` order). */
function Listed<T>({ rows, empty, testid, cols, row }: { rows: T[] | null; empty: string; testid: string; cols: string[]; row: (r: T) => ReactNode[] }) {
  if (rows === null) return null;
  if (rows.length === 0) return <Empty>{empty}</Empty>;
  return (
    <table data-testid={testid}>
      <TableHead cols={cols} />
      <tbody>
        {rows.map((r, n) => (
          <tr key={n}>
            {row(r).map((c, i) => (
              <td key={i}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const NO_PASSWORD: PasswordForm = { kind: "file", where: "", user: "" };

/** What a directory and a SQL Server instance both say: their name, where to connect, the
 * password's place and the CA certificates. */
function reached(f: { name: string; address: string; pw: PasswordForm; ca: string }) {
  return { name: f.name.trim(), address: f.address.trim() || null, password: passwordSource(f.pw), "ca-file": f.ca.trim() || null };
}

/** How a directory is bound to and where its password is, as its list row says them. */
function directoryBind(d: Directory): [string, string] {
  if (d.kerberos) return [d.bind ? `Kerberos, only as ${d.bind}` : "Kerberos, as the account Rehydra runs as", "no password kept"];
  return [d.bind, d.password ? passwordWhere(d.password) : "none (add it again)"];
}

/** Who signs in to an instance and where its password is, as its list row says them. */
function sqlLogin(q: SqlServer): [string, string] {
  if (q.via) return [`the account commands run as on ${q.via}`, "no password kept"];
  if (q.kind === "integrated") {
    const only = q.login ? `, only as ${q.login}` : "";
    return [`the account Rehydra runs as (Kerberos on Linux, NTLM on Windows)${only}`, "no password kept"];
  }
  if (q.kind === "entra") return ["your Azure sign-in (Microsoft Entra ID)", "no password kept"];
  return [q.kind === "windows" ? `Windows ${q.login}` : q.login, q.password ? passwordWhere(q.password) : "none (add it again)"];
}

/** A form's fields in one state: `text("f")` and `box("f")` wire an input to field `f`. */
function useForm<T extends Record<string, unknown>>(initial: T) {
  const [form, setForm] = useState<T>(initial);
  const set = <K extends keyof T>(k: K, v: T[K]) => setForm((f) => ({ ...f, [k]: v }));
  const text = (k: { [K in keyof T]: T[K] extends string ? K : never }[keyof T]) => ({
    value: form[k] as string,
    onChange: (e: { target: { value: string } }) => set(k, e.target.value as T[typeof k]),
  });
  const box = (k: { [K in keyof T]: T[K] extends boolean ? K : never }[keyof T]) => ({
    type: "checkbox",
    checked: form[k] as boolean,
    onChange: (e: { target: { checked: boolean } }) => set(k, e.target.checked as T[typeof k]),
  });
  return { form, set, text, box };
}

/**
 * Settings → Connections: the LDAP directories (`ldap:<name>`) and SQL Server instances
 * (`sql:<name>`) plugins may be granted, the Kubernetes clusters reached with a
 * kubeconfig, and the command targets plugins run programs on, as
 * `rehydra plugins directory …`, `… sql-server …`, `… kube-cluster …` and `… target …`
 * manage them. A new directory is bound to, a new instance signed in to, and a new
 * cluster's kubeconfig read, before it is kept.
 */
export default function Connections() {
  const [dirs, setDirs] = useState<Directory[] | null>(null);
  const [targets, setTargets] = useState<Target[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [result, setResult] = useState("");
  const [busy, setBusy] = useState(false);
  const dir = useForm({ name: "", address: "", starttls: false, kerberos: false, bind: "", pw: NO_PASSWORD, ca: "", check: true });
  // ("via": integrated, through PowerShell on a command target)
  const sql = useForm({ name: "", address: "", kind: "sql" as SqlServer["kind"] | "via", login: "", onlyAs: "", via: "local", audience: "", pw: NO_PASSWORD, ca: "", check: true });
  const [sqls, setSqls] = useState<SqlServer[] | null>(null);
  const [kubes, setKubes] = useState<KubeClusterView[] | null>(null);
  const kube = useForm({ name: "", config: "", context: "" });
  const tgt = useForm({
    name: "",
    ssh: "",
    shell: "windows" as Target["shell"],
    identity: "",
    clustered: false,
    nodes: "",
    knownHosts: "",
  });
  // a refresh that found new nodes: shown, pinned only when the admin says so
  const [proposal, setProposal] = useState<{ name: string; added: string[] } | null>(null);

  const load = async () => {
    try {
      setDirs(await api.directories());
      setSqls(await api.sqlServers());
      setKubes(await api.kubeClusters());
      setTargets(await api.targets());
    } catch (e) {
      setError(asError(e));
    }
  };
  useEffect(() => {
    load();
  }, []);

  const act = async (f: () => Promise<string>) => {
    setBusy(true);
    setError(null);
    setResult("");
    try {
      // the lists are read again before the result is said, so what it says is shown
      const said = await f();
      await load();
      setResult(said);
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };

  const remove = (what: string, name: string, f: (name: string) => Promise<boolean>) =>
    act(async () => ((await f(name)) ? `${what} ${name} removed` : "nothing to remove"));

  const addDirectory = () =>
    act(() => {
      const f = dir.form;
      // with Kerberos no password is kept, and `bind` pins the principal
      const kerberos = f.kerberos ? { password: null } : {};
      return api.directoryAdd({ ...reached(f), starttls: f.starttls, kerberos: f.kerberos, bind: f.bind.trim(), ...kerberos }, f.check);
    });
  const addSql = () =>
    act(() => {
      const f = sql.form;
      // signed in as the account Rehydra runs as, no password is kept (the login, if any, is
      // the only one the instance may sign it in as)
      if (f.kind === "via") {
        // PowerShell there signs in as its account and checks the certificate with that machine's trust
        return api.sqlServerAdd({ ...reached(f), address: null, kind: "integrated", login: "", password: null, "ca-file": null, via: f.via }, f.check);
      }
      // Entra: the Azure sign-in's token for the instance, no login or password kept
      const integrated =
        f.kind === "integrated" ? { login: f.onlyAs.trim(), password: null } : f.kind === "entra" ? { login: "", password: null, audience: f.audience || null } : { login: f.login.trim() };
      return api.sqlServerAdd({ ...reached(f), kind: f.kind, ...integrated }, f.check);
    });
  const addKube = () =>
    act(async () => {
      const f = kube.form;
      const v = await api.kubeClusterAdd({ name: f.name.trim(), kubeconfig: f.config.trim(), context: f.context.trim() || null, server: null });
      return `cluster ${v.cluster.name} kept: ${v.server ?? ""}, signing in with ${v.sign_in ?? ""}`;
    });
  const addTarget = () =>
    act(async () => {
      const f = tgt.form;
      const n = f.name.trim();
      const kept = await api.targetAdd({
        name: n,
        ssh: f.ssh.trim(),
        port: null,
        identity: f.identity.trim() || null,
        known_hosts: f.knownHosts.trim() || null,
        shell: f.shell,
        powershell: f.shell === "windows" ? "powershell" : "pwsh",
        cluster: f.clustered,
        nodes: f.clustered ? f.nodes.split(",").map((x) => x.trim()).filter(Boolean) : [],
      });
      const of = f.clustered ? ` (which covers its cluster's nodes ${(kept.target.nodes ?? []).join(", ")}, as ${n}/<node>)` : "";
      const odd = kept.left_out.length ? `; not host names, not pinned: ${kept.left_out.join(", ")}` : "";
      return `command target ${n} kept; grant it with command:<program>@${n}${of}${odd}`;
    });

  return (
    <div data-testid="connections">
      <ErrorBox error={error} />
      {result && <p data-testid="connections-result">{result}</p>}
      <div className="card">
        <h2>Directories</h2>
        <p className="small muted">
          LDAP directories plugins may be granted as <code>ldap:&lt;name&gt;</code>. Rehydra binds over LDAPS (or StartTLS), checks the
          server's certificate, and keeps only where the password is, or binds with Kerberos and keeps none: plugins never see it.
        </p>
        <Listed
          rows={dirs}
          empty="No directory yet."
          testid="directories"
          cols={["Name", "Connection", "Bind as", "Password from", ""]}
          row={(d) => [
            d.name,
            <>{d.starttls ? "StartTLS" : "LDAPS"} to {d.address ?? d.name}{d["ca-file"] ? `, CA ${d["ca-file"]}` : ""}</>,
            ...directoryBind(d),
            <>
              <button disabled={busy} onClick={() => act(() => api.directoryCheck(d.name))}>Check</button>{" "}
              <button disabled={busy} onClick={() => remove("directory", d.name, api.directoryRemove)}>
                Remove
              </button>
            </>,
          ]}
        />
        <h3>Add a directory</h3>
        <label>Name (host or host:port, as grants name it)<input data-testid="dir-name" {...dir.text("name")} placeholder="dc1.contoso.local" /></label>
        <label>Connect to (optional host:port)<input data-testid="dir-address" {...dir.text("address")} /></label>
        <label><input {...dir.box("starttls")} /> StartTLS on port 389 instead of LDAPS</label>
        <label>
          <input data-testid="dir-kerberos" {...dir.box("kerberos")} /> Kerberos as the account Rehydra runs as (the name must be the DC's
          host name; no password is kept)
        </label>
        {dir.form.kerberos ? (
          <label>
            Only as this principal (optional: user@REALM; else whichever the account's ticket is)
            <input data-testid="dir-principal" {...dir.text("bind")} placeholder="svc-rehydra@CONTOSO.LOCAL" />
          </label>
        ) : (
          <>
            <label>Bind as (user@domain or DN)<input data-testid="dir-bind" {...dir.text("bind")} placeholder="svc-rehydra@contoso.local" /></label>
            <PasswordFields form={dir.form.pw} onChange={(pw) => dir.set("pw", pw)} testid="dir" />
          </>
        )}
        <label>CA certificates (PEM; default: the system's roots)<input data-testid="dir-ca" {...dir.text("ca")} /></label>
        <label><input data-testid="dir-check" {...dir.box("check")} /> Bind and read the directory before keeping it</label>
        <button data-testid="dir-add" disabled={busy} onClick={addDirectory}>{busy ? "Working…" : "Add directory"}</button>
      </div>
      <div className="card">
        <h2>SQL Server instances</h2>
        <p className="small muted">
          Instances plugins may be granted as <code>sql:&lt;name&gt;</code>. Rehydra signs in over TLS (the certificate checked), and
          keeps only where the password is, or signs in as the account it runs as and keeps none: plugins never see the login.
        </p>
        <Listed
          rows={sqls}
          empty="No SQL Server instance yet."
          testid="sql-servers"
          cols={["Name", "Connection", "Login", "Password from", ""]}
          row={(q) => [
            q.name,
            q.via ? (
              <>TLS to {q.address ?? q.name} from {q.via === "local" ? "this machine's PowerShell 7" : `command target ${q.via}`}</>
            ) : (
              <>TLS to {q.address ?? q.name}{q["ca-file"] ? `, CA ${q["ca-file"]}` : ""}</>
            ),
            ...sqlLogin(q),
            <>
              <button data-testid={`sql-check-${q.name}`} disabled={busy} onClick={() => act(() => api.sqlServerCheck(q.name))}>Check</button>{" "}
              <button data-testid={`sql-remove-${q.name}`} disabled={busy} onClick={() => remove("SQL Server", q.name, api.sqlServerRemove)}>
                Remove
              </button>
            </>,
          ]}
        />
        <h3>Add a SQL Server instance</h3>
        <label>Name (host or host:port, as grants name it)<input data-testid="sql-name" {...sql.text("name")} placeholder="sql01.contoso.local" /></label>
        {sql.form.kind !== "via" && (
          <label>Connect to (optional host:port; default port 1433)<input data-testid="sql-address" {...sql.text("address")} /></label>
        )}
        <label>
          Sign in with
          <select data-testid="sql-kind" value={sql.form.kind} onChange={(e) => sql.set("kind", e.target.value as SqlServer["kind"] | "via")}>
            <option value="sql">a SQL Server login</option>
            <option value="windows">a Windows account and its password (DOMAIN\user; NTLM on Windows, Kerberos on Linux)</option>
            <option value="integrated">the account Rehydra runs as, no password kept (Kerberos on Linux, NTLM on Windows)</option>
            <option value="entra">your Azure sign-in (Microsoft Entra ID), no password kept</option>
            <option value="via">PowerShell on a command target, as the account commands run as there (no password kept)</option>
          </select>
        </label>
        {sql.form.kind === "via" ? (
          <>
            <p className="small muted">
              Each batch runs there with PowerShell's SQL client (System.Data.SqlClient), connecting to the name over TLS checked by that
              machine's trust, signed in as the account commands run as there: for an instance on that machine (a key-signed SSH session
              on Windows has no network credentials for another). No Attention stops a batch given up on this way.
            </p>
            <label>
              Command target
              <select data-testid="sql-via" value={sql.form.via} onChange={(e) => sql.set("via", e.target.value)}>
                <option value="local">this machine (PowerShell 7, pwsh)</option>
                {(targets ?? []).map((t) => <option key={t.name} value={t.name}>{t.name} ({t.ssh})</option>)}
              </select>
            </label>
          </>
        ) : sql.form.kind === "entra" ? (
          <>
            <p className="small muted">
              Each connection signs in with an access token of the Azure sign-in (Settings → Azure) for Azure SQL's audience. The
              instance must accept Microsoft Entra logins (Azure Arc-enabled SQL Server 2022 and later, SQL Managed Instance) and
              have a login for that identity. The token is good for every Azure SQL database the identity may reach: give it only to
              instances you trust as much.
            </p>
            <label>
              Cloud
              <select data-testid="sql-audience" value={sql.form.audience} onChange={(e) => sql.set("audience", e.target.value)}>
                <option value="">Azure (https://database.windows.net/)</option>
                <option value="https://database.usgovcloudapi.net/.default">Azure US Government</option>
                <option value="https://database.chinacloudapi.cn/.default">Azure China</option>
              </select>
            </label>
          </>
        ) : sql.form.kind === "integrated" ? (
          <>
            <p className="small muted">
              The name must be the instance's full host name (the certificate is checked against it). On Linux the account needs a
              Kerberos ticket (kinit; for the service, a client keytab named by <code>KRB5_CLIENT_KTNAME</code>) for the instance's
              service principal <code>MSSQLSvc/&lt;host&gt;:&lt;port&gt;</code>; on Windows it signs in through NTLM.
            </p>
            <label>
              Only as this login (optional: DOMAIN\user; checked before anything else is sent)
              <input data-testid="sql-only-as" {...sql.text("onlyAs")} placeholder="CONTOSO\svc-rehydra" />
            </label>
          </>
        ) : (
          <>
            <label>Login<input data-testid="sql-login" {...sql.text("login")} placeholder="svc-rehydra" /></label>
            <PasswordFields form={sql.form.pw} onChange={(pw) => sql.set("pw", pw)} testid="sql" />
          </>
        )}
        {sql.form.kind !== "via" && (
          <label>CA certificates (PEM, added to the system's roots)<input data-testid="sql-ca" {...sql.text("ca")} /></label>
        )}
        <label><input data-testid="sql-check" {...sql.box("check")} /> Sign in before keeping it</label>
        <button data-testid="sql-add" disabled={busy} onClick={addSql}>{busy ? "Working…" : "Add SQL Server instance"}</button>
      </div>
      <div className="card">
        <h2>Kubernetes clusters</h2>
        <p className="small muted">
          API servers reached with the CA and the client certificate or token of a kubeconfig (for example from{" "}
          <code>az aksarc get-credentials --admin</code>). Rehydra keeps where the file is and reads it whenever a plugin runs; plugins
          granted <code>http:&lt;host&gt;:&lt;port&gt;</code> of the server never see the credentials. A kubeconfig that signs in
          through kubelogin gives its CA only: the token then comes from the Azure sign-in with the AKS audience.
        </p>
        <Listed
          rows={kubes}
          empty="No Kubernetes cluster yet."
          testid="kube-clusters"
          cols={["Name", "API server", "Signs in with", "Kubeconfig", ""]}
          row={(k) => [
            k.cluster.name,
            k.server ?? <span className="error">{k.problem}</span>,
            k.sign_in ?? "",
            <>{k.cluster.kubeconfig}{k.cluster.context ? ` (${k.cluster.context})` : ""}</>,
            <button data-testid={`kube-remove-${k.cluster.name}`} disabled={busy} onClick={() => remove("cluster", k.cluster.name, api.kubeClusterRemove)}>
              Remove
            </button>,
          ]}
        />
        <h3>Add a Kubernetes cluster</h3>
        <label>Name<input data-testid="kube-name" {...kube.text("name")} placeholder="aks-a" /></label>
        <label>Kubeconfig file<input data-testid="kube-config" {...kube.text("config")} placeholder="/home/admin/.kube/aks-a.yaml" /></label>
        <label>Context (optional; default its current context)<input data-testid="kube-context" {...kube.text("context")} /></label>
        <button data-testid="kube-add" disabled={busy} onClick={addKube}>{busy ? "Working…" : "Add Kubernetes cluster"}</button>
      </div>
      <div className="card">
        <h2>Command targets</h2>
        <p className="small muted">Machines plugins run programs or PowerShell on, over SSH (granted as <code>command:&lt;program&gt;@&lt;name&gt;</code>).</p>
        <Listed
          rows={targets}
          empty="No command target yet."
          testid="targets"
          cols={["Name", "SSH", "Shell", ""]}
          row={(t) => [
            t.name,
            <>{t.ssh}{t.port ? `:${t.port}` : ""}{t.identity ? ` (key ${t.identity})` : ""}</>,
            <>{t.shell}{t.cluster ? `; cluster: nodes ${(t.nodes ?? []).join(", ")} as ${t.name}/<node>` : ""}</>,
            <>
              {t.cluster ? (
                <button
                  data-testid={`target-refresh-${t.name}`}
                  disabled={busy}
                  onClick={() =>
                    act(async () => {
                      const r = await api.targetRefresh(t.name, false);
                      const gone = r.removed.length ? `; no longer listed, unpinned: ${r.removed.join(", ")}` : "";
                      if (!r.pinned) {
                        setProposal({ name: t.name, added: r.added });
                        return `cluster ${t.name} lists new nodes: check them below before pinning${gone}`;
                      }
                      return `cluster ${t.name}: nodes ${(r.target.nodes ?? []).join(", ")} (pinned)${gone}`;
                    })
                  }
                >
                  Ask for its nodes again
                </button>
              ) : null}
              <button data-testid={`target-remove-${t.name}`} disabled={busy} onClick={() => remove("command target", t.name, api.targetRemove)}>
                Remove
              </button>
            </>,
          ]}
        />
        {proposal ? (
          <div className="card" data-testid="target-proposal">
            <p>
              Cluster <b>{proposal.name}</b> now lists new nodes <b>{proposal.added.join(", ")}</b>. Pin them only if they are this cluster's
              nodes: whoever may run PowerShell there can make its answer name any host.
            </p>
            <button
              data-testid="target-pin"
              disabled={busy}
              onClick={() =>
                act(async () => {
                  const r = await api.targetRefresh(proposal.name, true);
                  setProposal(null);
                  return `cluster ${proposal.name}: nodes ${(r.target.nodes ?? []).join(", ")} (pinned)`;
                })
              }
            >
              Pin these nodes
            </button>
            <button disabled={busy} onClick={() => setProposal(null)}>Not now</button>
          </div>
        ) : null}
        <h3>Add a command target</h3>
        <label>Name<input data-testid="target-name" {...tgt.text("name")} placeholder="hv01" /></label>
        <label>SSH destination ([user@]host)<input data-testid="target-ssh" {...tgt.text("ssh")} placeholder="admin@hv01.contoso.local" /></label>
        <label>
          Shell
          <select data-testid="target-shell" value={tgt.form.shell} onChange={(e) => tgt.set("shell", e.target.value as Target["shell"])}>
            <option value="windows">Windows (PowerShell)</option>
            <option value="posix">Linux / POSIX shell</option>
          </select>
        </label>
        <label>Private key (optional)<input {...tgt.text("identity")} /></label>
        <label>
          <input data-testid="target-cluster" {...tgt.box("clustered")} /> One node of a failover
          cluster: it is asked for its nodes (<code>Get-ClusterNode</code>) now, and plugins reach them as <code>&lt;name&gt;/&lt;node&gt;</code>, with
          the same key and known hosts, under the one grant
        </label>
        {tgt.form.clustered ? (
          <>
            <label>
              Known-hosts file of the cluster's own (required: its nodes' host keys; it bounds which hosts a node name can reach)
              <input data-testid="target-known-hosts" {...tgt.text("knownHosts")} placeholder="C:\ProgramData\Rehydra\hci01_known_hosts" />
            </label>
            <label>
              Nodes, if the cluster cannot be asked from here (optional, comma-separated host names)
              <input data-testid="target-nodes" {...tgt.text("nodes")} placeholder="hv01,hv02" />
            </label>
          </>
        ) : null}
        <button data-testid="target-add" disabled={busy} onClick={addTarget}>Add command target</button>
      </div>
    </div>
  );
}
