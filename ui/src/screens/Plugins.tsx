import { useEffect, useState } from "react";
import { api, asError, type ApiError, type PluginDetails, type PluginEntry } from "../ipc";
import { Empty, ErrorBox, Loading, TableHead } from "../components/common";

export default function Plugins() {
  const [list, setList] = useState<PluginEntry[] | null>(null);
  const [sel, setSel] = useState<PluginDetails | null>(null);
  const [grant, setGrant] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const load = () => api.plugins().then(setList).catch((e) => { setList([]); setError(asError(e)); });
  useEffect(() => { load(); }, []);
  const open = (id: string) => api.pluginInfo(id).then(setSel).catch((e) => setError(asError(e)));
  const act = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
      if (sel) await open(sel.entry.id);
    } catch (e) {
      setError(asError(e));
    }
  };
  return (
    <section aria-labelledby="pl-h">
      <h1 id="pl-h">Plugins</h1>
      <ErrorBox error={error} />
      {list === null ? (
        <Loading what="plugins" />
      ) : list.length === 0 ? (
        <Empty>No plugin is installed. Install one with <code>rehydra plugins install file.wasm</code>.</Empty>
      ) : (
        <table data-testid="plugin-list">
          <TableHead cols={["Plugin", "Version", "Publisher", "Signature", ""]} />
          <tbody>
            {list.map((p) => (
              <tr key={p.id}>
                <td>{p.id}</td>
                <td>{p.version ?? "—"}</td>
                <td>{p.publisher ?? "—"}</td>
                <td>{p.error ? <span className="badge risk">{p.error}</span> : p.signer?.kind ?? "unsigned"}</td>
                <td><button data-testid={`plugin-details-${p.id}`} onClick={() => open(p.id)}>Details</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {sel && (
        <div className="card" data-testid="plugin-details">
          <h2>{sel.manifest.name} <span className="muted small">{sel.manifest.id} {sel.manifest.version}, contract {sel.manifest.contract}</span></h2>
          <p>{sel.manifest.description}</p>
          <p className="muted small" data-testid="plugin-limits">
            Limits per call: {sel.limits.memory_mib} MiB, {sel.limits.timeout_secs} s (it asks for {sel.manifest.limits.memory_mib} MiB,{" "}
            {sel.manifest.limits.timeout_secs} s; the admin lowers them with REHYDRA_PLUGIN_MAX_MEMORY_MIB and REHYDRA_PLUGIN_MAX_SECONDS)
          </p>
          <h3>Capabilities it asks for</h3>
          <ul>
            {sel.capabilities.map((c) => (
              <li key={c.kind + (c.scope ?? "")}>
                <strong>{c.kind}</strong> {c.scope ?? ""} — {c.reason}
                {c.granted.length > 0 ? (
                  <span> · granted: {c.granted.map((g) => (
                    <button key={g} className="chip" title="Revoke" onClick={() => act(() => api.pluginRevoke(sel.entry.id, [g]))}>{g} ✕</button>
                  ))}</span>
                ) : <span className="muted"> · not granted</span>}
              </li>
            ))}
          </ul>
          <div className="row">
            <label>
              Grant <input value={grant} onChange={(e) => setGrant(e.target.value)} placeholder="files:/srv/data" />
            </label>
            <button disabled={!grant} onClick={() => act(async () => { await api.pluginGrant(sel.entry.id, [grant]); setGrant(""); })}>Grant</button>
          </div>
        </div>
      )}
    </section>
  );
}
