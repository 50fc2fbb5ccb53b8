// Grades as the reader sees them. Cells store ordinal levels 0..maxGrade; a scheme with half steps
// (Genant erosion, 0-3.5) shows level x step. Keyboard: a digit sets the whole grade and moves on
// as everywhere else; "." (or ",") typed right after it adds the half to that grade ("2" "." is
// 2.5), so whole grades, the common case, still cost one key and never wait for a second one.
export const HALF_KEY_WINDOW_MS = 1500;

export function gradeText(cell, level) {
  if (level === null || level === undefined) return "–";
  const step = cell.step || 1;
  return String(Math.round(level * step * 100) / 100);
}

// The level a digit means in this cell, or null when the digit is beyond the scale.
export function levelForDigit(cell, digit) {
  const level = Math.round(digit / (cell.step || 1));
  return level <= cell.maxGrade ? level : null;
}

// The level one half above `level`, or null when the cell has no half steps, the grade already
// has a half, or the half would pass the top of the scale.
export function levelWithHalf(cell, level) {
  if ((cell.step || 1) !== 0.5 || level === null || level % 2 !== 0 || level + 1 > cell.maxGrade) return null;
  return level + 1;
}
