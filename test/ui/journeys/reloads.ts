import * as assert from 'node:assert/strict';
import { SAMPLE_SERVICE } from '../../fixtures/sample-workspace';
import { journey } from '../journey';
import { kamalSample } from '../kamal-sample';
import type { Workbench } from '../workbench';

/** How many reloads: each one restores the expanded apps while their first reads run. */
const RELOADS = Number(process.env.DEPLOY_ROLLBACK_UI_RELOADS ?? 12);

/** The release rows under an app: "Reading the hosts…", error or empty rows are not releases. */
async function releaseRows(workbench: Workbench, app: string): Promise<string[]> {
  const rows = await workbench.treeChildren(app).catch(() => []);
  return rows.filter((row) => /^v\d/.test(row.label) && !/^reading…/.test(row.description)).map((row) => row.label);
}

async function assertReleasesShown(workbench: Workbench, apps: Record<string, string[]>, when: string): Promise<void> {
  for (const [app, expected] of Object.entries(apps)) {
    let shown: string[] = [];
    await workbench.waitFor(
      async () => {
        if (!(await workbench.isExpanded(app).catch(() => false))) return false;
        shown = await releaseRows(workbench, app);
        return expected.every((label) => shown.includes(label));
      },
      `${app} to show its releases ${expected.join(', ')} ${when} (it shows: ${shown.join(', ') || 'nothing'})`,
      45_000,
    );
  }
}

export const reloads = journey(
  `Reloads: ${RELOADS} window reloads with an expanded gitops app and an expanded Kamal app, each comes back with its releases, never empty, no "already registered" error`,
  async (ui) => {
    const { sample } = await kamalSample(ui);
    const workbench = await ui.openWorkbench(sample.folder, { trusted: true, env: { HOME: sample.home } });
    await workbench.openView();
    await workbench.expandTreeItem('default');
    await workbench.expandTreeItem(SAMPLE_SERVICE);
    await workbench.expandTreeItem('staging');
    await workbench.expandTreeItem('a');
    const apps = { [SAMPLE_SERVICE]: ['v3', 'v2', 'v1'], a: ['v2.0.0'] };
    await assertReleasesShown(workbench, apps, 'before the first reload');

    for (let reload = 1; reload <= RELOADS; reload++) {
      await workbench.reloadWindow();
      try {
        await assertReleasesShown(workbench, apps, `after reload ${reload}`);
        // Nothing flashed: VS Code says "Element with id … is already registered" when a row is registered twice.
        const errors = (await workbench.notifications()).filter((text) => /already registered|No tree item/i.test(text));
        assert.deepEqual(errors, [], `after reload ${reload}`);
      } catch (error) {
        await workbench.screenshot(`empty-after-reload-${reload}`);
        throw error;
      }
    }
    await workbench.screenshot('after-reloads');
  },
  // The sample's hosts, then each reload: a new extension host reading git and both hosts again.
  { timeoutMs: 90_000 + RELOADS * 30_000 },
);
