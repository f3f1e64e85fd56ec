/**
 * The Kamal confirmation's "Only Some Roles or Hosts…": a multi-select of the app's roles and
 * hosts (the plan's own checked), answered as Kamal's `--roles`/`--hosts` of literal names. What
 * a scope means is decided in src/core (kamal/rollback/scope.ts).
 */
import * as vscode from 'vscode';
import type { RollbackPlan } from '../core/model';
import { scopeRequestFromPicks, type KamalPlanDetail, type KamalScopeRequest } from '../core/kamal/rollback';
import type { PickItem, Prompter } from './ui';

export const NARROW_ACTION = 'Only Some Roles or Hosts…';

interface ScopeChoice {
  kind: 'role' | 'host';
  name: string;
}

/** The scope the user checked, or undefined when they closed the list (the confirmation comes back). */
export async function pickKamalScope(prompter: Prompter, plan: RollbackPlan, verb: string): Promise<KamalScopeRequest | undefined> {
  const scope = (plan as RollbackPlan<KamalPlanDetail>).detail.scope;
  if (!scope || !prompter.pickMany) return undefined;
  const { app } = scope;
  const rolesOn = (host: string) => app.roles.filter((role) => role.hosts.includes(host)).map((role) => role.name);
  const items: PickItem<ScopeChoice>[] = [
    { label: 'Roles', kind: vscode.QuickPickItemKind.Separator },
    ...app.roles.map((role) => ({ label: role.name, description: `role on ${role.hosts.join(', ')}`, picked: scope.roles.includes(role.name), value: { kind: 'role' as const, name: role.name } })),
    { label: 'Hosts', kind: vscode.QuickPickItemKind.Separator },
    ...app.hosts.map((host) => ({ label: host, description: `host of ${rolesOn(host).join(', ')}`, picked: scope.hosts.includes(host), value: { kind: 'host' as const, name: host } })),
  ];
  for (;;) {
    const picked = await prompter.pickMany(items, {
      title: `${verb} ${plan.app} (${plan.environment}) only on…`,
      placeHolder: 'Uncheck what to leave as it is (--roles / --hosts)',
    });
    if (!picked) return undefined;
    const names = (kind: ScopeChoice['kind']) => picked.flatMap((item) => (item.value?.kind === kind ? [item.value.name] : []));
    const request = scopeRequestFromPicks(app, names('role'), names('host'));
    if (request) return request;
    void vscode.window.showWarningMessage(`Keep at least one role and one host of ${plan.app} checked.`);
    for (const item of items) item.picked = picked.includes(item);
  }
}
