// The push half of the container protocol: POST <container_url>/git-token with the container's
// bearer. Errors are described by status or error class only: the body holds a token.

export interface PushBody {
  rig_id: string;
  dispatch_id: string;
  token: string;
  expires_at: string | null;
  username: string;
  generation: number;
}

export interface PushOutcome {
  /** `gone`: 404/410, the container no longer exists; `failed`: worth retrying. */
  outcome: 'acknowledged' | 'gone' | 'failed';
  detail: string;
}

/** Sends one push; never throws (the caller decides what a failure means). */
export async function pushToContainer(
  fetchFn: typeof fetch,
  args: { containerUrl: string; containerToken: string; body: PushBody; timeoutMs: number },
): Promise<PushOutcome> {
  const url = `${args.containerUrl.replace(/\/+$/, '')}/git-token`;
  try {
    const res = await fetchFn(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${args.containerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(args.body),
      // A redirect could carry the token to another host; containers answer directly.
      redirect: 'manual',
      signal: AbortSignal.timeout(args.timeoutMs),
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { outcome: 'acknowledged', detail: `HTTP ${res.status}` };
    if (res.status === 404 || res.status === 410) return { outcome: 'gone', detail: `container answered ${res.status}` };
    return { outcome: 'failed', detail: `container answered ${res.status}` };
  } catch (err) {
    const name = err instanceof Error ? (err.name === 'TimeoutError' ? 'timeout' : ((err.cause as { code?: string })?.code ?? err.name)) : 'error';
    return { outcome: 'failed', detail: `container unreachable (${name})` };
  }
}
