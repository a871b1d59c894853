import { useEffect, useState } from "react";
import {
  api,
  asError,
  type ApiError,
  type Assessment as Report,
  type AssessmentOptions,
  type Planned,
  type PluginEntry,
  type RepoInfo,
} from "../ipc";
import { PluginSettings } from "../components/PluginSettings";
import { Empty, ErrorBox, TableHead } from "../components/common";

type Pairs = [string, string][];

/** A read-only sweep of the estate through the installed plugins, joined with the open
 *  repository on request, and the report a consultant hands over (the same as
 *  `rehydra assess`): run it, read the score and what to do first, save the files. */
export default function Assessment({ repo }: { repo: RepoInfo | null }) {
  const [plugins, setPlugins] = useState<PluginEntry[]>([]);
  const [chosen, setChosen] = useState<Record<string, boolean>>({});
  const [settings, setSettings] = useState<Record<string, Pairs>>({});
  const [customer, setCustomer] = useState("");
  const [consultant, setConsultant] = useState("");
  const [scope, setScope] = useState("");
  const [logo, setLogo] = useState("");
  const [rpo, setRpo] = useState(24);
  const [join, setJoin] = useState(true);
  const [plan, setPlan] = useState<Planned[] | null>(null);
  const [report, setReport] = useState<Report | null>(null);
  const [dir, setDir] = useState("");
  const [pdf, setPdf] = useState(true);
  const [overwrite, setOverwrite] = useState(false);
  const [saved, setSaved] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    api
      .plugins()
      .then((p) => {
        const ok = p.filter((x) => !x.error);
        setPlugins(ok);
        setChosen(Object.fromEntries(ok.map((x) => [x.id, true])));
      })
      .catch((e) => setError(asError(e)));
  }, []);

  const options = (): AssessmentOptions => {
    const ids = plugins.filter((p) => chosen[p.id]).map((p) => p.id);
    return {
      plugins: ids,
      settings: ids
        .filter((id) => (settings[id] ?? []).length > 0)
        .map((id) => ({ plugin: id, settings: (settings[id] ?? []).map(([name, value]) => ({ name, value })) })),
      thresholds: { rpo_hours: rpo, restore_test_days: 30, retention_days: 30, daily_change_percent: 3 },
      labels: { customer, consultant, scope, logo: null },
    };
  };
  const go = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
    } catch (e) {
      setError(asError(e));
    } finally {
      setBusy(false);
    }
  };
  const showPlan = () => go(async () => setPlan(await api.assessmentPlan(options())));
  const run = () =>
    go(async () => {
      setSaved([]);
      setReport(await api.assessmentRun(options(), join && !!repo, logo.trim() || null));
    });
  const save = () =>
    go(async () => {
      if (report) setSaved(await api.assessmentSave(report, dir, pdf, overwrite));
    });

  return (
    <section aria-labelledby="assess-h">
      <h1 id="assess-h">Assessment</h1>
      <p className="muted">
        Every plugin runs its discovery and assessment in read-only calls: the host refuses writes over HTTP and LDAP
        and to files (commands and SQL queries run as granted). No repository is needed; with one, protection is
        judged too.
      </p>
      <div className="card form">
        {plugins.length === 0 ? (
          <Empty>No plugin is installed (Plugins screen, or rehydra plugins install …).</Empty>
        ) : (
          <fieldset>
            <legend>Plugins to sweep</legend>
            {plugins.map((p) => (
              <div key={p.id}>
                <label>
                  <input
                    type="checkbox"
                    data-testid={`assess-plugin-${p.id}`}
                    checked={!!chosen[p.id]}
                    onChange={(e) => setChosen({ ...chosen, [p.id]: e.target.checked })}
                  />{" "}
                  {p.id}
                </label>
                {chosen[p.id] && (
                  <details>
                    <summary>Discovery settings of {p.id}</summary>
                    <PluginSettings
                      plugin={p.id}
                      verb="discover"
                      testid={`assess-settings-${p.id}`}
                      value={settings[p.id] ?? []}
                      onChange={(v) => setSettings({ ...settings, [p.id]: v })}
                    />
                  </details>
                )}
              </div>
            ))}
          </fieldset>
        )}
        <label>
          Customer <input data-testid="assess-customer" value={customer} onChange={(e) => setCustomer(e.target.value)} />
        </label>
        <label>
          Consultant <input data-testid="assess-consultant" value={consultant} onChange={(e) => setConsultant(e.target.value)} />
        </label>
        <label>
          Scope <input value={scope} onChange={(e) => setScope(e.target.value)} />
        </label>
        <label>
          Logo (a PNG or JPEG file) <input value={logo} placeholder="optional" onChange={(e) => setLogo(e.target.value)} />
        </label>
        <label>
          RPO (hours) <input type="number" min={1} value={rpo} onChange={(e) => setRpo(Number(e.target.value) || 24)} />
        </label>
        <label>
          <input type="checkbox" data-testid="assess-join" checked={join && !!repo} disabled={!repo} onChange={(e) => setJoin(e.target.checked)} />{" "}
          {repo ? "Judge protection against the open repository" : "No repository open: protection is not judged"}
        </label>
        <div className="row">
          <button data-testid="assess-plan" disabled={busy} onClick={showPlan}>
            Show what will run
          </button>
          <button data-testid="assess-run" className="primary" disabled={busy} onClick={run}>
            {busy ? "Working…" : "Run assessment"}
          </button>
        </div>
      </div>
      <ErrorBox error={error} />
      {plan && (
        <table data-testid="assess-plan-table">
          <TableHead cols={["Plugin", "Runs", "Note", "May reach"]} />
          <tbody>
            {plan.map((p) => (
              <tr key={p.plugin} data-testid="assess-plan-row" data-plugin={p.plugin} data-runs={p.runs}>
                <td>{p.plugin}</td>
                <td>{p.runs ? "yes" : "no"}</td>
                <td>{p.note}</td>
                <td>{p.grants.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {report && <Result report={report} />}
      {report && (
        <div className="card form">
          <label>
            Save the report into the folder{" "}
            <input data-testid="assess-dir" value={dir} onChange={(e) => setDir(e.target.value)} />
          </label>
          <label>
            <input type="checkbox" data-testid="assess-pdf" checked={pdf} onChange={(e) => setPdf(e.target.checked)} /> Also a PDF
            (printed by Chromium, Chrome or Edge)
          </label>
          <label>
            <input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} /> Replace report files
            already there
          </label>
          <button data-testid="assess-save" disabled={busy || !dir.trim()} onClick={save}>
            Save report
          </button>
          {saved.length > 0 && (
            <ul data-testid="assess-saved">
              {saved.map((s) => (
                <li key={s}>{s}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}

function Result({ report }: { report: Report }) {
  const s = report.summary;
  const c = s.coverage;
  return (
    <div className="card" data-testid="assess-result">
      <h2>
        Score <span data-testid="assess-score">{s.score}</span> (grade {s.grade})
      </h2>
      <p>
        {report.repositories.length === 0
          ? `${c.unknown} assets; protection not judged (no repository).`
          : `${c.protected} protected, ${c.stale} stale, ${c.unprotected} without a restore point.`}
      </p>
      <h3>What to do first</h3>
      <ol>
        {s.top_actions.map((a) => (
          <li key={a.rule} data-testid="assess-action" data-rule={a.rule}>
            <span className={`badge sev-${a.severity}`}>{a.severity}</span> <strong>{a.title}</strong>
            {a.assets > 0 && ` (${a.assets})`}: {a.recommendation}
          </li>
        ))}
      </ol>
      <table data-testid="assess-findings">
        <TableHead cols={["Severity", "Finding", "Asset", "Evidence"]} />
        <tbody>
          {report.findings.map((f) => (
            <tr key={f.id} data-testid="assess-finding" data-id={f.id}>
              <td>
                <span className={`badge sev-${f.severity}`}>{f.severity}</span>
              </td>
              <td>
                {f.title}
                <br />
                <small className="muted">{f.rule}</small>
              </td>
              <td>{f.asset_name ?? f.asset ?? "the estate"}</td>
              <td>{f.evidence}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
