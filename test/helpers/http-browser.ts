// A browser over plain fetch for flows that cross origins: one cookie jar per origin, redirects
// followed by hand (each hop returned), forms posted as the fakes' pages would. Playwright runs the
// same flows in test/dashboard/browser-*.test.ts; this one is for the many cases around them.
export interface Hop {
  status: number;
  url: URL;
  location: URL | null;
  text: string;
}

export class HttpBrowser {
  private readonly jars = new Map<string, Map<string, string>>();

  /** The cookies this browser holds for `origin`, as a Cookie header. */
  cookieHeader(origin: string): string {
    return [...(this.jars.get(origin) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  cookie(origin: string, name: string): string | undefined {
    return this.jars.get(origin)?.get(name);
  }

  /** One request, cookies sent and kept (Max-Age=0 removes). */
  async request(
    url: string | URL,
    init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Hop> {
    const target = new URL(url);
    const headers: Record<string, string> = { ...init.headers };
    const cookies = this.cookieHeader(target.origin);
    if (cookies) headers.cookie = cookies;
    if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(target, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      headers,
      body: init.form ? new URLSearchParams(init.form).toString() : undefined,
      redirect: 'manual',
    });
    const jar = this.jars.get(target.origin) ?? new Map<string, string>();
    this.jars.set(target.origin, jar);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    return { status: res.status, url: target, location: location ? new URL(location, target) : null, text: await res.text() };
  }

  /** Follows redirects from `url` until a page answers (or `stop` says so); returns every hop. */
  async follow(
    url: string | URL,
    stop: (hop: Hop) => boolean = () => false,
    init: Parameters<HttpBrowser['request']>[1] = {},
  ): Promise<Hop[]> {
    const hops = [await this.request(url, init)];
    for (let i = 0; i < 10; i++) {
      const last = hops[hops.length - 1];
      if (!last.location || stop(last)) break;
      hops.push(await this.request(last.location));
    }
    return hops;
  }
}

/** The hidden fields and action of the first form on a fake provider's page. */
export function formOf(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1] ?? '';
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[decode(m[1])] = decode(m[2]);
  return { action: decode(action), fields };
}

const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
