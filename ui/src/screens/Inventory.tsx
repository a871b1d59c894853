import { useEffect, useMemo, useState } from "react";
import { api, asError, type ApiError, type InventoryAsset, type PluginEntry, type RepoInfo } from "../ipc";
import { age } from "../format";
import { PluginSettings } from "../components/PluginSettings";
import { Empty, ErrorBox, Loading, TableHead } from "../components/common";

/** What an inventory row asks another screen to start from: back this asset up now,
 * protect it with a policy, or restore it (`at` tells one click from the next). */
export type Intent = { action: "backup" | "protect" | "restore"; plugin: string; asset: string; at: number };

/** Depth-first order of the tree given by `parent` links (unknown parents become roots). */
export function treeOrder(assets: InventoryAsset[]): { a: InventoryAsset; depth: number }[] {
  const ids = new Set(assets.map((a) => a.id));
  const kids = new Map<string, InventoryAsset[]>();
  const roots: InventoryAsset[] = [];
  for (const a of assets) {
    if (a.parent && ids.has(a.parent)) {
      const l = kids.get(a.parent) ?? [];
      l.push(a);
      kids.set(a.parent, l);
    } else roots.push(a);
  }
  const out: { a: InventoryAsset; depth: number }[] = [];
  const walk = (a: InventoryAsset, depth: number) => {
    out.push({ a, depth });
    for (const k of kids.get(a.id) ?? []) walk(k, depth + 1);
  };
  roots.forEach((r) => walk(r, 0));
  return out;
}

export function InventoryTable({ assets, query, filter, onAct }: { assets: InventoryAsset[]; query: string; filter: string; onAct?: (i: Intent) => void }) {
  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    return treeOrder(assets).filter(({ a }) => {
      if (q && !a.name.toLowerCase().includes(q) && !a.id.toLowerCase().includes(q)) return false;
      if (filter === "at-risk") return a.risks.length > 0;
      if (filter === "unprotected") return a.status === "unprotected" || a.status === "stale";
      return true;
    });
  }, [assets, query, filter]);
  if (rows.length === 0) return <Empty>No asset matches.</Empty>;
  return (
    <table className="inventory" data-testid="inventory-table">
      <TableHead cols={["Asset", "Kind", "Protection", "Last restore point", "Risks", ""]} />
      <tbody>
        {rows.map(({ a, depth }) => (
          <tr key={`${a.plugin}/${a.id}`} data-testid="inventory-row" data-asset={a.id} data-depth={depth}>
            <td style={{ paddingLeft: `${0.5 + depth * 1.25}rem` }}>{a.name}</td>
            <td>{a.kind}</td>
            <td>
              <span className={`badge status-${a.status}`}>{a.status}</span>
            </td>
            <td>
              {a.status === "container" ? "" : `${age(a.age_hours)} (${a.restore_points})`}
            </td>
            <td>
              {a.risks.map((r) => (
                <span key={r.code} className={`badge risk risk-${r.code}`} title={r.title}>
                  {r.title}
                </span>
              ))}
            </td>
            <td className="row">
              {onAct && a.status !== "container" && a.plugin ? (
                <button
                  data-testid={`row-backup-${a.id}`}
                  aria-label={`Back up ${a.name} now`}
                  onClick={() => onAct({ action: "backup", plugin: a.plugin, asset: a.id, at: Date.now() })}
                >
                  Back up now
                </button>
              ) : null}
              {onAct && a.status !== "container" && a.plugin ? (
                <button
                  data-testid={`row-protect-${a.id}`}
                  aria-label={`Protect ${a.name} with a policy`}
                  onClick={() => onAct({ action: "protect", plugin: a.plugin, asset: a.id, at: Date.now() })}
                >
                  Protect…
                </button>
              ) : null}
              {onAct && a.restore_points > 0 ? (
                <button
                  data-testid={`row-restore-${a.id}`}
                  aria-label={`Restore ${a.name}`}
                  onClick={() => onAct({ action: "restore", plugin: a.plugin, asset: a.id, at: Date.now() })}
                >
                  Restore…
                </button>
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export default function Inventory({ repo, onAct }: { repo: RepoInfo | null; onAct?: (i: Intent) => void }) {
  const [assets, setAssets] = useState<InventoryAsset[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [rpo, setRpo] = useState(24);
  const [query, setQuery] = useState("");
  const [filter, setFilter] = useState("all");
  const [plugins, setPlugins] = useState<PluginEntry[]>([]);
  const [plugin, setPlugin] = useState("");
  const [settings, setSettings] = useState<[string, string][]>([]);
  const [busy, setBusy] = useState(false);
  const load = () => {
    setError(null);
    api.inventory(rpo).then(setAssets).catch((e) => setError(asError(e)));
  };
  useEffect(load, [rpo, repo]);
  useEffect(() => {
    api.plugins().then((p) => {
      setPlugins(p);
      if (p.length) setPlugin((cur) => cur || p[0].id);
    }).catch(() => setPlugins([]));
  }, []);
  const discover = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.discover(plugin, settings);
      load();
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="inv-h">
      <h1 id="inv-h">Inventory</h1>
      <div className="row toolbar">
        <label>
          Search <input data-testid="inventory-search" value={query} onChange={(e) => setQuery(e.target.value)} />
        </label>
        <label>
          Show{" "}
          <select value={filter} onChange={(e) => setFilter(e.target.value)}>
            <option value="all">everything</option>
            <option value="at-risk">at risk</option>
            <option value="unprotected">unprotected or stale</option>
          </select>
        </label>
        <label>
          RPO (hours) <input type="number" min={1} value={rpo} onChange={(e) => setRpo(Number(e.target.value) || 24)} />
        </label>
      </div>
      <details className="card">
        <summary>Discover with a plugin</summary>
        {plugins.length === 0 ? (
          <p className="muted">No plugin is installed (rehydra plugins install …).</p>
        ) : (
          <div className="form">
            <label>
              Plugin
              <select data-testid="discover-plugin" value={plugin} onChange={(e) => { setPlugin(e.target.value); setSettings([]); }}>
                {plugins.map((p) => (
                  <option key={p.id} value={p.id}>{p.id}</option>
                ))}
              </select>
            </label>
            <PluginSettings plugin={plugin} verb="discover" testid="discover-settings" value={settings} onChange={setSettings} />
            <button data-testid="discover-run" disabled={busy} onClick={discover}>
              Discover
            </button>
          </div>
        )}
      </details>
      <ErrorBox error={error} />
      {!repo && <p className="muted">No repository open: protection status shows once one is.</p>}
      {assets === null ? (
        <Loading what="the inventory" />
      ) : assets.length === 0 ? (
        <Empty>Nothing yet: back up a folder under Protection, or discover assets with a plugin.</Empty>
      ) : (
        <InventoryTable assets={assets} query={query} filter={filter} onAct={onAct} />
      )}
    </section>
  );
}
