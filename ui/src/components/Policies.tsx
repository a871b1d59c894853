import { useEffect, useRef, useState } from "react";
import { api, asError, newJobId, onStateChanged, type ApiError, type Notify, type NotifyWhen, type PluginEntry, type PolicyStatus, type Progress, type RepoInfo, type ServiceInfo, type SmtpSecurity, type What } from "../ipc";
import { age, lines } from "../format";
import { PluginSettings } from "../components/PluginSettings";
import { Empty, ErrorBox, TableHead } from "./common";
import OperatorPanel from "./OperatorPanel";
import ServiceRuns from "./ServiceRuns";
import type { Intent } from "../screens/Inventory";

/** What a policy protects, in words. */
function describeWhat(w: What): string {
  switch (w.kind) {
    case "folder": return w.exclude?.length ? `${w.path} (leaving out ${w.exclude.join(", ")})` : w.path;
    case "plugin": return `${w.plugin}: ${w.asset}`;
    case "discovered": return `${w.plugin}: every ${w.asset_kind} it discovers`;
  }
}

/** Who a policy tells, in words. */
function describeNotify(n: Notify | null | undefined): string {
  if (!n) return "—";
  const ways = [n.webhook ? "webhook" : null, n.email ? `mail to ${n.email.to.join(", ")}` : null].filter(Boolean);
  const told = ways.length ? `${ways.join(" and ")} on ${n.when}` : "";
  return [told, n.ping ? "ping every run" : null].filter(Boolean).join("; ");
}

/** The notification settings of the form, or null when none is filled in. */
type NotifyForm = { when: NotifyWhen; webhook: string; ping: string; mailTo: string; mailFrom: string; smtpServer: string; security: SmtpSecurity; smtpUser: string; smtpPasswordFile: string; caFile: string };
const noNotify: NotifyForm = { when: "failure", webhook: "", ping: "", mailTo: "", mailFrom: "", smtpServer: "", security: "starttls", smtpUser: "", smtpPasswordFile: "", caFile: "" };
function notifyOf(f: NotifyForm): Notify | null {
  const to = f.mailTo.split(",").map((t) => t.trim()).filter(Boolean);
  const opt = (v: string) => (v.trim() ? v.trim() : null);
  const email = to.length
    ? { server: f.smtpServer.trim(), security: f.security, from: f.mailFrom.trim(), to, username: opt(f.smtpUser), password_file: opt(f.smtpPasswordFile), ca_file: opt(f.caFile) }
    : null;
  if (!f.webhook.trim() && !f.ping.trim() && !email) return null;
  return { when: f.when, webhook: opt(f.webhook), ping: opt(f.ping), email };
}

