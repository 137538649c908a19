// The push half of the container protocol: POST <container_url>/git-token with the container's
// bearer. Errors are described by status or error class only: the body holds a token.
//
// Over node:http with keep-alive agents rather than fetch: every refresh of every dispatch
// pushes, and fetch's streams, signals and per-request objects were the worker's main source of
// garbage (README, "Performance").
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { ContainerAddressRefused, urlHost, vetContainerHost, type ContainerUrlPolicy } from '../lib/container-url-policy';

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
   * followed: the body holds a token) or its address is one the policy refuses; `failed`: no answer
   * or another status. Both of the last two are retried by the workflow.
   */
  outcome: 'acknowledged' | 'gone' | 'refused' | 'failed';
  detail: string;
}

type Agents = { 'http:': HttpAgent; 'https:': HttpsAgent };

/**
 * A DNS lookup for the push agents that resolves through the policy, checks every address and
 * answers with the first: the socket connects to exactly the address that was checked.
 */
function vettedLookup(policy: ContainerUrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    vetContainerHost(hostname, policy).then(
      ({ addresses }) => {
        const address = addresses[0];
        const family = isIP(address);
        if (options.all) (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
        else callback(null, address, family);
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, '', 0),
    );
  };
}

// Idle sockets close after 4 s, before a Node server's default 5 s keep-alive timeout closes them
// under a request.
function agentsFor(policy?: ContainerUrlPolicy): Agents {
  const lookup = policy ? vettedLookup(policy) : undefined;
  return {
    'http:': new HttpAgent({ keepAlive: true, timeout: 4000, lookup }),
    'https:': new HttpsAgent({ keepAlive: true, timeout: 4000, lookup }),
  };
}

const unchecked = agentsFor();
const agentsByPolicy = new WeakMap<ContainerUrlPolicy, Agents>();

/**
 * Sends one push; never throws (the caller decides what a failure means). With a policy the
 * container's address is checked (a literal before connecting, a name in the agent's lookup) and a
 * refusal is the `refused` outcome.
 */
export async function pushToContainer(args: {
  containerUrl: string;
  containerToken: string;
  body: PushBody;
  timeoutMs: number;
  policy?: ContainerUrlPolicy;
}): Promise<PushOutcome> {
  let agents = unchecked;
  if (args.policy) {
    agents = agentsByPolicy.get(args.policy) ?? agentsFor(args.policy);
    agentsByPolicy.set(args.policy, agents);
    try {
      const host = urlHost(new URL(args.containerUrl));
      // Node dials an IP literal without a lookup: check it here.
      if (isIP(host)) await vetContainerHost(host, args.policy);
    } catch (err) {
      if (err instanceof ContainerAddressRefused) return { outcome: 'refused', detail: `container address refused: ${err.message}` };
      // An unparseable URL is reported below like before.
    }
  }
  return send(args, agents);
}

function send(
  args: { containerUrl: string; containerToken: string; body: PushBody; timeoutMs: number },
  agents: Agents,
): Promise<PushOutcome> {
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
      finish(
        err instanceof ContainerAddressRefused
          ? { outcome: 'refused', detail: `container address refused: ${err.message}` }
          : { outcome: 'failed', detail: `container unreachable (${err.code ?? err.name})` },
      ),
    );
    req.end(payload);
  });
}
