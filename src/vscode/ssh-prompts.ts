import type { SshPrompts } from '../core/ssh/types';
import type { Prompter } from './ui';

/** Host keys and passphrases are asked modally through the prompter, never assumed. */
export function sshPromptsFor(prompter: () => Prompter): SshPrompts {
  return {
    async confirmUnknownHostKey(host, port, keyType, fingerprint) {
      const where = port === 22 ? host : `[${host}]:${port}`;
      return prompter().confirm(
        `The authenticity of host ${where} can't be established.`,
        `${keyType} key fingerprint is ${fingerprint}.\n\nCompare it with the host's real key (ssh-keygen -lf /etc/ssh/ssh_host_${keyType.replace(/^ssh-/, '')}_key.pub on the host) before trusting it. Trusting adds it to ~/.ssh/known_hosts, as ssh does.`,
        'Trust Host',
      );
    },
    async passphrase(keyFile) {
      const answer = await prompter().input({ title: 'SSH key passphrase', prompt: `Passphrase for ${keyFile}`, password: true, ignoreFocusOut: true });
      return answer === '' ? undefined : answer;
    },
  };
}
