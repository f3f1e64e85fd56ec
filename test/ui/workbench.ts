// What a user does in the real VS Code workbench (code-server 1.100.3 in Chromium), one helper
// per gesture. Every helper waits for the state it needs through Playwright's auto-waiting or
// an explicit condition with a timeout: no fixed sleeps.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';

export const CONTAINER_TITLE = 'Deploy Rollback';
export const VIEW_NAME = 'Releases';
export const OUTPUT_CHANNEL = 'Deploy Rollback';

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Accessible names that start with `label` (VS Code appends descriptions and keybindings). */
function startsWith(label: string): RegExp {
  return new RegExp(`^${escapeRegExp(label)}`);
}

/** A tree row's visible label: `label` itself, or `label` followed by a title ("v2.0.0  Release a2 of a"). */
function rowLabel(label: string): RegExp {
  return new RegExp(`^\\s*${escapeRegExp(label)}(?![\\w.-])`);
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
    const labelText = rowLabel(label);
    return this.releasesView
      .getByRole('treeitem')
      .filter({ has: this.page.locator('.label-name', { hasText: labelText }) })
      .first();
  }

  /** Visible labels of the rows the Releases tree shows now, top to bottom. */
  async treeLabels(): Promise<string[]> {
    return (await this.releasesView.getByRole('treeitem').locator('.label-name').allInnerTexts()).map(normalizeText);
  }

  /** The description VS Code shows after the row's label ("current · 3 hours ago"). */
  async treeItemDescription(label: string): Promise<string> {
    const item = this.treeItem(label);
    await item.waitFor({ state: 'visible' });
    const description = item.locator('.label-description');
    return (await description.count()) ? normalizeText(await description.innerText()) : '';
  }

  /** Waits until the row's description matches (the tree refreshes after a rollback). */
  async waitForTreeItemDescription(label: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    let last = '';
    await this.waitFor(
      async () => pattern.test((last = await this.treeItemDescription(label).catch(() => ''))),
      `tree item "${label}" to read ${pattern} (it read "${last}")`,
      timeoutMs,
    );
    return last;
  }

  /** Every visible row, top to bottom, with its depth: to look at a release's host rows. */
  async treeRows(): Promise<Array<{ label: string; description: string; level: number }>> {
    const rows = await this.releasesView.getByRole('treeitem').evaluateAll((items) =>
      items.map((item) => ({
        label: item.querySelector('.label-name')?.textContent ?? '',
        description: item.querySelector('.label-description')?.textContent ?? '',
        level: Number(item.getAttribute('aria-level') ?? 0),
      })),
    );
    return rows.map((row) => ({ ...row, label: normalizeText(row.label), description: normalizeText(row.description) }));
  }

  /** The rows nested under the row labelled `label` (its expanded children and their children). */
  async treeChildren(label: string): Promise<Array<{ label: string; description: string; level: number }>> {
    const rows = await this.treeRows();
    const labelText = rowLabel(label);
    const index = rows.findIndex((row) => labelText.test(row.label));
    if (index < 0) throw new Error(`no tree row "${label}" (rows: ${rows.map((row) => row.label).join(' | ')})`);
    const children = [];
    for (const row of rows.slice(index + 1)) {
      if (row.level <= rows[index].level) break;
      children.push(row);
    }
    return children;
  }

  /** Waits until `count` rows are nested under `label` (children load after the row expands). */
  async waitForTreeChildren(label: string, count: number, timeoutMs = 20_000): Promise<Array<{ label: string; description: string; level: number }>> {
    let children: Array<{ label: string; description: string; level: number }> = [];
    await this.waitFor(
      async () => (children = await this.treeChildren(label)).length === count,
      `${count} rows under "${label}" (it has ${children.length}: ${children.map((row) => row.label).join(' | ')})`,
      timeoutMs,
    );
    return children;
  }

  /** Drags the sidebar's edge so long release rows and descriptions are readable in screenshots. */
  async setSidebarWidth(width: number): Promise<void> {
    const sidebar = await this.sidebar.boundingBox();
    if (!sidebar) throw new Error('the sidebar is not showing');
    const edge = sidebar.x + sidebar.width;
    await this.page.mouse.move(edge - 1, sidebar.y + sidebar.height / 2);
    await this.page.mouse.down();
    await this.page.mouse.move(sidebar.x + width, sidebar.y + sidebar.height / 2, { steps: 5 });
    await this.page.mouse.up();
    await this.waitFor(async () => Math.abs(((await this.sidebar.boundingBox())?.width ?? 0) - width) < 12, `the sidebar to be ${width} px wide`, 5_000);
  }

  async expandTreeItem(label: string): Promise<Locator> {
    const item = this.treeItem(label);
    await item.waitFor({ state: 'visible' });
    // The twistie, not the row: a row with a click action (a release opens its change or history) does not expand on click.
    if ((await item.getAttribute('aria-expanded')) === 'false') await item.locator('.monaco-tl-twistie').click();
    await this.waitFor(async () => (await item.getAttribute('aria-expanded')) === 'true', `tree item "${label}" to expand`);
    return item;
  }

  async rightClickTreeItem(label: string): Promise<void> {
    await this.treeItem(label).click({ button: 'right' });
    await this.contextMenu().waitFor({ state: 'visible' });
  }

  /**
   * Right-clicks the row and returns its context menu's entries, or [] when VS Code shows no
   * menu because no entry applies. The menu is shown in the same task as the right-click, so
   * once the row has focus and two frames were painted, an absent menu stays absent.
   */
  async treeItemMenuEntries(label: string): Promise<Array<{ label: string; enabled: boolean }>> {
    const item = this.treeItem(label);
    await item.click({ button: 'right' });
    await this.waitFor(async () => (await item.getAttribute('class'))?.split(/\s+/).includes('focused') ?? false, `tree item "${label}" to take the focus`, 5_000);
    await this.page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
    if (!(await this.contextMenu().isVisible())) return [];
    const entries = await this.contextMenuEntries();
    await this.closeContextMenu();
    return entries;
  }

  /** Right-clicks the row, saves a screenshot of the row and its open menu, and returns the menu's labels (the menu is closed again). */
  async screenshotTreeItemMenu(label: string, name: string): Promise<string[]> {
    const item = this.treeItem(label);
    await this.rightClickTreeItem(label);
    const labels = await this.contextMenuItems();
    const menu = this.contextMenu();
    await this.screenshot(name, await this.regionAround([item, menu], 8));
    await this.closeContextMenu();
    return labels;
  }

  /** The labels of the row's inline actions (the icons shown on hover), by their titles. */
  async inlineActions(label: string): Promise<string[]> {
    const item = this.treeItem(label);
    await item.hover();
    const actions = item.locator('.actions .action-label');
    return (await actions.evaluateAll((elements) => elements.map((element) => element.getAttribute('aria-label') ?? element.getAttribute('title') ?? ''))).map(normalizeText);
  }

  /**
   * Reloads the window as "Developer: Reload Window" does and waits for the workbench to be back
   * with the Releases view restored (it was showing: clicking its icon now would close it again).
   */
  async reloadWindow(): Promise<void> {
    await this.page.reload({ waitUntil: 'domcontentloaded' });
    await this.page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible', timeout: 90_000 });
    await this.releasesView.locator('.pane-body').waitFor({ state: 'visible', timeout: 60_000 });
  }

  /** Whether the row's label and description are cut off (ellipsis) at the sidebar's current width. */
  async isTreeItemTruncated(label: string): Promise<boolean> {
    const item = this.treeItem(label);
    await item.waitFor({ state: 'visible' });
    return item.locator('.monaco-icon-label-container').first().evaluate((element) => element.scrollWidth > element.clientWidth + 1);
  }

  /** How many pixels of the row's description show before the sidebar cuts it (0: none). */
  async visibleDescriptionWidth(label: string): Promise<number> {
    const item = this.treeItem(label);
    await item.waitFor({ state: 'visible' });
    return item.locator('.label-description').first().evaluate((element) => {
      const container = element.closest('.monaco-icon-label-container')!.getBoundingClientRect();
      const box = element.getBoundingClientRect();
      return Math.max(0, Math.min(box.right, container.right) - box.left);
    });
  }

  /** Whether the row is expanded now (VS Code's aria-expanded), without touching it. */
  async isExpanded(label: string): Promise<boolean> {
    const item = this.treeItem(label);
    await item.waitFor({ state: 'visible' });
    return (await item.getAttribute('aria-expanded')) === 'true';
  }

  private contextMenu(): Locator {
    // Playwright's CSS pierces the open shadow root VS Code renders menus into.
    return this.page.locator('.context-view .monaco-menu').first();
  }

  async clickContextMenu(label: string): Promise<void> {
    const item = this.contextMenu().getByRole('menuitem', { name: startsWith(label) }).first();
    // The menu opens under the pointer; a click on the entry that is already under it can be
    // taken as the end of the right-click and ignored, so focus the entry and press Enter.
    await item.hover();
    await item.locator('xpath=..').and(this.page.locator('.focused')).waitFor({ state: 'attached' });
    await this.page.keyboard.press('Enter');
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

  /** How far the modal dialog reaches past the window's top and bottom edges, in pixels (0: it fits). */
  async modalOverflow(): Promise<{ height: number; windowHeight: number; hiddenAbove: number; hiddenBelow: number }> {
    const box = await this.page.locator('.monaco-dialog-box').boundingBox();
    if (!box) throw new Error('no modal dialog is showing');
    const windowHeight = this.page.viewportSize()?.height ?? 0;
    return { height: Math.round(box.height), windowHeight, hiddenAbove: Math.max(0, Math.round(-box.y)), hiddenBelow: Math.max(0, Math.round(box.y + box.height - windowHeight)) };
  }

  /**
   * Presses Enter in the modal dialog after checking that `button` has the keyboard focus: how a
   * user answers a dialog whose buttons are off-screen. Returns what the dialog said.
   */
  async answerModalWithEnter(button: string): Promise<string> {
    const dialog = this.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible' });
    const text = normalizeText(await dialog.innerText());
    const focused = dialog.getByRole('button', { name: button, exact: true });
    await this.waitFor(async () => focused.evaluate((element) => element.ownerDocument.activeElement === element), `"${button}" to have the keyboard focus in the dialog`, 5_000);
    await this.page.keyboard.press('Enter');
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

  /**
   * Picks the entry labelled `label` as the extension set it ("$(circle-slash) v1" is named
   * "circle-slash  v1" in the page) with the keyboard, not a click: under load the next quick pick
   * of a multi-step command can open between a click's mousedown and its mouseup, and the mouseup
   * then picks a row of that one (seen in CI: the release pick closed by itself).
   */
  async pickQuickItem(label: string, timeoutMs = 30_000): Promise<void> {
    const name = new RegExp(`^${escapeRegExp(label).replace(/\\\$\\\(([\w-]+)\\\)\s*/g, '$1\\s+')}`);
    const list = this.quickInput().locator('.quick-input-list');
    try {
      await list.getByRole('option', { name }).first().waitFor({ state: 'visible', timeout: timeoutMs });
    } catch (error) {
      const listed = await this.quickItems().catch(() => []);
      throw new Error(`no quick pick item "${label}" (listed: ${listed.length ? listed.join(' | ') : 'nothing'}): ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
    const input = this.quickInput().locator('input.input');
    // The command palette's own filter (">title") already puts the command first.
    if (!(await input.inputValue()).startsWith('>')) await input.fill(label.replace(/\$\([\w-]+\)\s*/g, ''));
    const focused = list.locator('.monaco-list-row.focused').first();
    await this.waitFor(async () => {
      if (name.test(normalizeText((await focused.getAttribute('aria-label', { timeout: 1_000 }).catch(() => null)) ?? ''))) return true;
      await this.page.keyboard.press('ArrowDown');
      return false;
    }, `quick pick item "${label}" to have the focus`, 10_000);
    await this.page.keyboard.press('Enter');
  }

  /** Quick pick entries currently listed, for asserting what a command offers. */
  async quickItems(): Promise<string[]> {
    const list = this.quickInput().locator('.quick-input-list');
    await list.getByRole('option').first().waitFor({ state: 'visible', timeout: 5_000 });
    const names = await list.getByRole('option').evaluateAll((options) => options.map((option) => option.getAttribute('aria-label') ?? ''));
    return names.map(normalizeText);
  }

  /** A multi-select's entries as `label: checked|unchecked`, separators left out. */
  async checkedQuickItems(): Promise<string[]> {
    const rows = this.quickInput().locator('.quick-input-list .monaco-list-row');
    await rows.first().waitFor({ state: 'visible', timeout: 5_000 });
    const entries = await rows.evaluateAll((elements) =>
      elements.map((row) => {
        const box = row.querySelector('input[type="checkbox"], .quick-input-list-checkbox, [role="checkbox"]') as { checked?: boolean; getAttribute(name: string): string | null } | null;
        const checked = typeof box?.checked === 'boolean' ? box.checked : (box?.getAttribute('aria-checked') ?? row.getAttribute('aria-checked')) === 'true';
        return { label: row.querySelector('.label-name')?.textContent ?? row.getAttribute('aria-label') ?? '', checked };
      }),
    );
    return entries.map((entry) => `${normalizeText(entry.label)}: ${entry.checked ? 'checked' : 'unchecked'}`);
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

  /** Waits until the output channel shows text matching `pattern` in the lines on screen. */
  async waitForOutputText(pattern: RegExp, name: string = OUTPUT_CHANNEL, timeoutMs = 20_000): Promise<string> {
    await this.outputChannelText(name);
    const lines = this.page.locator('.part.panel [id="workbench.panel.output"] .monaco-editor .view-lines');
    await lines.getByText(pattern).first().waitFor({ state: 'visible', timeout: timeoutMs });
    return normalizeText(await lines.innerText());
  }

  /**
   * The output channel's lines containing `text`, found with the panel's Filter box as a user
   * would: Monaco renders only the lines on screen, so earlier lines are not in the page. The
   * filter is cleared again afterwards.
   */
  async outputLinesContaining(text: string, name: string = OUTPUT_CHANNEL, timeoutMs = 20_000): Promise<string> {
    await this.outputChannelText(name);
    const output = this.page.locator('.part.panel [id="workbench.panel.output"]');
    const filter = this.page.locator('.part.panel .viewpane-filter input').first();
    await filter.fill(text);
    try {
      const lines = output.locator('.monaco-editor .view-lines');
      // Monaco renders spaces as U+00A0, which \s matches.
      const shown = new RegExp(escapeRegExp(text).replace(/ /g, '\\s'));
      await lines.getByText(shown).first().waitFor({ state: 'visible', timeout: timeoutMs });
      return normalizeText(await lines.innerText());
    } finally {
      await filter.fill('');
    }
  }


  /** Types into the open quick input (a quick pick's filter or an input box). */
  async typeInQuickInput(text: string): Promise<void> {
    const input = this.quickInput().locator('input.input');
    await input.waitFor({ state: 'visible' });
    await input.fill(text);
  }

  async closeQuickInput(): Promise<void> {
    await this.page.keyboard.press('Escape');
    await this.quickInput().waitFor({ state: 'hidden' });
  }

  /** Waits for the quick input to ask `title` (e.g. "Roll Back: environment"). */
  async waitForQuickInputTitle(title: RegExp): Promise<void> {
    await this.quickInput().locator('.quick-input-title').getByText(title).waitFor({ state: 'visible' });
  }

  /** Waits for a notification toast matching `pattern` and returns its message. */
  async waitForNotification(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const toast = this.page.locator('.notifications-toasts .notification-list-item-message').filter({ hasText: pattern }).first();
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
    return normalizeText(await toast.innerText());
  }

  /** Waits for an editor tab titled like `title` to be active and returns the editor's text. */
  async activeEditorText(title: RegExp): Promise<{ title: string; text: string }> {
    const tab = this.page.locator('.part.editor .tabs-container .tab.active');
    await tab.filter({ hasText: title }).waitFor({ state: 'visible' });
    const editor = this.page.locator('.part.editor .editor-instance .monaco-editor').first();
    const lines = editor.locator('.view-lines');
    await lines.locator('.view-line').first().waitFor({ state: 'visible' });
    return { title: normalizeText(await tab.innerText()), text: normalizeText(await lines.innerText()) };
  }

  /**
   * Types into the active editor as a user would and returns the message a read-only editor
   * shows ("Cannot edit in read-only editor"); throws when none appears.
   */
  async typeIntoReadOnlyEditor(text: string): Promise<string> {
    const editor = this.page.locator('.part.editor .editor-instance .monaco-editor').first();
    await editor.locator('.view-lines').click();
    await this.page.keyboard.type(text);
    const message = editor.locator('.monaco-editor-overlaymessage');
    await message.waitFor({ state: 'visible', timeout: 5_000 });
    return normalizeText(await message.innerText());
  }

  async clearNotifications(): Promise<void> {
    await this.runPaletteCommand('Notifications: Clear All Notifications');
    await this.page.locator('.notifications-toasts .notification-list-item').first().waitFor({ state: 'hidden' });
  }

  /** The buttons of the notification toasts shown now. */
  async notificationActions(): Promise<string[]> {
    const buttons = this.page.locator('.notifications-toasts .notification-list-item-buttons-container .monaco-button');
    return (await buttons.allInnerTexts()).map(normalizeText);
  }

  /** Notification toasts' messages, newest last. */
  async notifications(): Promise<string[]> {
    const toasts = this.page.locator('.notifications-toasts .notification-list-item-message');
    return (await toasts.allInnerTexts()).map(normalizeText);
  }

  /** Saves the page, or only `clip` (page pixels), as the journey's next numbered screenshot. */
  async screenshot(name: string, clip?: { x: number; y: number; width: number; height: number }): Promise<string> {
    mkdirSync(this.screenshotDir, { recursive: true });
    const file = path.join(this.screenshotDir, `${String(++this.shots).padStart(2, '0')}-${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
    await this.page.screenshot({ path: file, clip });
    return file;
  }

  /** The page rectangle that holds all of `locators`, plus `margin`, clamped to the viewport. */
  async regionAround(locators: Locator[], margin = 8): Promise<{ x: number; y: number; width: number; height: number }> {
    const boxes = [];
    for (const locator of locators) {
      const box = await locator.boundingBox();
      if (!box) throw new Error(`cannot crop to ${String(locator)}: it is not showing`);
      boxes.push(box);
    }
    const viewport = this.page.viewportSize() ?? { width: 1400, height: 900 };
    const left = Math.max(0, Math.min(...boxes.map((box) => box.x)) - margin);
    const top = Math.max(0, Math.min(...boxes.map((box) => box.y)) - margin);
    const right = Math.min(viewport.width, Math.max(...boxes.map((box) => box.x + box.width)) + margin);
    const bottom = Math.min(viewport.height, Math.max(...boxes.map((box) => box.y + box.height)) + margin);
    return { x: left, y: top, width: right - left, height: bottom - top };
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
