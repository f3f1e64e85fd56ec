import type { SourceFinder } from './discovery';

/** Every kind of release source the extension and the CLI look for. */
export const defaultFinders: readonly SourceFinder[] = [];
