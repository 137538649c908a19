// The document around every dashboard screen, and the headers that go with it.
import type { FastifyReply } from 'fastify';
import { html, type SafeHtml } from './html';
import { initials, type Viewer } from './viewer';

export interface PageOptions {
  title: string;
  body: SafeHtml;
  /** Extra scripts from /assets (dashboard.js is always loaded). */
  scripts?: string[];
  /** Shows the sign-out button (false on the login page). */
  signedIn?: boolean;
  /** Breadcrumb links before the title. */
  crumbs?: Array<{ href: string; label: string }>;
  /** Who is signed in, for the header (the request's `viewer`). */
  viewer?: Viewer | null;
}

/** The header's right side: who is signed in, their pages, and sign out. */
function account(viewer: Viewer | null | undefined): SafeHtml {
  const signOut = html`<form method="post" action="/logout" class="inline"><button type="submit" class="link">Sign out</button></form>`;
  if (!viewer) return signOut;
  if (viewer.kind === 'admin') {
    return html`<nav class="account" aria-label="Account"><span class="who"><span class="role">Admin</span></span>
  <a href="/integrations">Integrations</a> ${signOut}</nav>`;
  }
  const base = `/owners/${viewer.ownerId}`;
  return html`<nav class="account" aria-label="Account"><span class="who" data-viewer="${viewer.ownerId}"><span class="avatar" aria-hidden="true">${initials(viewer.name)}</span> <span class="name">${viewer.name}</span></span>
  <a href="/integrations">Integrations</a> <a href="${base}/tokens">API tokens</a> <a href="${base}/sessions">Sessions</a> ${signOut}</nav>`;
}

/** A complete HTML document. */
export function page(opts: PageOptions): SafeHtml {
  const scripts = ['dashboard.js', ...(opts.scripts ?? [])];
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · repo-connect</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dashboard.css">
${scripts.map((s) => html`<script src="/assets/${s}" defer></script>\n`)}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/">repo-connect</a>
  ${opts.signedIn === false ? '' : account(opts.viewer)}
</header>
<main id="main" tabindex="-1">
${opts.crumbs?.length ? html`<nav aria-label="Breadcrumb" class="crumbs">${opts.crumbs.map((c) => html`<a href="${c.href}">${c.label}</a> / `)}<span aria-current="page">${opts.title}</span></nav>` : ''}
${opts.body}
</main>
</body>
</html>`;
}

// Scripts and styles come only from our own origin; nothing may frame the dashboard.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/** Sends an HTML document with the dashboard's security headers. */
export function sendPage(reply: FastifyReply, doc: SafeHtml, status = 200): FastifyReply {
  return reply
    .status(status)
    .headers({
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': CSP,
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      // Connect callbacks carry a state (and GitLab a code) in the URL: never send it elsewhere.
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
    })
    .send(doc.value);
}

/** A small page that explains a failure and offers a way on. */
export function messagePage(opts: {
  title: string;
  code?: string;
  message: string;
  links?: Array<{ href: string; label: string }>;
  signedIn?: boolean;
  viewer?: Viewer | null;
}): SafeHtml {
  return page({
    title: opts.title,
    signedIn: opts.signedIn,
    viewer: opts.viewer,
    body: html`<h1>${opts.title}</h1>
<div class="notice error" role="alert">
  ${opts.code ? html`<p><code>${opts.code}</code></p>` : ''}
  <p>${opts.message}</p>
</div>
${opts.links?.length ? html`<p class="actions">${opts.links.map((l) => html`<a class="button" href="${l.href}">${l.label}</a> `)}</p>` : ''}`,
  });
}
