/**
 * Limits on job spec files, checked before the YAML parser sees them: the parser recurses per
 * level of nesting (a few thousand levels overflow its stack, and deeper ones exhaust memory
 * compiling a regular expression), and its time and memory grow with the file (a 50 MB spec
 * ran for minutes and took 800 MB). A real spec is a few kB and nests about four levels.
 */

/** The largest spec file read. */
export const MAX_SPEC_BYTES = 1024 * 1024;
/** The deepest nesting of mappings and lists a spec may have. */
export const MAX_SPEC_DEPTH = 32;

/**
 * The first line where the nesting of `text` (YAML or JSON) goes deeper than `limit`, or
 * undefined. One linear pass counting, per line, the open indentation levels, leading `- `
 * list markers and open `[`/`{` of flow collections, skipping quoted scalars and comments.
 * It may count a level YAML would not (it is an upper bound), never one fewer.
 */
export function tooDeepAt(text: string, limit = MAX_SPEC_DEPTH): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let line = 1;
  let i = 0;
  while (i < text.length) {
    // Start of a line: its indentation, then its leading list markers.
    let indent = 0;
    while (text[i] === ' ' || text[i] === '\t') {
      indent++;
      i++;
    }
    const blank = i >= text.length || text[i] === '\n' || text[i] === '\r' || text[i] === '#';
    let depth = flow;
    if (!blank && flow === 0) {
      while (indents.length > 0 && indents[indents.length - 1] >= indent) indents.pop();
      indents.push(indent);
      let markers = 0;
      while (text[i] === '-' && (text[i + 1] === ' ' || text[i + 1] === '\t')) {
        markers++;
        i += 2;
        while (text[i] === ' ' || text[i] === '\t') i++;
      }
      depth = indents.length + markers;
    }
    if (depth > limit) return line;
    // The rest of the line: flow brackets outside quotes and comments.
    let tokenStart = true;
    while (i < text.length && text[i] !== '\n') {
      const c = text[i];
      if (c === '#' && tokenStart) {
        while (i < text.length && text[i] !== '\n') i++;
        break;
      }
      if ((c === '"' || c === "'") && tokenStart) {
        i++;
        while (i < text.length) {
          if (text[i] === '\n') line++;
          if (c === '"' && text[i] === '\\') i += 2;
          else if (text[i] === c && c === "'" && text[i + 1] === "'") i += 2;
          else if (text[i] === c) break;
          else i++;
        }
        i++;
        tokenStart = false;
        continue;
      }
      if (c === '[' || c === '{') {
        flow++;
        if (indents.length + flow > limit) return line;
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
      tokenStart = c === ' ' || c === '\t' || c === ',' || c === '[' || c === '{' || c === ':';
      i++;
    }
    i++;
    line++;
  }
  return undefined;
}
