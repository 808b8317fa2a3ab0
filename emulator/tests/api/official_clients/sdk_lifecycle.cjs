// The official TypeScript SDK (@neondatabase/api-client), unchanged, through a whole lifecycle
// against the emulator. Run by emulator/tests/api/test_official_node_clients.py:
//   node sdk_lifecycle.cjs            (env: JAMBO_BASE_URL, JAMBO_API_KEY, JAMBO_SKIP_STEPS, NODE_PATH)
// Prints one JSON document on stdout: {"steps": [{"name", "ok", "skipped"?, "error"?}]}. A failed
// step is recorded and the run goes on (later steps that need its result fail too, and say so);
// the pytest side decides what passes. Skipped steps (known client bugs, unemulated operations)
// are named by the test with a reason and not called at all.
"use strict";

const { createApiClient } = require("@neondatabase/api-client");

const baseURL = process.env.JAMBO_BASE_URL;
const apiKey = process.env.JAMBO_API_KEY;
const skip = new Set(JSON.parse(process.env.JAMBO_SKIP_STEPS || "[]"));
const api = createApiClient({ apiKey, baseURL, timeout: 30000 });
const steps = [];

function describe(err) {
  if (err && err.response) {
    const body = err.response.data;
    const message = body && typeof body === "object" ? body.message : String(body);
    return `HTTP ${err.response.status} ${err.config.method.toUpperCase()} ${err.config.url}: ${message}`;
  }
  return String((err && err.stack) || err);
}

class StepFailed extends Error {}

// Runs one step; `check` gets the response body and throws (or returns a string) on a wrong answer.
// Returns the body, or undefined when the call itself failed.
async function step(name, call, check) {
  if (skip.has(name)) {
    steps.push({ name, ok: false, skipped: true });
    return undefined;
  }
  let response;
  try {
    response = await call();
    const problem = check ? check(response.data) : undefined;
    if (typeof problem === "string") throw new StepFailed(problem);
    steps.push({ name, ok: true });
  } catch (err) {
    steps.push({ name, ok: false, error: err instanceof StepFailed ? err.message : describe(err) });
  }
  // A wrong answer is still an answer: later steps go on with it (and record their own result).
  return response && response.data;
}

