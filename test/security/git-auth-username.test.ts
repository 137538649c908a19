// Item 8 of the security review: a town token's `username` went to the container as it was typed,
// and the kit refuses any username with a control character (it would inject lines into git's
// credential protocol), so every push of that token failed. The API applies the kit's own rule.
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import { expectInvalid } from '../helpers/api';
import { payloadLib } from '../container-kit/kit';

let h: Harness;
let townId: string;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'username rule', owner_id: newOwner() });
  townId = town.body.id;
  expect(
    (await h.call('PUT', `/api/towns/${townId}/git-auth`, { tokens: [{ host: 'git.example.com', token: 'tok-1', username: 'bot' }] }))
      .status,
  ).toBe(204);
});
afterAll(() => h?.close());

// The container kit's validation, as its receiver runs it on every push.
const kitAccepts = (username: string) => payloadLib.checkTokenPayload({ token: 't', expires_at: null, username, generation: 1 }) === null;
const stored = () => h.core.db.townGitAuth.findMany({ where: { townId }, select: { host: true, username: true } });

// Every C0 control, DEL, and a few that sit inside otherwise plausible names.
const CONTROLS = [...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), '\u007f'];

describe('PUT /api/towns/:id/git-auth username', () => {
  it.each(CONTROLS.map((c) => [`U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`, c]))(
    'refuses %s inside a username, as the kit would',
    async (_name, control) => {
      const username = `bot${control}password=x`;
      expect(kitAccepts(username)).toBe(false);
      const res = await h.call('PUT', `/api/towns/${townId}/git-auth`, {
        tokens: [
          { host: 'github.com', token: 'tok-a' },
          { host: 'git.example.com', token: 'tok-b', username },
        ],
      });
      expectInvalid(res, 'tokens.1.username');
      expect(await stored()).toEqual([{ host: 'git.example.com', username: 'bot' }]); // nothing replaced
    },
  );

  it('refuses a username longer than the kit takes', async () => {
    const username = 'u'.repeat(257);
    expect(kitAccepts(username)).toBe(false);
    expectInvalid(
      await h.call('PUT', `/api/towns/${townId}/git-auth`, { tokens: [{ host: 'h.example', token: 't', username }] }),
      'tokens.0.username',
    );
  });

  it('accepts what the kit accepts, including non-ASCII names', async () => {
    for (const username of ['x-access-token', 'oauth2', 'ci bot', 'Jörg', '机器人']) {
      expect(kitAccepts(username)).toBe(true);
      const res = await h.call('PUT', `/api/towns/${townId}/git-auth`, { tokens: [{ host: 'git.example.com', token: 'tok-1', username }] });
      expect(res.status).toBe(204);
      expect(await stored()).toEqual([{ host: 'git.example.com', username }]);
    }
  });
});
