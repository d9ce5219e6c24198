// The web console in a real browser against a real server: login, the function
// list, invoking, a failed call's error and logs, live updates without a reload.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { deployCode, invoke, startServer, type TestServer } from '../helpers/server.js';
import { launchBrowser } from './browser.js';

// Generous: the machine running the suite may be loaded; the console itself pushes updates at once.
const WAIT = { timeout: 30_000 };

describe('web console', () => {
  let s: TestServer;
  let browser: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    s = await startServer({ tier: 'process' });
    await deployCode(s, 'greet', 'export async function handler(e) { console.log("greeting", e.who); return { hello: e.who ?? "world" }; }');
    await deployCode(s, 'boom', 'export async function handler() { console.log("about to fail"); throw new Error("kaboom 42"); }');
    ({ browser, close: closeBrowser } = await launchBrowser());
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
  });
  after(async () => {
    await closeBrowser?.();
    await s?.stop();
  });

  test('GET / redirects to the console, which refuses a wrong token', async () => {
    await page.goto(s.url + '/');
    assert.match(page.url(), /\/console\/$/);
    await page.fill('input[type=password]', 'not-the-token');
    await page.click('button[type=submit]');
    await page.getByRole('alert').waitFor(WAIT);
    assert.match(await page.getByRole('alert').innerText(), /refused/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'nothing stored for a refused token');
  });

  test('the right token shows the function list', async () => {
    await page.fill('input[type=password]', s.token);
    await page.click('button[type=submit]');
    await page.locator('tr[data-function=greet]').waitFor(WAIT);
    await page.locator('tr[data-function=boom]').waitFor(WAIT);
    const row = await page.locator('tr[data-function=greet]').innerText();
    assert.match(row, /greet\s+1\s+node\s+process/);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing kept beyond the tab');
  });

  test("invoking from a function's page shows the answer", async () => {
    await page.click('a[href="#/functions/greet"]');
    await page.locator('[data-testid=function-name]').waitFor(WAIT);
    await page.fill('textarea[name=event]', '{"who": "browser"}');
    await page.click('form.invoke button[type=submit]');
    await page.locator('[data-testid=invoke-status]').waitFor(WAIT);
    assert.equal(await page.locator('[data-testid=invoke-status]').innerText(), 'HTTP 200');
    assert.deepEqual(JSON.parse(await page.locator('[data-testid=invoke-body]').innerText()), { hello: 'browser' });
    await page.locator('[data-testid=calls] tr.call').first().waitFor(WAIT);
  });

  test('a call made elsewhere appears without a reload', async () => {
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    const r = await invoke(s, 'greet', { who: 'curl' });
    assert.equal(r.status, 200);
    const id = r.headers.get('x-lamina-request-id')!;
    await page.locator(`tr[data-request-id="${id}"]`).waitFor(WAIT);
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 7, 'the page was not reloaded');
  });

  test("a failed call's error and logs are visible", async () => {
    await page.goto(s.url + '/console/#/functions/boom');
    await page.locator('[data-testid=function-name]').waitFor(WAIT);
    await page.click('form.invoke button[type=submit]');
    await page.locator('[data-testid=invoke-status]').waitFor(WAIT);
    assert.equal(await page.locator('[data-testid=invoke-status]').innerText(), 'HTTP 500');
    assert.match(await page.locator('[data-testid=invoke-body]').innerText(), /kaboom 42/);
    const row = page.locator('[data-testid=calls] tr.call').first();
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /HandlerError/);
    await row.click();
    await page.locator('[data-testid=call-logs]').waitFor(WAIT);
    assert.match(await page.locator('[data-testid=call-error]').innerText(), /HandlerError: kaboom 42/);
    const logs = await page.locator('[data-testid=call-logs]').innerText();
    assert.match(logs, /about to fail/);
    assert.match(logs, /REPORT RequestId: [0-9a-f-]+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms/);
  });

  test('with the live stream down, a call from the page is still listed, and a reconnect catches up', async () => {
    await page.route('**/api/v1/events', (r) => r.abort());
    let missed: string;
    try {
      await page.goto(s.url + '/console/?reload#/functions/greet'); // a new document: its stream cannot connect
      await page.locator('[data-testid=function-name]').waitFor(WAIT);
      await page.fill('textarea[name=event]', '{"who": "offline"}');
      await page.click('form.invoke button[type=submit]');
      await page.locator('[data-testid=invoke-status]').waitFor(WAIT);
      const mine = /request-id: ([0-9a-f-]+)/.exec(await page.locator('[data-testid=invoke-answer]').innerText())?.[1];
      assert.ok(mine, 'the answer shows its request id');
      await page.locator(`tr[data-request-id="${mine}"]`).waitFor(WAIT);
      // A call made elsewhere while the stream is down is missed for now...
      const r = await invoke(s, 'greet', { who: 'missed' });
      missed = r.headers.get('x-lamina-request-id')!;
      assert.equal(await page.locator(`tr[data-request-id="${missed}"]`).count(), 0);
    } finally {
      await page.unroute('**/api/v1/events');
    }
    // ...and read again once the stream reconnects.
    await page.locator(`tr[data-request-id="${missed}"]`).waitFor(WAIT);
  });

  test('the bill, queue and workers pages render', async () => {
    await page.click('a[href="#/bill"]');
    await page.locator('[data-testid=bill]').waitFor(WAIT);
    assert.match(await page.locator('[data-testid=bill]').innerText(), /boom/);
    await page.click('a[href="#/queue"]');
    await page.locator('section h2').filter({ hasText: 'queue' }).waitFor(WAIT);
    await page.click('a[href="#/workers"]');
    await page.getByText('One node').waitFor(WAIT);
    assert.deepEqual(errors, [], 'no script errors');
  });
});
