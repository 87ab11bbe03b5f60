// Checks that the Markdown docs say only true things about the repository: every relative link
// reaches a file, every #anchor a heading (GitHub's slugs), every `make <target>` a Makefile
// target, and every repository path in code a file or folder. Parsing is pure; reading the
// files is left to the caller's `Repo`, so a test can hand it a small fixture instead.
import { posix } from 'node:path';

/** What the checker may ask of the repository. Paths are relative to its root, '/'-separated. */
export interface Repo {
  read(path: string): string | undefined;
  exists(path: string): boolean;
}

/** Top-level folders whose paths, written in code, must exist. */
const PATH_PREFIXES = ['src/', 'test/', 'scripts/', 'helm/', 'deploy/', 'crds/', 'config/', 'examples/', 'docs/', 'bin/'];

/** The text with fenced code blocks blanked out (line count kept), and the blocks' contents. */
export function splitFences(md: string): { prose: string; blocks: string[] } {
  const prose: string[] = [];
  const blocks: string[] = [];
  let fence: string | undefined;
  let block: string[] = [];
  for (const line of md.split('\n')) {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === undefined && m) {
      fence = m[1]!;
      block = [];
      prose.push('');
    } else if (fence !== undefined && m && m[1]!.startsWith(fence[0]!) && m[1]!.length >= fence.length && line.trim() === m[1]) {
      fence = undefined;
      blocks.push(block.join('\n'));
      prose.push('');
    } else if (fence !== undefined) {
      block.push(line);
      prose.push('');
    } else {
      prose.push(line);
    }
  }
  if (fence !== undefined) blocks.push(block.join('\n'));
  return { prose: prose.join('\n'), blocks };
}

/**
 * Inline code spans (CommonMark: a run of n backticks closed by the next run of exactly n, not
 * across a blank line), and the prose with each span replaced by spaces so that links inside
 * code are not read as links.
 */
export function inlineCode(prose: string): { spans: string[]; rest: string } {
  const spans: string[] = [];
  let rest = '';
  let i = 0;
  while (i < prose.length) {
    if (prose[i] !== '`') { rest += prose[i]; i++; continue; }
    let n = 0;
    while (prose[i + n] === '`') n++;
    const closer = new RegExp(`(?<!\`)\`{${n}}(?!\`)`, 'g');
    closer.lastIndex = i + n;
    const close = closer.exec(prose);
    const body = close ? prose.slice(i + n, close.index) : undefined;
    if (body === undefined || /\n[ \t]*\n/.test(body)) {
      rest += '`'.repeat(n);
      i += n;
      continue;
    }
    spans.push(body.replace(/\n/g, ' ').trim());
    rest += ' '.repeat(close!.index + n - i);
    i = close!.index + n;
  }
  return { spans, rest };
}

/** GitHub's heading anchor (github-slugger): lower case, punctuation dropped, each space a hyphen. */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')   // a link's text, not its target
    .replace(/<[^>]+>/g, '');                      // inline HTML
  return text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a Markdown file's headings make, with GitHub's -1, -2 for repeats. */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of splitFences(md).prose.split('\n')) {
    const m = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Link targets in prose: inline links and images, and reference definitions. */
export function linkTargets(rest: string): string[] {
  const out: string[] = [];
  for (const m of rest.matchAll(/\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]!.replace(/^<|>$/g, ''));
  for (const m of rest.matchAll(/^ {0,3}\[[^\]]+\]:\s*(\S+)/gm)) out.push(m[1]!);
  return out;
}

/** The targets of the Makefile: `name:` at the start of a line, not `name :=`, not special. */
export function makeTargets(makefile: string): Set<string> {
  const out = new Set<string>();
  for (const m of makefile.matchAll(/^([A-Za-z0-9_.\/-]+(?:[ \t]+[A-Za-z0-9_.\/-]+)*)[ \t]*:(?![=:])/gm)) {
    for (const t of m[1]!.split(/[ \t]+/)) if (!t.startsWith('.')) out.add(t);
  }
  return out;
}

/** The targets named by `make …` in a piece of code: the first word after `make` that is no VAR=value or -flag. */
export function makeCalls(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/(?<![\w.\/-])make((?:[ \t]+[^\s;&|)`'"]+)+)/g)) {
    const target = m[1]!.trim().split(/[ \t]+/).find((w) => !w.includes('=') && !w.startsWith('-'));
    if (target && /^[A-Za-z][\w.-]*$/.test(target)) out.push(target);
  }
  return out;
}

/** Words in code that name a repository path under one of PATH_PREFIXES (no globs or placeholders). */
export function repoPaths(code: string): string[] {
  const out: string[] = [];
  for (const raw of code.split(/[\s=,;|()"'\[\]]+/)) {
    const word = raw.replace(/^\.\//, '').replace(/[.:]+$/, '');
    if (!PATH_PREFIXES.some((p) => word.startsWith(p))) continue;
    if (/[*{}<>$…]/.test(word)) continue;
    out.push(word);
  }
  return out;
}

/** Shell comments out of a fenced block, so prose in them ("# make sure…") is not a command. */
const stripComments = (block: string): string => block.split('\n').map((l) => l.replace(/(^|\s)#.*$/, '')).join('\n');

/** Every problem in the given Markdown files, one line each, naming the file. */
export function checkDocs(repo: Repo, files: string[]): string[] {
  const problems: string[] = [];
  const targets = makeTargets(repo.read('Makefile') ?? '');
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (path: string): Set<string> => {
    let a = anchorCache.get(path);
    if (!a) anchorCache.set(path, a = anchors(repo.read(path) ?? ''));
    return a;
  };
  for (const file of files) {
    const md = repo.read(file);
    if (md === undefined) { problems.push(`${file}: does not exist`); continue; }
    const { prose, blocks } = splitFences(md);
    const { spans, rest } = inlineCode(prose);
    for (const target of linkTargets(rest)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;   // https:, mailto:
      const [rawPath = '', anchor] = target.split('#', 2);
      const path = rawPath === '' ? file : posix.normalize(posix.join(posix.dirname(file), decodeURIComponent(rawPath))).replace(/\/$/, '');
      if (path.startsWith('..')) { problems.push(`${file}: link ${target} leaves the repository`); continue; }
      if (!repo.exists(path)) { problems.push(`${file}: link ${target}: ${path} does not exist`); continue; }
      if (anchor !== undefined && path.endsWith('.md') && !anchorsOf(path).has(anchor)) {
        problems.push(`${file}: link ${target}: no heading in ${path} makes the anchor #${anchor}`);
      }
    }
    const code = [...spans, ...blocks.map(stripComments)];
    for (const c of code) {
      for (const t of makeCalls(c)) if (!targets.has(t)) problems.push(`${file}: \`make ${t}\`: no such target in the Makefile`);
      for (const p of repoPaths(c)) if (!repo.exists(p.replace(/\/$/, ''))) problems.push(`${file}: \`${p}\` does not exist`);
    }
  }
  return problems;
}
