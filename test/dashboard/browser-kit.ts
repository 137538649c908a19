// Headless Chromium for the dashboard's browser tests (Debian's chromium through playwright-core),
// and the steps every such test repeats: sign in, take a screenshot.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN } from '../helpers/harness';

export const ARTIFACTS = join(__dirname, '..', 'artifacts');

/** One browser per test file. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * A fresh page (own cookies) at desktop size. Script errors, and failed loads of our own scripts,
 * styles and API calls, are collected in `errors` (error pages and the fakes' favicons are not).
 */
export async function newPage(browser: Browser, errors: string[] = [], ownOrigin?: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => errors.push(`script error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(`console: ${msg.text()}`);
  });
  page.on('response', (res) => {
    const type = res.request().resourceType();
    if (
      res.status() >= 400 &&
      ['script', 'stylesheet', 'image', 'font'].includes(type) &&
      (!ownOrigin || res.url().startsWith(ownOrigin))
    ) {
      errors.push(`${res.status()} ${type} ${res.url()}`);
    }
  });
  return page;
}

/** Opens `path`, signs in on the login page it redirects to, and waits to land back on `path`. */
export async function signIn(page: Page, baseUrl: string, path: string, screenshot?: string): Promise<void> {
  await page.goto(`${baseUrl}${path}`);
  await page.getByLabel('Admin token').waitFor();
  if (screenshot) await shot(page, screenshot);
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === path.split('?')[0]);
}

/** Saves a full-page screenshot to test/artifacts/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
