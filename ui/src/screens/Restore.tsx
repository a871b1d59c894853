import { useEffect, useMemo, useRef, useState } from "react";
import {
  api,
  asError,
  newJobId,
  onStateChanged,
  type ApiError,
  type ExportEntry,
  type PlanView,
  type Progress,
  type RepoInfo,
  type RunView,
  type RestoreChoice,
  type RestorePoint,
  type VerifyView,
} from "../ipc";
import { bytes } from "../format";
import { PluginSettings } from "../components/PluginSettings";
import { Empty, ErrorBox, Loading, ProgressBar } from "../components/common";
import type { Intent } from "./Inventory";

const STEPS = ["Asset", "Restore point", "Kind", "Target", "Plan", "Run", "Verify"];

/** The kinds of restore a restore point offers, and which are available here. */
function kinds(s: RestorePoint | undefined): { id: string; label: string; available: boolean; hint?: string }[] {
  if (!s) return [];
  const disk = s.items.some((i) => i.kind === "disk");
  const instant = { id: "instant", label: "Instant recovery: serve the disk over NBD now, before any restore (only the chunks read are fetched)", available: true };
  if (s.plugin_id && s.plugin_id !== "builtin") {
    return [
      { id: "plugin", label: `As ${s.plugin_id} plans it (original or alternate location; options such as mode=rehydrate)`, available: true },
      ...(disk ? [instant] : []),
    ];
  }
  return [
    { id: "files", label: disk ? "The whole disk image to a file" : "Files and folders to a folder", available: true },
    { id: "inside", label: "Files from inside the disk (NTFS, ext4; only the chunks they use are read)", available: true },
    instant,
  ].filter((k) => disk || k.id === "files");
}

