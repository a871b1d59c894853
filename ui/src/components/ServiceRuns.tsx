import { useEffect, useState } from "react";
import { api, asError, type ApiError, type ServiceRequest } from "../ipc";
import { ErrorBox, TableHead } from "./common";

const open = (r: ServiceRequest) => r.state === "waiting" || r.state === "running" || r.state === "stopping";

/** How a run ended, after its state (a message that starts with the state, as a
 *  success's does, is not made to say it twice). */
const said = (r: ServiceRequest) =>
  !r.message ? "" : r.message.startsWith(r.state) ? r.message.slice(r.state.length) : `: ${r.message}`;

/** Policy runs handed to the always-on service, read from the service's catalog (which
 *  the app opens): how each stands (looked at every two seconds while one is open, else
 *  every ten, so runs handed over from the command line show up too), and Cancel. They
 *  go on when the window closes. */
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
      if (!stop) timer = window.setTimeout(tick, pollAfter(l));
    };
    tick();
    return () => { stop = true; window.clearTimeout(timer); };
  }, [asked]);
  const cancel = (id: number) => api.serviceCancel(id).then(() => load()).catch((e) => setError(asError(e)));
  return <RunsTable list={list} error={error} cancel={cancel} testid="service-run" />;
}

/** How long until runs are looked at again: two seconds while one is open, else ten. */
export const pollAfter = (l: ServiceRequest[] | null | undefined) => (l?.some(open) ? 2000 : 10000);

/** The runs handed to the service, with Cancel on those still open; `testid` names the
 *  rows (the catalog's and the operators' door's differ). */
export function RunsTable({ list, error, cancel, testid }: {
  list: ServiceRequest[];
  error: ApiError | null;
  cancel: (id: number) => void;
  testid: string;
}) {
  if (list.length === 0) return <ErrorBox error={error} />;
  return (
    <div data-testid={`${testid}s`}>
      <h3>Runs handed to the service</h3>
      <ErrorBox error={error} />
      <table>
        <TableHead cols={["#", "Policy", "Asked", "By", "State", ""]} />
        <tbody>
          {list.map((r) => (
            <tr key={r.id} data-testid={`${testid}-${r.id}`}>
              <td>{r.id}</td>
              <td>{r.policy}</td>
              <td className="small">{new Date(r.asked).toLocaleString()}</td>
              <td className="small">{r.asked_by}</td>
              <td className="small" data-testid={`${testid}-state-${r.id}`}>
                <strong>{r.state}</strong>
                {open(r) ? (r.progress ? `: ${r.progress}` : "") : said(r)}
              </td>
              <td>
                {open(r) && r.state !== "stopping" ? (
                  <button data-testid={`${testid}-cancel-${r.id}`} onClick={() => cancel(r.id)}>Cancel</button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
