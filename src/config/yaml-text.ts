/**
 * Positions in YAML (or JSON) source text, for editing it as text: lines, quoted
 * strings, comments and brackets. Not a parser: good enough to find where to cut,
 * because every edit made with it is checked by parsing the result (see edit.ts).
 */

/** Positions of the significant characters in [from, to): not blank, not in a comment. */
export function significant(text: string, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) {
    const c = text[i]!;
    if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      i = contentEnd(text, i);
      continue;
    }
    if (c === '"' || c === "'") {
      const end = skipQuoted(text, i);
      for (let j = i; j <= end && j < to; j++) out.push(j);
      i = end;
      continue;
    }
    if (!/\s/.test(c)) out.push(i);
  }
  return out;
}

/** The index of the bracket closing the one at `open` (`[` or `{`), quotes and comments skipped. */
export function matchBracket(text: string, open: number): number | undefined {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") i = skipQuoted(text, i);
    else if (c === "#" && /\s/.test(text[i - 1] ?? "")) i = contentEnd(text, i);
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return undefined;
}

/** The index of the quote closing the string that opens at `at`. */
export function skipQuoted(text: string, at: number): number {
  const q = text[at];
  for (let i = at + 1; i < text.length; i++) {
    if (q === '"' && text[i] === "\\") i++;
    else if (text[i] === q) {
      if (q === "'" && text[i + 1] === "'") i++;
      else return i;
    }
  }
  return text.length;
}

export function lineStart(text: string, at: number): number {
  return text.lastIndexOf("\n", at - 1) + 1;
}

/** The end of `at`'s line before its line break (`\r\n` or `\n`). */
export function contentEnd(text: string, at: number): number {
  let end = text.indexOf("\n", at);
  if (end < 0) end = text.length;
  return text[end - 1] === "\r" ? end - 1 : end;
}

/** The start of the line after `at`'s line. */
export function lineEndNext(text: string, at: number): number {
  const end = text.indexOf("\n", at);
  return end < 0 ? text.length : end + 1;
}
