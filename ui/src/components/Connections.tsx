import { useEffect, useState } from "react";
import { api, asError, type ApiError, type Directory, type Target } from "../ipc";
import { Empty, ErrorBox, TableHead } from "./common";

type PasswordKind = "file" | "env" | "keychain";

/** Where a directory's password is kept, as the admin reads it (never the password). */
function passwordWhere(d: Directory): string {
  const p = d.password;
  if ("file" in p) return `file ${p.file}`;
  if ("env" in p) return `environment variable ${p.env}`;
  return `keychain ${p.keychain.service}/${p.keychain.user}`;
}

/**
 * Settings → Connections: the LDAP directories plugins may be granted (`ldap:<name>`) and
 * the command targets they run programs on, as `rehydra plugins directory …` and
 * `rehydra plugins target …` manage them. A new directory is bound to before it is kept.
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
  const [pwKind, setPwKind] = useState<PasswordKind>("file");
  const [pwWhere, setPwWhere] = useState("");
  const [pwUser, setPwUser] = useState("");
  const [caFile, setCaFile] = useState("");
  const [check, setCheck] = useState(true);
  // a new command target
  const [tName, setTName] = useState("");
  const [ssh, setSsh] = useState("");
  const [shell, setShell] = useState<Target["shell"]>("windows");
  const [identity, setIdentity] = useState("");

  const load = async () => {
    try {
      setDirs(await api.directories());
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
      setResult(await f());
      await load();
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
      const password: Directory["password"] =
        pwKind === "file" ? { file: pwWhere } : pwKind === "env" ? { env: pwWhere } : { keychain: { service: pwWhere, user: pwUser } };
      const d: Directory = {
        name: name.trim(),
        address: address.trim() || null,
        starttls,
        bind: bind.trim(),
        password,
        "ca-file": caFile.trim() || null,
      };
      return api.directoryAdd(d, check);
    });
  const addTarget = () =>
    act(async () => {
      await api.targetAdd({
        name: tName.trim(),
        ssh: ssh.trim(),
        port: null,
        identity: identity.trim() || null,
        known_hosts: null,
        shell,
        powershell: shell === "windows" ? "powershell" : "pwsh",
      });
      return `command target ${tName.trim()} kept; grant it with command:<program>@${tName.trim()}`;
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
                  <td>{passwordWhere(d)}</td>
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
        <label>
          Password from
          <select data-testid="dir-pw-kind" value={pwKind} onChange={(e) => setPwKind(e.target.value as PasswordKind)}>
            <option value="file">a file only its owner can read</option>
            <option value="env">an environment variable</option>
            <option value="keychain">the OS keychain</option>
          </select>
        </label>
        <label>{pwKind === "file" ? "Password file" : pwKind === "env" ? "Environment variable" : "Keychain service"}<input data-testid="dir-pw-where" value={pwWhere} onChange={(e) => setPwWhere(e.target.value)} /></label>
        {pwKind === "keychain" && <label>Keychain user<input value={pwUser} onChange={(e) => setPwUser(e.target.value)} /></label>}
        <label>CA certificates (PEM; default: the system's roots)<input data-testid="dir-ca" value={caFile} onChange={(e) => setCaFile(e.target.value)} /></label>
        <label><input data-testid="dir-check" type="checkbox" checked={check} onChange={(e) => setCheck(e.target.checked)} /> Bind and read the directory before keeping it</label>
        <button data-testid="dir-add" disabled={busy} onClick={addDirectory}>{busy ? "Working…" : "Add directory"}</button>
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
                  <td>{t.shell}</td>
                  <td>
                    <button data-testid={`target-remove-${t.name}`} disabled={busy} onClick={() => remove("command target", t.name, api.targetRemove)}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
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
        <button data-testid="target-add" disabled={busy} onClick={addTarget}>Add command target</button>
      </div>
    </div>
  );
}
