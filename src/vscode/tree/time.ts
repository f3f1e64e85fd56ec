const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

const format = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 hours ago": for descriptions only, never ids or labels, which must not tick. */
export function relativeTime(timestamp: number, now: number): string {
  if (Number.isNaN(timestamp)) return '';
  const seconds = Math.round((timestamp - now) / 1000);
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.trunc(seconds / size), unit);
  }
  return 'just now';
}

const shortUnits: [string, number][] = [
  ['y', 365 * 24 * 3600],
  ['mo', 30 * 24 * 3600],
  ['w', 7 * 24 * 3600],
  ['d', 24 * 3600],
  ['h', 3600],
  ['m', 60],
];

/** "3h", "2d", "now": a duration that fits a sidebar description. Past and future alike. */
export function shortDuration(timestamp: number, now: number): string {
  if (Number.isNaN(timestamp)) return '';
  const seconds = Math.abs(Math.round((now - timestamp) / 1000));
  for (const [unit, size] of shortUnits) if (seconds >= size) return `${Math.trunc(seconds / size)}${unit}`;
  return seconds >= 1 ? `${seconds}s` : 'now';
}

/** "3h ago", "just now". */
export function shortAge(timestamp: number, now: number): string {
  const duration = shortDuration(timestamp, now);
  if (!duration) return '';
  return duration === 'now' ? 'just now' : `${duration} ago`;
}
