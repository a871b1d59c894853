import { useEffect, useState } from "react";
import { api, asError, type RestorePlan, type SettingDecl, type SettingVerb } from "../ipc";
import { parsePairs } from "../format";

type Pairs = [string, string][];

/** Plans with one more setting (`by=text`), for a field whose values a search finds. */
export type Find = (by: string, text: string) => Promise<RestorePlan>;

/** The settings of one plugin for one kind of call, as a form built from what its
 *  manifest declares (typed fields, required marks, defaults, choices); the host checks
 *  the same declaration again. A plugin that declares none gets name=value lines.
 *  Controlled: `value` holds the pairs to send (blank fields are left out, so the
 *  declared default applies); the caller clears it when the plugin changes. */
export function PluginSettings({
  plugin,
  verb,
  testid,
  bare = "",
  value,
  onChange,
  find,
}: {
  plugin: string;
  verb: SettingVerb;
  /** data-testid of the name=value box, for plugins that declare nothing. */
  testid: string;
  /** Value of a line without `=` in the name=value box. */
  bare?: string;
  value: Pairs;
  onChange: (pairs: Pairs) => void;
  /** Where a setting declares `found-by`, the search beside it plans with this. */
  find?: Find;
}) {
  const [declared, setDeclared] = useState<SettingDecl[] | null>(null);
  const [text, setText] = useState(() => value.map(([k, v]) => `${k}=${v}`).join("\n"));
  useEffect(() => {
    setDeclared(null);
    if (!plugin) return;
    api
      .pluginInfo(plugin)
      .then((d) => setDeclared(d.manifest.settings))
      .catch(() => setDeclared([]));
  }, [plugin]);
  // a setting that only looks another's values up is the search beside that field
  const finders = new Set(find ? (declared ?? []).map((s) => s["found-by"]).filter((b) => b) : []);
  const mine = (declared ?? []).filter((s) => s.verbs.includes(verb) && !finders.has(s.name));
  const values: Record<string, string> = Object.fromEntries(value);
  const set = (name: string, v: string) =>
    onChange(Object.entries({ ...values, [name]: v }).filter(([, x]) => x !== ""));
  if (declared === null) return null;
  if (declared.length === 0) {
    return (
      <label>
        Settings (name=value per line)
        <textarea
          rows={3}
          data-testid={testid}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            onChange(parsePairs(e.target.value, bare));
          }}
        />
      </label>
    );
  }
  if (mine.length === 0) return <p className="muted">{plugin} takes no settings here.</p>;
  return (
    <fieldset className="settings" data-testid={`${testid}-form`}>
      <legend>Settings</legend>
      {mine.map((s) => (
        <div key={s.name}>
          <Field decl={s} value={values[s.name] ?? ""} onChange={(v) => set(s.name, v)} />
          {find && s["found-by"] && <Finder decl={s} by={s["found-by"]} find={find} onPick={(v) => set(s.name, v)} />}
        </div>
      ))}
    </fieldset>
  );
}

/** A search for `decl`'s values: the plan given `by=<text>` lists them as steps whose ids
 *  are `pick:<value>` (the SDK's `found::PICK`, which plugins write); picking one fills
 *  the field in. */
function Finder({ decl, by, find, onPick }: { decl: SettingDecl; by: string; find: Find; onPick: (v: string) => void }) {
  const [text, setText] = useState("");
  const [found, setFound] = useState<{ value: string; title: string; detail: string }[] | null>(null);
  const [notes, setNotes] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const search = async () => {
    setBusy(true);
    setFound(null);
    setNotes([]);
    try {
      const plan = await find(by, text);
      const picks = plan.steps.filter((s) => s.id.startsWith("pick:"));
      setFound(picks.map((s) => ({ value: s.id.slice("pick:".length), title: s.title, detail: s.detail })));
      // other steps (a summary) are said as they are, with the warnings
      const said = plan.steps.filter((s) => !s.id.startsWith("pick:")).map((s) => s.title);
      setNotes([...said, ...plan.warnings, ...plan.blockers]);
    } catch (e) {
      setNotes([asError(e).message]);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="finder">
      <label>
        Find a value for {decl.name}
        <input data-testid={`find-${decl.name}`} value={text} placeholder={decl.type === "time" ? "part of a moment: 2026-12-01, or 2026-12-01T14" : "part of a name"} onChange={(e) => setText(e.target.value)} />
      </label>
      <button data-testid={`find-${decl.name}-go`} disabled={busy || !text.trim()} onClick={search}>
        {busy ? "Looking…" : "Find"}
      </button>
      {found && (
        <ul data-testid={`found-${decl.name}`}>
          {found.map((f, i) => (
            <li key={i}>
              <button data-testid="found-pick" onClick={() => onPick(f.value)}>
                {f.title}
              </button>{" "}
              <small className="muted">{f.detail}</small>
            </li>
          ))}
        </ul>
      )}
      {notes.map((n, i) => (
        <p key={i} className="small muted">{n}</p>
      ))}
    </div>
  );
}

/** Whether a `time` setting's value is one the calendar shows (else a text field shows it). */
const calendarShows = (v: string) => v === "" || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z?$/.test(v);

function Field({ decl, value, onChange }: { decl: SettingDecl; value: string; onChange: (v: string) => void }) {
  const id = `setting-${decl.name}`;
  const label = (
    <>
      {decl.name}
      {decl.required && <span aria-label="required"> *</span>}
    </>
  );
  if (decl.type === "bool") {
    // the SDK's truthiness rule: true, yes, on or 1, any case
    const truthy = (v: string) => ["true", "yes", "on", "1"].includes(v.trim().toLowerCase());
    const on = truthy(value === "" ? (decl.default ?? "") : value);
    return (
      <label title={decl.help}>
        <input type="checkbox" data-testid={id} checked={on} onChange={(e) => onChange(e.target.checked ? "true" : "false")} /> {label}
        <small className="muted"> {decl.help}</small>
      </label>
    );
  }
  const hint = decl.default ? `default: ${decl.default}` : decl.required ? "required" : "optional";
  return (
    <label title={decl.help}>
      {label}
      {decl.type === "choice" ? (
        <select data-testid={id} value={value} required={decl.required} onChange={(e) => onChange(e.target.value)}>
          <option value="">{decl.default ? `(default: ${decl.default})` : "(choose)"}</option>
          {decl.choices.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      ) : decl.type === "time" && calendarShows(value) ? (
        // a calendar and a clock to the second; the field holds what the plugin is given
        // (a trailing `Z` is not shown; a value the calendar cannot show is a text field)
        <input
          data-testid={id}
          type="datetime-local"
          step={1}
          required={decl.required}
          value={value.replace(/Z$/, "")}
          onChange={(e) => onChange(e.target.value)}
        />
      ) : (
        <input
          data-testid={id}
          type={decl.secret ? "password" : decl.type === "integer" ? "number" : "text"}
          step={decl.type === "integer" ? 1 : undefined}
          required={decl.required}
          placeholder={hint}
          value={value}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
      <small className="muted">{decl.help}</small>
    </label>
  );
}
