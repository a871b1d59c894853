import { useEffect, useState } from "react";
import { api, asError, type ApiError, type AzureStatus, type IdentitySetting } from "../ipc";
import { ErrorBox, Loading, TableHead } from "../components/common";
import Connections from "../components/Connections";
import Updates from "../components/Updates";

type Kind = IdentitySetting["kind"];
type SecretKind = "file" | "env";

const KINDS: [Kind, string][] = [
  ["auto", "Automatic: environment service principal, then az, azd, managed identity"],
  ["azure-cli", "Azure CLI sign-in (az login): an admin at the keyboard"],
  ["azure-developer-cli", "Azure Developer CLI sign-in (azd auth login)"],
  ["service-principal", "Service principal with a client secret: for schedules"],
  ["certificate", "Service principal with a certificate: for schedules"],
  ["managed-identity", "This machine's managed identity (Azure Arc or Azure VM)"],
];

/** Settings: Azure sign-in (which identity is in use, what failed and why, choosing one), and
 * the directories and command targets plugins reach. */
export default function Settings() {
  const [status, setStatus] = useState<AzureStatus | null>(null);
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [kind, setKind] = useState<Kind>("auto");
  const [tenant, setTenant] = useState("");
  const [clientId, setClientId] = useState("");
  const [secretKind, setSecretKind] = useState<SecretKind>("file");
  const [secretWhere, setSecretWhere] = useState("");
  const [certificate, setCertificate] = useState("");

  const check = async () => {
    setChecking(true);
    setError(null);
    try {
      setStatus(await api.azureStatus());
    } catch (e) {
      setError(asError(e));
    } finally {
      setChecking(false);
    }
  };
  useEffect(() => {
    api
      .azureSettings()
      .then((s) => {
        const id = s.identity;
        setKind(id.kind);
        if (id.kind === "service-principal" || id.kind === "certificate") {
          setTenant(id.tenant);
          setClientId(id.client_id);
        }
        if (id.kind === "service-principal") {
          if ("file" in id.secret) { setSecretKind("file"); setSecretWhere(id.secret.file); }
          if ("env" in id.secret) { setSecretKind("env"); setSecretWhere(id.secret.env); }
        }
        if (id.kind === "certificate") setCertificate(id.certificate);
        if (id.kind === "managed-identity") setClientId(id.client_id ?? "");
      })
      .catch((e) => setError(asError(e)));
    check();
  }, []);

  const identity = (): IdentitySetting => {
    switch (kind) {
      case "service-principal":
        return {
          kind,
          tenant,
          client_id: clientId,
          secret: secretKind === "file" ? { file: secretWhere } : { env: secretWhere },
        };
      case "certificate":
        return { kind, tenant, client_id: clientId, certificate };
      case "managed-identity":
        return clientId ? { kind, client_id: clientId } : { kind };
      default:
        return { kind } as IdentitySetting;
    }
  };
  const save = async () => {
    setError(null);
    try {
      await api.azureSetIdentity(identity());
      await check();
    } catch (e) {
      setError(asError(e));
    }
  };
  const sp = kind === "service-principal" || kind === "certificate";

  return (
    <section aria-labelledby="st-h">
      <h1 id="st-h">Settings</h1>
      <ErrorBox error={error} />
      <div className="card" data-testid="azure-status">
        <h2>Azure sign-in</h2>
        <p className="small muted">
          Plugins never see a token: Rehydra signs in and adds it to their requests to Azure hosts they were granted.
        </p>
        {status === null ? (
          <Loading what="the Azure sign-in" />
        ) : (
          <>
            <p data-testid="azure-configured">Configured: {status.configured}</p>
            {status.source ? (
              <p data-testid="azure-signed-in">
                Signed in as {status.user ?? status.app_id ?? "an identity"} through {status.source}
                {status.tenant ? `, tenant ${status.tenant}` : ""}
                {status.expires ? ` (token until ${status.expires}, refreshed on its own)` : ""}
              </p>
            ) : (
              <p data-testid="azure-signed-in" className="risk">Not signed in: {status.error ?? "no identity gave a token"}</p>
            )}
            <ul data-testid="azure-attempts">
              {status.attempts.map((a) => (
                <li key={a.source}>
                  {a.failure ? "✗" : "✓"} {a.source}
                  {a.failure ? `: ${a.failure}` : ""}
                </li>
              ))}
            </ul>
            {status.subscriptions_error && <p className="risk">Subscriptions not listed: {status.subscriptions_error}</p>}
            {status.subscriptions.length > 0 && (
              <table data-testid="azure-subscriptions">
                <TableHead cols={["Subscription", "Name", "State"]} />
                <tbody>
                  {status.subscriptions.map((s) => (
                    <tr key={s.id}><td>{s.id}</td><td>{s.name}</td><td>{s.state}</td></tr>
                  ))}
                </tbody>
              </table>
            )}
            <p className="small muted">Azure Resource Manager: {status.arm_endpoint}</p>
          </>
        )}
        <button data-testid="azure-check" onClick={check} disabled={checking}>
          {checking ? "Checking…" : "Check again"}
        </button>
      </div>
      <div className="card">
        <h2>Sign in with</h2>
        <label>
          Identity
          <select data-testid="azure-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            {KINDS.map(([k, label]) => (
              <option key={k} value={k}>{label}</option>
            ))}
          </select>
        </label>
        {sp && (
          <>
            <label>
              Tenant (directory id or domain)
              <input data-testid="azure-tenant" value={tenant} onChange={(e) => setTenant(e.target.value)} />
            </label>
            <label>
              Application (client) id
              <input data-testid="azure-client-id" value={clientId} onChange={(e) => setClientId(e.target.value)} />
            </label>
          </>
        )}
        {kind === "service-principal" && (
          <>
            <label>
              Client secret from
              <select data-testid="azure-secret-kind" value={secretKind} onChange={(e) => setSecretKind(e.target.value as SecretKind)}>
                <option value="file">a file only its owner can read</option>
                <option value="env">an environment variable</option>
              </select>
            </label>
            <label>
              {secretKind === "file" ? "Secret file" : "Environment variable"}
              <input data-testid="azure-secret-where" value={secretWhere} onChange={(e) => setSecretWhere(e.target.value)} />
            </label>
            <p className="small muted">To keep the secret in the OS keychain instead: <code>rehydra azure login --service-principal … --secret-keychain</code>.</p>
          </>
        )}
        {kind === "certificate" && (
          <label>
            Certificate (PEM with its RSA key)
            <input data-testid="azure-certificate" value={certificate} onChange={(e) => setCertificate(e.target.value)} />
          </label>
        )}
        {kind === "managed-identity" && (
          <label>
            User-assigned identity's client id (optional; Azure VMs only)
            <input data-testid="azure-client-id" value={clientId} onChange={(e) => setClientId(e.target.value)} />
          </label>
        )}
        <button data-testid="azure-save" onClick={save}>Save and check</button>
      </div>
      <Connections />
      <Updates />
    </section>
  );
}
