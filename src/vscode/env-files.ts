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
  // Asked once per request: planning again (narrowed to some hosts) reuses the answer.
  let answer: Promise<boolean> | undefined;
  const allowCommands = async (files: string[]): Promise<boolean> => {
    if (!vscode.workspace.isTrusted) return false;
    if (!vscode.workspace.getConfiguration('deployRollback').get<boolean>('kamal.runSecretCommands', false)) return false;
    answer ??= prompter.confirm(
      `Run the commands in ${files.join(', ')}?`,
      'To compare the role env files with what Kamal would write, the $(...) commands of the secrets file run as Kamal runs them (each for at most 60 s). A password manager may ask you to sign in. No value is shown or logged. Without them, those keys are not compared.',
      'Run Commands',
    );
    return answer;
  };
  return { ...request, envFiles: { allowCommands } };
}

/**
 * The plan's confirmation; when env files differ from what Kamal would write, with a second button
 * that also writes them as Kamal does (Kamal's rollback always would); `also`: one more button,
 * answered as 'also'. Prompters without a choice (test fakes) confirm as before and keep the files.
 */
export async function confirmWithEnvFiles(
  prompter: Prompter,
  output: Output,
  plan: RollbackPlan,
  message: string,
  detail: string,
  action: string,
  also?: string,
): Promise<boolean | 'also'> {
  const kamalPlan = plan as RollbackPlan<KamalPlanDetail>;
  const env = plan.source === 'kamal' ? kamalPlan.detail.envFiles : undefined;
  const offerWrite = env !== undefined && !env.write && env.differences.length > 0;
  if (!prompter.choose || (!offerWrite && !also)) return prompter.confirm(message, detail, action);
  const writeAction = `${action} and Write Env Files`;
  let shown = detail;
  if (offerWrite) {
    const offer = `"${writeAction}" first writes them as Kamal's rollback does (0600).`;
    // The detail's last line points to the output; the offer goes just before it.
    const lines = detail.split('\n');
    shown = [...lines.slice(0, -1), offer, ...lines.slice(-1)].join('\n');
  }
  const answer = await prompter.choose(message, shown, [action, ...(offerWrite ? [writeAction] : []), ...(also ? [also] : [])]);
  if (answer !== undefined && answer === also) return 'also';
  if (offerWrite && answer === writeAction) {
    agreeToWriteEnvFiles(kamalPlan);
    output.channel.info('Env files: written as Kamal does before any switch.');
  } else if (offerWrite && answer === action) output.channel.info('Env files: kept as they are (not agreed to write them).');
  return answer === action || (offerWrite && answer === writeAction);
}
