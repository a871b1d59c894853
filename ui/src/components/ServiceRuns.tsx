import { useEffect, useState } from "react";
import { api, asError, type ApiError, type ServiceRequest } from "../ipc";
import { ErrorBox, TableHead } from "./common";

const open = (r: ServiceRequest) => r.state === "waiting" || r.state === "running" || r.state === "stopping";

/** Policy runs handed to the always-on service: how each stands (looked at every two
 *  seconds while one is open, else every ten, so runs handed over from the command line
 *  show up too), and Cancel. They go on when the window closes. */
export default function ServiceRuns({ asked }: { asked: number }) {
  const [list, setList] = useState<ServiceRequest[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const load = () =>
    api.serviceRequests()
      .then((l) => { setList(l); setError(null); return l; })
      .catch((e) => { setError(asError(e)); return null; });
  useEffect(() => {
    let stop = false;
    let timer = 0;
    const tick = async () => {
      const l = await load();
      if (!stop) timer = window.setTimeout(tick, l?.some(open) ? 2000 : 10000);
    };
    tick();
    return () => { stop = true; window.clearTimeout(timer); };
  }, [asked]);
  if (list.length === 0) return <ErrorBox error={error} />;
  return (
    <div data-testid="service-runs">
      <h3>Runs handed to the service</h3>
      <ErrorBox error={error} />
      <table>
        <TableHead cols={["#", "Policy", "Asked", "By", "State", ""]} />
        <tbody>
          {list.map((r) => (
            <tr key={r.id} data-testid={`service-run-${r.id}`}>
              <td>{r.id}</td>
              <td>{r.policy}</td>
              <td className="small">{new Date(r.asked).toLocaleString()}</td>
              <td className="small">{r.asked_by}</td>
              <td className="small" data-testid={`service-run-state-${r.id}`}>
                <strong>{r.state}</strong>
                {open(r) ? (r.progress ? `: ${r.progress}` : "") : r.message ? `: ${r.message}` : ""}
              </td>
              <td>
                {open(r) && r.state !== "stopping" ? (
                  <button data-testid={`service-run-cancel-${r.id}`} onClick={() => api.serviceCancel(r.id).then(() => load()).catch((e) => setError(asError(e)))}>Cancel</button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
