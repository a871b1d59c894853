// The app's end-to-end test, Active Directory part: a real Samba DC, an OU with two users
// and a group, backed up by the CLI; the OU and its users deleted; then, in the restore
// wizard, the OU found with the search beside `object`, restored with what was below it,
// and the users back with their SIDs and group membership. The time from opening the
// wizard to the result is printed (measured, not tested).
import path from "node:path";
import { execFileSync } from "node:child_process";
import { BASE, startDc } from "./samba.mjs";

/** `t`: the test's session `s`, `cli`, `env`, `repo`, `tmp`, `plugins`, `check`, `wizardTo`, `shot`. */
export async function activeDirectory(t) {
  const { s, check } = t;
  const dc = await startDc(path.join(t.tmp, "dc"));
  try {
    dc.apply(`dn: OU=Staff,${BASE}
objectClass: organizationalUnit
ou: Staff

dn: CN=Alice Smith,OU=Staff,${BASE}
objectClass: user
sAMAccountName: alice
userAccountControl: 514

dn: CN=Carol King,OU=Staff,${BASE}
objectClass: user
sAMAccountName: carol
userAccountControl: 514

dn: CN=All Staff,CN=Users,${BASE}
objectClass: group
sAMAccountName: allstaff
member: CN=Alice Smith,OU=Staff,${BASE}
member: CN=Carol King,OU=Staff,${BASE}
`);
    const sids = () =>
      dc.ldap("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", BASE, "(|(sAMAccountName=alice)(sAMAccountName=carol))", "objectSid", "memberOf"])
        .stdout.split("\n").filter((l) => l.trim()).sort().join("\n");
    const before = sids();
    const cli = (...args) =>
      execFileSync(t.cli, args, { env: { ...t.env, REHYDRA_REPOSITORY: t.repo, REHYDRA_PASSWORD: "correct horse battery staple" }, stdio: ["ignore", "pipe", "inherit"] });
    cli("plugins", "install", path.join(t.plugins, "active-directory.wasm"));
    cli("plugins", "directory", "add", "127.0.0.1", "--bind", dc.admin, "--password-file", dc.pwFile, "--ca-file", dc.ca);
    cli("plugins", "grant", "active-directory", "engine", "ldap:127.0.0.1");
    cli("plugins", "run", "active-directory", "backup", "--asset", "test.lan@127.0.0.1");
    for (const dn of [`CN=Alice Smith,OU=Staff,${BASE}`, `CN=Carol King,OU=Staff,${BASE}`, `OU=Staff,${BASE}`]) {
      const o = dc.ldap("ldapdelete", [dn]);
      if (o.status !== 0) throw new Error(`ldapdelete ${dn}: ${o.stderr}`);
    }
    const gone = !sids().includes("objectSid");

    // the wizard reads the restore points as it opens: away and back, as an admin would
    await s.click('[data-testid="nav-inventory"]');
    const started = Date.now();
    await s.click('[data-testid="nav-restore"]');
    await t.wizardTo("test.lan@127.0.0.1", "plugin");
    await s.type('[data-testid="wizard-target"]', "-");
    await s.wait('[data-testid="wizard-options-form"]', (x) => x.includes("subtree"));
    await s.type('[data-testid="find-object"]', "staff");
    await s.click('[data-testid="find-object-go"]');
    await s.wait('[data-testid="found-object"]', (x) => x.includes(`OU=Staff,${BASE} (organizationalUnit, deleted in the directory)`));
    // shallowest first: the OU, then what was in it
    await s.click('[data-testid="found-object"] [data-testid="found-pick"]');
    await s.click('[data-testid="setting-subtree"]');
    await s.click('[data-testid="wizard-plan"]');
    await s.wait('[data-testid="plan"]', (x) => x.includes(`Reanimate OU=Staff,${BASE}`) && x.includes("Reanimate CN=Alice Smith"));
    await s.click('[data-testid="plan-confirm"]');
    await s.click('[data-testid="plan-run"]');
    await s.wait('[data-testid="run-result"]', (x) => /restored/i.test(x), 60000);
    const took = (Date.now() - started) / 1000;
    const after = sids();
    check(
      gone && after === before && after.includes("memberOf: CN=All Staff,CN=Users"),
      `a deleted OU came back with its users, their SIDs and group membership from the restore wizard on a real Samba DC, found with the search beside \`object\` (${took.toFixed(1)} s from opening the wizard)`,
    );
    await t.shot("14c-restore-active-directory");
  } finally {
    await dc.stop();
  }
}
