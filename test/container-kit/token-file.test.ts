// The token file's lock: a lock left by a process that died while holding it is broken, and two
// writers that meet the same stale lock still take turns (neither removes the lock the other took).
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, tokenFileLib } from './kit';

const record = (generation: number) => ({
  token: `ghs_generation_${generation}`,
  generation,
  container_token_sha256: tokenFileLib.sha256Hex('one dispatch'),
  written_at: new Date().toISOString(),
});

describe('token file lock', () => {
  it('breaks a lock left by a dead process once: writers meeting it together still keep the newest generation', async () => {
    const tmp = tempDir();
    try {
      // Each round: a lock a minute old (its holder died), then four writers at once. Before the
      // break took turns, two of them each removed "the stale lock", the second removing the
      // lock the first had just taken; both then wrote, and an older generation could land last
      // (about 1 round in 30 on a two-core machine).
      let lost = 0;
      for (let round = 0; round < 250; round++) {
        const file = join(tmp.dir, `round-${round}`, 'git-token.json');
        await tokenFileLib.writeTokenRecord(file, record(0));
        writeFileSync(`${file}.lock`, '');
        const minuteAgo = new Date(Date.now() - 60_000);
        utimesSync(`${file}.lock`, minuteAgo, minuteAgo);
        await Promise.all([1, 2, 3, 4].map((g) => tokenFileLib.writeTokenRecord(file, record(g))));
        if ((await tokenFileLib.readTokenFile(file))?.generation !== 4) lost++;
        expect(readdirSync(join(tmp.dir, `round-${round}`))).toEqual(['git-token.json']); // no lock, break lock or temp file left
      }
      expect(lost).toBe(0);
    } finally {
      tmp.cleanup();
    }
  }, 60_000);

  it('waits for a live lock and gives up after its wait, leaving the holder its lock', async () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, 'git-token.json');
      writeFileSync(`${file}.lock`, ''); // fresh: a live writer holds it
      await expect(tokenFileLib.writeTokenRecord(file, record(1))).rejects.toMatchObject({ code: 'ELOCKED' });
      expect(readdirSync(tmp.dir)).toEqual(['git-token.json.lock']);
    } finally {
      tmp.cleanup();
    }
  });
});
