import { Fragment, useEffect, useRef, useState } from "react";
import { api, asError, newJobId, onStateChanged, type ApiError, type BackupOutcome, type JobRun, type PluginEntry, type Progress, type RepoInfo } from "../ipc";
import { bytes, lines } from "../format";
import { PluginSettings } from "../components/PluginSettings";
import { Empty, ErrorBox, ProgressBar, TableHead } from "../components/common";
import Policies from "../components/Policies";
import type { Intent } from "./Inventory";

export default function Protection({ repo, onChange, intent }: { repo: RepoInfo | null; onChange: () => void; intent?: Intent | null }) {
  const [path, setPath] = useState("");
  const [tags, setTags] = useState("");
  const [exclude, setExclude] = useState("");
  const [progress, setProgress] = useState<Progress | null>(null);
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [history, setHistory] = useState<JobRun[] | null>(null);
  const [logs, setLogs] = useState<Record<number, string[]>>({});
  const toggleLog = (id: number) => {
    if (logs[id] !== undefined) {
      const { [id]: _, ...rest } = logs;
      setLogs(rest);
      return;
    }
    api.jobLog(id).then((l) => setLogs((m) => ({ ...m, [id]: l }))).catch((e) => setLogs((m) => ({ ...m, [id]: [`error: ${asError(e).message}`] })));
  };
  const job = useRef("");
  // every repository's jobs in one list, each with the repository it ran on
  const [where, setWhere] = useState<Record<string, string>>({});
  const loadHistory = () => {
    api.repoRecent().then((k) => setWhere(Object.fromEntries(k.map((r) => [r.id, r.location])))).catch(() => setWhere({}));
    return api.jobHistory(50).then(setHistory).catch(() => setHistory([]));
  };
  useEffect(() => {
    loadHistory();
    // jobs started elsewhere (the policy runner, another screen) show up as they end
    return onStateChanged(["restore-points", "jobs"], () => {
      loadHistory();
    });
  }, []);
  const [plugins, setPlugins] = useState<PluginEntry[]>([]);
  const [plugin, setPlugin] = useState("");
  const [asset, setAsset] = useState("");
  const [options, setOptions] = useState<[string, string][]>([]);
  const assetCard = useRef<HTMLDivElement>(null);
  // "Back up now" from an inventory row: that plugin and asset, ready to run
  useEffect(() => {
    if (intent?.action !== "backup") return;
    setPlugin(intent.plugin);
    setAsset(intent.asset);
    setOptions([]);
    assetCard.current?.scrollIntoView({ block: "center" });
  }, [intent]);
  useEffect(() => {
    api.plugins().then((p) => {
      setPlugins(p.filter((x) => !x.error));
      if (p.length) setPlugin((cur) => cur || p[0].id);
    }).catch(() => setPlugins([]));
  }, []);
  const run = (start: (job: string) => Promise<BackupOutcome>) => async () => {
    setRunning(true);
    setError(null);
    setResult(null);
    setProgress(null);
    job.current = newJobId();
    try {
      const out = await start(job.current);
      const sn = out.restore_point;
      const unchanged = sn.unchanged_files
        ? ` (${sn.unchanged_files} unchanged files, ${bytes(sn.unchanged_bytes)}, not read again)`
        : "";
      setResult(
        `Restore point ${sn.short_id} saved: ${bytes(sn.bytes - sn.unchanged_bytes)} read${unchanged}, ${bytes(sn.new_bytes)} new` +
          (out.warnings.length ? ` — warnings: ${out.warnings.join("; ")}` : ""),
      );
      onChange();
    } catch (e) {
      setError(asError(e));
    } finally {
      setRunning(false);
      loadHistory();
    }
  };
  return (
    <section aria-labelledby="prot-h">
      <h1 id="prot-h">Protection</h1>
      <div className="card form">
        <h2>Back up now</h2>
        {!repo && <p className="muted">Open a repository first (Repositories).</p>}
        <label>
          Folder or file
          <input data-testid="backup-path" value={path} onChange={(e) => setPath(e.target.value)} placeholder="/srv/data" />
        </label>
        <label>
          Tags (comma-separated)
          <input value={tags} onChange={(e) => setTags(e.target.value)} />
        </label>
        <label>
          Leave out (one pattern a line: <code>*.tmp</code> a name anywhere, <code>logs/*.log</code> a path in the folder)
          <textarea data-testid="backup-exclude" rows={2} value={exclude} onChange={(e) => setExclude(e.target.value)} />
        </label>
        <div className="row">
          <button
            data-testid="backup-run"
            disabled={!repo || !path || running}
            onClick={run((j) => api.backupFolder(path, tags.split(",").map((t) => t.trim()).filter(Boolean), lines(exclude), j, setProgress))}
          >
            Run now
          </button>
          <button disabled={!running} onClick={() => api.cancelJob(job.current)}>
            Cancel
          </button>
        </div>
        <ProgressBar p={progress} />
        {result && (
          <p data-testid="backup-result" role="status">
            {result}
          </p>
        )}
        <ErrorBox error={error} />
      </div>
      <div className="card form" ref={assetCard}>
        <h2>Back up a workload asset now</h2>
        {plugins.length === 0 ? (
          <p className="muted">No plugin is installed: VMs, Trusted launch keys and node folders are protected through plugins.</p>
        ) : (
          <>
            <label>
              Plugin
              <select value={plugin} onChange={(e) => { setPlugin(e.target.value); setOptions([]); }}>
                {plugins.map((p) => <option key={p.id} value={p.id}>{p.id}</option>)}
              </select>
            </label>
            <label>
              Asset id (as the Inventory shows it after discovery)
              <input data-testid="plugin-asset" value={asset} onChange={(e) => setAsset(e.target.value)} />
            </label>
            <PluginSettings plugin={plugin} verb="backup" testid="backup-settings" value={options} onChange={setOptions} />
            <button data-testid="plugin-backup-run" disabled={!repo || !plugin || !asset || running} onClick={run((j) => api.pluginBackup(plugin, asset, options, j, setProgress))}>
              Run now
            </button>
          </>
        )}
      </div>
      <Policies
        repo={repo}
        plugins={plugins}
        intent={intent?.action === "protect" ? intent : null}
        onRun={(p, msg) => {
          setProgress(p);
          if (msg) {
            setResult(msg);
            onChange();
            loadHistory();
          }
        }}
      />
      <div className="card">
        <h2>Job history</h2>
        {history === null ? null : history.length === 0 ? (
          <Empty>No job has run yet.</Empty>
        ) : (
          <table data-testid="job-history">
            <TableHead cols={["Started", "Repository", "Kind", "Status", "Bytes", "Message"]} />
            <tbody>
              {history.map((j) => (
                <Fragment key={j.id}>
                  <tr data-testid="job-row" data-kind={j.kind}>
                    <td>{new Date(j.started).toLocaleString()}</td>
                    <td className="small" data-testid="job-repository">{j.repository_id ? (where[j.repository_id] ?? j.repository_id.slice(0, 12)) : "—"}</td>
                    <td>{j.kind}</td>
                    <td>{j.status}</td>
                    <td>{bytes(j.bytes)}</td>
                    <td>
                      {j.message}{" "}
                      <button className="chip" data-testid="job-log-toggle" aria-expanded={logs[j.id] !== undefined} onClick={() => toggleLog(j.id)}>
                        {logs[j.id] !== undefined ? "Hide log" : "Log"}
                      </button>
                    </td>
                  </tr>
                  {logs[j.id] !== undefined && (
                    <tr>
                      <td colSpan={6}>
                        <pre className="detail" data-testid="job-log">{logs[j.id].length ? logs[j.id].join("\n") : "(no log lines)"}</pre>
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
