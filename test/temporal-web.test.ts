/**
 * What an operator sees in Temporal Web (the dev server's UI, ui-server 2.42.x) for a dead-lettered batch, driven in
 * headless Chromium: the List Filter finds it, the history shows the failed activity, the User Metadata tab renders
 * the static summary and the current-details markdown with the dead-letter line, and the Search Attributes tab shows
 * the failed step. Screenshots land in test-output/temporal-web/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { waitFor } from './support/wait';
import { launchChromium } from './support/browser';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';

/** The List Filter an operator pastes into Temporal Web (or `temporal workflow list --query`) to find dead-lettered batches. */
export const DEAD_LETTERED_BATCHES_QUERY = "BatchkeeperDeadLettered = true AND BatchkeeperKind = 'batch'";

/** The same filter narrowed to one task queue (the test's own, so parallel test files do not show up). */
export function deadLetteredBatchesQuery(taskQueue?: string): string {
  return taskQueue ? `${DEAD_LETTERED_BATCHES_QUERY} AND TaskQueue = '${taskQueue}'` : DEAD_LETTERED_BATCHES_QUERY;
}

const SCREENSHOTS = path.resolve(__dirname, '..', 'test-output', 'temporal-web');
const ERROR_MESSAGE = 'handler exploded: downstream API unavailable';

let env: TestEnvironment;
let browser: Browser | undefined;

