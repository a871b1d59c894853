import { useEffect, useState } from "react";
import { api, asError, type ApiError, type KnownRepository, type RepoInfo } from "../ipc";
import { ErrorBox } from "../components/common";

export default function Repositories({ repo, onChange }: { repo: RepoInfo | null; onChange: () => void }) {
  const [location, setLocation] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [check, setCheck] = useState<string | null>(null);
  const [storage, setStorage] = useState<string | null>(null);
  const [keepPassword, setKeepPassword] = useState(false);
  const [kept, setKept] = useState<string | null>(null);
  const [recent, setRecent] = useState<KnownRepository[]>([]);
  const [open, setOpen] = useState<string[]>([]);
  useEffect(() => {
    api.defaultLocation().then((l) => setLocation((cur) => cur || l));
  }, []);
  // the repositories used with this catalog (here or with the CLI), the most recent first
  useEffect(() => {
    api.repoRecent().then(setRecent).catch(() => setRecent([]));
    api.reposOpen().then(setOpen).catch(() => setOpen([]));
    // a check's result belongs to the repository it checked
    setCheck(null);
  }, [repo?.location]);
  const act = async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    setKept(null);
    try {
      await f();
      setPassword("");
      onChange();
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };
  const runCheck = (readData: boolean) =>
    act(async () => {
      const r = await api.repoCheck(readData);
      const what = readData ? "All data OK" : "Structure OK";
      setCheck(
        r.errors.length === 0
          ? `${what}: ${r.restore_points} restore points, ${r.packs} packs`
          : `${r.errors.length} problem(s): ${r.errors.join("; ")}`,
      );
    });
  return (
    <section aria-labelledby="repo-h">
      <h1 id="repo-h">Repositories</h1>
      <div className="card" data-testid="repo-status">
        {repo ? (
          <>
            <p>
              Open: <code>{repo.location}</code> · id <code>{repo.id.slice(0, 12)}</code> · {repo.restorePoints}{" "}
              restore points
            </p>
            <button disabled={busy} data-testid="repo-check" onClick={() => runCheck(false)}>
              Check structure
            </button>{" "}
            <button disabled={busy} data-testid="repo-check-data" onClick={() => runCheck(true)} title="Also reads and verifies every stored chunk: takes as long as reading the whole repository">
              Check all data
            </button>
            {check && <p data-testid="repo-check-result">{check}</p>}
            {open.length > 0 && (
              <div data-testid="repos-open">
                <p className="small">Open repositories (each one's key stays in memory until it is closed; each one's due policies run while the app is open):</p>
                <ul>
                  {open.map((l) => (
                    <li key={l}>
                      <code>{l}</code>{" "}
                      {l === repo.location ? (
                        <span className="small">(the screens work on this one)</span>
                      ) : (
                        <button className="chip" data-testid="repo-use" disabled={busy} onClick={() => act(() => api.repoSwitch(l))}>Work on this one</button>
                      )}{" "}
                      <button className="chip" data-testid="repo-close" disabled={busy} onClick={() => act(async () => { await api.repoClose(l); setOpen(await api.reposOpen()); })}>Close</button>
                    </li>
                  ))}
                </ul>
              </div>
            )}
          </>
        ) : (
          <p className="muted">No repository open. Create one (a local folder first; an SMB path works too) or connect to an existing one.</p>
        )}
      </div>
      <form className="card form" onSubmit={(e) => e.preventDefault()}>
        {recent.length > 0 && (
          <div data-testid="repo-recent">
            <span className="small">Recent:</span>{" "}
            {recent.map((r) => (
              <button
                type="button"
                key={r.id}
                className="small"
                data-testid="repo-recent-location"
                title={`repository ${r.id.slice(0, 12)}, last used ${new Date(r.last_seen).toLocaleString()}`}
                onClick={() => setLocation(r.location)}
              >
                {r.location}
              </button>
            ))}
          </div>
        )}
        <label>
          Location
          <input data-testid="repo-location" value={location} onChange={(e) => setLocation(e.target.value)} />
        </label>
        <label>
          Password
          <input
            data-testid="repo-password"
            type="password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <label>
          <input data-testid="repo-keep" type="checkbox" checked={keepPassword} onChange={(e) => setKeepPassword(e.target.checked)} />{" "}
          Keep the password in the OS keychain (then leave it empty to connect)
        </label>
        <p className="muted small">The password encrypts the repository; it stays in memory only while the app runs, unless you keep it in the keychain. Without it nothing can be restored.</p>
        <div className="row">
          <button data-testid="repo-create" disabled={busy || !location} onClick={() => act(async () => setKept((await api.repoCreate(location, password, keepPassword)).keychain))}>
            Create
          </button>
          <button data-testid="repo-connect" disabled={busy || !location} onClick={() => act(async () => setKept((await api.repoConnect(location, password, keepPassword)).keychain))}>
            Connect
          </button>
          <button
            data-testid="storage-check"
            disabled={busy || !location}
            title="Does this folder, share, container or bucket behave as a repository needs? Runs in a scratch folder below it, removed afterwards; no password needed."
            onClick={() =>
              act(async () => {
                const r = await api.storageCheck(location);
                setStorage(
                  r.broken.length === 0
                    ? `${r.location}: the storage behaves as a repository needs`
                    : `${r.location} breaks ${r.broken.length} rule(s): ${r.broken.join("; ")}`,
                );
              })
            }
          >
            Check storage
          </button>
        </div>
        {storage && <p data-testid="storage-check-result">{storage}</p>}
        {kept && <p data-testid="repo-kept">{kept}</p>}
        {busy && <p role="status">Working…</p>}
        <ErrorBox error={error} />
      </form>
    </section>
  );
}