export default function Restore({ repo, intent }: { repo: RepoInfo | null; intent?: Intent | null }) {
  const [step, setStep] = useState(0);
  const [snaps, setSnaps] = useState<RestorePoint[] | null>(null);
  const [asset, setAsset] = useState("");
  const [point, setPoint] = useState("");
  const [kind, setKind] = useState("");
  const [target, setTarget] = useState("");
  const [subpath, setSubpath] = useState("");
  const [overwrite, setOverwrite] = useState(false);
  const [options, setOptions] = useState<[string, string][]>([]);
  const [plan, setPlan] = useState<PlanView | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [run, setRun] = useState<RunView | null>(null);
  const [item, setItem] = useState("");
  const [overlay, setOverlay] = useState("");
  const [exports, setExports] = useState<ExportEntry[]>([]);
  const [verify, setVerify] = useState<VerifyView | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const job = useRef("");

  useEffect(() => {
    if (!repo) return;
    api.restore_points().then(setSnaps).catch((e) => setError(asError(e)));
  }, [repo]);
  const assets = useMemo(() => [...new Set((snaps ?? []).map((s) => s.asset))].sort(), [snaps]);
  // "Restore…" from an inventory row: the wizard starts at that asset, once (restore
  // points listed again later do not take the admin back to it)
  const applied = useRef(0);
  useEffect(() => {
    if (!intent || applied.current === intent.at || !assets.includes(intent.asset)) return;
    applied.current = intent.at;
    setAsset(intent.asset);
    setPoint("");
    setOptions([]);
    setStep(0);
  }, [intent, assets]);
  const points = useMemo(
    () => (snaps ?? []).filter((s) => s.asset === asset).sort((a, b) => b.time.localeCompare(a.time)),
    [snaps, asset],
  );
  const chosen = points.find((s) => s.id === point);
  const choice = (): RestoreChoice => ({
    restore_point: point,
    path: subpath || null,
    target,
    // a plugin restore replaces only through the plugin's own `overwrite` setting (in
    // its form), so one control decides it
    overwrite: kind !== "plugin" && overwrite,
    inside_disk: kind === "inside",
    options,
    instant: kind === "instant",
    item: kind === "instant" && item ? item : null,
    overlay: kind === "instant" && overlay.trim() ? overlay.trim() : null,
  });
  const disks = (chosen?.items ?? []).filter((i) => i.kind === "disk");
  // instant-recovery exports keep running while the app is open: show them live
  useEffect(() => {
    const load = () => {
      api.instantList().then(setExports).catch(() => {});
    };
    load();
    return onStateChanged(["exports"], load);
  }, []);
  const guard = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };
  const computePlan = () =>
    guard(async () => {
      setPlan(null);
      setConfirmed(false);
      setPlan(await api.restorePlan(choice()));
      setStep(4);
    });
  const execute = () =>
    guard(async () => {
      job.current = newJobId();
      setStep(5);
      if (kind === "instant") {
        await api.instantStart(choice(), job.current);
        setExports(await api.instantList());
        return;
      }
      setRun(await api.restoreRun(choice(), job.current, setProgress));
    });
  const running = exports.filter((e) => e.running);

  if (!repo) return <Empty>Open a repository first (Repositories).</Empty>;
  if (snaps === null) return <Loading what="restore points" />;
  if (snaps.length === 0) return <Empty>The repository has no restore point yet.</Empty>;
  const canNext = [asset !== "", point !== "", kind !== "", target !== "" && (kind !== "instant" || disks.length <= 1 || item !== "")][step] ?? false;
  return (
    <section aria-labelledby="rst-h">
      <h1 id="rst-h">Restore</h1>
      {exports.length > 0 && (
        <div className="card" data-testid="exports">
          <h2>Instant recovery</h2>
          <ul>
            {exports.map((e) => (
              <li key={e.job} data-testid="export" data-running={e.running ? "yes" : "no"}>
                <code data-testid="export-url">{e.export.url}</code> · disk {e.export.item} · {bytes(e.export.size)} ·{" "}
                {e.export.overlay ? `writes to ${e.export.overlay}` : "read-only"} ·{" "}
                {e.running ? (
                  <button data-testid="export-stop" onClick={() => api.cancelJob(e.job).then(() => api.instantList().then(setExports))}>Stop serving</button>
                ) : (
                  <span className={e.error ? "error" : "muted"}>{e.error ? `stopped: ${e.error}` : "stopped"}</span>
                )}
              </li>
            ))}
          </ul>
          {running.length > 0 && <p className="small muted">Served from this app: it stops when you stop it or close the app.</p>}
        </div>
      )}
      <ol className="wizard-steps" aria-label="Wizard steps">
        {STEPS.map((s, i) => (
          <li key={s} aria-current={i === step ? "step" : undefined} className={i < step ? "done" : ""}>
            {s}
          </li>
        ))}
      </ol>
      <div className="card form">
        {step === 0 && (
          <label>
            Asset
            <select data-testid="wizard-asset" value={asset} onChange={(e) => { setAsset(e.target.value); setPoint(""); setOptions([]); }}>
              <option value="">choose…</option>
              {assets.map((a) => (
                <option key={a} value={a}>{a}</option>
              ))}
            </select>
          </label>
        )}
        {step === 1 && (
          <fieldset>
            <legend>Restore point (newest first)</legend>
            <ul className="timeline">
              {points.map((s) => (
                <li key={s.id}>
                  <label>
                    <input type="radio" name="point" data-testid="wizard-point" value={s.id} checked={point === s.id} onChange={() => setPoint(s.id)} />
                    {new Date(s.time).toLocaleString()} · {s.short_id} · {s.workload} · {bytes(s.bytes)} · {s.consistency}
                  </label>
                </li>
              ))}
            </ul>
          </fieldset>
        )}
        {step === 2 && (
          <fieldset>
            <legend>Kind of restore</legend>
            {kinds(chosen).map((k) => (
              <label key={k.id} className={k.available ? "" : "muted"}>
                <input type="radio" name="kind" data-testid={`wizard-kind-${k.id}`} disabled={!k.available} checked={kind === k.id} onChange={() => setKind(k.id)} />
                {k.label}
                {k.hint && <span className="small"> — here: {k.hint}</span>}
              </label>
            ))}
          </fieldset>
        )}
        {step === 3 && (
          <>
            <label>
              {kind === "instant" ? "Address to serve on (IP:PORT; keep it on loopback or a trusted network)" : "Target"}
              <input data-testid="wizard-target" value={target} onChange={(e) => setTarget(e.target.value)} placeholder={kind === "instant" ? "127.0.0.1:10809" : kind === "plugin" ? "a folder, a cluster path, or `original`" : "/restore/here"} />
            </label>
            {kind === "instant" && (
              <>
                {disks.length > 1 && (
                  <label>
                    Disk
                    <select data-testid="wizard-item" value={item} onChange={(e) => setItem(e.target.value)}>
                      <option value="">choose…</option>
                      {disks.map((d) => <option key={d.name} value={d.name}>{d.name} ({bytes(d.size)})</option>)}
                    </select>
                  </label>
                )}
                <label>
                  Overlay file for writes (optional; a new file outside the repository — without it the export is read-only)
                  <input data-testid="wizard-overlay" value={overlay} onChange={(e) => setOverlay(e.target.value)} />
                </label>
              </>
            )}
            {kind === "inside" && (
              <label>
                Path inside the disk (a file or folder, e.g. /etc or /Users/alice)
                <input data-testid="wizard-inside-path" value={subpath} onChange={(e) => setSubpath(e.target.value)} />
              </label>
            )}
            {kind === "files" && (
              <label>
                Only this path inside the restore point (optional)
                <input data-testid="wizard-subpath" value={subpath} onChange={(e) => setSubpath(e.target.value)} />
              </label>
            )}
            {kind === "plugin" && chosen && (
              <PluginSettings
                plugin={chosen.plugin_id}
                verb="restore"
                testid="wizard-options"
                bare="true"
                value={options}
                onChange={setOptions}
                find={async (by, text) =>
                  (await api.restorePlan({ ...choice(), target: target || "original", options: [...options.filter(([k]) => k !== by), [by, text]] })).plan
                }
              />
            )}
            {kind !== "instant" && kind !== "plugin" && (
              <label>
                <input type="checkbox" data-testid="wizard-overwrite" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} />
                Replace what exists at the target (never done without this)
              </label>
            )}
          </>
        )}
        {step === 4 && plan && (
          <div data-testid="plan">
            <h2>Plan {plan.plugin ? `(by ${plan.plugin})` : ""}</h2>
            <ol>
              {plan.plan.steps.map((s) => (
                <li key={s.id} data-testid="plan-step">
                  <strong>{s.title}</strong>
                  <pre className="detail">{s.detail}</pre>
                </li>
              ))}
            </ol>
            {plan.plan.warnings.map((w) => (
              <p key={w} className="warning" data-testid="plan-warning">⚠ {w}</p>
            ))}
            {plan.plan.blockers.length > 0 ? (
              <div className="error" role="alert" data-testid="plan-blockers">
                <strong>Cannot run as chosen:</strong>
                <ul>{plan.plan.blockers.map((b) => <li key={b}>{b}</li>)}</ul>
              </div>
            ) : (
              <label>
                <input type="checkbox" data-testid="plan-confirm" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} />
                I reviewed this plan; nothing has been touched yet
              </label>
            )}
            <div className="row">
              <button data-testid="plan-change" onClick={() => setStep(3)}>Change target or options</button>
              <button data-testid="plan-run" disabled={busy || !confirmed || plan.plan.blockers.length > 0} onClick={execute}>
                Run this plan
              </button>
            </div>
          </div>
        )}
        {step === 5 && (
          <div>
            <ProgressBar p={progress} />
            {busy && <p role="status">{kind === "instant" ? "Starting the export…" : "Restoring…"}</p>}
            {kind === "instant" && !busy && exports.some((e) => e.job === job.current) && (
              <>
                <p data-testid="run-result" role="status">Serving: the address is under Instant recovery above.</p>
                <button data-testid="wizard-to-verify" onClick={() => setStep(6)}>Verify</button>
              </>
            )}
            {run && (
              <>
                <p data-testid="run-result" role="status">
                  Restored {bytes(run.bytes)}{run.files ? ` in ${run.files} files` : ""}.
                </p>
                {run.notes.map((n) => <p key={n} className="small">{n}</p>)}
                <button data-testid="wizard-to-verify" onClick={() => setStep(6)}>Verify</button>
              </>
            )}
            {!busy && !run && kind !== "instant" && <button onClick={() => api.cancelJob(job.current)}>Cancel</button>}
          </div>
        )}
        {step === 6 && (
          <div>
            <button data-testid="verify-run" disabled={busy} onClick={() => guard(async () => setVerify(await api.verify(point, kind === "plugin" ? options : [])))}>
              Verify the restore point
            </button>
            {verify && (
              <div data-testid="verify-result" className={verify.ok ? "ok" : "error"}>
                {verify.ok ? "Verified: the restore point can come back." : "Verification failed."}
                <ul>{verify.findings.map((f) => <li key={f}>{f}</li>)}</ul>
              </div>
            )}
          </div>
        )}
        <ErrorBox error={error} />
        {step < 4 && (
          <div className="row">
            <button disabled={step === 0} onClick={() => setStep(step - 1)}>Back</button>
            {step < 3 ? (
              <button data-testid="wizard-next" disabled={!canNext} onClick={() => setStep(step + 1)}>Next</button>
            ) : (
              <button data-testid="wizard-plan" disabled={!canNext || busy} onClick={computePlan}>Compute the plan</button>
            )}
          </div>
        )}
      </div>
    </section>
  );
}
