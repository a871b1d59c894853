import { useEffect, useState } from "react";
import { api, asError, newJobId, onStateChanged, type ApiError, type PluginEntry, type PolicyStatus, type Progress, type RepoInfo, type What } from "../ipc";
import { age } from "../format";
import { PluginSettings } from "../components/PluginSettings";
import { Empty, ErrorBox, TableHead } from "./common";

/** What a policy protects, in words. */
function describeWhat(w: What): string {
  switch (w.kind) {
    case "folder": return w.path;
    case "plugin": return `${w.plugin}: ${w.asset}`;
    case "discovered": return `${w.plugin}: every ${w.asset_kind} it discovers`;
  }
}

/** Protection policies: list, add, run now, remove. */
export default function Policies({ repo, plugins, onRun }: { repo: RepoInfo | null; plugins: PluginEntry[]; onRun: (p: Progress | null, msg: string | null) => void }) {
  const [list, setList] = useState<PolicyStatus[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [name, setName] = useState("");
  const [source, setSource] = useState("folder");
  const [path, setPath] = useState("");
  const [asset, setAsset] = useState("");
  const [assetKind, setAssetKind] = useState("");
  const [discover, setDiscover] = useState<[string, string][]>([]);
  const [options, setOptions] = useState<[string, string][]>([]);
  const [every, setEvery] = useState(24);
  const [keep, setKeep] = useState({ last: 0, daily: 7, weekly: 4, monthly: 12, yearly: 0 });
  const [copyTo, setCopyTo] = useState("");
  const [copyPassword, setCopyPassword] = useState("");
  const [unlocked, setUnlocked] = useState<string[]>([]);
  const [unlockPw, setUnlockPw] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const load = () => {
    api.copyTargetsUnlocked().then(setUnlocked).catch(() => setUnlocked([]));
    return api.policies().then(setList).catch((e) => { setList([]); setError(asError(e)); });
  };
  useEffect(() => {
    load();
    return onStateChanged(["policies", "restore-points"], () => {
      load();
    });
  }, []);
  const guard = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try { await f(); } catch (e) { setError(asError(e)); } finally { setBusy(false); load(); }
  };
  const save = () =>
    guard(async () => {
      if (!repo) throw { code: "invalid-input", message: "open the repository the policy backs up into first" };
      const what: What =
        source === "folder" ? { kind: "folder", path }
        : assetKind.trim() ? { kind: "discovered", plugin: source, asset_kind: assetKind.trim(), discover, options }
        : { kind: "plugin", plugin: source, asset, options };
      const target = copyTo.trim();
      if (target) {
        // opens the target with the password first: a wrong password or a missing repository stops here
        await api.copyTargetUnlock(target, copyPassword);
      }
      await api.policySave({ name, what, every_hours: every, keep, repository: repo.location, tags: [], copy_to: target ? { repository: target } : null });
      setName("");
      setCopyPassword("");
    });
  const runNow = (n: string) =>
    guard(async () => {
      const r = await api.policyRun(n, newJobId(), (p) => onRun(p, null));
      const copy = r.copy ? (r.copy.error ? ` COPY FAILED: ${r.copy.error}` : `; ${r.copy.copied.length} copied to ${r.copy.repository}`) : "";
      const points = r.restore_points.map((p) => p.short_id).join(", ");
      const warned = r.warnings.length ? `; ${r.warnings.length} warning(s): ${r.warnings.join("; ")}` : "";
      onRun(null, `Policy ${n}: restore point(s) ${points} saved; retention removed ${r.forgotten.length}${warned}${copy}`);
      if (r.copy?.error) throw { code: "io", message: `Policy ${n}: the backup is saved, but ${r.copy.error}. The next run copies what the target lacks.` };
    });
  const num = (k: keyof typeof keep) => (
    <label key={k}>
      Keep {k}
      <input type="number" min={0} value={keep[k]} onChange={(e) => setKeep({ ...keep, [k]: Number(e.target.value) || 0 })} />
    </label>
  );
  return (
    <div className="card" data-testid="policies">
      <h2>Policies</h2>
      <p className="muted small">
        A policy backs up on its schedule while the app is open; for unattended runs call <code>rehydra policy run --due</code> from a timer.
        Retention (GFS) applies to the policy's own restore points, in the repository and in the copy target; <code>rehydra prune</code> frees the space.
        A copy target's password stays in memory for this session only.
      </p>
      <ErrorBox error={error} />
      {list === null ? null : list.length === 0 ? (
        <Empty>No policy yet.</Empty>
      ) : (
        <table data-testid="policy-list">
          <TableHead cols={["Policy", "What", "Every", "Keep", "Copy to", "Last run", ""]} />
          <tbody>
            {list.map((s) => (
              <tr key={s.policy.name}>
                <td>{s.policy.name}</td>
                <td>{describeWhat(s.policy.what)}</td>
                <td>{s.policy.every_hours} h</td>
                <td className="small">{Object.entries(s.policy.keep).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(", ")}</td>
                <td className="small">
                  {!s.policy.copy_to ? "—" : (
                    <>
                      <span data-testid={`policy-copy-${s.policy.name}`}>{s.policy.copy_to.repository}</span>
                      {s.policy.copy_to.password_file || unlocked.includes(s.policy.copy_to.repository) ? null : (
                        <span className="row">
                          <label>Password of the copy target
                            <input type="password" value={unlockPw[s.policy.name] ?? ""} onChange={(e) => setUnlockPw({ ...unlockPw, [s.policy.name]: e.target.value })} />
                          </label>
                          <button disabled={busy} onClick={() => guard(async () => { await api.copyTargetUnlock(s.policy.copy_to!.repository, unlockPw[s.policy.name] ?? ""); })}>Unlock</button>
                        </span>
                      )}
                    </>
                  )}
                </td>
                <td>{s.last_run ? age((Date.now() - Date.parse(s.last_run)) / 3.6e6) : "never"}{s.due ? " · due" : ""}</td>
                <td className="row">
                  <button data-testid={`policy-run-${s.policy.name}`} disabled={busy || !repo} onClick={() => runNow(s.policy.name)}>Run now</button>
                  <button disabled={busy} onClick={() => guard(async () => { await api.policyRemove(s.policy.name); })}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <details open={list !== null && list.length === 0 ? true : undefined}>
        <summary>Add a policy</summary>
        <div className="form">
          <label>Name <input data-testid="policy-name" value={name} onChange={(e) => setName(e.target.value)} /></label>
          <label>
            What
            <select value={source} onChange={(e) => { setSource(e.target.value); setOptions([]); setDiscover([]); }}>
              <option value="folder">a folder on this machine</option>
              {plugins.map((p) => <option key={p.id} value={p.id}>an asset through {p.id}</option>)}
            </select>
          </label>
          {source === "folder" ? (
            <label>Folder <input data-testid="policy-path" value={path} onChange={(e) => setPath(e.target.value)} /></label>
          ) : (
            <>
              <label>Asset id <input value={asset} disabled={!!assetKind.trim()} onChange={(e) => setAsset(e.target.value)} /></label>
              <label>…or every asset of this kind it discovers at each run (e.g. <code>vault</code>)
                <input data-testid="policy-asset-kind" value={assetKind} onChange={(e) => setAssetKind(e.target.value)} />
              </label>
              {assetKind.trim() ? <PluginSettings plugin={source} verb="discover" testid="policy-discover-settings" value={discover} onChange={setDiscover} /> : null}
              <PluginSettings plugin={source} verb="backup" testid="policy-settings" value={options} onChange={setOptions} />
            </>
          )}
          <label>Every (hours) <input type="number" min={1} value={every} onChange={(e) => setEvery(Number(e.target.value) || 24)} /></label>
          <div className="row">{(["last", "daily", "weekly", "monthly", "yearly"] as const).map(num)}</div>
          <label>Copy to repository (optional: another disk, share or cloud repository, created beforehand)
            <input data-testid="policy-copy-to" value={copyTo} onChange={(e) => setCopyTo(e.target.value)} />
          </label>
          {copyTo.trim() ? (
            <label>Its password <input data-testid="policy-copy-password" type="password" value={copyPassword} onChange={(e) => setCopyPassword(e.target.value)} /></label>
          ) : null}
          <button data-testid="policy-save" disabled={busy || !name} onClick={save}>Save policy</button>
        </div>
      </details>
    </div>
  );
}
