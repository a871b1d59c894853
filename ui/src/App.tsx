import { useCallback, useEffect, useState } from "react";
import { api, asError, newJobId, onStateChanged, type RepoInfo } from "./ipc";
import Repositories from "./screens/Repositories";
import Inventory, { type Intent } from "./screens/Inventory";
import Protection from "./screens/Protection";
import Restore from "./screens/Restore";
import Plugins from "./screens/Plugins";
import Settings from "./screens/Settings";
import Assessment from "./screens/Assessment";

const SCREENS = ["Inventory", "Protection", "Restore", "Assessment", "Repositories", "Plugins", "Settings"] as const;
type Screen = (typeof SCREENS)[number];

type Theme = "system" | "light" | "dark";

/** The theme the user chose (kept in this app's local storage), applied to <html>. */
function useTheme(): [Theme, (t: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem("rehydra.theme") as Theme | null) ?? "system");
  useEffect(() => {
    if (theme === "system") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", theme);
    localStorage.setItem("rehydra.theme", theme);
  }, [theme]);
  return [theme, setTheme];
}

export default function App() {
  const [screen, setScreen] = useState<Screen>("Repositories");
  const [theme, setTheme] = useTheme();
  const [repo, setRepo] = useState<RepoInfo | null>(null);
  // an inventory row's "Back up now" or "Restore…": the screen it opens starts from it
  const [intent, setIntent] = useState<Intent | null>(null);
  const act = (i: Intent) => {
    setIntent(i);
    setScreen(i.action === "restore" ? "Restore" : "Protection");
  };
  // the open repositories, the one the screens work on first
  const [openRepos, setOpenRepos] = useState<string[]>([]);
  const refresh = useCallback(() => {
    api.repoStatus().then(setRepo).catch(() => setRepo(null));
    api.reposOpen().then(setOpenRepos).catch(() => setOpenRepos([]));
  }, []);
  useEffect(refresh, [refresh]);
  useEffect(() => onStateChanged(["repository", "restore-points", "jobs"], refresh), [refresh]);
  // while the app is open, run the open repositories' due policies (one at a time; one
  // timer for the app's life, so a round still running is never joined by another),
  // except those of the repository a service runs (`rehydra service`): it runs them, and
  // the app does not start the same backup a second time; a service whose repository
  // cannot be read leaves every policy to it. A failed policy is not due again until its
  // pause (kept in the catalog) is over.
  useEffect(() => {
    let running = false;
    const tick = async () => {
      if (running) return;
      running = true;
      try {
        const service = await api.serviceStatus();
        if (service && !service.repository) return;
        for (const s of await api.policies()) {
          // the open ones looked at again before each: one may have been closed meanwhile
          if (s.due && s.policy.repository !== service?.repository && (await api.reposOpen()).includes(s.policy.repository)) {
            await api.policyRun(s.policy.name, newJobId(), () => {}).catch(() => {});
          }
        }
      } catch {
        // the Protection screen shows policy errors
      } finally {
        running = false;
        refresh();
      }
    };
    const t = window.setInterval(tick, 60_000);
    return () => window.clearInterval(t);
  }, [refresh]);
  return (
    <div className="app">
      <nav aria-label="Screens">
        <div className="brand">Rehydra</div>
        {SCREENS.map((s) => (
          <button
            key={s}
            data-testid={`nav-${s.toLowerCase()}`}
            aria-current={screen === s ? "page" : undefined}
            onClick={() => {
              // a screen chosen here starts from nothing a row asked for before
              setIntent(null);
              setScreen(s);
              refresh();
            }}
          >
            {s}
          </button>
        ))}
        <div className="repo-chip" data-testid="repo-chip" title={repo?.location}>
          {repo ? `${repo.restorePoints} restore point${repo.restorePoints === 1 ? "" : "s"}` : "no repository open"}
        </div>
        {openRepos.length > 1 && (
          <label className="theme">
            Repository
            <select data-testid="repo-switch" value={repo?.location ?? ""} onChange={(e) => api.repoSwitch(e.target.value).catch((err) => window.alert(asError(err).message)).finally(refresh)}>
              {openRepos.map((l) => <option key={l} value={l}>{l}</option>)}
            </select>
          </label>
        )}
        <label className="theme">
          Theme
          <select data-testid="theme" value={theme} onChange={(e) => setTheme(e.target.value as Theme)}>
            <option value="system">as the system</option>
            <option value="light">light</option>
            <option value="dark">dark</option>
          </select>
        </label>
      </nav>
      <main>
        {screen === "Repositories" && <Repositories repo={repo} onChange={refresh} />}
        {screen === "Inventory" && <Inventory repo={repo} onAct={act} />}
        {screen === "Protection" && <Protection repo={repo} onChange={refresh} intent={intent?.action !== "restore" ? intent : null} />}
        {screen === "Restore" && <Restore repo={repo} intent={intent?.action === "restore" ? intent : null} />}
        {screen === "Plugins" && <Plugins />}
        {screen === "Settings" && <Settings />}
        {screen === "Assessment" && <Assessment repo={repo} />}
      </main>
    </div>
  );
}
