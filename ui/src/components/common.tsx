import type { ApiError, Hint, Progress } from "../ipc";
import { bytes, duration } from "../format";

/** What the user can do about an error, in the app's words (the CLI names its flags). */
const HINTS: Record<Hint, string> = {
  check: "Run “Check structure” on the Repositories screen to see what is damaged.",
  "check-read-data": "Run “Check all data” on the Repositories screen to find the affected restore points.",
  "location-or-init": "Check the location, or create a repository there.",
  password: "Enter the repository’s password.",
  "list-key-slots": "Key slots are managed with the CLI: rehydra key list.",
  "list-restore-points": "Choose the restore point from the list.",
  "one-item": "Restore one item at a time: choose the item in the wizard.",
  overwrite: "Choose an empty target, or tick “Replace what exists at the target”.",
  "overwrite-in-place": "Tick “Replace what exists at the target” to write over the existing disk.",
  sources: "Choose at least one thing to back up.",
};

export function ErrorBox({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" data-testid="error">
      <strong>{error.code}</strong>: {error.message}
      {error.hint && <p data-testid="error-hint">{HINTS[error.hint]}</p>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A table's header row: one column header a name ("" for an unnamed column). */
export function TableHead({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c, i) => (
          <th key={i} scope="col">
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function ProgressBar({ p }: { p: Progress | null }) {
  if (!p) return null;
  const pct = p.total > 0 ? Math.min(100, (100 * p.done) / p.total) : 0;
  return (
    <div className="progress" data-testid="progress">
      <div className="bar" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)}>
        <div style={{ width: `${pct}%` }} />
      </div>
      <span>
        {p.phase} {bytes(p.done)}
        {p.total > 0 ? ` of ${bytes(p.total)}` : ""} · {bytes(p.bytesPerSec)}/s · ETA {duration(p.etaSeconds)}
      </span>
    </div>
  );
}
