/**
 * How a changed row set is redrawn. VS Code (1.100) forgets the handles of every row under a row
 * it is told changed, and learns them again only when the window asks for that row's children,
 * one round trip later; a menu entry chosen on one of those rows meanwhile runs its command with
 * no row ("Pick a release first"). A row that is itself redrawn keeps its handle. So a set whose
 * rows are the ones on screen, in the same order, is redrawn row by row, and only a set that gained,
 * lost or reordered rows is redrawn through its parent.
 */

export interface DrawnRow {
  id: string;
  /** What VS Code draws of the row (label, description, icon, menu, …) as one comparable string. */
  look: string;
}

/** The indices of `next` whose look changed, or 'parent' when the set itself changed. */
export function rowsToRedraw(shown: readonly DrawnRow[], next: readonly DrawnRow[]): number[] | 'parent' {
  if (shown.length !== next.length || shown.some((row, index) => row.id !== next[index].id)) return 'parent';
  return next.flatMap((row, index) => (row.look === shown[index].look ? [] : [index]));
}
