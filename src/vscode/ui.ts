import * as vscode from 'vscode';

export interface PickItem<T> extends vscode.QuickPickItem {
  value?: T;
}

/**
 * Every question the extension asks the user goes through here, so the integration suite
 * can answer them (`api.testing.answer`) while the real dialogs are used everywhere else.
 */
export interface Prompter {
  confirm(message: string, detail: string, action: string): Promise<boolean>;
  /** A modal with several actions (the first one focused): the one chosen, undefined when dismissed. */
  choose?(message: string, detail: string, actions: string[]): Promise<string | undefined>;
  /** Typed confirmation for protected environments: resolves to what the user typed. */
  input(options: vscode.InputBoxOptions): Promise<string | undefined>;
  pick<T>(items: PickItem<T>[], options: vscode.QuickPickOptions): Promise<PickItem<T> | undefined>;
  /** A multi-select (items' `picked` checked at first): those checked when accepted, undefined when dismissed. */
  pickMany?<T>(items: PickItem<T>[], options: vscode.QuickPickOptions): Promise<PickItem<T>[] | undefined>;
}

/**
 * Questions stay open when focus moves: a tree redraw or a notification arriving mid-incident must
 * not dismiss a pick half answered. Escape still closes them.
 */
export const windowPrompter: Prompter = {
  async confirm(message, detail, action) {
    const answer = await vscode.window.showWarningMessage(message, { modal: true, detail }, action);
    return answer === action;
  },
  async choose(message, detail, actions) {
    return vscode.window.showWarningMessage(message, { modal: true, detail }, ...actions);
  },
  async input(options) {
    return vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
  },
  async pick(items, options) {
    return vscode.window.showQuickPick(items, { ignoreFocusOut: true, ...options });
  },
  async pickMany(items, options) {
    return vscode.window.showQuickPick(items, { ignoreFocusOut: true, ...options, canPickMany: true });
  },
};
