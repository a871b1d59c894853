import { useCallback, useEffect, useState } from "react";
import { api, type RepoInfo } from "./ipc";
import Repositories from "./screens/Repositories";
import Inventory from "./screens/Inventory";
import Protection from "./screens/Protection";
import Restore from "./screens/Restore";
import Plugins from "./screens/Plugins";

const SCREENS = ["Inventory", "Protection", "Restore", "Repositories", "Plugins"] as const;
type Screen = (typeof SCREENS)[number];

export default function App() {
  const [screen, setScreen] = useState<Screen>("Repositories");
  const [repo, setRepo] = useState<RepoInfo | null>(null);
  const refresh = useCallback(() => {
    api.repoStatus().then(setRepo).catch(() => setRepo(null));
  }, []);
  useEffect(refresh, [refresh]);
  return (
    <div className="app">
      <nav aria-label="Screens">
        <div className="brand">Rehydra</div>
        {SCREENS.map((s) => (
          <button
            key={s}
            data-testid={`nav-${s.toLowerCase()}`}
            aria-current={screen === s ? "page" : undefined}
            onClick={() => setScreen(s)}
          >
            {s}
          </button>
        ))}
        <div className="repo-chip" data-testid="repo-chip" title={repo?.location}>
          {repo ? `${repo.restorePoints} restore point${repo.restorePoints === 1 ? "" : "s"}` : "no repository open"}
        </div>
      </nav>
      <main>
        {screen === "Repositories" && <Repositories repo={repo} onChange={refresh} />}
        {screen === "Inventory" && <Inventory repo={repo} />}
        {screen === "Protection" && <Protection repo={repo} onChange={refresh} />}
        {screen === "Restore" && <Restore repo={repo} />}
        {screen === "Plugins" && <Plugins />}
      </main>
    </div>
  );
}
