import type { ApiError, Progress } from "../ipc";
import { bytes, duration } from "../format";

export function ErrorBox({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" data-testid="error">
      <strong>{error.code}</strong>: {error.message}
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
