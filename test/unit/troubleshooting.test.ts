/**
 * TROUBLESHOOTING.md is where every finding's link lands: one `## <check id>` section per check,
 * in the order `doctor` prints them, and no link inside the file that goes nowhere. The ids come
 * from the code, so a new or renamed check fails here until the file has its section.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHECKS, runChecks, troubleshootingLink, TROUBLESHOOTING_URL } from '../../scripts/checks/index.ts';
import { renderFindings } from '../../scripts/report.ts';
import { facts } from './support/facts.ts';

const SYMPTOM_INDEX = 'By symptom';

/** GitHub's heading anchor: lowercase, drop all but letters, digits, spaces, hyphens and underscores, spaces become hyphens. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The file without fenced code blocks: a `## ` or `](#…)` inside one is not a heading or a link. */
function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');
}

/** Every ATX heading, level and text, in file order. */
function headings(markdown: string): { level: number; text: string }[] {
  return [...withoutCodeBlocks(markdown).matchAll(/^(#{1,6})[ \t]+(.+?)[ \t#]*$/gm)].map((match) => ({
    level: (match[1] as string).length,
    text: match[2] as string,
  }));
}

/** The anchors GitHub gives those headings; a repeated slug gets -1, -2, … as on GitHub. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const { text } of headings(markdown)) {
    const slug = githubAnchor(text);
    const count = seen.get(slug) ?? 0;
    result.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return result;
}

const markdown = readFileSync(new URL('../../TROUBLESHOOTING.md', import.meta.url), 'utf8');
const ids = CHECKS.map((check) => check.id);
const sections = headings(markdown)
  .filter((heading) => heading.level === 2)
  .map((heading) => heading.text);

describe('githubAnchor', () => {
  it('makes the anchors GitHub makes', () => {
    expect(githubAnchor('ollama.listener')).toBe('ollamalistener');
    expect(githubAnchor('ollama.host-probe')).toBe('ollamahost-probe');
    expect(githubAnchor('By symptom')).toBe('by-symptom');
    expect(githubAnchor('What `setup` changes (on Linux)')).toBe('what-setup-changes-on-linux');
    expect(githubAnchor('snake_case Title')).toBe('snake_case-title');
  });
});

describe('TROUBLESHOOTING.md', () => {
  it('has exactly one `## <id>` section per check, and no `## ` section for anything else but the symptom index', () => {
    for (const id of ids) expect(sections.filter((text) => text === id), `## ${id}`).toHaveLength(1);
    expect(sections.filter((text) => text === SYMPTOM_INDEX), `## ${SYMPTOM_INDEX}`).toHaveLength(1);
    const strays = sections.filter((text) => text !== SYMPTOM_INDEX && !ids.includes(text));
    expect(strays).toEqual([]);
  });

  it('lists the check sections in CHECKS order, before the symptom index', () => {
    expect(sections.filter((text) => ids.includes(text))).toEqual(ids);
    expect(sections.at(-1)).toBe(SYMPTOM_INDEX);
  });

  it('links only to anchors of its own headings', () => {
    const targets = [...withoutCodeBlocks(markdown).matchAll(/\]\(#([^)\s]*)\)/g)].map((match) => match[1] as string);
    expect(targets.length).toBeGreaterThan(0);
    const known = anchors(markdown);
    expect(targets.filter((target) => !known.has(target))).toEqual([]);
  });

  it('quotes the key symptom strings users search for', () => {
    for (const symptom of ['All connection attempts failed', 'WinError 10049', '403', 'connection refused']) {
      expect(markdown, symptom).toContain(symptom);
    }
  });
});

describe('the link every finding carries', () => {
  it('lands on that check\'s own section of the published guide', () => {
    const sectionAnchors = anchors(markdown);
    for (const id of ids) {
      const link = troubleshootingLink(id);
      expect(link.startsWith(`${TROUBLESHOOTING_URL}#`)).toBe(true);
      const anchor = link.slice(TROUBLESHOOTING_URL.length + 1);
      expect(anchor).toBe(githubAnchor(id));
      expect(sectionAnchors.has(anchor), `${id} → #${anchor}`).toBe(true);
    }
  });

  it('is printed under every problem, and is in --json for every finding', () => {
    const findings = runChecks(facts({ listeners: [], hostProbe: { ok: false, url: 'http://127.0.0.1:11434', kind: 'refused', error: 'ECONNREFUSED' } }));
    expect(findings.every((finding) => finding.docs === troubleshootingLink(finding.id))).toBe(true);
    const text = renderFindings(findings);
    expect(text).toContain(`More: ${troubleshootingLink('ollama.listener')}`);
    // A ✓ line stays one line.
    const ok = renderFindings(runChecks(facts()).filter((finding) => finding.status === 'ok'));
    expect(ok).not.toContain('More:');
  });
});