// What the documentation tells clients to do between dependent requests: wait for the project's
// operations. Not a step (the SDK has no such helper); a timeout shows up in the next step's 423.
async function settle(projectId) {
  if (!projectId) return;
  const deadline = Date.now() + 60000; // a point-in-time copy starts a recovery server: seconds on a busy machine
  while (Date.now() < deadline) {
    try {
      const { data } = await api.listProjectOperations({ projectId });
      const busy = data.operations.some((op) => ["scheduling", "running", "cancelling"].includes(op.status));
      if (!busy) return;
    } catch (err) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function expect(condition, message) {
  if (!condition) throw new StepFailed(message);
}

async function main() {
  // -- account, API keys, organizations
  const me = await step("getCurrentUserInfo", () => api.getCurrentUserInfo(), (b) =>
    expect(b.email && b.id, "no email/id in users/me"));
  await step("getAuthDetails", () => api.getAuthDetails(), (b) =>
    expect(b.auth_method, "no auth_method"));
  const orgs = await step("getCurrentUserOrganizations", () => api.getCurrentUserOrganizations(), (b) =>
    expect(Array.isArray(b.organizations) && b.organizations.length > 0, "no organizations"));
  const orgId = orgs && orgs.organizations[0].id;
  await step("getOrganization", () => api.getOrganization(orgId), (b) => expect(b.id === orgId, "wrong org"));
  const members = await step("getOrganizationMembers", () => api.getOrganizationMembers({ orgId }), (b) =>
    expect(Array.isArray(b.members) && b.members.length > 0, "no members"));
  const memberId = members && members.members[0].member.id;
  await step("getOrganizationMember", () => api.getOrganizationMember(orgId, memberId), (b) =>
    expect(b.id === memberId && b.org_id === orgId, "wrong member"));

  const key = await step("createApiKey", () => api.createApiKey({ key_name: "ts-sdk" }), (b) =>
    expect(b.id && b.key, "no id/key"));
  await step("listApiKeys", () => api.listApiKeys(), (b) =>
    expect(b.some((k) => key && k.id === key.id), "created key not listed"));
  await step("revokeApiKey", () => api.revokeApiKey(key && key.id), (b) => expect(b.revoked === true, "not revoked"));

  const orgKey = await step("createOrgApiKey", () => api.createOrgApiKey(orgId, { key_name: "ts-org" }), (b) =>
    expect(b.id && b.key, "no id/key"));
  await step("listOrgApiKeys", () => api.listOrgApiKeys(orgId), (b) =>
    expect(b.some((k) => orgKey && k.id === orgKey.id), "created org key not listed"));

  // -- projects
  const created = await step("createProject", () => api.createProject({ project: { name: "ts-sdk" } }), (b) =>
    expect(b.project && b.branch && b.connection_uris && b.connection_uris.length > 0, "incomplete create answer"));
  const projectId = created && created.project.id;
  const mainId = created && created.branch.id;
  await settle(projectId);
  await step("listProjects", () => api.listProjects({}), (b) =>
    expect(b.projects.some((p) => p.id === projectId), "created project not listed"));
  await step("listProjects(org_id)", () => api.listProjects({ org_id: orgId }), (b) =>
    expect(b.projects.some((p) => p.id === projectId), "project not listed under its organization"));
  await step("listSharedProjects", () => api.listSharedProjects({}), (b) =>
    expect(Array.isArray(b.projects), "no projects array"));
  await step("getProject", () => api.getProject(projectId), (b) => expect(b.project.id === projectId, "wrong project"));
  await step("updateProject", () => api.updateProject(projectId, { project: { name: "ts-sdk-renamed" } }), (b) =>
    expect(b.project.name === "ts-sdk-renamed", "name not updated"));
  const permission = await step("grantPermissionToProject", () =>
    api.grantPermissionToProject(projectId, { email: "colleague@example.com" }), (b) =>
    expect(b.id && b.granted_to_email === "colleague@example.com", "not granted"));
  await step("listProjectPermissions", () => api.listProjectPermissions(projectId), (b) =>
    expect(b.project_permissions.some((x) => permission && x.id === permission.id), "grant not listed"));
  await step("revokePermissionFromProject", () => api.revokePermissionFromProject(projectId, permission && permission.id), (b) =>
    expect(b.revoked_at, "not revoked"));

  // -- branches
  const branch = await step("createProjectBranch", () =>
    api.createProjectBranch(projectId, { branch: { name: "dev" }, endpoints: [{ type: "read_write" }] }), (b) =>
    expect(b.branch.parent_id === mainId && b.endpoints.length === 1, "wrong parent or endpoints"));
  const branchId = branch && branch.branch.id;
  await settle(projectId);
  await step("listProjectBranches", () => api.listProjectBranches({ projectId }), (b) =>
    expect(b.branches.length === 2, `expected 2 branches, got ${b.branches.length}`));
  await step("countProjectBranches", () => api.countProjectBranches({ projectId }), (b) =>
    expect(b.count === 2, `count ${b.count}`));
  await step("getProjectBranch", () => api.getProjectBranch(projectId, branchId), (b) =>
    expect(b.branch.current_state === "ready", `state ${b.branch.current_state}`));
  await step("updateProjectBranch", () => api.updateProjectBranch(projectId, branchId, { branch: { name: "dev2" } }), (b) =>
    expect(b.branch.name === "dev2", "name not updated"));
  await settle(projectId);
  // Reset from the parent, keeping the old state as a backup: the backup becomes dev2's parent.
  const restored = await step("restoreProjectBranch", () =>
    api.restoreProjectBranch(projectId, branchId, { source_branch_id: mainId, preserve_under_name: "dev2-backup" }), (b) =>
    expect(b.branch.id === branchId, "restore answered another branch"));
  await settle(projectId);
  await step("getProjectBranch(after restore)", () => api.getProjectBranch(projectId, branchId), (b) =>
    expect(restored && b.branch.parent_id !== mainId && b.branch.current_state === "ready",
      `after restore parent_id=${b.branch.parent_id} (the backup expected) state=${b.branch.current_state}`));
  // A point in time a client read back from the API (whole seconds): the project's creation.
  await step("createProjectBranch(parent_timestamp)", () =>
    api.createProjectBranch(projectId, { branch: { name: "at-start", parent_timestamp: created.project.created_at } }), (b) =>
    expect(b.branch.parent_timestamp === created.project.created_at, `parent_timestamp ${b.branch.parent_timestamp}`));
  await settle(projectId);
  await step("getProjectBranchSchema", () => api.getProjectBranchSchema({ projectId, branchId: mainId, db_name: "neondb" }), (b) =>
    expect(typeof b.sql === "string" && b.sql.includes("PostgreSQL database dump"), "no dump"));
  await step("getProjectBranchSchemaComparison", () =>
    api.getProjectBranchSchemaComparison({ projectId, branchId, base_branch_id: mainId, db_name: "neondb" }), (b) =>
    expect(typeof b.diff === "string", "no diff"));
  await step("listProjectBranchEndpoints", () => api.listProjectBranchEndpoints(projectId, branchId), (b) =>
    expect(b.endpoints.length === 1, "branch endpoint missing"));

  // -- endpoints
  const ro = await step("createProjectEndpoint", () =>
    api.createProjectEndpoint(projectId, { endpoint: { branch_id: branchId, type: "read_only" } }), (b) =>
    expect(b.endpoint.type === "read_only", "wrong type"));
  const roId = ro && ro.endpoint.id;
  await settle(projectId);
  await step("listProjectEndpoints", () => api.listProjectEndpoints(projectId), (b) =>
    expect(b.endpoints.some((e) => e.id === roId), "endpoint not listed"));
  await step("getProjectEndpoint", () => api.getProjectEndpoint(projectId, roId), (b) =>
    expect(b.endpoint.current_state === "active", `state ${b.endpoint.current_state}`));
  await step("updateProjectEndpoint", () =>
    api.updateProjectEndpoint(projectId, roId, { endpoint: { suspend_timeout_seconds: 600 } }), (b) =>
    expect(b.endpoint.suspend_timeout_seconds === 600, "not updated"));
  await settle(projectId);
  await step("suspendProjectEndpoint", () => api.suspendProjectEndpoint(projectId, roId));
  await settle(projectId);
  await step("getProjectEndpoint(suspended)", () => api.getProjectEndpoint(projectId, roId), (b) =>
    expect(b.endpoint.current_state === "idle", `state ${b.endpoint.current_state}`));
  await step("startProjectEndpoint", () => api.startProjectEndpoint(projectId, roId));
  await settle(projectId);
  await step("restartProjectEndpoint", () => api.restartProjectEndpoint(projectId, roId));
  await settle(projectId);
  await step("deleteProjectEndpoint", () => api.deleteProjectEndpoint(projectId, roId));
  await settle(projectId);

  // -- databases
  await step("listProjectBranchDatabases", () => api.listProjectBranchDatabases(projectId, mainId), (b) =>
    expect(b.databases.some((d) => d.name === "neondb"), "neondb missing"));
  await step("createProjectBranchDatabase", () =>
    api.createProjectBranchDatabase(projectId, mainId, { database: { name: "app", owner_name: "neondb_owner" } }));
  await settle(projectId);
  await step("getProjectBranchDatabase", () => api.getProjectBranchDatabase(projectId, mainId, "app"), (b) =>
    expect(b.database.owner_name === "neondb_owner", "wrong owner"));
  await step("updateProjectBranchDatabase(owner)", () =>
    api.updateProjectBranchDatabase(projectId, mainId, "app", { database: { owner_name: "neondb_owner" } }));
  await settle(projectId);
  await step("updateProjectBranchDatabase(rename)", () =>
    api.updateProjectBranchDatabase(projectId, mainId, "app", { database: { name: "app2" } }), (b) =>
    expect(b.database.name === "app2", "not renamed"));
  await settle(projectId);
  const dbName = steps[steps.length - 1].ok ? "app2" : "app";

  // -- roles
  await step("listProjectBranchRoles", () => api.listProjectBranchRoles(projectId, mainId), (b) =>
    expect(b.roles.some((r) => r.name === "neondb_owner"), "neondb_owner missing"));
  await step("createProjectBranchRole", () => api.createProjectBranchRole(projectId, mainId, { role: { name: "tsrole" } }), (b) =>
    expect(b.role.name === "tsrole" && b.role.password, "no password on create"));
  await settle(projectId);
  await step("getProjectBranchRole", () => api.getProjectBranchRole(projectId, mainId, "tsrole"), (b) =>
    expect(b.role.password === undefined, "the role's password is in a plain GET"));
  await step("getProjectBranchRolePassword", () => api.getProjectBranchRolePassword(projectId, mainId, "tsrole"), (b) =>
    expect(typeof b.password === "string" && b.password.length > 0, "no password"));
  await step("resetProjectBranchRolePassword", () => api.resetProjectBranchRolePassword(projectId, mainId, "tsrole"), (b) =>
    expect(b.role.password, "no new password"));
  await settle(projectId);

  // -- operations, connection URI
  // Every operation so far finished: the SDK returns once a change is accepted, so data-plane
  // work that fails afterwards shows only here.
  const ops = await step("listProjectOperations", () => api.listProjectOperations({ projectId, limit: 1000 }), (b) => {
    const bad = b.operations.filter((op) => op.status !== "finished").map((op) => `${op.action}:${op.status}`);
    expect(b.operations.length > 0 && bad.length === 0, `not finished: ${bad.join(", ")}`);
  });
  const opId = ops && ops.operations[0].id;
  await step("getProjectOperation", () => api.getProjectOperation(projectId, opId), (b) =>
    expect(b.operation.id === opId && b.operation.status === "finished", "wrong operation"));
  await step("getConnectionUri", () =>
    api.getConnectionUri({ projectId, branch_id: branchId, database_name: "neondb", role_name: "neondb_owner" }), (b) =>
    expect(b.uri.startsWith("postgresql://neondb_owner:"), "not a connection URI"));

  // -- snapshots and backup schedules (issue 21): of main, restored to a new branch, finalized
  await settle(projectId);
  const expiry = new Date(Date.now() + 7 * 86400 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const snap = await step("createSnapshot", () =>
    api.createSnapshot({ projectId, branchId: mainId, name: "ts-nightly", expires_at: expiry }), (b) =>
    expect(b.snapshot.name === "ts-nightly" && b.snapshot.source_branch_id === mainId, "wrong snapshot"));
  const snapId = snap && snap.snapshot.id;
  await settle(projectId);
  await step("listSnapshots", () => api.listSnapshots(projectId), (b) =>
    expect(b.snapshots.some((x) => x.id === snapId), "snapshot not listed"));
  await step("updateSnapshot", () => api.updateSnapshot(projectId, snapId, { snapshot: { name: "ts-kept" } }), (b) =>
    expect(b.snapshot.name === "ts-kept", "not renamed"));
  const preview = await step("restoreSnapshot", () =>
    api.restoreSnapshot({ projectId, snapshotId: snapId }, { name: "ts-restored" }), (b) =>
    expect(b.branch.restored_from === snapId && b.branch.restore_status === "restored", "not a restore"));
  await settle(projectId);
  await step("finalizeRestoreBranch", () =>
    api.finalizeRestoreBranch(projectId, preview && preview.branch.id, { name: "ts-main-before" }), (b) =>
    expect(b.operations.length > 0, "no operations"));
  await settle(projectId);
  await step("getProjectBranch(finalized)", () => api.getProjectBranch(projectId, preview && preview.branch.id), (b) =>
    expect(b.branch.restore_status === "finalized" && b.branch.default === true, "not finalized"));
  await step("setSnapshotSchedule", () =>
    api.setSnapshotSchedule(projectId, mainId, { schedule: [{ frequency: "daily", hour: 3, retention_seconds: 604800 }] }));
  await step("getSnapshotSchedule", () => api.getSnapshotSchedule(projectId, mainId), (b) =>
    expect(b.schedule.length === 1 && b.schedule[0].frequency === "daily", "wrong schedule"));
  await step("deleteSnapshot", () => api.deleteSnapshot(projectId, snapId));
  await settle(projectId);
  await step("setDefaultProjectBranch(main again)", () => api.setDefaultProjectBranch(projectId, mainId));
  await settle(projectId);

  // -- teardown (each a step: deletes are part of the contract too)
  await step("deleteProjectBranchRole", () => api.deleteProjectBranchRole(projectId, mainId, "tsrole"));
  await settle(projectId);
  await step("deleteProjectBranchDatabase", () => api.deleteProjectBranchDatabase(projectId, mainId, dbName));
  await settle(projectId);
  await step("setDefaultProjectBranch", () => api.setDefaultProjectBranch(projectId, branchId), (b) =>
    expect(b.branch.default === true, "not default"));
  await settle(projectId);
  await step("setDefaultProjectBranch(back)", () => api.setDefaultProjectBranch(projectId, mainId));
  await settle(projectId);
  // The backup branch is dev2's parent now, so dev2 goes first.
  await step("deleteProjectBranch", () => api.deleteProjectBranch({ projectId, branchId }));
  await settle(projectId);
  await step("listProjectBranches(include_deleted)", () =>
    api.listProjectBranches({ projectId, include_deleted: true }), (b) =>
    expect(b.branches.some((x) => x.id === branchId), "deleted branch not listed"));
  await step("recoverProjectBranch", () => api.recoverProjectBranch(projectId, branchId));
  await step("revokeOrgApiKey", () => api.revokeOrgApiKey(orgId, orgKey && orgKey.id), (b) =>
    expect(b.revoked === true, "not revoked"));
  await step("deleteProject", () => api.deleteProject(projectId));
  await step("recoverProject", () => api.recoverProject(projectId));
}

main()
  .catch((err) => steps.push({ name: "(script)", ok: false, error: describe(err) }))
  .finally(() => process.stdout.write(JSON.stringify({ steps }) + "\n"));