before(async () => {
  env = await createTestEnvironment({
    handlers: {
      'always-fails': {
        async onComplete() {
          throw new Error(ERROR_MESSAGE);
        },
      },
    },
    retry: { defaults: { maximumAttempts: 2, initialIntervalMs: 100, maximumIntervalMs: 200 } },
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await env?.teardown();
});


async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The markdown Temporal Web renders for a User Metadata section (each is an <iframe title="output"> under its <h3>). */
function metadataFrame(page: Page, heading: string) {
  return page.locator(`xpath=//h3[normalize-space()="${heading}"]/ancestor::div[.//iframe[@title="output"]][1]//iframe[@title="output"]`).first();
}

function metadataSection(page: Page, heading: string): FrameLocator {
  return metadataFrame(page, heading).contentFrame();
}

test('an operator finds a dead-lettered batch in Temporal Web by query and sees its failure', { timeout: 90_000 }, async (t) => {
  const ui = process.env.BATCHKEEPER_TEST_TEMPORAL_UI;
  assert.ok(ui, 'BATCHKEEPER_TEST_TEMPORAL_UI is empty: run through `npm test`, which starts the dev server with its UI');

  const { batchId, workflowId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, 'web'), handler: 'always-fails', pollScheduleMs: [200],
  });
  const [, { deadLetter }] = await Promise.all([
    launchChromium().then((launched) => { browser = launched; }),
    waitFor(async () => {
      const details = await env.client.getBatch(batchId);
      return details.deadLetter ? details : undefined;
    }, 30_000, 'the batch to be dead-lettered'),
  ]);
  assert.equal(deadLetter?.step, 'dispatch_handler');

  const page = await browser!.newPage({ viewport: { width: 1600, height: 1100 } });
  page.setDefaultTimeout(15_000);

  await t.test('the List Filter finds it', async () => {
    const query = deadLetteredBatchesQuery(env.taskQueue);
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    const link = page.getByRole('link', { name: workflowId, exact: true });
    // Visibility (the upserted search attributes) can lag the dead letter by a moment: reload until it is listed.
    await waitFor(async () => {
      if (await link.first().isVisible()) return true;
      await page.reload();
      return link.first().waitFor({ timeout: 2_000 }).then(() => true, () => false);
    }, 20_000, 'the batch in the filtered workflow list');
    const rows = page.getByRole('row').filter({ hasText: workflowId });
    await rows.first().getByText('Running').waitFor();
    assert.equal(await rows.count(), 1, 'the batch is listed once');
    assert.equal(await page.getByRole('row').filter({ hasText: /batch-[0-9a-f-]{36}/ }).count(), 1, 'only this batch matches the filter');
    await screenshot(page, '1-list-dead-lettered');
  });

  await t.test('its history shows the failed handler activity', async () => {
    await page.getByRole('link', { name: workflowId, exact: true }).first().click();
    await page.waitForURL(new RegExp(`/workflows/${workflowId}/[0-9a-f-]+/history`));
    await page.getByRole('heading', { name: workflowId }).waitFor();
    const failed = page.getByRole('row').filter({ hasText: 'Activity Task Failed' }).filter({ hasText: ERROR_MESSAGE });
    await failed.first().waitFor();
    assert.equal(await failed.count(), 1, 'the last attempt of dispatchHandler failed with the handler error');
    // The timeline draws the retried activity in red, labelled with its attempt count.
    await page.getByText(/\b2 • dispatchHandler\b/).first().waitFor();
    // The static summary is shown with the Workflow Execution Started event.
    await page.getByText('openai model-x · 3 requests · handler always-fails').first().waitFor();
    await screenshot(page, '2-workflow-history');
    // The history scrolls inside its own container: bring the failed attempt into view and open it.
    await failed.first().scrollIntoViewIfNeeded();
    await failed.first().click();
    // Expanded, the activity group shows its retry policy (Maximum Attempts 2) and the attempt's Last Failure JSON.
    await page.getByText('Last Failure', { exact: true }).first().waitFor();
    await page.getByText(`"message": "${ERROR_MESSAGE}"`).first().waitFor();
    await screenshot(page, '2b-workflow-history-failed-activity');
  });

  await t.test('User Metadata renders the summary and the current details, the requeue command first and visible', async () => {
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.waitForURL(/\/user-metadata$/);
    await metadataSection(page, 'Summary').getByText('openai model-x · 3 requests · handler always-fails').waitFor();
    const current = metadataSection(page, 'Current Details');
    // Current details come from a query to the running workflow: the worker answers it.
    await current.getByText('DEAD-LETTERED').waitFor();
    const text = await current.locator('body').innerText();
    assert.match(text, /DEAD-LETTERED at step dispatch_handler after 2 tries/);
    assert.match(text, new RegExp(`Error: ${ERROR_MESSAGE}`), "the error class and message of the dead letter");
    assert.ok(text.includes(deadLetter!.id), 'the dead letter id');
    // The one-command requeue, whole on one line, inside the panel as it opens (no scrolling).
    const command = current.getByText(`npx batchkeeper batches requeue ${batchId}`, { exact: true });
    await command.waitFor({ state: 'visible' });
    const [line, panel] = [await command.boundingBox(), await metadataFrame(page, 'Current Details').boundingBox()];
    assert.ok(line && panel, 'the command line and the panel are laid out');
    assert.ok(line.y >= panel.y && line.y + line.height <= panel.y + panel.height, `the command is inside the visible panel (${JSON.stringify({ line, panel })})`);
    assert.ok(line.height < 40, 'on one line');
    await current.getByText(`npx batchkeeper batches discard ${batchId}`, { exact: true }).waitFor({ state: 'visible' });
    assert.match(text, /Tries: .*dispatch_handler ×2/);
    await screenshot(page, '3-user-metadata-current-details');
  });

  await t.test('Search Attributes show the failed step', async () => {
    await page.getByRole('tab', { name: 'Search Attributes' }).click();
    await page.waitForURL(/\/search-attributes$/);
    await page.getByText('"BatchkeeperFailedStep": "dispatch_handler"').waitFor();
    const text = await page.locator('main').innerText();
    assert.match(text, /"BatchkeeperDeadLettered": true/);
    assert.match(text, /"BatchkeeperTryCount": 2/);
    assert.match(text, /"BatchkeeperHandler": "always-fails"/);
    await screenshot(page, '4-search-attributes');
  });
});
