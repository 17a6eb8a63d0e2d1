/** Pure schedule arithmetic, kept apart from the workflow so it can be tested without a server. */

export const DEFAULT_POLL_SCHEDULE_MS = [60_000, 120_000, 300_000, 600_000, 1_800_000];
export const DEFAULT_MAX_AGE_MS = 26 * 60 * 60 * 1000;

/** Delay before poll number `pollIndex` (0-based): each entry is used once, the last one repeats. */
export function pollDelayMs(schedule: readonly number[], pollIndex: number): number {
  if (schedule.length === 0) return DEFAULT_POLL_SCHEDULE_MS[0];
  return schedule[Math.min(pollIndex, schedule.length - 1)];
}

/** When the next poll happens: the scheduled time, or the deadline if that comes first. */
export function nextWakeMs(nowMs: number, delayMs: number, deadlineMs: number): number {
  return Math.min(nowMs + delayMs, deadlineMs);
}
