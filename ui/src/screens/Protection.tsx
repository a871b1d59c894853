import { useEffect, useRef, useState } from "react";
import { api, asError, newJobId, type ApiError, type JobRun, type Progress, type RepoInfo } from "../ipc";
import { bytes } from "../format";
import { Empty, ErrorBox, ProgressBar } from "../components/common";

export default function Protection({ repo, onChange }: { repo: RepoInfo | null; onChange: () => void }) {
  const [path, setPath] = useState("");
  const [tags, setTags] = useState("");
  const [progress, setProgress] = useState<Progress | null>(null);
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [history, setHistory] = useState<JobRun[] | null>(null);
  const job = useRef("");
  const loadHistory = () => api.jobHistory(50).then(setHistory).catch(() => setHistory([]));
  useEffect(() => {
    loadHistory();
  }, []);
  const run = async () => {
    setRunning(true);
    setError(null);
    setResult(null);
    setProgress(null);
    job.current = newJobId();
    try {
      const out = await api.backupFolder(
        path,
        tags.split(",").map((t) => t.trim()).filter(Boolean),
        job.current,
        setProgress,
      );
      setResult(
        `Restore point ${out.snapshot.short_id} saved: ${bytes(out.snapshot.bytes)} read, ${bytes(out.snapshot.new_bytes)} new` +
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
        <div className="row">
          <button data-testid="backup-run" disabled={!repo || !path || running} onClick={run}>
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
      <div className="card">
        <h2>Policies</h2>
        <p className="muted">
          Not in this build: schedules, GFS retention and copy targets are run from the CLI today (a timer running{" "}
          <code>rehydra backup …</code> and <code>rehydra forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --prune</code>).
        </p>
      </div>
      <div className="card">
        <h2>Job history</h2>
        {history === null ? null : history.length === 0 ? (
          <Empty>No job has run yet.</Empty>
        ) : (
          <table data-testid="job-history">
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Bytes</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {history.map((j) => (
                <tr key={j.id}>
                  <td>{j.started}</td>
                  <td>{j.kind}</td>
                  <td>{j.status}</td>
                  <td>{bytes(j.bytes)}</td>
                  <td>{j.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
