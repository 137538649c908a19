// Item 6 of the security review: GitHub signs a delivery's body, not its X-GitHub-Delivery header,
// so a captured delivery replayed under a fresh delivery id passed the signature check and was
// processed again (here: an `unsuspend` undoing a later suspension). And the body read before the
// signature check may be no larger than installation events need, measured on realistic payloads.
import { randomUUID } from 'node:crypto';
import { WEBHOOK_BODY_LIMIT } from '../../api/webhooks/github-routes';
import { FakeGitHub } from '../fakes/github';
import { startHarness, type Harness } from '../helpers/harness';
import { githubRig, githubWorld, type GithubWorld } from '../helpers/scenario';

const SECRET = 'webhook-secret-for-replays';
let world: GithubWorld;
let h: Harness;
let hook: string;

beforeAll(async () => {
  world = await githubWorld();
  h = await startHarness({ env: { ...world.env, GITHUB_WEBHOOK_SECRET: SECRET }, worker: false });
  hook = `${h.url}/webhooks/github`;
});
afterAll(async () => {
  await h?.close();
  await world?.gh.close();
});

const deliver = (event: string, payload: object, deliveryId = randomUUID()) =>
  FakeGitHub.deliverWebhook(hook, SECRET, event, payload, { deliveryId });
const statusOf = async (id: string) => (await h.core.db.platformIntegration.findUniqueOrThrow({ where: { id } })).status;

describe('webhook replays', () => {
  it('refuses a signed delivery replayed under a new X-GitHub-Delivery id', async () => {
    const rig = await githubRig(h, world, { repos: 2 });
    world.gh.suspend(rig.installationId);
    const suspend = world.gh.installationWebhookPayload(rig.installationId, 'suspend');
    world.gh.unsuspend(rig.installationId);
    const unsuspend = world.gh.installationWebhookPayload(rig.installationId, 'unsuspend');

    expect((await deliver('installation', suspend)).status).toBe(200);
    expect((await deliver('installation', unsuspend)).status).toBe(200);
    world.gh.suspend(rig.installationId);
    expect((await deliver('installation', world.gh.installationWebhookPayload(rig.installationId, 'suspend'))).status).toBe(200);
    expect(await statusOf(rig.integrationId)).toBe('suspended');

    // The attacker saw the earlier unsuspend go by and sends it again with a new delivery id.
    const replay = await deliver('installation', unsuspend, randomUUID());
    expect(replay.status).toBe(409);
    expect((await replay.json()).error.code).toBe('delivery_replayed');
    expect(await statusOf(rig.integrationId)).toBe('suspended');
  });

  it('still processes different payloads, and a redelivery of one whose processing failed', async () => {
    const rig = await githubRig(h, world, { repos: 1 });
    const bad = { action: 'suspend', installation: { id: 'not-a-number' } };
    const failedId = randomUUID();
    const first = await deliver('installation', bad, failedId);
    expect(first.status).toBe(400);
    // GitHub's redelivery of a failed delivery keeps the id and the body; the claim was released.
    expect((await deliver('installation', bad, failedId)).status).toBe(400);
    // A delivery that was processed is not processed again under its own id either.
    // A body of its own: replays are refused by body hash too, across the whole run's database.
    const ping = { zen: 'Keep it logically awesome.', hook_id: Number.parseInt(randomUUID().slice(0, 8), 16) };
    const doneId = randomUUID();
    expect((await deliver('ping', ping, doneId)).status).toBe(200);
    const again = await deliver('ping', ping, doneId);
    expect([again.status, ((await again.json()) as { error: { code: string } }).error.code]).toEqual([409, 'delivery_replayed']);
    const added = world.gh.addRepository(rig.installationId, { name: `added-${randomUUID().slice(0, 6)}` });
    const res = await deliver(
      'installation_repositories',
      world.gh.installationRepositoriesWebhookPayload(rig.installationId, { added: [added.id] }),
    );
    expect(res.status).toBe(200);
  });
});

describe('the body limit before the signature check', () => {
  it('fits a large installation and its repository changes, measured on GitHub-shaped payloads', async () => {
    const app = await world.gh.createApp({ slug: 'repo-connect-measure' });
    const repositories = Array.from({ length: 10_000 }, (_, i) => ({
      name: `payments-service-${String(i).padStart(5, '0')}`,
      private: true,
    }));
    const inst = world.gh.addInstallation({ appId: app.appId, account: { login: 'acme-platform-engineering' }, repositories });
    const created = Buffer.byteLength(JSON.stringify(world.gh.installationWebhookPayload(inst.installationId, 'created')));
    const added = Buffer.byteLength(
      JSON.stringify(world.gh.installationRepositoriesWebhookPayload(inst.installationId, { added: inst.repositories.map((r) => r.id) })),
    );
    // The README's figures: 10,000 repositories, 1.7 MB either way; the limit leaves 1.8x headroom.
    expect(created).toBeGreaterThan(1_600_000);
    expect(Math.max(created, added)).toBeLessThan(WEBHOOK_BODY_LIMIT / 1.75);
    const res = await deliver('installation', world.gh.installationWebhookPayload(inst.installationId, 'deleted'));
    expect(res.status).toBe(202); // read, verified, and ignored: the installation is not registered here
  });

  it('refuses a larger unauthenticated body with 413 before reading it for the signature', async () => {
    const res = await fetch(hook, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'installation', 'x-github-delivery': randomUUID() },
      body: `{"pad":"${'x'.repeat(WEBHOOK_BODY_LIMIT)}"}`,
    });
    expect(res.status).toBe(413);
    expect(WEBHOOK_BODY_LIMIT).toBeLessThanOrEqual(3 * 1024 * 1024);
  });
});
