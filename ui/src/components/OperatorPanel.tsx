import { useEffect, useState } from "react";
import { api, asError, type ApiError, type Overview } from "../ipc";
import { ErrorBox, TableHead } from "./common";
import { RunsTable, pollAfter } from "./ServiceRuns";

/** The machine's service as its operators see it: shown when the service's door for
 *  operators lets this account in and the app does not open the service's catalog itself
 *  (`hidden`). Its policies, their results and Run now; the runs handed to it with
 *  Cancel. Nothing of the policies' settings: those are the administrators'. */
export default function OperatorPanel({ hidden }: { hidden: boolean }) {
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [asked, setAsked] = useState(0);
  const [busy, setBusy] = useState(false);
  // one look at the service feeds the policies and the runs: every two seconds while a
  // run is open, else every ten
  useEffect(() => {
    let stop = false;
    let timer = 0;
    const tick = async () => {
      const o = await api.operatorOverview().catch(() => null);
      if (stop) return;
      setOverview(o);
      timer = window.setTimeout(tick, pollAfter(o?.requests));
    };
    tick();
    return () => { stop = true; window.clearTimeout(timer); };
  }, [asked]);
  if (hidden || overview === null) return null;
  const run = (policy: string) => {
    setBusy(true);
    setError(null);
    api.operatorRun(policy)
      .catch((e) => setError(asError(e)))
      .finally(() => { setBusy(false); setAsked((n) => n + 1); });
  };
  return (
    <section data-testid="operator-panel">
      <h3>The machine's service</h3>
      <p className="small">
        You operate it: it runs the policies of <strong>{overview.repository}</strong> (process {overview.pid}).
        Run one now or cancel such a run; their settings are the administrators'.
      </p>
      <ErrorBox error={error} />
      {overview.policies.length === 0 ? <p className="small">It has no policies yet.</p> : (
        <table>
          <TableHead cols={["Policy", "Backs up", "Schedule", "Last success", "Next", ""]} />
          <tbody>
            {overview.policies.map((p) => (
              <tr key={p.name} data-testid={`operator-policy-${p.name}`}>
                <td>{p.name}</td>
                <td className="small">{p.what}</td>
                <td className="small">{p.schedule}</td>
                <td className="small">
                  {p.last_run ? new Date(p.last_run).toLocaleString() : "never"}
                  {p.failures > 0 ? <div>failed {p.failures} time(s) in a row</div> : null}
                </td>
                <td className="small">{new Date(p.next_due).toLocaleString()}</td>
                <td><button data-testid={`operator-run-${p.name}`} disabled={busy} onClick={() => run(p.name)}>Run now</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <RunsTable
        list={overview.requests}
        error={null}
        cancel={(id) => api.operatorCancel(id).catch((e) => setError(asError(e))).finally(() => setAsked((n) => n + 1))}
        testid="operator-request"
      />
    </section>
  );
}
