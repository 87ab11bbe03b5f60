// The docs may not lie about the repository: README.md and docs/*.md are checked for broken
// relative links and anchors, `make` targets the Makefile lacks, and repository paths that do not
// exist. The checker itself is tested on small fixtures, so a check that could never fail is caught too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { anchors, checkDocs, inlineCode, makeCalls, makeTargets, type Repo, repoPaths, slug } from '../../support/docs-links.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;

const disk: Repo = {
  read: (p) => (existsSync(join(ROOT, p)) ? readFileSync(join(ROOT, p), 'utf8') : undefined),
  exists: (p) => existsSync(join(ROOT, p)),
};

/** A repository held in memory: files by path; a folder exists when a file lies under it. */
function fixture(files: Record<string, string>): Repo {
  return {
    read: (p) => files[p],
    exists: (p) => p in files || Object.keys(files).some((f) => f.startsWith(`${p}/`)),
  };
}

test('README.md and every docs/*.md page: links, anchors, make targets and paths all exist', () => {
  const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  assert.ok(pages.length >= 10, `the docs pages are found: ${pages.join(', ')}`);
  assert.deepEqual(checkDocs(disk, pages), []);
});

test('the README links every docs page, so none is orphaned', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const f of readdirSync(join(ROOT, 'docs')).filter((x) => x.endsWith('.md'))) {
    assert.ok(readme.includes(`](docs/${f})`), `README.md links docs/${f}`);
  }
});

test('slugs follow GitHub: lower case, punctuation and code marks dropped, spaces to hyphens, repeats numbered', () => {
  assert.equal(slug('Side by side with another controller: `make bench-compare`'), 'side-by-side-with-another-controller-make-bench-compare');
  assert.equal(slug('`make install`, `make run` and Helm'), 'make-install-make-run-and-helm');
  assert.equal(slug('Two deliveries: a Secret, or a key that never leaves the node'), 'two-deliveries-a-secret-or-a-key-that-never-leaves-the-node');
  assert.equal(slug('GitOps with Argo CD — [details](x.md)'), 'gitops-with-argo-cd--details');
  assert.equal(slug('snake_case stays'), 'snake_case-stays');
  assert.deepEqual([...anchors('# A\n## A\n```\n# not a heading\n```\n### A #\n')], ['a', 'a-1', 'a-2']);
});

test('code is found inline (also across a line break and in double backticks) and not across paragraphs', () => {
  assert.deepEqual(inlineCode('run `make\ntest` and ``a `b` c`` then ` stray\n\nnext').spans, ['make test', 'a `b` c']);
  assert.deepEqual(makeCalls('make run ARGS=--http-port=8081'), ['run']);
  assert.deepEqual(makeCalls('USE_EXISTING_CLUSTER=true make test; make -s bench BENCH_MODE=compare'), ['test', 'bench']);
  assert.deepEqual(makeCalls('it makes a difference; make'), []);
  assert.deepEqual(repoPaths('kubectl apply -f ./examples/a.yaml, src/kube test/unit/**/*.test.ts dist/main.js'), ['examples/a.yaml', 'src/kube']);
  assert.deepEqual([...makeTargets('X := 1\n.PHONY: a b\na b: deps\n\tmake c\n$(X): y\nc:\n')].sort(), ['a', 'b', 'c']);
});

test('the checker fails on each kind of lie, naming the file and what is wrong', () => {
  const repo = fixture({
    'Makefile': '.PHONY: test\ntest:\n\tnode --test\n',
    'src/a.ts': '',
    'docs/ok.md': '# Ok\n## Real heading\n',
    'README.md': [
      '# Title',
      'Good: [ok](docs/ok.md#real-heading), [self](#title), [folder](src/), [web](https://example.com/x#y), `make test`, `src/a.ts`.',
      'Bad: [gone](docs/gone.md), [anchor](docs/ok.md#no-such-heading), [here](#nowhere), [out](../outside.md).',
      'Code is not a link: `[x](nothing.md)`.',
      '```sh',
      'make test   # make sure nothing else runs',
      'make lint',
      'cat src/b.ts',
      '```',
    ].join('\n'),
  });
  assert.deepEqual(checkDocs(repo, ['README.md', 'docs/ok.md']), [
    'README.md: link docs/gone.md: docs/gone.md does not exist',
    'README.md: link docs/ok.md#no-such-heading: no heading in docs/ok.md makes the anchor #no-such-heading',
    'README.md: link #nowhere: no heading in README.md makes the anchor #nowhere',
    'README.md: link ../outside.md leaves the repository',
    'README.md: `make lint`: no such target in the Makefile',
    'README.md: `src/b.ts` does not exist',
  ]);
});
