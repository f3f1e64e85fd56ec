import * as vscode from 'vscode';
import type { SshPrompts } from '../core/ssh/types';

/** Host keys and passphrases are asked in VS Code, modally, never assumed. */
export const vscodeSshPrompts: SshPrompts = {
  async confirmUnknownHostKey(host, port, keyType, fingerprint) {
    const where = port === 22 ? host : `[${host}]:${port}`;
    const answer = await vscode.window.showWarningMessage(
      `The authenticity of host ${where} can't be established.`,
      {
        modal: true,
        detail: `${keyType} key fingerprint is ${fingerprint}.\n\nCompare it with the host's real key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host) before trusting it. Trusting adds it to ~/.ssh/known_hosts, as ssh does.`,
      },
      'Trust Host',
    );
    return answer === 'Trust Host';
  },
  async passphrase(keyFile) {
    return vscode.window.showInputBox({
      title: 'SSH key passphrase',
      prompt: `Passphrase for ${keyFile}`,
      password: true,
      ignoreFocusOut: true,
    });
  },
};