/** Protection policies: list, add, run now, remove. */
export default function Policies({ repo, plugins, onRun, intent }: { repo: RepoInfo | null; plugins: PluginEntry[]; onRun: (p: Progress | null, msg: string | null) => void; intent?: Intent | null }) {
  const [list, setList] = useState<PolicyStatus[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [name, setName] = useState("");
  const [source, setSource] = useState("folder");
  const [path, setPath] = useState("");
  const [exclude, setExclude] = useState("");
  const [asset, setAsset] = useState("");
  const [assetKind, setAssetKind] = useState("");
  const [discover, setDiscover] = useState<[string, string][]>([]);
  const [options, setOptions] = useState<[string, string][]>([]);
  const [every, setEvery] = useState(24);
  const [at, setAt] = useState("");
  const [days, setDays] = useState<string[]>([]);
  const [backupWindow, setBackupWindow] = useState("");
  const [cron, setCron] = useState("");
  const addForm = useRef<HTMLDetailsElement>(null);
  // "Protect…" from an inventory row: the form opens with its plugin and asset
  useEffect(() => {
    if (!intent) return;
    setSource(intent.plugin);
    setAsset(intent.asset);
    setAssetKind("");
    setOptions([]);
    setDiscover([]);
    if (addForm.current) {
      addForm.current.open = true;
      addForm.current.scrollIntoView({ block: "start" });
    }
  }, [intent]);
  const [keep, setKeep] = useState({ last: 0, daily: 7, weekly: 4, monthly: 12, yearly: 0 });
  const [copyTo, setCopyTo] = useState("");
  const [copyPassword, setCopyPassword] = useState("");
  const [unlocked, setUnlocked] = useState<string[]>([]);
  const [unlockPw, setUnlockPw] = useState<Record<string, string>>({});
  const [notify, setNotify] = useState<NotifyForm>(noNotify);
  const [service, setService] = useState<ServiceInfo | null>(null);
  const [openRepos, setOpenRepos] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  // bumped at each hand-over, so the service's runs are looked at again
  const [asked, setAsked] = useState(0);
  const load = () => {
    api.copyTargetsUnlocked().then(setUnlocked).catch(() => setUnlocked([]));
    api.serviceStatus().then(setService).catch(() => setService(null));
    api.reposOpen().then(setOpenRepos).catch(() => setOpenRepos([]));
    return api.policies().then(setList).catch((e) => { setList([]); setError(asError(e)); });
  };
  useEffect(() => {
    load();
    return onStateChanged(["policies", "restore-points", "repository"], () => {
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
        source === "folder" ? { kind: "folder", path, exclude: lines(exclude) }
        : assetKind.trim() ? { kind: "discovered", plugin: source, asset_kind: assetKind.trim(), discover, options }
        : { kind: "plugin", plugin: source, asset, options };
      const target = copyTo.trim();
      if (target) {
        // opens the target with the password first: a wrong password or a missing repository stops here
        await api.copyTargetUnlock(target, copyPassword);
      }
      const expr = cron.trim();
      const times = expr ? [] : at.split(",").map((t) => t.trim()).filter(Boolean);
      await api.policySave({ name, what, every_hours: every, at: times, days: times.length ? days : [], window: backupWindow.trim() || null, cron: expr || null, keep, repository: repo.location, tags: [], copy_to: target ? { repository: target } : null, notify: notifyOf(notify) });
      setName("");
      setExclude("");
      setAt("");
      setCron("");
      setDays([]);
      setBackupWindow("");
      setNotify(noNotify);
      setCopyPassword("");
    });
  const runNow = (n: string, repository: string) =>
    guard(async () => {
      // a service for this repository runs it: the job goes on when the window closes
      if (service && service.repository === repository) {
        const r = await api.serviceHandOver(n);
        setAsked((a) => a + 1);
        onRun(null, `Policy ${n} handed to the service (run #${r.id}): it runs there, also after you close this window.`);
        return;
      }
      const r = await api.policyRun(n, newJobId(), (p) => onRun(p, null));
      const copy = r.copy ? (r.copy.error ? ` COPY FAILED: ${r.copy.error}` : `; ${r.copy.copied.length} copied to ${r.copy.repository}`) : "";
      const points = r.restore_points.map((p) => p.short_id).join(", ");
      const warned = r.warnings.length ? `; ${r.warnings.length} warning(s): ${r.warnings.join("; ")}` : "";
      const unsent = r.notify_errors.length ? `; notification not sent: ${r.notify_errors.join("; ")}` : "";
      onRun(null, `Policy ${n}: restore point(s) ${points} saved; retention removed ${r.forgotten.length}${warned}${copy}${unsent}`);
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
      <p className="small" data-testid="service-status">
        {service
          ? <>A Rehydra service runs (process {service.pid}) for <code>{service.repository}</code>: its policies run on schedule with the app closed, and Run now hands the run to it, so it goes on when you close this window (a copy target is opened with the service's password file, not one unlocked here).</>
          : <>No Rehydra service runs: policies back up on schedule only while the app is open. Start <code>rehydra -r REPOSITORY service</code> (or its systemd unit) for unattended runs.</>}
      </p>
      <p className="muted small">
        Retention (GFS) applies to the policy's own restore points, in the repository and in the copy target; <code>rehydra prune</code> frees the space.
        A copy target's password stays in memory for this session only.
      </p>
      <ErrorBox error={error} />
      {list === null ? null : list.length === 0 ? (
        <Empty>No policy yet.</Empty>
      ) : (
        <table data-testid="policy-list">
          <TableHead cols={["Policy", "What", "When", "Keep", "Copy to", "Tells", "Last run", ""]} />
          <tbody>
            {list.map((s) => (
              <tr key={s.policy.name}>
                <td>{s.policy.name}</td>
                <td>{describeWhat(s.policy.what)}</td>
                <td className="small">
                  <span data-testid={`policy-schedule-${s.policy.name}`}>{s.schedule}</span>
                  <div className="muted" data-testid={`policy-upcoming-${s.policy.name}`}>
                    next: {s.upcoming.map((t) => new Date(t).toLocaleString()).join("; ")}
                  </div>
                </td>
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
                <td className="small" data-testid={`policy-notify-${s.policy.name}`}>{describeNotify(s.policy.notify)}</td>
                <td>{s.last_run ? age((Date.now() - Date.parse(s.last_run)) / 3.6e6) : "never"}{s.due ? " · due" : ""}
                  {s.failures > 0 ? (
                    <div className="small" data-testid={`policy-failures-${s.policy.name}`}>
                      failed {s.failures} time(s) in a row{s.retry_after ? `; next attempt after ${new Date(s.retry_after).toLocaleTimeString()}` : ""} (see Job history)
                    </div>
                  ) : null}
                </td>
                <td className="row">
                  <button data-testid={`policy-run-${s.policy.name}`} disabled={busy || !(openRepos.includes(s.policy.repository) || service?.repository === s.policy.repository)} title={openRepos.includes(s.policy.repository) || service?.repository === s.policy.repository ? undefined : `connect to ${s.policy.repository} under Repositories first`} onClick={() => runNow(s.policy.name, s.policy.repository)}>Run now</button>
                  <button data-testid={`policy-remove-${s.policy.name}`} disabled={busy} onClick={() => guard(async () => { await api.policyRemove(s.policy.name); })}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ServiceRuns asked={asked} />
      <OperatorPanel hidden={service !== null} />
      <details ref={addForm} data-testid="policy-add" open={list !== null && list.length === 0 ? true : undefined}>
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
            <>
              <label>Folder <input data-testid="policy-path" value={path} onChange={(e) => setPath(e.target.value)} /></label>
              <label>Leave out (one pattern a line: <code>*.tmp</code> a name anywhere, <code>logs/*.log</code> a path in the folder)
                <textarea data-testid="policy-exclude" rows={2} value={exclude} onChange={(e) => setExclude(e.target.value)} />
              </label>
            </>
          ) : (
            <>
              <label>Asset id <input data-testid="policy-asset" value={asset} disabled={!!assetKind.trim()} onChange={(e) => setAsset(e.target.value)} /></label>
              <label>…or every asset of this kind it discovers at each run (e.g. <code>vault</code>)
                <input data-testid="policy-asset-kind" value={assetKind} onChange={(e) => setAssetKind(e.target.value)} />
              </label>
              {assetKind.trim() ? <PluginSettings plugin={source} verb="discover" testid="policy-discover-settings" value={discover} onChange={setDiscover} /> : null}
              <PluginSettings plugin={source} verb="backup" testid="policy-settings" value={options} onChange={setOptions} />
            </>
          )}
          <label>Cron expression (optional: minute hour day-of-month month day-of-week, e.g. <code>0 2 * * 1-5</code>; replaces the times below)
            <input data-testid="policy-cron" placeholder="0 2 * * 1-5" value={cron} onChange={(e) => setCron(e.target.value)} />
          </label>
          {cron.trim() ? null : (
          <label>At (times of day, HH:MM, comma-separated; empty: every N hours)
            <input data-testid="policy-at" placeholder="02:00" value={at} onChange={(e) => setAt(e.target.value)} />
          </label>
          )}
          {cron.trim() ? null : at.trim() ? (
            <fieldset className="row" data-testid="policy-days">
              <legend>On (none ticked: every day)</legend>
              {["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map((d) => (
                <label key={d}>
                  <input type="checkbox" checked={days.includes(d)} onChange={(e) => setDays(e.target.checked ? [...days, d] : days.filter((x) => x !== d))} /> {d}
                </label>
              ))}
            </fieldset>
          ) : (
            <label>Every (hours) <input type="number" min={1} value={every} onChange={(e) => setEvery(Number(e.target.value) || 24)} /></label>
          )}
          <label>Backup window (optional, HH:MM-HH:MM; a run due outside it waits)
            <input placeholder="22:00-06:00" value={backupWindow} onChange={(e) => setBackupWindow(e.target.value)} />
          </label>
          <div className="row">{(["last", "daily", "weekly", "monthly", "yearly"] as const).map(num)}</div>
          <label>Copy to repository (optional: another disk, share or cloud repository, created beforehand)
            <input data-testid="policy-copy-to" value={copyTo} onChange={(e) => setCopyTo(e.target.value)} />
          </label>
          {copyTo.trim() ? (
            <label>Its password <input data-testid="policy-copy-password" type="password" value={copyPassword} onChange={(e) => setCopyPassword(e.target.value)} /></label>
          ) : null}
          <details data-testid="policy-notify">
            <summary>Tell people (optional)</summary>
            <label>When
              <select data-testid="policy-notify-when" value={notify.when} onChange={(e) => setNotify({ ...notify, when: e.target.value as NotifyWhen })}>
                <option value="failure">when a run fails</option>
                <option value="warnings">when a run fails or has warnings</option>
                <option value="always">after every run</option>
              </select>
            </label>
            <label>Webhook (the run is POSTed there as JSON)
              <input data-testid="policy-webhook" placeholder="https://…" value={notify.webhook} onChange={(e) => setNotify({ ...notify, webhook: e.target.value })} />
            </label>
            <label>Ping URL (called after every run, /fail appended on failure)
              <input placeholder="https://hc-ping.com/…" value={notify.ping} onChange={(e) => setNotify({ ...notify, ping: e.target.value })} />
            </label>
            <label>Mail to (comma-separated) <input value={notify.mailTo} onChange={(e) => setNotify({ ...notify, mailTo: e.target.value })} /></label>
            {notify.mailTo.trim() ? (
              <>
                <label>From <input value={notify.mailFrom} onChange={(e) => setNotify({ ...notify, mailFrom: e.target.value })} /></label>
                <label>SMTP server (host or host:port) <input value={notify.smtpServer} onChange={(e) => setNotify({ ...notify, smtpServer: e.target.value })} /></label>
                <label>Security
                  <select value={notify.security} onChange={(e) => setNotify({ ...notify, security: e.target.value as SmtpSecurity })}>
                    <option value="starttls">STARTTLS (587)</option>
                    <option value="tls">TLS (465)</option>
                    <option value="none">none: a trusted relay only (25)</option>
                  </select>
                </label>
                <label>User (optional) <input value={notify.smtpUser} onChange={(e) => setNotify({ ...notify, smtpUser: e.target.value })} /></label>
                <label>Password file (its first line; read at each send, never stored) <input value={notify.smtpPasswordFile} onChange={(e) => setNotify({ ...notify, smtpPasswordFile: e.target.value })} /></label>
                <label>Extra CA file (PEM, optional) <input value={notify.caFile} onChange={(e) => setNotify({ ...notify, caFile: e.target.value })} /></label>
              </>
            ) : null}
          </details>
          <button data-testid="policy-save" disabled={busy || !name} onClick={save}>Save policy</button>
        </div>
      </details>
    </div>
  );
}
