// The web console end to end (issue 10): the real `rockit-edge serve` binary on a temp data folder,
// Debian's Chromium driven by playwright-core, everything done through the pages as a publisher would:
// sign in, create a deployment and an app, push a generated build from the browser and watch it publish,
// break the deployment and retry, create a role with the matrix editor and see a restricted user denied,
// the expired-session page. Screenshots of every page (1280×800, and one at phone width) go to
// ROCKIT_CONSOLE_SCREENSHOTS (default packages/console/test-artifacts; docs/console holds the committed set).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateSeries } from '@rockit/gamegen';
import { startServer, type ServerProcess } from '../../../cli/src/e2e/test-support/processes.js';

const CHROMIUM = '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONSOLE_DIST = path.resolve(HERE, '../../dist');
const SHOTS = path.resolve(process.env.ROCKIT_CONSOLE_SCREENSHOTS ?? path.resolve(HERE, '../../test-artifacts'));
const ADMIN_TOKEN = 'console-e2e-admin-token-0123456789abcdef';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
if (!haveChromium) console.warn(`console e2e skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

describe.skipIf(!haveChromium)('web console in a real browser', () => {
  let tmp: string;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let base: string;
  let org: { name: string; admin: string; password: string };
  const originDir = () => path.join(tmp, 'origin');

  const shot = async (name: string) => {
    await page.waitForLoadState('networkidle').catch(() => undefined);
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
  };
  const go = async (route: string) => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: route, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: route }).waitFor();
  };

  beforeAll(async () => {
    if (!fs.existsSync(path.join(CONSOLE_DIST, 'index.html'))) throw new Error('the console is not built: run `npm run build`');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rockit-console-e2e-'));
    fs.mkdirSync(SHOTS, { recursive: true });
    fs.mkdirSync(originDir());
    fs.writeFileSync(path.join(tmp, 'blocker'), 'a file where the origin wants a folder');
    await generateSeries({ seed: 7, sizeBytes: 3e6, versions: 2, outDir: path.join(tmp, 'game'), tar: true });
    server = await startServer(path.join(tmp, 'data'), {
      ROCKIT_ADMIN_TOKEN: ADMIN_TOKEN,
      ROCKIT_SCRYPT_COST: '1024',
      ROCKIT_WORKER_POLL_MS: '50',
      // Auth tokens live 10 s: the console must renew them silently all through the test.
      ROCKIT_AUTH_SECONDS: '10',
      ROCKIT_CONSOLE_DIR: CONSOLE_DIST,
    });
    base = server.address;
    const res = await fetch(`${base}/adm/v1/orgs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-rockit-admin-token': ADMIN_TOKEN },
      body: JSON.stringify({ name: 'studio' }),
    });
    const j = (await res.json()) as { admin: { username: string; password: string } };
    org = { name: 'studio', admin: j.admin.username, password: j.admin.password };
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(20_000);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  // A failed step leaves what the browser showed, next to the screenshots.
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && page) {
      await page.screenshot({ path: path.join(SHOTS, `failed-${ctx.task.name.slice(0, 40).replace(/[^a-z0-9]+/gi, '-')}.png`) }).catch(() => undefined);
    }
  });

  const signIn = async (orgName: string, user: string, password: string) => {
    await page.getByLabel('Organization').fill(orgName);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  it('signs in (a wrong password is shown next to the form), and the session survives auth-token lapses', async () => {
    await page.goto(`${base}/apps/mc/`);
    await page.getByRole('heading', { name: 'Sign in to ROCKIT Edge' }).waitFor();
    await shot('01-sign-in');
    await signIn(org.name, org.admin, 'wrong-password');
    await page.getByRole('alert').filter({ hasText: 'invalid-credentials' }).waitFor();
    await signIn(org.name, org.admin, org.password);
    await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
    expect(await page.getByTestId('who').textContent()).toBe(`${org.admin} @ ${org.name}`);
  });

  it('creates a deployment (a bad path is shown next to its field) and an app', async () => {
    await go('Deployments');
    await page.getByLabel('Name').fill('cdn_local');
    await page.getByLabel('Folder (absolute path on the server)').fill('relative/path');
    await page.getByRole('button', { name: 'Create deployment' }).click();
    await page.locator('.field.invalid').getByRole('alert').waitFor();
    await page.getByLabel('Folder (absolute path on the server)').fill(originDir());
    await page.getByRole('button', { name: 'Create deployment' }).click();
    await page.getByRole('heading', { level: 1, name: 'Deployment cdn_local' }).waitFor();
    await shot('05-deployment');

    await go('Apps');
    await page.getByLabel('Name').fill('demo');
    await page.getByLabel('Label').fill('Demo Game');
    await page.getByRole('button', { name: 'Create app' }).click();
    await page.getByRole('heading', { level: 1, name: 'App demo' }).waitFor();
  });

  it('pushes a generated build from the browser and watches the task chain publish it', async () => {
    await page.getByTestId('tar-input').setInputFiles(path.join(tmp, 'game', 'v1.tar'));
    await page.getByLabel('Build name (optional)').fill('1.0.0');
    await page.getByRole('button', { name: 'Push', exact: true }).click();
    await page.getByTestId('published').waitFor({ timeout: 60_000 });
    await expect.poll(() => page.getByTestId('live-build').textContent(), { timeout: 10_000 }).toBe('1');
    expect(fs.existsSync(path.join(originDir(), 'dxf', org.name, 'demo', 'release.json'))).toBe(true);
    await shot('03-app');
    await go('Apps');
    await page.getByTestId('app-demo').getByText('ready').waitFor();
    await shot('02-apps');
  });

  it('a broken deployment puts the app in error; fixed, Retry publishes', async () => {
    await go('Deployments');
    await page.getByRole('link', { name: 'cdn_local' }).click();
    await page.getByLabel('Folder (absolute path on the server)').fill(path.join(tmp, 'blocker', 'sub'));
    await page.getByLabel(/verify/).uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();

    await page.goto(`${base}/apps/mc/apps/demo`);
    await page.getByRole('heading', { level: 1, name: 'App demo' }).waitFor();
    // The second build as a folder, packed into a tar in the browser.
    await page.getByLabel('…or a folder (packed in the browser)').setInputFiles(path.join(tmp, 'game', 'v2'));
    await page.getByRole('button', { name: 'Push', exact: true }).click();
    await page.getByTestId('push-failed').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Retry' }).first().waitFor();
    await shot('04-app-error');

    await page.goto(`${base}/apps/mc/deployments/cdn_local`);
    await page.getByLabel('Folder (absolute path on the server)').fill(originDir());
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await go('Apps');
    await page.getByTestId('app-demo').getByRole('button', { name: 'Retry' }).click();
    await page.getByTestId('app-demo').getByText('ready').waitFor({ timeout: 60_000 });
    await page.getByRole('link', { name: 'demo' }).click();
    await expect.poll(() => page.getByTestId('live-build').textContent(), { timeout: 10_000 }).toBe('2');

    await go('Tasks');
    await page.getByRole('link', { name: /^t_/ }).first().waitFor();
    await shot('06-tasks');
    // The retried deploy: it failed once, then succeeded (attempts 2).
    await page.getByRole('row').filter({ hasText: 'deploy' }).getByRole('link').first().click();
    await page.getByRole('heading', { level: 1, name: /^Task t_/ }).waitFor();
    await page.getByText('succeeded').first().waitFor();
    await shot('07-task');
  });

  it('creates a role with the matrix editor; a user holding only it is denied', async () => {
    await go('Roles');
    await page.getByLabel('Name').fill('viewers');
    await page.getByLabel('apps read').check();
    await page.getByLabel('tasks read').check();
    // consumption has no create bit: there is nothing to tick.
    expect(await page.getByLabel('consumption create').count()).toBe(0);
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('heading', { level: 1, name: 'Role viewers' }).waitFor();
    await shot('08-role');
    await page.goto(`${base}/apps/mc/roles/Administrators`);
    await page.getByRole('heading', { level: 1, name: 'Role Administrators' }).waitFor();
    expect(await page.getByLabel('apps read').isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Save' }).count()).toBe(0);
    await go('Roles');
    await shot('09-roles');

    await go('Users');
    await page.getByLabel('User name').fill('vera');
    await page.getByLabel('Email').fill('vera@example.com');
    await page.getByLabel('First name').fill('Vera');
    await page.getByLabel('Surname').fill('Viewer');
    await page.getByRole('checkbox', { name: 'viewers' }).check();
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    const password = (await page.getByTestId('secret').textContent())!;
    expect(password.length).toBeGreaterThan(8);
    await shot('10-users');
    await page.getByRole('button', { name: 'I have saved it' }).click();

    await go('Subscriptions');
    await shot('11-subscriptions');
    await go('Consumption');
    await page.getByRole('img', { name: /Stored per month/ }).waitFor();
    await shot('12-consumption');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(org.name, 'vera', password);
    // Signing in again returns to the page that was open.
    await page.getByRole('heading', { level: 1, name: 'Consumption' }).waitFor();
    await page.getByRole('alert').filter({ hasText: 'consumption.read' }).waitFor();
    await go('Apps');
    await page.getByTestId('app-demo').waitFor();
    expect(await page.getByRole('button', { name: 'Create app' }).count()).toBe(0);
    await go('Deployments');
    await page.getByRole('alert').filter({ hasText: 'deployments.read' }).waitFor();
    await shot('13-denied');
  });

  it('shows the expired-session page when the session ends, and signs in again', async () => {
    // The session is revoked behind the console's back (as when it lapses after 24 h).
    const session = await page.evaluate(() => JSON.parse(sessionStorage.getItem('rockit-console-session') ?? 'null').token as string);
    const out = await fetch(`${base}/be/v1/logout`, { method: 'POST', headers: { 'x-rockit-besession-token': session } });
    expect(out.status).toBe(200);
    // The next call gets 401; trading the session for an auth token fails too: the expired page.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tasks', exact: true }).click();
    await page.getByTestId('expired').waitFor();
    await page.getByRole('heading', { name: 'Your session has expired' }).waitFor();
    await shot('14-expired');
    await signIn(org.name, org.admin, org.password);
    await page.getByRole('heading', { level: 1, name: 'Tasks' }).waitFor();
    expect(await page.getByTestId('who').textContent()).toBe(`${org.admin} @ ${org.name}`);
  });

  it('is usable at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/apps/mc/apps/demo`);
    await page.getByRole('heading', { level: 1, name: 'App demo' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
    await shot('15-phone-app');
  });
});
