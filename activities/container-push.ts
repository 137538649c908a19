// The push half of the container protocol: POST <container_url>/git-token with the container's
// bearer. Errors are described by status or error class only: the body holds a token.
//
// Over node:http with keep-alive agents rather than fetch: every refresh of every dispatch
// pushes, and fetch's streams, signals and per-request objects were the worker's main source of
// garbage (in `npm run bench`, 1,000 dispatches: worker RSS growth 545 → 363 MB with this change).
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface PushBody {
  rig_id: string;
  dispatch_id: string;
  token: string;
  expires_at: string | null;
  username: string;
  generation: number;
}

export interface PushOutcome {
  /**
   * `gone`: 404/410, the container no longer exists; `refused`: the container redirected (never
   * followed: the body holds a token); `failed`: no answer or another status. Both of the last two
   * are retried by the workflow.
   */
  outcome: 'acknowledged' | 'gone' | 'refused' | 'failed';
  detail: string;
}

// Idle sockets close after 4 s, before a Node server's default 5 s keep-alive timeout closes them
// under a request.
const agents = {
  'http:': new HttpAgent({ keepAlive: true, timeout: 4000 }),
  'https:': new HttpsAgent({ keepAlive: true, timeout: 4000 }),
};

/** Sends one push; never throws (the caller decides what a failure means). */
export function pushToContainer(args: {
  containerUrl: string;
  containerToken: string;
  body: PushBody;
  timeoutMs: number;
}): Promise<PushOutcome> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(`${args.containerUrl.replace(/\/+$/, '')}/git-token`);
    } catch {
      return resolve({ outcome: 'failed', detail: 'container unreachable (invalid URL)' });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return resolve({ outcome: 'failed', detail: 'container unreachable (unsupported protocol)' });
    const payload = Buffer.from(JSON.stringify(args.body));
    let settled = false;
    const finish = (outcome: PushOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    // Redirects are not followed (node:http never does): one could carry the token to another host.
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      agent: agents[url.protocol],
      headers: { authorization: `Bearer ${args.containerToken}`, 'content-type': 'application/json', 'content-length': payload.length },
    });
    const timer = setTimeout(() => {
      finish({ outcome: 'failed', detail: 'container unreachable (timeout)' });
      req.destroy();
    }, args.timeoutMs);
    req.once('response', (res) => {
      res.resume(); // the answer's body is not used; draining frees the socket for the next push
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) finish({ outcome: 'acknowledged', detail: `HTTP ${status}` });
      else if (status === 404 || status === 410) finish({ outcome: 'gone', detail: `container answered ${status}` });
      else if (status >= 300 && status < 400)
        finish({ outcome: 'refused', detail: `container answered ${status}, a redirect, which is not followed (check container_url)` });
      else finish({ outcome: 'failed', detail: `container answered ${status}` });
    });
    req.once('error', (err: NodeJS.ErrnoException) =>
      finish({ outcome: 'failed', detail: `container unreachable (${err.code ?? err.name})` }),
    );
    req.end(payload);
  });
}
