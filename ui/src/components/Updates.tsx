import { useState } from "react";
import { api, asError, type ApiError, type UpdateView } from "../ipc";
import { ErrorBox } from "./common";

/** Updates of the app: where this build looks for them and the key their installers must
 *  be signed with (both fixed when it was built), a check, and Install, which downloads
 *  the installer, checks its signature and installs it. */
export default function Updates() {
  const [view, setView] = useState<UpdateView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState<"" | "checking" | "installing">("");
  const [done, setDone] = useState("");
  const check = () => {
    setBusy("checking");
    setError(null);
    setDone("");
    api.updateCheck().then(setView).catch((e) => setError(asError(e))).finally(() => setBusy(""));
  };
  const install = (version: string) => {
    setBusy("installing");
    setError(null);
    api.updateInstall(version).then(setDone).catch((e) => setError(asError(e))).finally(() => setBusy(""));
  };
  return (
    <div className="card" data-testid="updates">
      <h2>Updates</h2>
      <p className="small muted">
        An update is installed only when its installer is signed with the key this build was made with, for the version it
        claims to be.
      </p>
      <button data-testid="update-check" disabled={busy !== ""} onClick={check}>{busy === "checking" ? "Checking…" : "Check for updates"}</button>
      <ErrorBox error={error} />
      {view && (
        <div data-testid="update-view">
          {view.source === null ? (
            <p>This build ({view.current}) was made without an update key: it looks for no updates. Install a new package by hand.</p>
          ) : (
            <>
              <p className="small">
                This is {view.current}. Updates come from <code>{view.source}</code>, signed with key <code>{view.key_id}</code>.
              </p>
              {view.available === null ? (
                <p data-testid="update-none">You have the newest version.</p>
              ) : (
                <div data-testid="update-available">
                  <p><strong>{view.available.version}</strong> is out{view.available.date ? ` (${view.available.date})` : ""}.</p>
                  {view.available.notes && <pre className="small">{view.available.notes}</pre>}
                  <p className="small muted">(The notes and the date are the manifest's, which is not signed; the installer is.)</p>
                  {view.not_installable ? (
                    <p className="small" data-testid="update-manual">{view.not_installable}</p>
                  ) : null}
                  <button data-testid="update-install" disabled={busy !== ""} onClick={() => install(view.available!.version)}>
                    {busy === "installing" ? "Downloading and checking…" : `Install ${view.available.version}`}
                  </button>
                </div>
              )}
            </>
          )}
        </div>
      )}
      {done && <p data-testid="update-done">{done}</p>}
    </div>
  );
}
