import { useEffect, useState } from "react";
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

const NO_PASSWORD: PasswordForm = { kind: "file", where: "", user: "" };

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
  // a new directory
  const [name, setName] = useState("");
  const [address, setAddress] = useState("");
  const [starttls, setStarttls] = useState(false);
  const [bind, setBind] = useState("");
  const [pw, setPw] = useState<PasswordForm>(NO_PASSWORD);
  const [caFile, setCaFile] = useState("");
  const [check, setCheck] = useState(true);
  // a new SQL Server instance
  const [sqls, setSqls] = useState<SqlServer[] | null>(null);
  const [sName, setSName] = useState("");
  const [sAddress, setSAddress] = useState("");
  const [sKind, setSKind] = useState<SqlServer["kind"]>("sql");
  const [sLogin, setSLogin] = useState("");
  const [sPw, setSPw] = useState<PasswordForm>(NO_PASSWORD);
  const [sCa, setSCa] = useState("");
  const [sCheck, setSCheck] = useState(true);
  // a new Kubernetes cluster
  const [kubes, setKubes] = useState<KubeClusterView[] | null>(null);
  const [kName, setKName] = useState("");
  const [kConfig, setKConfig] = useState("");
  const [kContext, setKContext] = useState("");
  // a new command target
  const [tName, setTName] = useState("");
  const [ssh, setSsh] = useState("");
  const [shell, setShell] = useState<Target["shell"]>("windows");
  const [identity, setIdentity] = useState("");
  const [clustered, setClustered] = useState(false);
  const [nodes, setNodes] = useState("");
  const [knownHosts, setKnownHosts] = useState("");
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
      const d: Directory = {
        name: name.trim(),
        address: address.trim() || null,
        starttls,
        bind: bind.trim(),
        password: passwordSource(pw),
        "ca-file": caFile.trim() || null,
      };
      return api.directoryAdd(d, check);
    });
  const addSql = () =>
    act(() =>
      api.sqlServerAdd(
        {
          name: sName.trim(),
          address: sAddress.trim() || null,
          kind: sKind,
          login: sLogin.trim(),
          password: passwordSource(sPw),
          "ca-file": sCa.trim() || null,
        },
        sCheck,
      ),
    );
  const addKube = () =>
    act(async () => {
      const v = await api.kubeClusterAdd({ name: kName.trim(), kubeconfig: kConfig.trim(), context: kContext.trim() || null, server: null });
      return `cluster ${v.cluster.name} kept: ${v.server ?? ""}, signing in with ${v.sign_in ?? ""}`;
    });
  const addTarget = () =>
    act(async () => {
      const kept = await api.targetAdd({
        name: tName.trim(),
        ssh: ssh.trim(),
        port: null,
        identity: identity.trim() || null,
        known_hosts: knownHosts.trim() || null,
        shell,
        powershell: shell === "windows" ? "powershell" : "pwsh",
        cluster: clustered,
        nodes: clustered ? nodes.split(",").map((x) => x.trim()).filter(Boolean) : [],
      });
      const n = tName.trim();
      const of = clustered ? ` (which covers its cluster's nodes ${(kept.target.nodes ?? []).join(", ")}, as ${n}/<node>)` : "";
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
          server's certificate, and keeps only where the password is: plugins never see it.
        </p>
        {dirs === null ? null : dirs.length === 0 ? (
          <Empty>No directory yet.</Empty>
        ) : (
          <table data-testid="directories">
            <TableHead cols={["Name", "Connection", "Bind as", "Password from", ""]} />
            <tbody>
              {dirs.map((d) => (
                <tr key={d.name}>
                  <td>{d.name}</td>
                  <td>{d.starttls ? "StartTLS" : "LDAPS"} to {d.address ?? d.name}{d["ca-file"] ? `, CA ${d["ca-file"]}` : ""}</td>
                  <td>{d.bind}</td>
                  <td>{passwordWhere(d.password)}</td>
                  <td>
                    <button disabled={busy} onClick={() => act(() => api.directoryCheck(d.name))}>Check</button>{" "}
                    <button disabled={busy} onClick={() => remove("directory", d.name, api.directoryRemove)}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Add a directory</h3>
        <label>Name (host or host:port, as grants name it)<input data-testid="dir-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="dc1.contoso.local" /></label>
        <label>Connect to (optional host:port)<input data-testid="dir-address" value={address} onChange={(e) => setAddress(e.target.value)} /></label>
        <label><input type="checkbox" checked={starttls} onChange={(e) => setStarttls(e.target.checked)} /> StartTLS on port 389 instead of LDAPS</label>
        <label>Bind as (user@domain or DN)<input data-testid="dir-bind" value={bind} onChange={(e) => setBind(e.target.value)} placeholder="svc-rehydra@contoso.local" /></label>
        <PasswordFields form={pw} onChange={setPw} testid="dir" />
        <label>CA certificates (PEM; default: the system's roots)<input data-testid="dir-ca" value={caFile} onChange={(e) => setCaFile(e.target.value)} /></label>
        <label><input data-testid="dir-check" type="checkbox" checked={check} onChange={(e) => setCheck(e.target.checked)} /> Bind and read the directory before keeping it</label>
        <button data-testid="dir-add" disabled={busy} onClick={addDirectory}>{busy ? "Working…" : "Add directory"}</button>
      </div>
      <div className="card">
        <h2>SQL Server instances</h2>
        <p className="small muted">
          Instances plugins may be granted as <code>sql:&lt;name&gt;</code>. Rehydra signs in over TLS (the certificate checked), and
          keeps only where the password is: plugins never see the login.
        </p>
        {sqls === null ? null : sqls.length === 0 ? (
          <Empty>No SQL Server instance yet.</Empty>
        ) : (
          <table data-testid="sql-servers">
            <TableHead cols={["Name", "Connection", "Login", "Password from", ""]} />
            <tbody>
              {sqls.map((q) => (
                <tr key={q.name}>
                  <td>{q.name}</td>
                  <td>TLS to {q.address ?? q.name}{q["ca-file"] ? `, CA ${q["ca-file"]}` : ""}</td>
                  <td>{q.kind === "windows" ? `Windows ${q.login}` : q.login}</td>
                  <td>{passwordWhere(q.password)}</td>
                  <td>
                    <button data-testid={`sql-check-${q.name}`} disabled={busy} onClick={() => act(() => api.sqlServerCheck(q.name))}>Check</button>{" "}
                    <button data-testid={`sql-remove-${q.name}`} disabled={busy} onClick={() => remove("SQL Server", q.name, api.sqlServerRemove)}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Add a SQL Server instance</h3>
        <label>Name (host or host:port, as grants name it)<input data-testid="sql-name" value={sName} onChange={(e) => setSName(e.target.value)} placeholder="sql01.contoso.local" /></label>
        <label>Connect to (optional host:port; default port 1433)<input data-testid="sql-address" value={sAddress} onChange={(e) => setSAddress(e.target.value)} /></label>
        <label>
          Sign in with
          <select data-testid="sql-kind" value={sKind} onChange={(e) => setSKind(e.target.value as SqlServer["kind"])}>
            <option value="sql">a SQL Server login</option>
            <option value="windows">a Windows account (DOMAIN\user; from Windows only)</option>
          </select>
        </label>
        <label>Login<input data-testid="sql-login" value={sLogin} onChange={(e) => setSLogin(e.target.value)} placeholder="svc-rehydra" /></label>
        <PasswordFields form={sPw} onChange={setSPw} testid="sql" />
        <label>CA certificates (PEM, added to the system's roots)<input data-testid="sql-ca" value={sCa} onChange={(e) => setSCa(e.target.value)} /></label>
        <label><input data-testid="sql-check" type="checkbox" checked={sCheck} onChange={(e) => setSCheck(e.target.checked)} /> Sign in before keeping it</label>
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
        {kubes === null ? null : kubes.length === 0 ? (
          <Empty>No Kubernetes cluster yet.</Empty>
        ) : (
          <table data-testid="kube-clusters">
            <TableHead cols={["Name", "API server", "Signs in with", "Kubeconfig", ""]} />
            <tbody>
              {kubes.map((k) => (
                <tr key={k.cluster.name}>
                  <td>{k.cluster.name}</td>
                  <td>{k.server ?? <span className="error">{k.problem}</span>}</td>
                  <td>{k.sign_in ?? ""}</td>
                  <td>{k.cluster.kubeconfig}{k.cluster.context ? ` (${k.cluster.context})` : ""}</td>
                  <td>
                    <button data-testid={`kube-remove-${k.cluster.name}`} disabled={busy} onClick={() => remove("cluster", k.cluster.name, api.kubeClusterRemove)}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Add a Kubernetes cluster</h3>
        <label>Name<input data-testid="kube-name" value={kName} onChange={(e) => setKName(e.target.value)} placeholder="aks-a" /></label>
        <label>Kubeconfig file<input data-testid="kube-config" value={kConfig} onChange={(e) => setKConfig(e.target.value)} placeholder="/home/admin/.kube/aks-a.yaml" /></label>
        <label>Context (optional; default its current context)<input data-testid="kube-context" value={kContext} onChange={(e) => setKContext(e.target.value)} /></label>
        <button data-testid="kube-add" disabled={busy} onClick={addKube}>{busy ? "Working…" : "Add Kubernetes cluster"}</button>
      </div>
      <div className="card">
        <h2>Command targets</h2>
        <p className="small muted">Machines plugins run programs or PowerShell on, over SSH (granted as <code>command:&lt;program&gt;@&lt;name&gt;</code>).</p>
        {targets === null ? null : targets.length === 0 ? (
          <Empty>No command target yet.</Empty>
        ) : (
          <table data-testid="targets">
            <TableHead cols={["Name", "SSH", "Shell", ""]} />
            <tbody>
              {targets.map((t) => (
                <tr key={t.name}>
                  <td>{t.name}</td>
                  <td>{t.ssh}{t.port ? `:${t.port}` : ""}{t.identity ? ` (key ${t.identity})` : ""}</td>
                  <td>{t.shell}{t.cluster ? `; cluster: nodes ${(t.nodes ?? []).join(", ")} as ${t.name}/<node>` : ""}</td>
                  <td>
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
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
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
        <label>Name<input data-testid="target-name" value={tName} onChange={(e) => setTName(e.target.value)} placeholder="hv01" /></label>
        <label>SSH destination ([user@]host)<input data-testid="target-ssh" value={ssh} onChange={(e) => setSsh(e.target.value)} placeholder="admin@hv01.contoso.local" /></label>
        <label>
          Shell
          <select data-testid="target-shell" value={shell} onChange={(e) => setShell(e.target.value as Target["shell"])}>
            <option value="windows">Windows (PowerShell)</option>
            <option value="posix">Linux / POSIX shell</option>
          </select>
        </label>
        <label>Private key (optional)<input value={identity} onChange={(e) => setIdentity(e.target.value)} /></label>
        <label>
          <input data-testid="target-cluster" type="checkbox" checked={clustered} onChange={(e) => setClustered(e.target.checked)} /> One node of a failover
          cluster: it is asked for its nodes (<code>Get-ClusterNode</code>) now, and plugins reach them as <code>&lt;name&gt;/&lt;node&gt;</code>, with
          the same key and known hosts, under the one grant
        </label>
        {clustered ? (
          <>
            <label>
              Known-hosts file of the cluster's own (required: its nodes' host keys; it bounds which hosts a node name can reach)
              <input data-testid="target-known-hosts" value={knownHosts} onChange={(e) => setKnownHosts(e.target.value)} placeholder="C:\ProgramData\Rehydra\hci01_known_hosts" />
            </label>
            <label>
              Nodes, if the cluster cannot be asked from here (optional, comma-separated host names)
              <input data-testid="target-nodes" value={nodes} onChange={(e) => setNodes(e.target.value)} placeholder="hv01,hv02" />
            </label>
          </>
        ) : null}
        <button data-testid="target-add" disabled={busy} onClick={addTarget}>Add command target</button>
      </div>
    </div>
  );
}
