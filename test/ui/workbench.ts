// What a user does in the real VS Code workbench (code-server 1.100.3 in Chromium), one helper
// per gesture. Every helper waits for the state it needs through Playwright's auto-waiting or
// an explicit condition with a timeout: no fixed sleeps.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';

export const CONTAINER_TITLE = 'Deploy Rollback';
export const VIEW_NAME = 'Releases';
export const OUTPUT_CHANNEL = 'Deploy Rollback';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Accessible names that start with `label` (VS Code appends descriptions and keybindings). */
function startsWith(label: string): RegExp {
  return new RegExp(`^${escapeRegExp(label)}`);
}

/** Monaco renders spaces as U+00A0 and splits text across spans. */
export function normalizeText(text: string): string {
  return text.replace(/\u00a0/g, ' ').replace(/[ \t]+\n/g, '\n').trim();
}

export class Workbench {
  private shots = 0;

  constructor(
    readonly page: Page,
    private readonly screenshotDir: string,
  ) {}

  /** The sidebar part; everything a tree view shows lives below it. */
  get sidebar(): Locator {
    return this.page.locator('.part.sidebar');
  }

  /** The Releases pane (its header is merged into the container title when it is alone). */
  get releasesView(): Locator {
    return this.sidebar.locator('.pane').filter({ has: this.page.locator(`.pane-header[aria-label^="${VIEW_NAME}"]`) });
  }

  /** Clicks the activity-bar icon unless the Deploy Rollback container is already showing. */
  async openView(): Promise<Locator> {
    const container = this.page.locator('[id="workbench.view.extension.deployRollback"]');
    if (!(await container.isVisible())) {
      await this.page.locator('.part.activitybar').getByRole('tab', { name: startsWith(CONTAINER_TITLE) }).click();
    }
    await container.waitFor({ state: 'visible' });
    await this.releasesView.locator('.pane-body').waitFor({ state: 'visible' });
    return this.releasesView;
  }

  /** All text the Releases view shows: welcome content, view message or tree rows. */
  async viewText(): Promise<string> {
    return normalizeText(await this.releasesView.locator('.pane-body').innerText());
  }

  /** Waits until the Releases view shows text matching `pattern`, and returns all of it. */
  async waitForViewText(pattern: RegExp | string, timeoutMs = 20_000): Promise<string> {
    const body = this.releasesView.locator('.pane-body');
    await body.getByText(pattern).first().waitFor({ state: 'visible', timeout: timeoutMs });
    return this.viewText();
  }

  async welcomeText(): Promise<string> {
    const welcome = this.releasesView.locator('.welcome-view-content');
    await welcome.waitFor({ state: 'visible' });
    return normalizeText(await welcome.innerText());
  }

  /**
   * The row whose visible label is `label`, or starts with it as a whole word (release rows read
   * "<version>  <title>"). Not the accessible name: VS Code builds that from the tooltip.
   */
  treeItem(label: string): Locator {
    const labelText = new RegExp(`^\\s*${escapeRegExp(label)}(?![\\w.-])`);
    return this.releasesView
      .getByRole('treeitem')
      .filter({ has: this.page.locator('.label-name', { hasText: labelText }) })
      .first();
  }

  /** Visible labels of the rows the Releases tree shows now, top to bottom. */
  async treeLabels(): Promise<string[]> {
    return (await this.releasesView.getByRole('treeitem').locator('.label-name').allInnerTexts()).map(normalizeText);
  }

  async expandTreeItem(label: string): Promise<Locator> {
    const item = this.treeItem(label);
    await item.waitFor({ state: 'visible' });
    if ((await item.getAttribute('aria-expanded')) === 'false') await item.click();
    await this.waitFor(async () => (await item.getAttribute('aria-expanded')) === 'true', `tree item "${label}" to expand`);
    return item;
  }

  async rightClickTreeItem(label: string): Promise<void> {
    await this.treeItem(label).click({ button: 'right' });
    await this.contextMenu().waitFor({ state: 'visible' });
  }

  private contextMenu(): Locator {
    // Playwright's CSS pierces the open shadow root VS Code renders menus into.
    return this.page.locator('.context-view .monaco-menu').first();
  }

  async clickContextMenu(label: string): Promise<void> {
    await this.contextMenu().getByRole('menuitem', { name: startsWith(label) }).first().click();
    await this.contextMenu().waitFor({ state: 'hidden' });
  }

