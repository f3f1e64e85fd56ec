import * as vscode from 'vscode';
import type { Reporter } from '../core/model';

/** The one output channel. LogOutputChannel timestamps every line; components prefix theirs. */
export class Output implements vscode.Disposable {
  readonly channel = vscode.window.createOutputChannel('Deploy Rollback', { log: true });

  /** `onProgress`: how far a run is (Reporter.progress), for a notification's bar. */
  reporter(prefix?: string, onStep?: (message: string) => void, onProgress?: (done: number, total: number) => void): Reporter {
    const tag = (message: string) => (prefix ? `[${prefix}] ${message}` : message);
    return {
      step: (message) => {
        this.channel.info(tag(message));
        onStep?.(message);
      },
      info: (message) => this.channel.info(tag(message)),
      debug: (message) => this.channel.debug(tag(message)),
      warn: (message) => this.channel.warn(tag(message)),
      error: (message) => this.channel.error(tag(message)),
      progress: onProgress,
    };
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
