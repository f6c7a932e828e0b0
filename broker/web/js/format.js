// Dates and times as a chat app shows them (the browser's locale and time zone).

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayMonth = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullDate = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: "long" });

const startOfDay = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
const DAY_MS = 86400000;

/** How many days before today `date` is (0: today). */
function daysAgo(date, now) {
  return Math.round((startOfDay(now) - startOfDay(date)) / DAY_MS);
}

export function clock(ts) {
  return time.format(new Date(ts * 1000));
}

/** A day heading: Today, Yesterday, a weekday this week, else the date. */
export function day(ts, now = new Date()) {
  const date = new Date(ts * 1000);
  const ago = daysAgo(date, now);
  if (ago === 0) return "Today";
  if (ago === 1) return "Yesterday";
  if (ago > 1 && ago < 7) return weekday.format(date);
  return date.getFullYear() === now.getFullYear() ? dayMonth.format(date) : fullDate.format(date);
}

/** The time of a chat in the list: 14:02, Yesterday, 12 Mar. */
export function listTime(ts, now = new Date()) {
  const date = new Date(ts * 1000);
  const ago = daysAgo(date, now);
  if (ago === 0) return clock(ts);
  return day(ts, now);
}

/** "last seen today at 14:02", "last seen yesterday at 09:10", "last seen 12 Mar at 18:00". */
export function lastSeen(ts, now = new Date()) {
  return `last seen ${seenAt(ts, now)}`;
}

/** "today at 14:02", "yesterday at 09:10", "12 Mar at 18:00" (as in "last seen …"). */
export function seenAt(ts, now = new Date()) {
  const date = new Date(ts * 1000);
  const ago = daysAgo(date, now);
  const at = clock(ts);
  if (ago <= 0) return `today at ${at}`;
  if (ago === 1) return `yesterday at ${at}`;
  const when = date.getFullYear() === now.getFullYear() ? dayMonth.format(date) : fullDate.format(date);
  return `${when} at ${at}`;
}

export function dayKey(ts) {
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