  /** Labels of the open context menu, e.g. to assert a destructive entry is absent. */
  async contextMenuItems(): Promise<string[]> {
    return (await this.contextMenuEntries()).map((entry) => entry.label);
  }

  /** The open context menu's entries and whether each can be clicked (enablement clauses). */
  async contextMenuEntries(): Promise<Array<{ label: string; enabled: boolean }>> {
    const entries = await this.contextMenu()
      .getByRole('menuitem')
      .evaluateAll((items) =>
        items.map((item) => ({
          label: item.getAttribute('aria-label') ?? item.textContent ?? '',
          enabled: item.getAttribute('aria-disabled') !== 'true' && !item.classList.contains('disabled'),
        })),
      );
    return entries.map((entry) => ({ ...entry, label: normalizeText(entry.label) })).filter((entry) => entry.label);
  }

  async closeContextMenu(): Promise<void> {
    await this.page.keyboard.press('Escape');
    await this.contextMenu().waitFor({ state: 'hidden' });
  }

  /** Waits for a modal dialog and returns its text, leaving it open (e.g. for a screenshot). */
  async modalText(): Promise<string> {
    const dialog = this.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible' });
    return normalizeText(await dialog.innerText());
  }

  /** Clicks `button` in the modal dialog and returns what the dialog said. */
  async answerModal(button: string): Promise<string> {
    const dialog = this.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible' });
    const text = normalizeText(await dialog.innerText());
    await dialog.getByRole('button', { name: button, exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
    return text;
  }

  /** Runs a command by its palette title, e.g. "Deploy Rollback: Refresh". */
  async runPaletteCommand(title: string): Promise<void> {
    await this.page.locator('.monaco-workbench').waitFor({ state: 'visible' });
    await this.page.keyboard.press('F1');
    const input = this.quickInput().locator('input.input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    await this.pickQuickItem(title);
  }

  private quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  async pickQuickItem(label: string, timeoutMs = 30_000): Promise<void> {
    const option = this.quickInput().locator('.quick-input-list').getByRole('option', { name: startsWith(label) }).first();
    try {
      await option.click({ timeout: timeoutMs });
    } catch (error) {
      const listed = await this.quickItems().catch(() => []);
      throw new Error(`no quick pick item "${label}" (listed: ${listed.length ? listed.join(' | ') : 'nothing'}): ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
  }

  /** Quick pick entries currently listed, for asserting what a command offers. */
  async quickItems(): Promise<string[]> {
    const list = this.quickInput().locator('.quick-input-list');
    await list.getByRole('option').first().waitFor({ state: 'visible', timeout: 5_000 });
    const names = await list.getByRole('option').evaluateAll((options) => options.map((option) => option.getAttribute('aria-label') ?? ''));
    return names.map(normalizeText);
  }

  /** Shows output channel `name` in the panel and returns the text it shows. */
  async outputChannelText(name: string = OUTPUT_CHANNEL): Promise<string> {
    await this.runPaletteCommand('Output: Show Output Channels...');
    await this.pickQuickItem(name);
    const outputView = this.page.locator('.part.panel [id="workbench.panel.output"]');
    await outputView.waitFor({ state: 'visible' });
    const lines = outputView.locator('.monaco-editor .view-lines');
    await lines.waitFor({ state: 'attached' });
    return normalizeText(await lines.innerText());
  }

  /** Waits until the output channel shows text matching `pattern`. */
  async waitForOutputText(pattern: RegExp, name: string = OUTPUT_CHANNEL, timeoutMs = 20_000): Promise<string> {
    await this.outputChannelText(name);
    const lines = this.page.locator('.part.panel [id="workbench.panel.output"] .monaco-editor .view-lines');
    await lines.getByText(pattern).first().waitFor({ state: 'visible', timeout: timeoutMs });
    return normalizeText(await lines.innerText());
  }

  /** Notification toasts' messages, newest last. */
  async notifications(): Promise<string[]> {
    const toasts = this.page.locator('.notifications-toasts .notification-list-item-message');
    return (await toasts.allInnerTexts()).map(normalizeText);
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(this.screenshotDir, { recursive: true });
    const file = path.join(this.screenshotDir, `${String(++this.shots).padStart(2, '0')}-${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** Polls `condition` until true; for states Playwright cannot express as a locator. */
  async waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.page.waitForTimeout(100);
    }
  }
}
