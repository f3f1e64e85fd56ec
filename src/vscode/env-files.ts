/**
 * Kamal env files in VS Code: the request that compares them while planning (the secrets file's
 * `$(...)` commands run only in a trusted workspace, with the setting on, after a question), and
 * the offer to write differing files as Kamal's rollback does. The logic is in src/core.
 */
import * as vscode from 'vscode';
import type { PlanRequest, RollbackPlan } from '../core/model';
import { agreeToWriteEnvFiles, type KamalPlanDetail } from '../core/kamal/rollback';
import type { Output } from './log';
import type { Prompter } from './ui';

/** Kamal plans compare the env files; gitops ones have none. */
export function withEnvFiles(kind: string, prompter: Prompter, request: PlanRequest): PlanRequest {
  if (kind !== 'kamal' || request.envFiles) return request;
  const allowCommands = async (files: string[]): Promise<boolean> => {
    if (!vscode.workspace.isTrusted) return false;
    if (!vscode.workspace.getConfiguration('deployRollback').get<boolean>('kamal.runSecretCommands', false)) return false;
    return prompter.confirm(
      `Run the commands in ${files.join(', ')}?`,
      'To compare the role env files with what Kamal would write, the $(...) commands of the secrets file run as Kamal runs them (each for at most 60 s). A password manager may ask you to sign in. No value is shown or logged. Without them, those keys are not compared.',
      'Run Commands',
    );
  };
  return { ...request, envFiles: { allowCommands } };
}

/** After the confirmation: offers to write the differing env files as Kamal does; dismissing keeps them. */
export async function offerEnvFileWrite(prompter: Prompter, output: Output, plan: RollbackPlan): Promise<void> {
  if (plan.source !== 'kamal') return;
  const kamalPlan = plan as RollbackPlan<KamalPlanDetail>;
  const env = kamalPlan.detail.envFiles;
  if (!env || env.write || env.differences.length === 0) return;
  const keys = env.differences.map((entry) => `${entry.host} (${entry.role}): ${entry.keys.join(', ')}`);
  const write = await prompter.confirm(
    'Write the env files as Kamal does?',
    [
      "These keys differ from what Kamal's rollback would write from the current config and .kamal/secrets:",
      ...keys,
      '',
      `Write: the files are written as Kamal does (mode 0600) before any switch, so ${plan.to} boots with the current values, as with \`kamal rollback\`. Dismiss: the files stay as the last deploy left them.`,
    ].join('\n'),
    'Write Env Files',
  );
  if (!write) {
    output.channel.info('Env files: kept as they are (not agreed to write them).');
    return;
  }
  agreeToWriteEnvFiles(kamalPlan);
  output.channel.info(`Env files: written as Kamal does before any switch (${keys.join('; ')}).`);
}
